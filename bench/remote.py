"""BIOS in a cloud (issue 18): a routed GetAttributes round trip against a local one, in
one run. Printed figures, not a timed test.

On loopback, in a temporary directory, two installations without TPM, each with its own
CA and its own `vbios serve` (its defaults) on a port from the kernel:
  - B holds domain d1 and gave host A a credential for it (`vbios host add host-a
    --domains d1 --out CREDENTIAL`);
  - A has domains d1 and d2, knows B (`vbios remote add b URL --bundle CREDENTIAL`) and
    routes d1's settings there (`vbios route set settings b --domain d1`); d2 is not
    routed.
Five kinds of GetAttributes, each on its own kept-alive mutual-TLS connection, in
interleaved rounds (the order turns every round) so that the machine's drift falls on
all:
  local    d2's guest on A: A answers (requests posting the SOAP bytes, as a guest);
  routed   d1's guest on A (requests, likewise): A forwards the call to B on its
           kept-alive connection and relays B's answer;
  hop      the one mutual-TLS round trip A -> B of a routed call: what A's forwarder
           posts (the body, ``X-Vbios-On-Behalf-Of: d1``), as it posts it (its
           ``RemotePool``, A's credential at B), from this process;
  hop/req  the same post from requests (the guests' client: its cost is in every row
           but this hop's);
  B local  d1's own guest of B on B (reference: the hop less the host's identity).
The goal: routed <= local + hop. Apart from the rounds: the first routed call after A
starts (A's connection to B is new: a TLS handshake, and the pool's TLS context), once
per start of A (``--starts``), and a hop on a new connection (``--cold`` samples).

Usage: .venv/bin/python bench/remote.py [--calls N] [--rounds R] [--starts S] [--cold C]
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
from _load import percentile
from _shared import (  # bench/ is the script directory
    HEADERS,
    NS,
    REQUEST,
    VBIOS,
    load_average,
    machine,
    session_for,
    spawn_server,
    stop_server,
    wait_ready,
)

from bios_ws.domain.routing import Remote
from bios_ws.home import Home
from bios_ws.pki.remote_credentials import client_context, key_path
from bios_ws.server.forwarding import ON_BEHALF_OF, RemotePool
from bios_ws.server.options import ServerOptions

#: A call of d1 that stays on A (machines stay where they run): it opens the guest's
#: connection to A without touching A's connection to B.
POWER = (
    "<?xml version='1.0' encoding='UTF-8'?>"
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    f'xmlns:v="{NS}"><soapenv:Body><v:GetPowerState/></soapenv:Body></soapenv:Envelope>'
).encode()
WHAT = {
    "local": "d2's guest on A (not routed)",
    "routed": "d1's guest on A, forwarded to B",
    "hop": "A's forwarder pool -> B, for d1",
    "hop/req": "the same post from requests",
    "B local": "d1's guest of B on B",
}
KINDS = tuple(WHAT)
ANSWER = b"GetAttributesResponse"

Call = Callable[[], None]


def vbios(*args: str) -> str:
    """One `vbios` command to completion; its output (the run stops if it fails)."""
    done = subprocess.run([str(VBIOS), *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise SystemExit(f"vbios {' '.join(args[:3])} failed: {done.stderr}")
    return done.stdout


def poster(session: requests.Session, url: str, body: bytes = REQUEST,
           headers: Mapping[str, str] = HEADERS, answer: bytes = ANSWER) -> Call:
    """One post of ``body``; raises unless it is answered with ``answer``."""
    def call() -> None:
        reply = session.post(url, data=body, headers=dict(headers), timeout=30)
        if reply.status_code != 200 or answer not in reply.content:
            raise RuntimeError(f"HTTP {reply.status_code}: {reply.content[:300]!r}")
    return call


def once(call: Call) -> float:
    begun = time.perf_counter()
    call()
    return time.perf_counter() - begun


@dataclass(frozen=True)
class Setup:
    a_home: Path
    b_url: str
    bundles: dict[str, Path]  # the bundle each kind of call presents
    #: What A's forwarder sends with a routed call's body.
    hop_headers: dict[str, str]

    def remote(self) -> Remote:
        credential = self.bundles["hop"]
        return Remote("b", self.b_url, (credential / "cert.pem").read_bytes(),
                      (credential / "ca.pem").read_bytes())

    def context(self) -> ssl.SSLContext:
        """A's TLS client context for B, as its forwarder makes it (the key A keeps)."""
        remote, home = self.remote(), Home.open(self.a_home)
        return client_context(remote.cert_pem, remote.ca_pem, key_path(home.pki_dir, "b"),
                              home.key_passphrase("server"))

    def hop(self, pool: RemotePool) -> Call:
        def call() -> None:
            answer = pool.post(REQUEST, self.hop_headers)
            if answer.status != 200 or ANSWER not in answer.body:
                raise RuntimeError(f"HTTP {answer.status}: {answer.body[:300]!r}")
        return call


