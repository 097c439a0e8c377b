"""What a server takes from its environment (``inherited_from``: the sd_listen_fds rules,
and the handover's lock and pipe), the serve lock handed over (``ServeLock.inherit``), and
where a server may not start a successor (``restarts_of``). Descriptor 3 belongs to the
process that reads it, so each case runs in a child Python given exactly its descriptors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.cli.serve import restarts_of
from bios_ws.errors import AdminError
from bios_ws.server.handover import NOTHING_INHERITED
from bios_ws.server.serve_lock import ServeLock

TIMEOUT = 30.0

#: Places argv[1] at descriptor 3 (if given), then prints what inherited_from makes of the
#: environment argv[2:] (NAME=VALUE, LISTEN_PID=self meaning this process).
READER = """
import os, sys
from bios_ws.errors import AdminError
from bios_ws.server.handover import inherited_from
if sys.argv[1] != "-":
    os.dup2(int(sys.argv[1]), 3)
environ = dict(item.split("=", 1) for item in sys.argv[2:])
if environ.get("LISTEN_PID") == "self":
    environ["LISTEN_PID"] = str(os.getpid())
try:
    got = inherited_from(environ, os.getpid())
except AdminError as exc:
    print("refused:", exc.message)
else:
    port = got.listener.getsockname()[1] if got.listener else None
    print("port", port, "handed over", got.handed_over, "left", sorted(environ))
"""


def read_environment(fd: int | None, *environ: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", READER, "-" if fd is None else str(fd), *environ],
        pass_fds=() if fd is None else (fd,), capture_output=True, text=True,
        timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def test_a_listening_socket_from_socket_activation_is_taken_and_the_variables_removed(
    listener: socket.socket,
) -> None:
    port = listener.getsockname()[1]
    said = read_environment(listener.fileno(), "LISTEN_FDS=1", "LISTEN_PID=self",
                            "LISTEN_FDNAMES=vbios", "KEEP=1")
    assert said == f"port {port} handed over False left ['KEEP']"


def test_variables_meant_for_another_process_are_ignored(listener: socket.socket) -> None:
    said = read_environment(listener.fileno(), "LISTEN_FDS=1", "LISTEN_PID=1")
    assert said == "port None handed over False left []"


def test_more_than_one_socket_is_refused(listener: socket.socket) -> None:
    said = read_environment(listener.fileno(), "LISTEN_FDS=2", "LISTEN_PID=self")
    assert said == ("refused: LISTEN_FDS='2': vbios serve takes exactly one listening socket"
                    " (one ListenStream= in the socket unit)")


def test_a_socket_that_does_not_listen_is_refused() -> None:
    with socket.socket() as unbound:
        said = read_environment(unbound.fileno(), "LISTEN_FDS=1", "LISTEN_PID=self")
    assert said == "refused: descriptor 3 is not a listening TCP socket"


def test_a_descriptor_that_is_not_a_socket_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "plain").open("w") as plain:
        said = read_environment(plain.fileno(), "LISTEN_FDS=1", "LISTEN_PID=self")
    assert said == "refused: LISTEN_FDS names descriptor 3, which is not a socket"


def test_a_handover_whose_descriptors_are_closed_is_refused(listener: socket.socket) -> None:
    said = read_environment(listener.fileno(), "LISTEN_FDS=1", "LISTEN_PID=self",
                            "VBIOS_HANDOVER_LOCK_FD=40", "VBIOS_HANDOVER_READY_FD=41",
                            "VBIOS_HANDOVER_FROM_PID=1")
    assert said == "refused: handover descriptor 40 is not open"


def test_the_lock_handed_over_is_held_and_names_the_new_pid_when_recorded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "serve.lock"
    with ServeLock.acquire(path, tmp_path) as first:
        handed = ServeLock.inherit(path, os.dup(first.fileno()), tmp_path)
        first.release()  # the old master exits: the open file keeps the lock
        with pytest.raises(AdminError, match="already served by pid"):
            ServeLock.acquire(path, tmp_path)
        handed.record_pid()
        handed.release()
    ServeLock.acquire(path, tmp_path).release()


def test_a_lock_handed_over_on_another_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "serve.lock"
    path.touch()
    with (tmp_path / "other").open("w") as other, \
            pytest.raises(AdminError, match="is not the serve lock"):
        ServeLock.inherit(path, other.fileno(), tmp_path)


def test_a_lock_handed_over_that_another_process_holds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "serve.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR"
         " | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True);"
         " sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with path.open("r+") as separate, \
                pytest.raises(AdminError, match="does not hold"):
            ServeLock.inherit(path, separate.fileno(), tmp_path)
    finally:
        holder.kill()
        holder.wait(timeout=TIMEOUT)


def test_no_successor_under_systemd_or_for_devrun(tmp_path: Path) -> None:
    with ServeLock.acquire(tmp_path / "serve.lock", tmp_path) as lock:
        under_systemd = restarts_of(lock, NOTHING_INHERITED, {"INVOCATION_ID": "1"})
        devrun = restarts_of(lock, NOTHING_INHERITED, None)
        by_hand = restarts_of(lock, NOTHING_INHERITED, {"PATH": "/usr/bin"})
    assert under_systemd.relaunch is None and "under systemd" in under_systemd.unavailable
    assert devrun.relaunch is None and "devrun" in devrun.unavailable
    assert by_hand.relaunch is not None
    assert by_hand.relaunch.argv == tuple(sys.orig_argv)
    assert by_hand.relaunch.environ == {"PATH": "/usr/bin"}

