"""Calls per second and p50/p99 latency under 1, 4 and 16 concurrent guests, GET and SET,
against the echo baseline and the peer (sushy-tools) in the same run.

One run starts, on loopback and in a temporary directory:
  - the vBIOS (`vbios serve`, a home without TPM) with one guest domain per thread;
  - the echo app behind the same front, TLS contexts, workers and threads
    (bench/echo_server.py), answering responses of the SOAP endpoint's sizes;
  - sushy-tools behind gunicorn with keep-alive, plain HTTPS (bench/_peer.py), unless
    its interpreter is missing (`make peer`).
Each thread is a guest of its own with its own keep-alive session or library client:
  raw      requests posting the SOAP bytes to the vBIOS (mutual TLS)
  library  the guest library, vbios_client.BiosClient
  echo     requests posting the same bytes to the echo app
  sushy    requests: GET /redfish/v1/Systems/<id>/BIOS, PATCH .../BIOS/Settings
GET is GetAttributes; SET writes AcPwrRcvryDelay (an Integer that takes effect at once)
with a value other than the one before, so no write is a no-op. Cells are run in
turn, repetition after repetition; the figures are the medians of the repetitions.

Usage: .venv/bin/python bench/concurrency.py [--seconds S | --calls N] [--reps R]
           [--concurrency 1,4,16] [--peer-python PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from _load import Call, Sample, median_sample, run_cell
from _peer import find_peer, session_trusting, spawn_sushy, system_id
from _report import print_report
from _shared import (
    HEADERS,
    NS,
    REQUEST,
    VBIOS,
    session_for,
    spawn_server,
    stop_server,
    wait_ready,
)
from vbios_client import BiosClient

from bios_ws.bootstrap import initialize_home
from bios_ws.cli.serve import ensure_demo_domain

#: The attribute every SET writes: an Integer from 0 to 600 without reset.
ATTRIBUTE, LAST_VALUE = "AcPwrRcvryDelay", 600
SET_HEADERS = {**HEADERS, "SOAPAction": '"SetAttributes"'}
TARGETS = ("echo", "raw", "library", "sushy")
OPS = ("GET", "SET")


def set_request(value: int) -> bytes:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:v="{NS}"><soapenv:Body><v:SetAttributes><v:Attributes><v:AttributeValue>'
        f"<v:Name>{ATTRIBUTE}</v:Name><v:IntegerValue>{value}</v:IntegerValue>"
        "</v:AttributeValue></v:Attributes><v:ApplyTime>Immediate</v:ApplyTime>"
        "</v:SetAttributes></soapenv:Body></soapenv:Envelope>"
    ).encode()


class Values:
    """Per guest, the value its next write sets: never the one it wrote last."""

    def __init__(self, guests: int) -> None:
        self.last = [0] * guests  # the registry default

    def next(self, guest: int) -> int:
        self.last[guest] = self.last[guest] % LAST_VALUE + 1
        return self.last[guest]


def expect(reply: requests.Response, status: int, marker: bytes = b"") -> None:
    if reply.status_code != status or marker not in reply.content:
        raise RuntimeError(f"{reply.request.method} {reply.url}: HTTP {reply.status_code} "
                           f"{reply.content[:300]!r}")


def soap_calls(url: str, session: requests.Session, guest: int, values: Values,
               check: bool) -> dict[str, Call]:
    """GET and SET of ``guest`` posting the SOAP bytes; ``check`` reads the answers'
    element (the echo app answers blanks)."""
    get_mark, set_mark = (b"GetAttributesResponse", b"SetAttributesResponse") if check \
        else (b"", b"")

    def get() -> None:
        expect(session.post(url, data=REQUEST, headers=HEADERS, timeout=30), 200, get_mark)

    def put() -> None:
        body = set_request(values.next(guest))
        expect(session.post(url, data=body, headers=SET_HEADERS, timeout=30), 200, set_mark)

    return {"GET": get, "SET": put}


def library_calls(client: BiosClient, guest: int, values: Values) -> dict[str, Call]:
    def get() -> None:
        client.get_attributes()

    def put() -> None:
        client.set_attributes({ATTRIBUTE: values.next(guest)})

    return {"GET": get, "SET": put}


def sushy_calls(base: str, session: requests.Session, guest: int,
                values: Values) -> dict[str, Call]:
    bios = f"{base}/redfish/v1/Systems/{system_id(guest + 1)}/BIOS"

    def get() -> None:
        expect(session.get(bios, timeout=30), 200, b'"Attributes"')

    def put() -> None:
        change = {"Attributes": {ATTRIBUTE: values.next(guest)}}
        expect(session.patch(f"{bios}/Settings", json=change, timeout=30), 204)

    return {"GET": get, "SET": put}


@dataclass
class Stand:
    """The servers of one run and, per target, each guest's GET and SET call."""

    calls: dict[str, list[dict[str, Call]]]
    sizes: dict[str, int]
    closers: list[Any]


