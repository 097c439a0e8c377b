"""The development TPM with a real swtpm: provision, boot, status, reboot, stop (by pid)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from test_devtpm_eventlog_tool import compare, run_tool

from bios_ws.domain.eventlog import parse_event_log, replay
from bios_ws.errors import TpmUnavailable
from bios_ws.tpm.devtpm import EK_CERT_NV_INDEXES, DevTpm, DevTpmStatus
from bios_ws.tpm.port import BOOT_PCRS

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("swtpm", "swtpm_setup", "tpm2_pcrread")),
    reason="swtpm and tpm2-tools are needed")

_PCR_LINE = re.compile(r"^\s+(\d+)\s*: 0x([0-9A-Fa-f]+)$")


def tool(tcti: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([args[0], "-T", tcti, *args[1:]], capture_output=True, text=True,
                          timeout=60, check=True)


def read_pcrs(tcti: str, bank: str) -> dict[int, bytes]:
    """PCRs 0-7 as tpm2_pcrread prints them (independent of our adapter)."""
    output = tool(tcti, "tpm2_pcrread", f"{bank}:0,1,2,3,4,5,6,7").stdout
    return {int(m.group(1)): bytes.fromhex(m.group(2))
            for m in map(_PCR_LINE.match, output.splitlines()) if m}


def stop_by_pid(device: DevTpm, status: DevTpmStatus) -> None:
    device.stop()
    if not status.pid:
        return
    try:  # belt and braces: never leave our swtpm behind (and never signal another process)
        cmdline = Path(f"/proc/{status.pid}/cmdline").read_bytes()
    except OSError:
        return
    if str(device.state_dir).encode() in cmdline:
        os.kill(status.pid, 9)


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevTpm, DevTpmStatus]]:
    device = DevTpm(tmp_path_factory.mktemp("home") / "tpm")
    status = device.start()
    try:
        yield device, status
    finally:
        stop_by_pid(device, status)


def test_start_runs_swtpm_on_loopback_with_consecutive_ports(
        started: tuple[DevTpm, DevTpmStatus]) -> None:
    device, status = started
    assert status.running and status.pid and status.server_port and status.ctrl_port
    assert status.ctrl_port == status.server_port + 1
    assert status.tcti == f"swtpm:host=127.0.0.1,port={status.server_port}"
    assert device.status() == status
    cmdline = Path(f"/proc/{status.pid}/cmdline").read_bytes().split(b"\0")
    assert Path(os.fsdecode(cmdline[0])).name == "swtpm"
    assert any(b"bindaddr=127.0.0.1" in part for part in cmdline)
    assert (device.directory.stat().st_mode & 0o777) == 0o700


def test_pcrs_equal_the_replay_of_the_written_log(started: tuple[DevTpm, DevTpmStatus]) -> None:
    device, status = started
    assert status.tcti
    events = parse_event_log(device.event_log_path.read_bytes())
    expected = replay(events)
    for bank in ("sha1", "sha256"):
        assert read_pcrs(status.tcti, bank) == expected[bank]
        assert set(expected[bank]) == set(BOOT_PCRS)
        assert all(any(value) for value in expected[bank].values())


def test_tpm2_eventlog_agrees_on_the_written_log(started: tuple[DevTpm, DevTpmStatus]) -> None:
    device, status = started
    assert status.tcti
    tool_log = run_tool(device.event_log_path)
    compare(tool_log, parse_event_log(device.event_log_path.read_bytes()))
    assert tool_log.warnings == []
    for bank in ("sha1", "sha256"):
        assert tool_log.pcrs[bank] == read_pcrs(status.tcti, bank)


def test_start_again_does_not_extend_twice(started: tuple[DevTpm, DevTpmStatus]) -> None:
    device, status = started
    assert status.tcti
    before = read_pcrs(status.tcti, "sha256")
    assert device.start() == status
    assert read_pcrs(status.tcti, "sha256") == before
    log = device.event_log_path.read_bytes()
    device.event_log_path.unlink()  # no log: start asks the TPM, whose PCRs are extended
    try:
        assert device.start() == status
        assert read_pcrs(status.tcti, "sha256") == before
    finally:
        device.event_log_path.write_bytes(log)


def test_reboot_resets_and_replays_the_same_boot(started: tuple[DevTpm, DevTpmStatus]) -> None:
    device, status = started
    assert status.tcti
    booted = read_pcrs(status.tcti, "sha256")
    tool(status.tcti, "tpm2_pcrextend", "7:sha256=" + "ab" * 32)
    assert read_pcrs(status.tcti, "sha256")[7] != booted[7]
    assert device.reboot() == status
    assert read_pcrs(status.tcti, "sha256") == booted
    assert replay(parse_event_log(device.event_log_path.read_bytes()))["sha256"] == booted


def test_ek_certificates_are_provisioned_by_the_local_ca(
        started: tuple[DevTpm, DevTpmStatus]) -> None:
    device, status = started
    assert status.tcti
    listing = tool(status.tcti, "tpm2_nvreadpublic").stdout
    for index in EK_CERT_NV_INDEXES:
        assert f"{index:#x}:" in listing
    der = subprocess.run(["tpm2_nvread", "-T", status.tcti, "-C", "o", hex(EK_CERT_NV_INDEXES[0])],
                         capture_output=True, timeout=60, check=True).stdout
    certificate = x509.load_der_x509_certificate(der)
    issuer = x509.load_pem_x509_certificate((device.localca_dir / "issuercert.pem").read_bytes())
    assert certificate.issuer == issuer.subject
    key = issuer.public_key()
    signature_hash = certificate.signature_hash_algorithm
    assert signature_hash is not None
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(certificate.signature, certificate.tbs_certificate_bytes,
                   padding.PKCS1v15(), signature_hash)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(certificate.signature, certificate.tbs_certificate_bytes,
                   ec.ECDSA(signature_hash))


def test_no_private_key_in_clear_is_left(started: tuple[DevTpm, DevTpmStatus]) -> None:
    device, _ = started
    for path in device.directory.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY-----" not in path.read_bytes(), path


def test_the_tpm_state_is_readable_by_its_owner_only(
        started: tuple[DevTpm, DevTpmStatus]) -> None:
    device, status = started
    state = sorted(device.state_dir.iterdir())
    assert device.state_dir / "tpm2-00.permall" in state
    for path in state:
        assert (path.stat().st_mode & 0o777) == 0o600, path  # swtpm's default is 0640
    cmdline = Path(f"/proc/{status.pid}/cmdline").read_bytes().split(b"\0")
    assert f"dir={device.state_dir},mode=0600".encode() in cmdline


def test_a_foreign_pid_in_the_pid_file_is_never_signalled(tmp_path: Path) -> None:
    device = DevTpm(tmp_path / "tpm")
    device.directory.mkdir(mode=0o700)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        device.pid_file.write_text(f"{sleeper.pid}\n")
        device.runtime_file.write_text(
            f'{{"pid": {sleeper.pid}, "server_port": 2321, "ctrl_port": 2322}}')
        assert device.status().running is False
        device.stop()
        assert sleeper.poll() is None  # still alive: not our swtpm
        assert not device.pid_file.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_reboot_of_a_stopped_tpm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TpmUnavailable, match="not running"):
        DevTpm(tmp_path / "tpm").reboot()


def test_stop_then_start_keeps_the_identity_and_replays(tmp_path: Path) -> None:
    device = DevTpm(tmp_path / "tpm")
    first = device.start()
    try:
        assert first.tcti
        ek_before = tool(first.tcti, "tpm2_nvreadpublic").stdout
        booted = read_pcrs(first.tcti, "sha256")
        device.stop()
        assert device.status().running is False
        assert not Path(f"/proc/{first.pid}").exists() or \
            Path(f"/proc/{first.pid}/stat").read_text().split()[2] == "Z"
        assert not device.pid_file.exists()
        second = device.start()
        assert second.running and second.tcti
        assert tool(second.tcti, "tpm2_nvreadpublic").stdout == ek_before
        assert read_pcrs(second.tcti, "sha256") == booted
    finally:
        stop_by_pid(device, device.status())
        stop_by_pid(device, first)
