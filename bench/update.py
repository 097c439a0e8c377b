"""Capsule upload throughput, plain and encrypted, against a raw HTTPS POST baseline.

In one process, against one `vbios serve` and one echo app behind the same front, TLS
context and workers (bench/echo_server.py), for a signed capsule of a 4 MiB image:
  - plain: BeginFirmwareUpload, the chunks (UploadFirmwareChunk, 512 KiB each), commit;
  - encrypted: the same with one-time keys (the client's encryption counted);
  - raw: the same chunk request bytes posted to the echo app (the transport alone);
and, in-process, the capsule's parse and signature verification. Each round uses a
domain of its own (one update runs at a time per domain). Throughput is capsule MB per
second of upload (begin and chunks); the commit (verify, judge, stage) is shown apart.

Usage: .venv/bin/python bench/update.py [--rounds R] [--mib N]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests
from _shared import NS, VBIOS, session_for, spawn_server, stop_server, wait_ready
from vbios_client._transfer import OneTimeSender

from bios_ws.bootstrap import bootstrap, initialize_home
from bios_ws.cli.serve import ensure_demo_domain
from bios_ws.config import Config
from bios_ws.domain.capsule import parse_capsule
from bios_ws.domain.firmware_upload import MAX_CAPSULE_BYTES, MAX_CHUNK_BYTES
from bios_ws.domain.principal import Principal
from bios_ws.firmware import Pkcs7CapsuleVerifier
from bios_ws.service.firmware_trust import FirmwareTrustService

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.firmware_support
from tests.firmware_support import capsule, firmware_volume, make_signers

MIB = 1024 * 1024


def envelope(operation: str, inner: str) -> bytes:
    return ("<?xml version='1.0' encoding='UTF-8'?><soapenv:Envelope xmlns:soapenv="
            f'"http://schemas.xmlsoap.org/soap/envelope/" xmlns:v="{NS}"><soapenv:Body>'
            f"<v:{operation}>{inner}</v:{operation}></soapenv:Body></soapenv:Envelope>"
            ).encode()


class Uploader:
    """One guest's SOAP calls, posted with a kept-alive session."""

    def __init__(self, session: requests.Session, url: str) -> None:
        self.session, self.url = session, url

    def post(self, operation: str, body: bytes) -> bytes:
        reply = self.session.post(self.url, data=body, timeout=60, headers={
            "Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'})
        if reply.status_code != 200:
            raise SystemExit(f"{operation}: HTTP {reply.status_code}: {reply.text[:300]}")
        return reply.content

    def field(self, answer: bytes, name: str) -> str:
        start = answer.index(f":{name}>".encode()) + len(name) + 2
        return answer[start:answer.index(b"</", start)].decode()

    def begin(self, data: bytes, client_key: bytes | None = None) -> bytes:
        key = "" if client_key is None else f"<v:ClientKey>{b64(client_key)}</v:ClientKey>"
        return self.post("BeginFirmwareUpload", envelope(
            "BeginFirmwareUpload", f"<v:Size>{len(data)}</v:Size><v:Sha256>"
            f"{hashlib.sha256(data).hexdigest()}</v:Sha256>{key}"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def chunk_bodies(upload_id: str, data: bytes) -> list[bytes]:
    return [envelope("UploadFirmwareChunk", f"<v:UploadId>{upload_id}</v:UploadId>"
                     f"<v:Offset>{offset}</v:Offset><v:Data>{b64(part)}</v:Data>"
                     f"<v:Sha256>{hashlib.sha256(part).hexdigest()}</v:Sha256>")
            for offset in range(0, len(data), MAX_CHUNK_BYTES)
            for part in [data[offset:offset + MAX_CHUNK_BYTES]]]


def upload(guest: Uploader, data: bytes, *, encrypt: bool) -> tuple[float, float]:
    """Seconds of upload (begin, encryption, chunks) and of the commit."""
    start = time.perf_counter()
    sender = OneTimeSender() if encrypt else None
    opened = guest.begin(data, None if sender is None else sender.client_public())
    upload_id = guest.field(opened, "UploadId")
    sent = data
    if sender is not None:
        sent = sender.encrypt(upload_id, base64.b64decode(guest.field(opened, "ServerStaticKey")),
                              base64.b64decode(guest.field(opened, "ServerOneTimeKey")), data)
    for body in chunk_bodies(upload_id, sent):
        guest.post("UploadFirmwareChunk", body)
    uploaded = time.perf_counter()
    answer = guest.post("CommitFirmwareUpload", envelope(
        "CommitFirmwareUpload", f"<v:UploadId>{upload_id}</v:UploadId>"))
    if b"<tns:State>NeedsReset</tns:State>" not in answer:
        raise SystemExit(f"the commit did not stage the update: {answer[:400]!r}")
    return uploaded - start, time.perf_counter() - uploaded


def raw(echo: Uploader, data: bytes) -> float:
    """Seconds to post the same chunk requests to the echo app."""
    start = time.perf_counter()
    for body in [envelope("BeginFirmwareUpload", ""), *chunk_bodies("0" * 32, data)]:
        echo.post("UploadFirmwareChunk", body)
    return time.perf_counter() - start


def verification(data: bytes, anchors: list[bytes], n: int = 20) -> float:
    verifier = Pkcs7CapsuleVerifier()
    now = datetime.now(UTC)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        verifier.verify(parse_capsule(data, max_size=MAX_CAPSULE_BYTES), anchors, now=now)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=4, help="image size in MiB")
    args = parser.parse_args()
    signers = make_signers(datetime.now(UTC))
    data = capsule(signers, 2, count=1, image=firmware_volume(args.mib * MIB))
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="vbios-bench-") as tmp:
        home = initialize_home(Path(tmp) / "home")
        with bootstrap(Config.of(home)) as app:
            app.use(FirmwareTrustService).add(Principal.admin(), signers.root.cert_pem())
        names = [f"up{mode}{n}" for n in range(args.rounds + 1) for mode in "pe"]
        bundles = {name: ensure_demo_domain(home, name) for name in names}
        try:
            proc, port = spawn_server([str(VBIOS), "serve", "--home", str(home.path)],
                                      Path(tmp) / "serve.log")
            procs.append(proc)
            url = f"https://127.0.0.1:{port}/"
            wait_ready(session_for(bundles[names[0]]), url, proc)
            proc, port = spawn_server(
                [sys.executable, str(Path(__file__).with_name("echo_server.py")),
                 "--home", str(home.path), "--size", "600"], Path(tmp) / "echo.log")
            procs.append(proc)
            echo = Uploader(session_for(bundles[names[0]]), f"https://127.0.0.1:{port}/")
            wait_ready(echo.session, echo.url, proc)
            report(args, data, bundles, names, url, echo,
                   [signers.root.der()])
        finally:
            for proc in procs:
                stop_server(proc)


def report(args: argparse.Namespace, data: bytes, bundles: dict[str, Path],
           names: list[str], url: str, echo: Uploader, anchors: list[bytes]) -> None:
    results: dict[str, list[float]] = {"plain": [], "encrypted": [], "raw": [],
                                       "commit plain": [], "commit encrypted": []}
    guests: dict[str, Callable[[], Uploader]] = {
        name: (lambda name=name: Uploader(session_for(bundles[name]), url)) for name in names}
    for n in range(args.rounds + 1):  # round 0 warms up
        plain, commit = upload(guests[f"upp{n}"](), data, encrypt=False)
        encrypted, commit_e = upload(guests[f"upe{n}"](), data, encrypt=True)
        baseline = raw(echo, data)
        if n:
            for key, seconds in (("plain", plain), ("encrypted", encrypted), ("raw", baseline),
                                 ("commit plain", commit), ("commit encrypted", commit_e)):
                results[key].append(seconds)
    size_mb = len(data) / 1e6
    print(f"capsule {len(data) / MIB:.2f} MiB ({args.mib} MiB image), chunks of"
          f" {MAX_CHUNK_BYTES // 1024} KiB, {args.rounds} rounds (medians)")
    raw_s = statistics.median(results["raw"])
    for key in ("raw", "plain", "encrypted"):
        seconds = statistics.median(results[key])
        ratio = "" if key == "raw" else f"  ({seconds / raw_s:.2f}x the raw POSTs)"
        print(f"  {key:<10} {size_mb / seconds:7.1f} MB/s  {seconds * 1e3:7.0f} ms{ratio}")
    for key in ("commit plain", "commit encrypted"):
        print(f"  {key:<17} {statistics.median(results[key]) * 1e3:7.0f} ms"
              " (decrypt, parse, verify, judge, stage the image)")
    print(f"  signature verification (parse + PKCS#7 + chain), in-process:"
          f" {verification(data, anchors) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