def stand_up(tmp: Path, guests: int, peer: Path | None, procs: list[Any]) -> Stand:
    home = initialize_home(tmp / "home")
    bundles = [ensure_demo_domain(home, f"guest-{n:02d}") for n in range(1, guests + 1)]
    proc, port = spawn_server([str(VBIOS), "serve", "--home", str(home.path)],
                              tmp / "serve.log")
    procs.append(proc)
    url = f"https://127.0.0.1:{port}/"
    raw = [session_for(bundle) for bundle in bundles]
    wait_ready(raw[0], url, proc)
    soap_values = Values(guests)
    calls: dict[str, list[dict[str, Call]]] = {
        "raw": [soap_calls(url, s, g, soap_values, True) for g, s in enumerate(raw)]}
    get = raw[0].post(url, data=REQUEST, headers=HEADERS, timeout=30)
    put = raw[0].post(url, data=set_request(soap_values.next(0)), headers=SET_HEADERS)
    for reply, mark in ((get, b"GetAttributesResponse"), (put, b"SetAttributesResponse")):
        expect(reply, 200, mark)
    sizes = {"soap GET": len(get.content), "soap SET": len(put.content)}

    proc, port = spawn_server(
        [sys.executable, str(Path(__file__).with_name("echo_server.py")), "--home",
         str(home.path), "--size", str(sizes["soap GET"]), "--set-size", str(sizes["soap SET"])],
        tmp / "echo.log")
    procs.append(proc)
    echo_url = f"https://127.0.0.1:{port}/"
    echo = [session_for(bundle) for bundle in bundles]
    wait_ready(echo[0], echo_url, proc)
    calls["echo"] = [soap_calls(echo_url, s, g, Values(guests), False)
                     for g, s in enumerate(echo)]
    clients = [BiosClient.from_bundle(url, bundle) for bundle in bundles]
    calls["library"] = [library_calls(c, g, soap_values) for g, c in enumerate(clients)]
    closers: list[Any] = [*raw, *echo, *clients]
    if peer is not None:
        proc, base, cert = spawn_sushy(peer, tmp, guests)
        procs.append(proc)
        sushy = [session_trusting(cert) for _ in range(guests)]
        closers += sushy
        calls["sushy"] = [sushy_calls(base, s, g, Values(guests)) for g, s in enumerate(sushy)]
        reply = sushy[0].get(f"{base}/redfish/v1/Systems/{system_id(1)}/BIOS", timeout=30)
        expect(reply, 200, b'"Attributes"')
        sizes["sushy GET"] = len(reply.content)
    for target in calls.values():  # warm-up: connections, caches, workers
        for op in OPS:
            run_cell([guest[op] for guest in target], per_thread=10)
    check_written(clients, soap_values)
    return Stand(calls, sizes, closers)


def check_written(clients: Sequence[BiosClient], values: Values) -> None:
    """Every guest's domain holds the value its last write set."""
    for guest, client in enumerate(clients):
        held = client.get_attributes([ATTRIBUTE]).values[ATTRIBUTE]
        if held != values.last[guest]:
            raise SystemExit(f"guest {guest + 1}: {ATTRIBUTE} is {held}, "
                             f"not the {values.last[guest]} written last")


def measure(stand: Stand, levels: Sequence[int], reps: int, seconds: float | None,
            calls: int | None) -> dict[tuple[str, str, int], Sample]:
    """Medians over ``reps`` rounds, each round every (op, guests, target) cell in turn."""
    samples: dict[tuple[str, str, int], list[Sample]] = {}
    for rep in range(reps):
        for op in OPS:
            for level in levels:
                for target in (t for t in TARGETS if t in stand.calls):
                    guests = [guest[op] for guest in stand.calls[target][:level]]
                    per_thread = None if calls is None else max(1, calls // level)
                    sample = run_cell(guests, seconds=seconds, per_thread=per_thread)
                    samples.setdefault((target, op, level), []).append(sample)
        print(f"repetition {rep + 1}/{reps} done", file=sys.stderr, flush=True)
    return {key: median_sample(runs) for key, runs in samples.items()}


def parse_levels(text: str) -> list[int]:
    levels = sorted({int(part) for part in text.split(",")})
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("concurrency levels are positive integers")
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=float, help="seconds per cell (default 2)")
    budget.add_argument("--calls", type=int, help="calls per cell, shared among its guests")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--concurrency", type=parse_levels, default=[1, 4, 16],
                        help="comma-separated numbers of concurrent guests (1,4,16)")
    parser.add_argument("--peer-python", help="interpreter with sushy-tools (`make peer`)")
    args = parser.parse_args()
    seconds = 2.0 if args.seconds is None and args.calls is None else args.seconds
    peer = find_peer(args.peer_python)
    procs: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="vbios-bench-") as tmp:
        try:
            stand = stand_up(Path(tmp), max(args.concurrency), peer, procs)
            results = measure(stand, args.concurrency, args.reps, seconds, args.calls)
            for closer in stand.closers:
                closer.close()
        finally:
            for proc in procs:
                stop_server(proc)
    budget_text = f"{seconds:g} s" if seconds is not None else f"{args.calls} calls"
    print_report(results, args.concurrency, stand.sizes,
                 f"medians of {args.reps} interleaved repetitions, {budget_text} per cell")


if __name__ == "__main__":
    main()
