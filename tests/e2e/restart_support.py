"""Guests that call in a loop and count every failure, and the masters a restart leaves.

A guest opens a fresh mutual-TLS connection for every call (``http.client``, no
retry at all): a refused, reset or unanswered connection is a failure, counted
as it happened. A master started by a restart is not the test's child (its
parent, the old master, exits): it is found through the home's ``serve.lock``,
which names the serving pid, and stopped by that pid.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import envelope, post
from tests.e2e.test_transport_attack import server_processes

GUESTS = 8
#: A call may wait in the kernel's backlog while a new master unseals and starts.
CALL_TIMEOUT = 90.0
WAIT_TIMEOUT = 90.0


@dataclass
class Guests:
    """``GUESTS`` threads calling GetAttributes in a loop on ``port``, each as its own
    guest domain, until ``stop``."""

    port: int
    contexts: list[ssl.SSLContext]
    calls: int = 0
    failures: list[str] = field(default_factory=list)
    longest: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for context in self.contexts:
            thread = threading.Thread(target=self._loop, args=(context,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _loop(self, context: ssl.SSLContext) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=context,
                                                     timeout=CALL_TIMEOUT)
            try:
                reply = post(connection, "GetAttributes", envelope("GetAttributes"))
                failure = "" if reply.status == 200 else f"HTTP {reply.status}"
            except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            finally:
                connection.close()
            took = time.monotonic() - began
            with self._lock:
                self.calls += 1
                self.longest = max(self.longest, took)
                if failure:
                    self.failures.append(failure)

    def calls_now(self) -> int:
        with self._lock:
            return self.calls

    def keep_calling(self, more: int = 40) -> None:
        """Until ``more`` calls more have been answered (or failed)."""
        target = self.calls_now() + more
        wait_for(lambda: self.calls_now() >= target, "guests calling")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CALL_TIMEOUT + 10)

    def report(self, what: str) -> str:
        return (f"{what}: {self.calls} calls by {GUESTS} guests, {len(self.failures)} failed,"
                f" longest {self.longest:.2f} s")


def guest_context(bundle: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(bundle / "ca.pem"))
    context.load_cert_chain(str(bundle / "cert.pem"), str(bundle / "key.pem"))
    return context


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"{what}: not reached in {timeout:.0f} s")


def serving_pid(home: Path) -> int:
    """The pid ``serve.lock`` names (0 before it exists, or while it is rewritten)."""
    try:
        text = (home / "serve.lock").read_text().strip()
    except FileNotFoundError:
        return 0
    return int(text) if text.isdigit() else 0


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left to a parent that does not reap it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"


def workers_of(pid: int) -> set[int]:
    with contextlib.suppress(OSError):
        return set(server_processes(pid)) - {pid}
    return set()


def restart(home: Path, signum: signal.Signals, workers: int = 2) -> int:
    """Send ``signum`` to the serving master; the successor's pid, once it serves with its
    ``workers`` and the old master is gone."""
    old = serving_pid(home)
    os.kill(old, signum)
    wait_for(lambda: serving_pid(home) not in (0, old), f"a successor of {old} ({signum.name})")
    new = serving_pid(home)
    wait_for(lambda: not running(old), f"the old master {old} to exit")
    wait_for(lambda: len(workers_of(new)) == workers, f"the workers of {new}")
    return new


def stop_master(pid: int, home: Path) -> None:
    """SIGTERM by pid, SIGKILL after the wait (its workers die with it); only a process
    that serves ``home`` (a stale pid in the lock may name another process by now)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if not running(pid) or b"serve" not in argv or str(home).encode() not in argv:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30.0
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
