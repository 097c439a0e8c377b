"""A real `vbios serve` under a slow-connection attack from another process: legitimate
guests still get their answers at once, the server closes the held connections when
their bounds expire, and gives their memory back. Default bounds (handshake 5 s,
request head 10 s)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from lxml import etree

from bios_ws.server.options import Bounds
from tests.e2e.conftest import ServerProcess, served_home

HALF_OPEN = 1000
HALF_REQUESTS = 200
LEGITIMATE_CALLS = 30
SLOWEST_ALLOWED = 2.0
MEMORY_SLACK_MIB = 20.0
ATTACKER = Path(__file__).resolve().parents[1] / "attack_client.py"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with served_home(tmp_path) as served:
        yield served


def server_processes(root: int) -> list[int]:
    """``root`` and its descendants (the master and its workers)."""
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            children = (task / "children").read_text().split()
            pending.extend(int(child) for child in children)
    return found


def rss_mib(root: int) -> float:
    total_kib = 0
    for pid in server_processes(root):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def legitimate_calls(server: ServerProcess, bundle: Path) -> list[tuple[int, float]]:
    """GetAttributes on a new connection each, 10 at a time: (status, seconds) each."""
    def one(_: int) -> tuple[int, float]:
        started = time.monotonic()
        status = server.call(bundle, "GetAttributes").status
        return status, time.monotonic() - started

    with ThreadPoolExecutor(10) as pool:
        return list(pool.map(one, range(LEGITIMATE_CALLS)))


def warmed_up(server: ServerProcess, bundle: Path) -> float:
    """The server's RSS once legitimate calls no longer grow it (every worker thread has
    made its first calls: its store connection, its caches)."""
    legitimate_calls(server, bundle)
    last = rss_mib(server.pid)
    for _ in range(6):
        legitimate_calls(server, bundle)
        now = rss_mib(server.pid)
        if now - last < 1.0:
            return now
        last = now
    return last


def test_slow_and_half_open_connections_neither_block_guests_nor_stay(
    server: ServerProcess,
) -> None:
    bundle = server.create_domain("guest")
    attacker_bundle = server.create_domain("attacker")
    before = warmed_up(server, bundle)
    attacker = subprocess.Popen(
        [sys.executable, str(ATTACKER), str(server.port), str(attacker_bundle),
         str(HALF_OPEN), str(HALF_REQUESTS), "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert attacker.stdout is not None
        ready = attacker.stdout.readline()
        assert ready.startswith("READY"), attacker.stderr.read() if attacker.stderr else ready
        ready_at = time.monotonic()
        results = legitimate_calls(server, bundle)
        under_attack = rss_mib(server.pid)
        assert [status for status, _ in results] == [200] * LEGITIMATE_CALLS
        slowest = max(seconds for _, seconds in results)
        assert slowest < SLOWEST_ALLOWED, f"slowest call {slowest:.2f} s under attack"
        lines = [line.strip() for line in attacker.stdout]
        closed_at = time.monotonic()
        assert lines[-1] == f"DONE closed={HALF_OPEN + HALF_REQUESTS}", lines[-5:]
    finally:
        attacker.kill()
        attacker.wait()
    bounds = Bounds()
    assert closed_at - ready_at < bounds.head_timeout + bounds.handshake_timeout
    deadline = time.monotonic() + 15.0  # memory comes back; counts logged per interval
    while time.monotonic() < deadline and not (
            rss_mib(server.pid) <= before + MEMORY_SLACK_MIB
            and "TLS handshakes failed" in server.stderr()):
        time.sleep(0.5)
    after = rss_mib(server.pid)
    print(f"RSS {before:.1f} MiB -> {under_attack:.1f} under attack -> {after:.1f} after;"
          f" slowest legitimate call {slowest * 1000:.0f} ms")
    assert after <= before + MEMORY_SLACK_MIB
    handshake_lines = [line for line in server.stderr().splitlines() if "handshake" in line]
    assert 0 < len(handshake_lines) <= 4, handshake_lines  # counts, not a line an attempt
    timed_out = sum(int(n) for n in re.findall(r"timeout (\d+)", "\n".join(handshake_lines)))
    assert timed_out == HALF_OPEN


def test_a_body_over_the_bound_sent_whole_gets_a_readable_413_fault(
    vbios_server: ServerProcess,
) -> None:
    """What `requests` met before the front: a connection reset instead of an answer."""
    bundle = vbios_server.create_domain("big-body")
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the pinned CA
    session.verify = str(bundle / "ca.pem")
    session.cert = (str(bundle / "cert.pem"), str(bundle / "key.pem"))
    oversized = b"<x/>" * (Bounds().max_body_bytes // 4 + 1)
    reply = session.post(vbios_server.url, data=oversized, timeout=30,
                         headers={"Content-Type": "text/xml; charset=utf-8"})
    assert reply.status_code == 413
    assert reply.headers["Content-Type"].startswith("text/xml")
    fault = etree.fromstring(reply.content).findtext(".//faultstring")
    assert fault == f"the request body is larger than {Bounds().max_body_bytes} bytes"
    session.close()
