"""A bare swtpm for TPM tests: provisioned in a temporary directory, on loopback ports
the fixture holds for its whole life (``PortPair``), so a restart finds them again.

Not a pytest plugin: test modules call ``start_swtpm(tmp_path)`` (or use their
own fixture around it) and ``stop()`` the process by its pid afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bios_ws.tpm.swtpm_process import PortPair, reserve_port_pair, swtpm_tcti

SWTPM_TOOLS = ("swtpm", "swtpm_setup", "swtpm_ioctl")


def require_swtpm() -> None:
    """Skip the calling test when swtpm is not installed."""
    missing = [tool for tool in SWTPM_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"swtpm tools missing: {', '.join(missing)}")




def provision(state_dir: Path) -> None:
    """swtpm_setup a TPM 2.0 with sha1 and sha256 banks, without EK (no root-owned paths)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir.parent / "swtpm_setup.conf"
    config.write_text("active_pcr_banks = sha1,sha256\n")
    subprocess.run(
        [
            "swtpm_setup", "--tpm2", "--tpmstate", str(state_dir),
            "--pcr-banks", "sha1,sha256", "--config", str(config),
            "--logfile", str(state_dir.parent / "swtpm_setup.log"),
        ],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
    )


@dataclass
class SwtpmProcess:
    """One swtpm in socket mode; ``start`` again after ``stop``/``kill`` reuses state and ports."""

    state_dir: Path
    ports: PortPair
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def server_port(self) -> int:
        return self.ports.port

    @property
    def ctrl_port(self) -> int:
        return self.ports.port + 1

    @property
    def tcti(self) -> str:
        return swtpm_tcti(self.server_port)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = 10.0) -> None:
        """Run swtpm (ready TPM: not-need-init, startup-clear) and wait until it accepts."""
        assert self.process is None, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "swtpm", "socket", "--tpm2", *self.ports.swtpm_arguments(),
                    "--tpmstate", f"dir={self.state_dir}",
                    "--flags", "not-need-init,startup-clear",
                ],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(self.ports.control_fd,),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"swtpm exited at start; see {self.log_path}")
            # the command port (swtpm binds it: the control port is ours, listening already)
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.server_port), timeout=0.2
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("swtpm did not start listening in time")

    def _end(self, sig: int) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM by pid and wait."""
        self._end(signal.SIGTERM)

    def close(self) -> None:
        """Stop, and let the ports go."""
        self.stop()
        self.ports.close()

    def kill(self) -> None:
        """SIGKILL by pid: the TPM vanishes mid-way, as in a crash."""
        self._end(signal.SIGKILL)

    def platform_reset(self) -> None:
        """swtpm_ioctl -i: like a reboot; the next command needs Startup(CLEAR)."""
        subprocess.run(
            ["swtpm_ioctl", "--tcp", f"127.0.0.1:{self.ctrl_port}", "-i"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
        )


def start_swtpm(tmp_path: Path) -> SwtpmProcess:
    """Provision and start a swtpm with state under ``tmp_path``, on ports it keeps."""
    require_swtpm()
    state_dir = tmp_path / "swtpm-state"
    provision(state_dir)
    swtpm = SwtpmProcess(state_dir, reserve_port_pair(), tmp_path / "swtpm.log")
    swtpm.start()
    return swtpm
