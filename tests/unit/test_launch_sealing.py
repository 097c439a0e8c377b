"""Sealing the key passphrases to PCRs 0-7 and 23, over a FakeTpm: unseal, refusals, reseal."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from vbios_client.attestation import parse_event_log as guest_parse
from vbios_client.attestation import replay as guest_replay

from bios_ws.bootstrap import Initialized, initialize
from bios_ws.errors import KeyUnreadable, TpmLockout, TpmPolicyMismatch, TpmUnavailable
from bios_ws.home import Home, TpmChoice
from bios_ws.launch.measure import expected_service_pcr, installed_package_root, measure
from bios_ws.launch.record import read_record
from bios_ws.launch.recovery import read_recovery
from bios_ws.launch.reseal import reseal
from bios_ws.launch.sealing import LaunchContext, unseal_key_passphrase
from bios_ws.pki import Authority, find_clear_private_keys, load_private_key
from bios_ws.tpm.bootlog import BootManifest, shipped_manifest_text
from bios_ws.tpm.fake import FakeTpm
from bios_ws.tpm.port import SERVICE_PCR, SealedBlob

TCTI = "swtpm:host=127.0.0.1,port=1"


class Bench:
    """One home sealed in one FakeTpm, measured against one copied package tree."""

    def __init__(self, tmp_path: Path, package: Path) -> None:
        self.tpm = FakeTpm()
        self.package = tmp_path / "bios_ws"
        shutil.copytree(package, self.package)
        self.done: Initialized = initialize(tmp_path / "home", tpm=TpmChoice(TCTI),
                                            opener=self.opener, package_root=self.package)
        self.home = self.done.home

    def opener(self, tcti: str) -> FakeTpm:
        assert tcti == TCTI
        if not self.tpm.available:
            raise TpmUnavailable(f"nothing listens at {tcti}")
        return self.tpm

    def context(self) -> LaunchContext:
        return LaunchContext(self.home, opener=self.opener, package_root=self.package)

    def unseal(self, key: str = "server") -> bytes:
        return unseal_key_passphrase(self.home, key, package_root=self.package,
                                     opener=self.opener)

    def extend_boot(self, pcr: int) -> None:
        self.tpm.pcr_extend(pcr, {"sha1": hashlib.sha1(b"x").digest(),
                                  "sha256": hashlib.sha256(b"x").digest()})


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("pkg") / "bios_ws"
    shutil.copytree(installed_package_root(), copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


@pytest.fixture
def bench(tmp_path: Path, package: Path) -> Bench:
    return Bench(tmp_path, package)


def test_init_seals_two_passphrases_and_writes_none_in_clear(bench: Bench) -> None:
    home = bench.home
    assert home.tpm.setting == TCTI and home.uses_tpm
    assert not home.passphrase_file.exists()
    assert not home.secrets_dir.exists()
    assert find_clear_private_keys(home) == []
    server, ca = bench.unseal("server"), bench.unseal("ca")
    assert server != ca
    load_private_key(home.server_key, server)
    load_private_key(home.ca_key, ca)
    load_private_key(home.transfer_key, server)  # the transfer key is under the server's
    with pytest.raises(KeyUnreadable):
        load_private_key(home.server_key, ca)
    with pytest.raises(KeyUnreadable):
        load_private_key(home.transfer_key, ca)
    for key in ("server", "ca"):
        text = home.sealed_blob(key).read_text()
        assert server.decode() not in text and ca.decode() not in text
        assert SealedBlob.from_json(text).pcrs == (0, 1, 2, 3, 4, 5, 6, 7, SERVICE_PCR)
        assert home.sealed_blob(key).stat().st_mode & 0o777 == 0o600
    assert bench.done.recovery_code is not None
    recovered = read_recovery(home.recovery_file, bench.done.recovery_code)
    assert (recovered.server, recovered.ca) == (server, ca)


def test_the_record_names_what_was_sealed_and_pcr23_is_predicted(bench: Bench) -> None:
    state = read_record(bench.home.sealed_state)
    assert state is not None
    measurement = measure(bench.home, bench.package)
    assert state.service_digest == measurement.digest
    assert state.measured == measurement.files
    assert state.pcrs[SERVICE_PCR] == expected_service_pcr(measurement.digest)
    assert state.pcrs[SERVICE_PCR] == bench.tpm.pcr_read([SERVICE_PCR])[SERVICE_PCR]
    assert sorted(state.pcrs) == [*range(8), SERVICE_PCR]


def test_the_launch_is_idempotent_and_the_home_unseals_through_authority(bench: Bench) -> None:
    before = bench.tpm.pcr_read([SERVICE_PCR])
    bench.unseal()
    bench.unseal()
    assert bench.tpm.pcr_read([SERVICE_PCR]) == before
    passphrase = bench.unseal("ca")
    assert Authority.load(bench.home, passphrase).cert is not None


def test_the_launch_records_its_extend_and_guests_get_it_after_the_boot_log(
        bench: Bench, tmp_path: Path) -> None:
    assert not LaunchContext(bench.home).service_log_path.exists()  # init does not launch
    bench.unseal()
    boot_log = BootManifest.from_json(shipped_manifest_text()).event_log(("sha1", "sha256"))
    (tmp_path / "boot.log").write_bytes(boot_log)
    context = LaunchContext(bench.home, event_log_path=tmp_path / "boot.log")
    assert context.service_log_path == bench.home.path / "tpm" / "service-events.log"
    assert context.event_log() == boot_log  # the boot log alone, for references
    served = context.served_event_log()
    assert served is not None and served.startswith(boot_log) and served != boot_log
    replayed = guest_replay(guest_parse(served))
    for bank in ("sha1", "sha256"):
        assert replayed[bank][SERVICE_PCR] == bench.tpm.pcr_read([SERVICE_PCR], bank)[SERVICE_PCR]
    digest = measure(bench.home, bench.package).digest
    assert guest_parse(served)[-1].digests["sha256"] == digest


def test_a_stray_service_pcr_value_is_reset_by_the_launch(bench: Bench) -> None:
    bench.tpm.pcr_extend(SERVICE_PCR, {"sha1": bytes(20), "sha256": bytes(32)})
    assert bench.unseal()


def test_extended_boot_pcr_is_refused_and_named(bench: Bench) -> None:
    bench.extend_boot(4)
    with pytest.raises(TpmPolicyMismatch) as refused:
        bench.unseal()
    message = refused.value.message
    assert "PCR 4 (sha256) differ" in message
    assert "boot PCRs 4: the event log at sealing time is not available" in message
    assert "vbios tpm reseal --home" in message
    assert "23" not in message.split("\n")[1]


def test_modified_code_is_refused_and_the_file_named(bench: Bench) -> None:
    with (bench.package / "soap" / "guard.py").open("a") as handle:
        handle.write("\n# tampered\n")
    with pytest.raises(TpmPolicyMismatch) as refused:
        bench.unseal()
    message = refused.value.message
    assert f"PCR {SERVICE_PCR} (sha256) differ" in message
    assert "changed: code/soap/guard.py" in message
    assert "PCR 4" not in message


def test_changed_configuration_is_refused_and_named(bench: Bench) -> None:
    registry = bench.home.registry_path
    registry.write_text(registry.read_text() + " ")
    with pytest.raises(TpmPolicyMismatch, match=r"changed: config/registry\.json"):
        bench.unseal()


def test_unreachable_tpm_names_the_tcti(bench: Bench) -> None:
    bench.tpm.available = False
    with pytest.raises(TpmUnavailable, match=r"swtpm:host=127\.0\.0\.1,port=1"):
        bench.unseal()


def test_lockout_is_reported_as_such(bench: Bench) -> None:
    bench.tpm.locked_out = True
    with pytest.raises(TpmLockout):
        bench.unseal()


def test_missing_sealed_blob_is_a_clear_refusal(bench: Bench) -> None:
    bench.home.sealed_blob("server").unlink()
    with pytest.raises(KeyUnreadable, match="sealed server key passphrase"):
        bench.unseal()


def test_reseal_after_a_service_update_needs_no_code(bench: Bench) -> None:
    with (bench.package / "soap" / "guard.py").open("a") as handle:
        handle.write("\n# upgrade\n")
    report = reseal(bench.context())
    assert report.method == "service-update"
    assert any("changed: code/soap/guard.py" in line for line in report.changes)
    bench.unseal()  # the new service unseals
    again = reseal(bench.context())
    assert again.method == "unchanged" and again.changes == ()


def test_reseal_after_a_boot_change_needs_the_recovery_code(bench: Bench) -> None:
    bench.extend_boot(2)
    with pytest.raises(TpmPolicyMismatch, match="recovery code"):
        reseal(bench.context())
    with pytest.raises(KeyUnreadable, match="wrong recovery code"):
        reseal(bench.context(), "AAAA-" * 7 + "AAAA")
    code = bench.done.recovery_code
    assert code is not None
    report = reseal(bench.context(), code.lower().replace("-", " "))
    assert report.method == "recovery-code"
    assert any("PCR 2 (sha256) differ" in line for line in report.changes)
    assert load_private_key(bench.home.server_key, bench.unseal())


def test_init_refuses_an_unreachable_tpm_before_any_key(tmp_path: Path, package: Path) -> None:
    def unreachable(tcti: str) -> FakeTpm:
        raise TpmUnavailable("connection refused")

    with pytest.raises(TpmUnavailable, match="connection refused"):
        initialize(tmp_path / "h", tpm=TpmChoice(TCTI), opener=unreachable, package_root=package)
    home = Home.open(tmp_path / "h")
    assert not home.is_initialized
    assert not home.server_key.exists()
