"""The serving process keeps its workers: under systemd (where the master may not be
replaced) SIGHUP replaces them by fork while guests call (no call fails) and SIGUSR2 is
refused, a killed worker is replaced, SIGTERM stops the whole service. (Elsewhere SIGHUP
and SIGUSR2 start a new master: tests/e2e/test_restart_e2e.py.)"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess, served_home
from tests.e2e.test_transport_attack import server_processes

GUESTS = 4


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with served_home(tmp_path) as served:
        yield served


@pytest.fixture
def server_under_systemd(tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    """`vbios serve` with the variable systemd sets in every service's environment."""
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
    with served_home(tmp_path) as served:
        yield served


def workers(server: ServerProcess) -> set[int]:
    return set(server_processes(server.pid)) - {server.pid}


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail("condition not reached in time")


def test_under_systemd_sighup_replaces_the_workers_without_a_failed_call(
    server_under_systemd: ServerProcess,
) -> None:
    server = server_under_systemd
    bundle = server.create_domain("guest")
    before = workers(server)
    assert len(before) == 2
    statuses: list[int | str] = []
    stop = threading.Event()

    def guest() -> None:
        while not stop.is_set():
            try:
                statuses.append(server.call(bundle, "GetAttributes").status)
            except OSError as exc:
                statuses.append(type(exc).__name__)

    threads = [threading.Thread(target=guest) for _ in range(GUESTS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        os.kill(server.pid, signal.SIGHUP)
        wait_for(lambda: len(workers(server)) == 2 and not workers(server) & before)
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert statuses and set(statuses) == {200}, {s for s in statuses if s != 200}
    assert "SIGHUP: under systemd" in server.stderr()
    os.kill(server.pid, signal.SIGUSR2)
    wait_for(lambda: "SIGUSR2 refused: under systemd" in server.stderr())
    assert server.alive() and server.call(bundle, "GetAttributes").status == 200


def test_a_killed_worker_is_replaced_and_sigterm_stops_the_service(
    server: ServerProcess,
) -> None:
    bundle = server.create_domain("guest")
    victim = min(workers(server))
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in workers(server) and len(workers(server)) == 2)
    assert server.call(bundle, "GetAttributes").status == 200
    assert server.stop() == 0
    assert f"worker {victim} exited (signal SIGKILL)" in server.stderr()
