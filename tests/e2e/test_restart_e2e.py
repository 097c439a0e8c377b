"""Restarts and reloads without a failed call: 8 guests call in a loop (a fresh mutual-TLS
connection per call, never retried) while `vbios serve` hands over to a successor three
times (SIGUSR2) and reloads once (SIGHUP); while a successor that cannot unseal leaves
the old master serving; and while a socket-activated server (systemd-socket-activate,
the socket held by the test as a socket unit would hold it) is stopped and started
again. Each test prints the longest call: the time a call waited for a new master."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.server.options import LISTEN_BACKLOG
from tests.e2e.conftest import VBIOS, ServerProcess, init_home, run_vbios, stop_dev_tpm
from tests.e2e.restart_support import (
    GUESTS,
    Guests,
    guest_context,
    restart,
    running,
    serving_pid,
    stop_master,
    wait_for,
    workers_of,
)

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A new home (development TPM); every master that served it is stopped after."""
    home = tmp_path / "home"
    init_home(home)
    try:
        yield home
    finally:
        if serving_pid(home):
            stop_master(serving_pid(home), home)
        stop_dev_tpm(home)


@pytest.fixture
def served(home: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(home=home, work=tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def guests_of(home: Path, work: Path, port: int) -> Guests:
    """``GUESTS`` guest domains of ``home``, each with its bundle, to call ``port``."""
    contexts = []
    for n in range(GUESTS):
        bundle = work / "bundles" / f"guest{n}"
        done = run_vbios("domain", "create", f"guest{n}", "--home", str(home),
                         "--out", str(bundle))
        assert done.returncode == 0, done.stderr
        contexts.append(guest_context(bundle))
    return Guests(port, contexts)


def test_three_upgrades_and_a_reload_fail_no_call(served: ServerProcess) -> None:
    guests = guests_of(served.home, served.work, served.port)
    masters = [served.pid]
    guests.start()
    try:
        guests.keep_calling()
        for signum in (signal.SIGUSR2, signal.SIGUSR2, signal.SIGUSR2, signal.SIGHUP):
            masters.append(restart(served.home, signum))
            guests.keep_calling()
    finally:
        guests.stop()
    print(guests.report("3 upgrades (SIGUSR2) and a reload (SIGHUP)"))
    assert guests.failures == [], guests.failures[:5]
    assert len(set(masters)) == 5
    assert served.proc is not None and served.proc.wait(timeout=5) == 0
    log = served.stderr()
    for old, new in itertools.pairwise(masters):
        assert f"starting a new server (pid {new})" in log
        assert f"[{old}] [INFO] bios_ws.server.master: the new server {new} serves" in log
    # the new master holds the lock its predecessors passed on: a third server is refused
    done = subprocess.run([str(VBIOS), "serve", "--home", str(served.home), "--bind",
                           "127.0.0.1:0"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode != 0
    assert f"already served by pid {masters[-1]}" in done.stderr


def test_a_successor_that_cannot_unseal_leaves_the_old_master_serving(
    served: ServerProcess,
) -> None:
    guests = guests_of(served.home, served.work, served.port)
    certificate = served.home / "pki" / "server.pem"
    original = certificate.read_bytes()
    guests.start()
    try:
        guests.keep_calling()
        certificate.write_bytes(original + b"\n")  # a measured file changed: no unseal
        os.kill(served.pid, signal.SIGUSR2)
        wait_for(lambda: "keeps serving" in served.stderr(), "the successor's refusal")
        guests.keep_calling()
        assert serving_pid(served.home) == served.pid and served.alive()
        assert len(workers_of(served.pid)) == 2
        certificate.write_bytes(original)  # as sealed again: the next upgrade goes through
        successor = restart(served.home, signal.SIGUSR2)
        guests.keep_calling()
    finally:
        guests.stop()
    print(guests.report("a refused successor, then an upgrade"))
    assert guests.failures == [], guests.failures[:5]
    log = served.stderr()
    assert "the service on disk is not what the keys" in log
    assert "changed: config/pki/server.pem" in log
    assert f"this server (pid {served.pid}) keeps serving" in log
    assert running(successor)


def test_a_stop_while_a_successor_starts_stops_both(served: ServerProcess) -> None:
    """The successor is held stopped (SIGSTOP) so that it is still starting whatever the
    machine's speed: a second SIGUSR2 is ignored, SIGTERM stops the master and it."""
    os.kill(served.pid, signal.SIGUSR2)
    wait_for(lambda: "starting a new server (pid" in served.stderr(), "a successor")
    successor = int(served.stderr().split("starting a new server (pid ", 1)[1].split(")")[0])
    os.kill(successor, signal.SIGSTOP)
    os.kill(served.pid, signal.SIGUSR2)
    wait_for(lambda: f"SIGUSR2 ignored: the new server {successor} is still starting"
             in served.stderr(), "the second SIGUSR2 ignored")
    assert served.stop() == 0
    assert not running(successor)
    assert f"stopping the new server {successor} too" in served.stderr()
    assert serving_pid(served.home) == served.pid  # the successor never claimed the home


def test_a_socket_activated_server_stops_and_starts_while_the_socket_stays(
    home: Path, tmp_path: Path,
) -> None:
    # make test installs it (Debian package systemd): missing, the test fails, never skips
    assert SOCKET_ACTIVATE is not None, "systemd-socket-activate is not installed"
    # the socket unit: the test holds the listening socket across the server's restarts
    holder = socket.create_server(("127.0.0.1", 0), backlog=LISTEN_BACKLOG)
    port = holder.getsockname()[1]
    log = tmp_path / "activated.log"
    guests = guests_of(home, tmp_path, port)
    try:
        guests.start()  # their first calls wait in the backlog, and activate the server
        first = activate(holder, home, log)
        guests.keep_calling()
        stop_master(first.pid, home)  # the socket stays: calls wait in its backlog
        assert first.wait(timeout=5) == 0
        second = activate(holder, home, log)
        guests.keep_calling()
        successor = restart(home, signal.SIGUSR2)  # a handover of the activated socket
        guests.keep_calling()
    finally:
        guests.stop()
        holder.close()
    print(guests.report("socket activation: stop, start, then an upgrade"))
    assert guests.failures == [], guests.failures[:5]
    assert second.wait(timeout=5) == 0 and running(successor)
    text = log.read_text()
    assert text.count(f"serving https://127.0.0.1:{port}/") == 3


#: Places the test's listening socket at descriptor 3 and runs systemd-socket-activate
#: as the service manager would: LISTEN_FDS=1, LISTEN_PID its own pid.
TRAMPOLINE = """
import os, sys
os.dup2(int(sys.argv[1]), 3)
os.close(int(sys.argv[1]))
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.argv[2], sys.argv[2:])
"""


def activate(holder: socket.socket, home: Path, log: Path) -> subprocess.Popen[bytes]:
    """`vbios serve` started by systemd-socket-activate on ``holder``; once it serves."""
    assert SOCKET_ACTIVATE is not None
    before = serving_pid(home)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, str(holder.fileno()), SOCKET_ACTIVATE,
             "-E", "PYTHONPATH", str(VBIOS), "serve", "--home", str(home)],
            pass_fds=(holder.fileno(),), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    wait_for(lambda: serving_pid(home) == proc.pid != before or proc.poll() is not None,
             "the activated server")
    assert proc.poll() is None, log.read_text()
    wait_for(lambda: len(workers_of(proc.pid)) == 2, "its workers")
    return proc
