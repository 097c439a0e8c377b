"""Attestation end to end: a real `vbios serve` on its own development TPM, over mutual TLS.

The guest library verifies every quote by itself; a second installation (its own
swtpm and CA) plays the foreign host. The restricted-mode test extends a boot
PCR behind the server's back, then replays the expected boot (`vbios tpm reboot`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import vbios_client as vc
from vbios_client.attestation import parse_event_log, verify_quote

from bios_ws.tpm.esapi import open_tpm
from tests.e2e.conftest import (
    ServerProcess,
    dev_tpm_tcti,
    init_home,
    run_vbios,
    stop_dev_tpm,
)

CLIENT = Path(sys.executable).parent / "vbios-client"
SET_TAG = ["attributes", "set", "AssetTag=rack-7"]


@dataclass
class Host:
    server: ServerProcess
    bundle: Path

    def client(self) -> vc.BiosClient:
        return vc.BiosClient.from_bundle(self.server.url, self.bundle, timeout=30)

    def cli(self, *args: str, state: Path | None = None) -> subprocess.CompletedProcess[str]:
        extra = ["--state", str(state)] if state is not None else []
        return subprocess.run(
            [str(CLIENT), "--url", self.server.url, "--bundle", str(self.bundle), *args, *extra],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)


def _start_host(work: Path, *serve_args: str) -> Iterator[Host]:
    home = work / "home"
    try:
        init_home(home)
        server = ServerProcess(home=home, work=work)
        try:
            server.start(*serve_args)
            yield Host(server, server.create_domain("guest1"))
        finally:
            server.stop()
    finally:
        stop_dev_tpm(home)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    # interval 0: every state change re-measures, so the test sees restricted mode at once
    yield from _start_host(tmp_path_factory.mktemp("attest-host"), "--workers", "1",
                           "--integrity-interval", "0")


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    yield from _start_host(tmp_path_factory.mktemp("attest-foreign"), "--workers", "1")


def failed_checks(verdict: vc.attestation.Verdict) -> list[str]:
    return [failure.check for failure in verdict.failures]


def test_server_enrolls_its_attestation_key_at_start(host: Host) -> None:
    out = host.server.stdout()
    assert "attestation key enrolled" in out, out
    assert "integrity at start: Trusted" in out, out
    assert (host.server.home / "attestation" / "ak-cert.pem").is_file()


def test_a_fresh_nonce_verifies(host: Host) -> None:
    with host.client() as client:
        first = client.attest()
        second = client.attest([0, 2, 4, 7], "sha1")
        service = client.attest([*range(8), 23])
    assert first.trusted, first.failures
    assert second.trusted, second.failures
    assert {"counters", "clock"} <= set(second.checks)
    assert service.trusted, service.failures  # the launch logged its extend of PCR 23


def test_the_service_pcr_replays_from_the_launch_event(host: Host, tmp_path: Path) -> None:
    digest = re.search(r"service digest ([0-9a-f]{64})", host.server.stdout())
    assert digest is not None, host.server.stdout()
    with host.client() as client:
        evidence = client.get_quote(secrets.token_bytes(32), [*range(8), 23])
    service = [e for e in parse_event_log(evidence.event_log) if e.pcr == 23]
    assert [(e.type, e.digests["sha256"].hex()) for e in service] == [(0x6, digest.group(1))]
    done = host.cli("attest", "--pcrs", "0-7,23", state=tmp_path / "clock.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PCR 23 sha256" in done.stdout


def test_the_cli_prints_the_verdict_and_keeps_the_clock(host: Host, tmp_path: Path) -> None:
    state = tmp_path / "clock.json"
    done = host.cli("--json", "attest", state=state)
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["trusted"] is True and verdict["failures"] == []
    again = host.cli("attest", state=state)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith("trusted"), again.stdout
    assert "counters" in again.stdout and "clock" in again.stdout


def test_a_replayed_quote_fails_the_nonce(host: Host) -> None:
    ca = (host.bundle / "ca.pem").read_bytes()
    with host.client() as client:
        old = client.get_quote(secrets.token_bytes(32))
    verdict = verify_quote(old, nonce=secrets.token_bytes(32), ca_pem=ca)
    assert failed_checks(verdict) == ["nonce"]


def test_a_flipped_signature_byte_fails(host: Host) -> None:
    ca = (host.bundle / "ca.pem").read_bytes()
    nonce = secrets.token_bytes(32)
    with host.client() as client:
        evidence = client.get_quote(nonce)
    signature = bytearray(evidence.signature)
    signature[-1] ^= 0x01
    verdict = verify_quote(replace(evidence, signature=bytes(signature)), nonce=nonce, ca_pem=ca)
    assert failed_checks(verdict) == ["signature"]


def test_a_tampered_event_log_fails_the_replay(host: Host) -> None:
    ca = (host.bundle / "ca.pem").read_bytes()
    nonce = secrets.token_bytes(32)
    with host.client() as client:
        evidence = client.get_quote(nonce)
    log = bytearray(evidence.event_log)
    pcr4 = next(e for e in parse_event_log(evidence.event_log) if e.pcr == 4)
    at = log.index(pcr4.digests["sha256"])
    log[at] ^= 0x01  # the measured boot loader "was" another one
    verdict = verify_quote(replace(evidence, event_log=bytes(log)), nonce=nonce, ca_pem=ca)
    assert not verdict.trusted
    assert "event-log" in failed_checks(verdict)
    assert "signature" not in failed_checks(verdict)


def test_a_quote_from_another_tpm_fails_the_ak_chain(host: Host, foreign: Host) -> None:
    ca = (host.bundle / "ca.pem").read_bytes()
    nonce = secrets.token_bytes(32)
    with foreign.client() as client:
        theirs = client.get_quote(nonce)
    verdict = verify_quote(theirs, nonce=nonce, ca_pem=ca)
    assert "ak-certificate" in failed_checks(verdict)
    # and their quote under our attestation key's certificate fails the signature
    with host.client() as client:
        ours = client.get_quote(secrets.token_bytes(32))
    mixed = replace(theirs, ak_certificate=ours.ak_certificate)
    assert "signature" in failed_checks(verify_quote(mixed, nonce=nonce, ca_pem=ca))


def extend_behind_the_servers_back(home: Path, pcr: int) -> None:
    tpm = open_tpm(dev_tpm_tcti(home))
    try:
        tpm.pcr_extend(pcr, {bank: hashlib.new(bank, b"runtime implant").digest()
                             for bank in tpm.active_banks()})
    finally:
        tpm.close()


def test_runtime_extend_restricts_the_service_until_the_expected_boot(host: Host) -> None:
    assert host.cli(*SET_TAG).returncode == 0
    extend_behind_the_servers_back(host.server.home, 4)
    with host.client() as client:
        status = client.get_integrity_status()
        assert not status.trusted and status.restricted
        assert [(f.kind, f.pcr) for f in status.findings] == [("pcr-value", 4)]
        verdict = client.attest()
        assert not verdict.trusted and failed_checks(verdict) == ["event-log"]
        with pytest.raises(vc.ServiceRestricted):
            client.set_attributes({"AssetTag": "rack-8"})
        assert client.get_attributes(["AssetTag"]).values["AssetTag"] == "rack-7"  # reads work
        diagnostics = client.collect_diagnostics()
        assert not diagnostics.status.trusted and diagnostics.measurements is not None
    refused = host.cli(*SET_TAG)
    assert refused.returncode == 1 and "ServiceRestricted" in refused.stderr
    assert host.cli("attest").returncode == 1

    done = run_vbios("tpm", "reboot", "--home", str(host.server.home))
    assert done.returncode == 0, done.stderr
    with host.client() as client:
        assert client.get_integrity_status().trusted
        assert client.attest().trusted
        client.set_attributes({"AssetTag": "rack-9"})
    audit = run_vbios("audit", "show", "--home", str(host.server.home), "--json")
    assert audit.returncode == 0, audit.stderr
    operations = [entry["operation"] for entry in json.loads(audit.stdout)]
    assert operations.count("EnterRestrictedMode") == 1
    assert operations.count("LeaveRestrictedMode") == 1
    assert operations.index("EnterRestrictedMode") < operations.index("LeaveRestrictedMode")


def test_a_reboot_is_not_a_rollback_and_a_failure_is_not_remembered(
        host: Host, tmp_path: Path) -> None:
    state = tmp_path / "clock.json"
    first = host.cli("--json", "attest", state=state)
    assert first.returncode == 0, first.stdout + first.stderr
    before = json.loads(first.stdout)["clock"]
    done = run_vbios("tpm", "reboot", "--home", str(host.server.home))
    assert done.returncode == 0, done.stderr
    # swtpm resumes its clock from the last save (it went back) with resetCount one higher
    after = host.cli("--json", "attest", state=state)
    assert after.returncode == 0, after.stdout + after.stderr
    verdict = json.loads(after.stdout)
    assert "clock" in verdict["checks"] and "counters" in verdict["checks"]
    assert verdict["clock"]["reset_count"] == before["reset_count"] + 1

    document = json.loads(state.read_text())
    document["entries"][0]["clock"] = 2**40  # a later clock of this boot was seen
    state.write_text(json.dumps(document))
    for _ in range(2):  # the failure does not overwrite the remembered state
        refused = host.cli("--json", "attest", state=state)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert [f["check"] for f in json.loads(refused.stdout)["failures"]] == ["clock"]
    assert json.loads(state.read_text()) == document
