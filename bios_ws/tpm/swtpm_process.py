"""Running swtpm as a process: its port pair, its TCTI, its pid; standard library only.

The swtpm TCTI talks to the command port P and to the control port P + 1, so
the two are chosen together, and held (``PortPair``) until swtpm has them: the
control port as a listening socket swtpm inherits (``--ctrl type=tcp,fd=N``),
the command port as a socket bound with SO_REUSEADDR, which swtpm's own bind
(also SO_REUSEADDR) may share but nobody else's may take. (swtpm reads
commands from a ``--server fd=`` as from a connected socket, so it must bind
the command port itself.) Shared by the development TPM and the test fixtures.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from bios_ws.errors import TpmUnavailable

#: How long to wait for swtpm to come up or go away.
WAIT_SECONDS = 10.0


def swtpm_tcti(port: int) -> str:
    """The TCTI of a swtpm whose command port is ``port`` (control port ``port + 1``)."""
    return f"swtpm:host=127.0.0.1,port={port}"


class PortPair:
    """Loopback ports P (command) and P + 1 (control) from the kernel, held for swtpm."""

    def __init__(self, command: socket.socket, control: socket.socket) -> None:
        self._command = command
        self._control = control
        self.port: int = command.getsockname()[1]

    @property
    def control_fd(self) -> int:
        """The listening control socket, for ``--ctrl type=tcp,fd=N`` (pass it on)."""
        return self._control.fileno()

    def swtpm_arguments(self) -> list[str]:
        return ["--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                "--ctrl", f"type=tcp,fd={self.control_fd}"]

    def close(self) -> None:
        self._command.close()
        self._control.close()

    def __enter__(self) -> PortPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def reserve_port_pair() -> PortPair:
    """Ports P and P + 1, held: P bound with SO_REUSEADDR, P + 1 listening."""
    for _ in range(64):
        command = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        control = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            command.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            command.bind(("127.0.0.1", 0))
            port: int = command.getsockname()[1]
            if port < 65535:
                control.bind(("127.0.0.1", port + 1))
                control.listen(16)
                return PortPair(command, control)
        except OSError:
            pass
        command.close()
        control.close()
    raise TpmUnavailable("no two consecutive free loopback ports for the development TPM")


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_for_port(port: int) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if port_answers(port):
            return True
        time.sleep(0.02)
    return False


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii")[:32].strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 1 else None


def terminate(pid: int) -> None:
    """SIGTERM, wait up to 5 s, then SIGKILL; a zombie counts as gone."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.02)


def alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
