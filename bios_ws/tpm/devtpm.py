"""The development TPM of one home: swtpm on loopback, provisioned once, booted from a manifest.

Layout of ``<home>/tpm`` (mode 0700): ``state/`` (swtpm NVRAM, files 0600), ``localca/``
(swtpm's local CA: its certificates; the private keys are deleted once the EK
and platform certificates are issued), the swtpm_setup and swtpm-localca
configuration (so nothing outside the home is read or written), ``swtpm.pid``,
``swtpm.json`` (pid and ports), ``swtpm.log``, ``boot-manifest.json`` and
``binary_bios_measurements`` (the event log of the last boot).

swtpm's TCTI talks to a command port and the control port right after it, so
two consecutive free loopback ports are chosen at each start (retried if taken
meanwhile). Every process started here is stopped by its pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bios_ws.domain.eventlog import replay
from bios_ws.errors import AdminError, TpmError, TpmUnavailable
from bios_ws.tpm.bootlog import BootManifest, ManifestError, measure_boot, shipped_manifest_text
from bios_ws.tpm.port import BOOT_PCRS, PCR_BANKS, Tpm
from bios_ws.tpm.swtpm_process import (
    WAIT_SECONDS,
    port_answers,
    read_pid,
    reserve_port_pair,
    swtpm_tcti,
    terminate,
    wait_for_port,
)

__all__ = ["EK_CERT_NV_INDEXES", "SWTPM_MISSING", "DevTpm", "DevTpmStatus"]

SWTPM_MISSING = "swtpm is not installed: apt-get install swtpm swtpm-tools"
#: NV indexes swtpm_setup fills: RSA 2048 EK certificate, ECC EK certificate, platform cert.
EK_CERT_NV_INDEXES = (0x01C00002, 0x01C00016, 0x01C08000)
HOME_MARKER = "vbios-home.json"
_TOOLS = ("swtpm", "swtpm_setup", "swtpm_ioctl", "swtpm_localca")
_START_ATTEMPTS = 8
#: The TPM's state holds its seeds: owner only (swtpm's default is 0640).
STATE_FILE_MODE = 0o600
_MAX_RUNTIME_BYTES = 4096


@dataclass(frozen=True)
class DevTpmStatus:
    """Whether the development TPM runs, and where (None fields when it does not)."""

    running: bool
    tcti: str | None
    pid: int | None
    server_port: int | None
    ctrl_port: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


STOPPED = DevTpmStatus(False, None, None, None, None)


class DevTpm:
    """The development swtpm kept in ``directory``, a home's ``tpm/`` (or the home itself)."""

    def __init__(self, directory: Path) -> None:
        directory = Path(directory).expanduser().absolute()
        if (directory / HOME_MARKER).is_file():
            directory = directory / "tpm"
        self.directory = directory

    # -- layout ----------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.directory / "state"

    @property
    def tpmstate_argument(self) -> str:
        """swtpm's ``--tpmstate``: the state directory, files written owner-only."""
        return f"dir={self.state_dir},mode={STATE_FILE_MODE:04o}"

    @property
    def localca_dir(self) -> Path:
        return self.directory / "localca"

    @property
    def pid_file(self) -> Path:
        return self.directory / "swtpm.pid"

    @property
    def runtime_file(self) -> Path:
        return self.directory / "swtpm.json"

    @property
    def log_file(self) -> Path:
        return self.directory / "swtpm.log"

    @property
    def event_log_path(self) -> Path:
        return self.directory / "binary_bios_measurements"

    @property
    def manifest_path(self) -> Path:
        return self.directory / "boot-manifest.json"

    @property
    def is_provisioned(self) -> bool:
        return (self.state_dir / "tpm2-00.permall").is_file()

    # -- commands --------------------------------------------------------------
    def start(self) -> DevTpmStatus:
        """Start (provisioning once) and boot; a running TPM is only booted if not yet booted."""
        with self._locked():
            tools = _find_tools()
            current = self._probe()
            if not current.running:
                self._stop_recorded()
                if not self.is_provisioned:
                    self._provision(tools)
                current = self._spawn(tools["swtpm"])
            elif self._booted_since_start():
                return current  # no TPM connection: a server may be holding swtpm's one
            self._boot(swtpm_tcti(current.server_port or 0), reset=False)
            return current

    def stop(self) -> None:
        """Stop the swtpm recorded here (SIGTERM, then SIGKILL); nothing to do if none runs."""
        with self._locked():
            self._stop_recorded()

    def status(self) -> DevTpmStatus:
        """Running means: the recorded pid is our swtpm and its control port answers."""
        return self._probe()

    def reboot(self) -> DevTpmStatus:
        """Simulated platform reset: swtpm_ioctl -i, TPM2_Startup(CLEAR), replay the boot."""
        with self._locked():
            tools = _find_tools()
            current = self._probe()
            if not current.running or current.tcti is None:
                raise TpmUnavailable(f"the development TPM in {self.directory} is not running;"
                                     " start it with vbios tpm start")
            result = subprocess.run(
                [tools["swtpm_ioctl"], "--tcp", f"127.0.0.1:{current.ctrl_port}", "-i"],
                capture_output=True, text=True, timeout=WAIT_SECONDS, check=False)
            if result.returncode != 0:
                raise TpmUnavailable(f"swtpm_ioctl could not reset the development TPM:"
                                     f" {_last_line(result.stderr)}")
            self._boot(current.tcti, reset=True)
            return current

    def manifest(self) -> BootManifest:
        """The boot manifest of this home (copied from the shipped one at first use)."""
        if not self.manifest_path.exists():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_file(self.manifest_path, shipped_manifest_text().encode("utf-8"), 0o644)
        try:
            return BootManifest.load(self.manifest_path)
        except ManifestError as exc:
            raise AdminError(str(exc)) from None

    # -- boot ------------------------------------------------------------------
    def _booted_since_start(self) -> bool:
        """The event log was written after this swtpm started (by start or reboot)."""
        try:
            return self.event_log_path.stat().st_mtime_ns >= self.runtime_file.stat().st_mtime_ns
        except OSError:
            return False

    def _boot(self, tcti: str, reset: bool) -> None:
        """Extend PCRs 0-7 from the manifest and write the event log (once per TPM reset)."""
        from bios_ws.tpm.esapi import EsapiTpm

        manifest = self.manifest()
        tpm: Tpm = EsapiTpm(tcti)
        try:
            if reset:
                tpm.startup_clear()
            banks = tpm.active_banks()
            if any(any(value) for value in tpm.pcr_read(BOOT_PCRS, "sha256").values()):
                return  # already booted since the last reset: never extend twice
            events = manifest.events(banks)
            measure_boot(tpm, events)
            expected = replay(events)
            for bank in banks:
                if tpm.pcr_read(BOOT_PCRS, bank) != expected[bank]:
                    raise TpmError(f"the development TPM's {bank} PCRs differ from the replayed"
                                   " boot (extended by something else meanwhile?)")
            _write_file(self.event_log_path, manifest.event_log(banks), 0o644)
        finally:
            tpm.close()

    # -- provisioning and processes -----------------------------------------------
    def _provision(self, tools: dict[str, str]) -> None:
        for stale in (self.state_dir, self.localca_dir):
            shutil.rmtree(stale, ignore_errors=True)
        scratch = self.directory / "tmp"
        for directory in (self.state_dir, self.localca_dir, scratch):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        ca = self.localca_dir
        _write_file(self.directory / "swtpm-localca.conf", (
            f"statedir = {ca}\nsigningkey = {ca / 'signkey.pem'}\n"
            f"issuercert = {ca / 'issuercert.pem'}\ncertserial = {ca / 'certserial'}\n"
        ).encode(), 0o600)
        _write_file(self.directory / "swtpm-localca.options", (
            b"--platform-manufacturer bios-ws\n--platform-version 1.0\n"
            b"--platform-model vbios-dev\n"), 0o600)
        _write_file(self.directory / "swtpm_setup.conf", (
            f"create_certs_tool = {tools['swtpm_localca']}\n"
            f"create_certs_tool_config = {self.directory / 'swtpm-localca.conf'}\n"
            f"create_certs_tool_options = {self.directory / 'swtpm-localca.options'}\n"
            f"active_pcr_banks = {','.join(PCR_BANKS)}\n").encode(), 0o600)
        command = [
            tools["swtpm_setup"], "--tpm2", "--tpm-state", str(self.state_dir),
            "--create-ek-cert", "--create-platform-cert", "--pcr-banks", ",".join(PCR_BANKS),
            "--config", str(self.directory / "swtpm_setup.conf"),
            "--logfile", str(self.directory / "setup.log"),
        ]
        env = {**os.environ, "TMPDIR": str(scratch), "XDG_CONFIG_HOME": str(self.directory)}
        try:
            result = subprocess.run(command, capture_output=True, text=True, env=env,
                                    timeout=120, check=False)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            # The local CA signs only at provisioning: keep no private key in clear.
            for key in ("signkey.pem", "swtpm-localca-rootca-privkey.pem"):
                (ca / key).unlink(missing_ok=True)
        if result.returncode != 0 or not self.is_provisioned:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            raise TpmUnavailable(f"swtpm_setup failed to provision the development TPM"
                                 f" (see {self.directory / 'setup.log'})")
        # swtpm_setup has no mode option and writes 0640 inside our 0700 directory:
        # narrow that before anything else runs; swtpm itself then writes with
        # ``tpmstate_argument``'s mode.
        for path in self.state_dir.iterdir():
            if path.is_file() and not path.is_symlink():
                path.chmod(STATE_FILE_MODE)

    def _spawn(self, swtpm: str) -> DevTpmStatus:
        error = ""
        for _ in range(_START_ATTEMPTS):
            self.pid_file.unlink(missing_ok=True)
            with reserve_port_pair() as ports:
                command = [
                    swtpm, "socket", "--tpm2", "--tpmstate", self.tpmstate_argument,
                    *ports.swtpm_arguments(),
                    "--flags", "not-need-init,startup-clear",
                    "--pid", f"file={self.pid_file}",
                    "--log", f"file={self.log_file},level=1",
                    "--daemon",
                ]
                result = subprocess.run(command, capture_output=True, text=True,
                                        stdin=subprocess.DEVNULL, pass_fds=(ports.control_fd,),
                                        timeout=WAIT_SECONDS, check=False)
                port = ports.port
            if result.returncode != 0:
                error = _last_line(result.stderr)
                continue  # another SO_REUSEADDR socket listened on the command port first
            pid = self._wait_for_pid()
            status = DevTpmStatus(True, swtpm_tcti(port), pid, port, port + 1)
            _write_file(self.runtime_file, json.dumps(status.to_dict()).encode(), 0o600)
            if not wait_for_port(port + 1):
                self._stop_recorded()
                raise TpmUnavailable("the development TPM started but does not answer")
            return status
        raise TpmUnavailable(f"swtpm failed to start: {error or 'no reason given'}")

    def _wait_for_pid(self) -> int:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            pid = read_pid(self.pid_file)
            if pid is not None and self._is_our_swtpm(pid):
                return pid
            time.sleep(0.02)
        raise TpmUnavailable("swtpm started but wrote no pid file")

    def _probe(self) -> DevTpmStatus:
        recorded = self._recorded()
        if recorded is None or recorded.pid is None or recorded.ctrl_port is None:
            return STOPPED
        if read_pid(self.pid_file) != recorded.pid or not self._is_our_swtpm(recorded.pid):
            return STOPPED
        if not port_answers(recorded.ctrl_port):
            return STOPPED
        return recorded

    def _recorded(self) -> DevTpmStatus | None:
        try:
            with self.runtime_file.open("rb") as handle:
                data: Any = json.loads(handle.read(_MAX_RUNTIME_BYTES))
            port, pid = data["server_port"], data["pid"]
            if not (isinstance(port, int) and isinstance(pid, int) and 0 < port < 65535):
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return DevTpmStatus(True, swtpm_tcti(port), pid, port, port + 1)

    def _stop_recorded(self) -> None:
        recorded = self._recorded()
        for pid in {recorded.pid if recorded else None, read_pid(self.pid_file)}:
            if pid is not None and self._is_our_swtpm(pid):
                terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        self.runtime_file.unlink(missing_ok=True)

    def _is_our_swtpm(self, pid: int) -> bool:
        """The pid runs swtpm on this state directory (a recycled pid is never signalled)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        if state in ("Z", "X") or not cmdline or Path(os.fsdecode(cmdline[0])).name != "swtpm":
            return False
        directory = f"dir={self.state_dir}".encode()  # with ",mode=..." since it is set
        return any(arg == directory or arg.startswith(directory + b",") for arg in cmdline)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)



def _find_tools() -> dict[str, str]:
    found = {tool: shutil.which(tool) for tool in _TOOLS}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        raise TpmUnavailable(SWTPM_MISSING)
    return {tool: path for tool, path in found.items() if path is not None}








def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (temporary file, fsync, rename) with ``mode``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