def prepare(tmp: Path, procs: list[subprocess.Popen[bytes]]) -> Setup:
    """Both homes, B served (appended to ``procs``), A configured (not yet served)."""
    a_home, b_home = tmp / "a", tmp / "b"
    vbios("init", "--home", str(a_home), "--no-tpm", "--host-name", "host-a")
    vbios("init", "--home", str(b_home), "--no-tpm", "--host-name", "host-b")
    bundles = {"B local": tmp / "b-guest-d1", "hop": tmp / "host-a-credential",
               "routed": tmp / "a-guest-d1", "local": tmp / "a-guest-d2"}
    vbios("domain", "create", "d1", "--home", str(b_home), "--out", str(bundles["B local"]))
    vbios("host", "add", "host-a", "--domains", "d1", "--out", str(bundles["hop"]),
          "--home", str(b_home))
    proc, port = spawn_server([str(VBIOS), "serve", "--home", str(b_home)], tmp / "b.log")
    procs.append(proc)
    b_url = f"https://127.0.0.1:{port}/"
    with session_for(b_home / "admin") as admin:
        wait_ready(admin, b_url, proc)
    vbios("domain", "create", "d1", "--home", str(a_home), "--out", str(bundles["routed"]))
    vbios("domain", "create", "d2", "--home", str(a_home), "--out", str(bundles["local"]))
    vbios("remote", "add", "b", b_url, "--bundle", str(bundles["hop"]), "--home", str(a_home))
    vbios("route", "set", "settings", "b", "--domain", "d1", "--home", str(a_home))
    return Setup(a_home, b_url, bundles, {**HEADERS, ON_BEHALF_OF: "d1"})


def start_a(setup: Setup, tmp: Path, procs: list[subprocess.Popen[bytes]]) -> str:
    proc, port = spawn_server([str(VBIOS), "serve", "--home", str(setup.a_home)],
                              tmp / "a.log")
    procs.append(proc)
    url = f"https://127.0.0.1:{port}/"
    with session_for(setup.a_home / "admin") as admin:  # an admin's call is never routed
        wait_ready(admin, url, proc)
    return url


def first_routed(setup: Setup, a_url: str) -> tuple[float, float]:
    """On a freshly started A: the first routed GetAttributes of d1's guest (A's worker
    has no connection to B yet) and the next one (it has), in seconds. The guest's own
    connection to A is opened before, by a call that stays on A."""
    with session_for(setup.bundles["routed"]) as guest:
        poster(guest, a_url, POWER, {**HEADERS, "SOAPAction": '"GetPowerState"'},
               b"GetPowerStateResponse")()
        routed = poster(guest, a_url)
        return once(routed), once(routed)


def cold_hops(setup: Setup, samples: int) -> tuple[list[float], list[float]]:
    """Hops on a new connection each (the TLS handshake with B, then the call), as A's
    forwarder makes one with a new pool; and the making of its TLS context."""
    spent, contexts = [], []
    for _ in range(samples):
        begun = time.perf_counter()
        context = setup.context()
        contexts.append(time.perf_counter() - begun)
        pool = RemotePool(setup.remote(), context, timeout=30)
        try:
            spent.append(once(setup.hop(pool)))
        finally:
            pool.close()
    return spent, contexts


def rounds(calls: Mapping[str, Call], per_round: int, count: int
           ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Every call's latency per kind, and each round's median per kind; the kinds take
    turns within a round, the first of one round last in the next."""
    every: dict[str, list[float]] = {kind: [] for kind in calls}
    medians: dict[str, list[float]] = {kind: [] for kind in calls}
    order = list(calls)
    for number in range(count):
        turn = order[number % len(order):] + order[:number % len(order)]
        for kind in turn:
            call, spent = calls[kind], []
            for _ in range(per_round):
                spent.append(once(call))
            every[kind] += spent
            medians[kind].append(statistics.median(spent))
    return every, medians


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def goal(p50: Mapping[str, float], hop: str) -> str:
    budget = p50["local"] + p50[hop]
    ratio = p50["routed"] / budget
    return (f"{ms(p50['routed'])} ms vs {ms(p50['local'])} + {ms(p50[hop])} = {ms(budget)}"
            f" ms: routed / (local + {hop}) = {ratio:.2f}: {'met' if ratio <= 1 else 'NOT met'}")


def report(every: Mapping[str, list[float]], medians: Mapping[str, list[float]],
           starts: list[tuple[float, float]], cold: tuple[list[float], list[float]],
           args: argparse.Namespace, loads: tuple[str, str]) -> None:
    options = ServerOptions()
    print(f"\nbench/remote.py on {machine()}")
    print(f"load average (1, 5, 15 min) at the start: {loads[0]}; at the end: {loads[1]}")
    print(f"A and B: vbios serve, {options.workers} workers x {options.threads} threads each,"
          " no TPM, on loopback")
    print(f"\nGetAttributes, kept-alive mutual TLS, one connection per kind: {args.rounds} "
          f"interleaved rounds of {args.calls} calls per kind")
    print(f"{'kind':8} {'':34} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'mean ms':>8}"
          f" {'round p50s ms':>14}")
    for kind in KINDS:
        spent, per = every[kind], medians[kind]
        print(f"{kind:8} {WHAT[kind]:34} {ms(percentile(spent, 50)):>7} "
              f"{ms(percentile(spent, 90)):>7} {ms(percentile(spent, 99)):>7} "
              f"{ms(statistics.fmean(spent)):>8} {ms(min(per)):>7}-{ms(max(per))}")
    p50 = {kind: percentile(every[kind], 50) for kind in KINDS}
    per_round = sorted(r / (lo + h) for r, lo, h in zip(
        medians["routed"], medians["local"], medians["hop"], strict=True))
    print(f"\ngoal routed <= local + hop (p50): {goal(p50, 'hop')}")
    print(f"  the same ratio per round: {', '.join(f'{r:.2f}' for r in per_round)}")
    print(f"  with the hop from requests: {goal(p50, 'hop/req')}")
    print(f"  A's part of a routed call (routed - hop): {ms(p50['routed'] - p50['hop'])} ms;"
          f" A answering itself (local): {ms(p50['local'])} ms")
    firsts = [first for first, _ in starts]
    print(f"\nfirst routed call after A starts (A's worker opens its connection to B), "
          f"{len(starts)} starts: " + ", ".join(f"{ms(f)} ms (next {ms(n)})" for f, n in starts)
          + f"; median {ms(statistics.median(firsts))} ms")
    hops, contexts = cold
    print(f"a hop on a new connection (A's TLS handshake with B, then the call), {len(hops)} "
          f"samples: p50 {ms(percentile(hops, 50))} ms, p90 {ms(percentile(hops, 90))} ms;"
          f" making A's TLS context for B before it: p50 {ms(percentile(contexts, 50))} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per round and kind")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--starts", type=int, default=3,
                        help="starts of A, each measuring its first routed call")
    parser.add_argument("--cold", type=int, default=30, help="hops on a new connection")
    args = parser.parse_args()
    if min(args.calls, args.rounds, args.starts, args.cold) < 1:
        parser.error("every count is at least 1")
    start_load = load_average()
    procs: list[subprocess.Popen[bytes]] = []
    sessions: list[requests.Session] = []
    pools: list[RemotePool] = []
    with tempfile.TemporaryDirectory(prefix="vbios-bench-") as name:
        tmp = Path(name)
        try:
            setup = prepare(tmp, procs)
            starts = []
            for _ in range(args.starts):
                if len(procs) > 1:
                    stop_server(procs.pop())
                a_url = start_a(setup, tmp, procs)
                starts.append(first_routed(setup, a_url))
            sessions += [session_for(setup.bundles[kind])
                         for kind in ("local", "routed", "hop", "B local")]
            local, routed, host, b_guest = sessions
            pools.append(RemotePool(setup.remote(), setup.context(), timeout=30))
            calls = {"local": poster(local, a_url), "routed": poster(routed, a_url),
                     "hop": setup.hop(pools[0]),
                     "hop/req": poster(host, setup.b_url, headers=setup.hop_headers),
                     "B local": poster(b_guest, setup.b_url)}
            for call in calls.values():  # warm-up: connections, caches, both workers
                for _ in range(50):
                    call()
            every, medians = rounds(calls, args.calls, args.rounds)
            cold = cold_hops(setup, args.cold)
        finally:
            for pool in pools:
                pool.close()
            for session in sessions:
                session.close()
            for proc in reversed(procs):
                stop_server(proc)
    report(every, medians, starts, cold, args, (start_load, load_average()))


if __name__ == "__main__":
    main()
