"""`vbios-client attest` and `host ...` end to end in-process: cli.main, the real guest
library, the SOAP app over a FakeTpm host (``cli._connect`` returns an in-process client).

Here, not in tests/unit, because it drives the WSGI app and writes state files; the
argument and output-shape tests without I/O are tests/unit/test_client_attest_cli.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
from pathlib import Path

import pytest
import vbios_client as vc
from vbios_client import cli
from vbios_client.attestation import CHECKS, ClockState, ClockStore

from bios_ws.domain.principal import Principal
from bios_ws.tpm.port import PCR_COUNT
from tests.attested_host import (
    AttestedHost,
    build_attested_host,
    ca_pem,
    enroll_attestation_key,
    guest_client,
)
from tests.integration.test_client_inprocess import URL


@pytest.fixture
def host() -> AttestedHost:
    host = build_attested_host()
    host.set_reference_from_log()
    return host


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_STATE_HOME in the test's directory, so a default state file lands there."""
    home = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


@pytest.fixture
def connect(host: AttestedHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            state_home: Path) -> list[vc.BiosClient]:
    """Every run gets a new in-process client whose bundle CA is the AK's issuer."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_pem(enroll_attestation_key(host)))
    made: list[vc.BiosClient] = []

    def connect(args: object) -> vc.BiosClient:
        client = guest_client(host.app, Principal.guest("vm1"))
        client._ca_path = ca_file  # what BiosClient.from_bundle sets from ca.pem
        made.append(client)
        return client

    monkeypatch.setattr(cli, "_connect", connect)
    return made


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def attest_json(*argv: str) -> tuple[int, dict[str, object]]:
    code, out, err = run("attest", "--json", *argv)
    assert err == ""
    document = json.loads(out)
    assert isinstance(document, dict)
    return code, document


def tamper(host: AttestedHost, pcr: int = 4) -> None:
    host.tpm.pcr_extend(pcr, {bank: hashlib.new(bank, b"rootkit").digest()
                              for bank in host.tpm.active_banks()})


# -- attest -------------------------------------------------------------------------------


def test_attest_json_trusted_exits_0(connect: list[vc.BiosClient], host: AttestedHost,
                                     tmp_path: Path) -> None:
    code, document = attest_json("--state", str(tmp_path / "s.json"))
    assert code == 0
    assert document["trusted"] is True and document["failures"] == []
    assert document["checks"] == list(CHECKS[:7])
    assert document["bank"] == "sha256"
    assert document["pcrs"] == {str(i): v.hex() for i, v in
                                host.tpm.pcr_read(range(8), "sha256").items()}


def test_attest_text_trusted(connect: list[vc.BiosClient], tmp_path: Path) -> None:
    code, out, err = run("attest", "--state", str(tmp_path / "s.json"))
    assert (code, err) == (0, "")
    assert out.startswith("trusted: every check passed (attest-format, signature,")
    assert "  TPM clock " in out


def test_attest_untrusted_exits_1_and_lists_failures(connect: list[vc.BiosClient],
                                                     host: AttestedHost) -> None:
    tamper(host, 4)
    code, document = attest_json("--no-state")
    assert code == 1 and document["trusted"] is False
    failures = document["failures"]
    assert isinstance(failures, list) and [f["check"] for f in failures] == ["event-log"]
    code, out, _ = run("attest", "--no-state")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "NOT TRUSTED: 1 of 7 checks failed"
    assert lines[1].startswith("  event-log: replaying the event log does not give the"
                               " reported sha256 value of PCR 4")


def test_attest_pcrs_and_bank(connect: list[vc.BiosClient], host: AttestedHost) -> None:
    code, document = attest_json("--no-state", "--pcrs", "0-3,7", "--bank", "sha1")
    assert code == 0, document
    assert document["bank"] == "sha1"
    assert document["pcrs"] == {str(i): v.hex() for i, v in
                                host.tpm.pcr_read([0, 1, 2, 3, 7], "sha1").items()}


@pytest.mark.parametrize("value", ["24", "3-1", "0-3,3", "a-b", ""])
def test_bad_pcrs_exit_2_without_a_call(connect: list[vc.BiosClient], value: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run("attest", "--no-state", "--pcrs", value)
    assert exc.value.code == 2
    assert "--pcrs" in capsys.readouterr().err
    assert connect == []


def test_state_file_is_written_private_and_used_by_the_next_run(
    connect: list[vc.BiosClient], host: AttestedHost, tmp_path: Path
) -> None:
    state = tmp_path / "deep" / "clock.json"
    code, first = attest_json("--state", str(state))
    assert code == 0 and first["checks"] == list(CHECKS[:7])
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    saved = json.loads(state.read_text())["entries"]
    assert [(e["server"], e["clock"]) for e in saved] == [
        (connect[0].url.rstrip("/"), first["clock"]["clock"])]  # type: ignore[index]
    code, second = attest_json("--state", str(state))
    assert code == 0 and second["checks"] == list(CHECKS)  # counters and clock compared
    assert len(connect) == 2  # two processes' worth of clients: only the file links them


def test_state_from_the_future_fails_the_clock(connect: list[vc.BiosClient],
                                               host: AttestedHost, tmp_path: Path) -> None:
    state = tmp_path / "clock.json"
    assert host.ak_certificate is not None
    ClockStore(state).save(URL, host.ak_certificate, ClockState(10**12, 0, 0))
    code, document = attest_json("--state", str(state))
    failures = document["failures"]
    assert code == 1 and isinstance(failures, list)
    assert [f["check"] for f in failures] == ["clock"]


def test_default_state_file_is_under_xdg_state_home(connect: list[vc.BiosClient],
                                                    state_home: Path) -> None:
    assert attest_json()[0] == 0
    default = state_home / "vbios-client" / "attest-clock.json"
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    assert attest_json()[1]["checks"] == list(CHECKS)


def test_no_state_writes_nothing(connect: list[vc.BiosClient], state_home: Path,
                                 tmp_path: Path) -> None:
    before = sorted(tmp_path.rglob("*"))
    for _ in range(2):
        code, document = attest_json("--no-state")
        assert code == 0 and document["checks"] == list(CHECKS[:7])
    assert sorted(tmp_path.rglob("*")) == before
    assert not state_home.exists()


def test_malformed_state_file_exits_2_naming_it(connect: list[vc.BiosClient],
                                                tmp_path: Path) -> None:
    state = tmp_path / "clock.json"
    state.write_text("{not json")
    code, out, err = run("attest", "--state", str(state))
    assert (code, out) == (2, "")
    assert f"vbios-client: error: {state}: not JSON" in err
    assert state.read_text() == "{not json"  # refused, not reset


def test_attest_without_ak_exits_1_with_the_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = build_attested_host()
    monkeypatch.setattr(cli, "_connect", lambda args: guest_client(fresh.app, fresh.guest))
    code, out, err = run("attest", "--no-state")
    assert (code, out) == (1, "")
    assert err.startswith("vbios-client: AttestationUnavailable: ")


# -- host ... -----------------------------------------------------------------------------


def test_host_status_json(connect: list[vc.BiosClient], host: AttestedHost) -> None:
    code, out, _ = run("host", "status", "--json")
    document = json.loads(out)
    assert code == 0
    reference = json.loads(run("host", "reference", "--json")[1])
    assert reference["source"] == "test boot"
    assert document["state"] == "Trusted" and document["restricted"] is False
    assert document["checked_pcrs"] == list(range(8)) and document["findings"] == []
    tamper(host, 4)
    code, out, _ = run("host", "status", "--json")
    document = json.loads(out)
    assert code == 1
    assert document["state"] == "Untrusted" and document["restricted"] is True
    assert [(f["kind"], f["pcr"]) for f in document["findings"]] == [("pcr-value", 4)]


def test_host_status_text_when_restricted(connect: list[vc.BiosClient],
                                          host: AttestedHost) -> None:
    tamper(host, 4)
    code, out, _ = run("host", "status")
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("Untrusted (restricted mode: state changes refused), checked ")
    assert lines[1].startswith("  pcr-value: PCR 4: ")


def test_host_measurements(connect: list[vc.BiosClient], host: AttestedHost) -> None:
    code, out, _ = run("host", "measurements")
    lines = out.splitlines()
    pcrs = host.tpm.pcr_read(range(PCR_COUNT), "sha256")
    assert code == 0
    assert lines[:-1] == [f"PCR {i:2} sha256: {v.hex()}" for i, v in pcrs.items()]
    assert host.event_log is not None
    assert lines[-1].endswith(f" events, event log {len(host.event_log)} bytes")
    document = json.loads(run("host", "measurements", "--json")[1])
    assert document["pcrs"] == {str(i): v.hex() for i, v in pcrs.items()}
    assert len(document["events"]) == int(lines[-1].split()[0])


def test_host_diagnostics(connect: list[vc.BiosClient], host: AttestedHost) -> None:
    code, out, _ = run("host", "diagnostics")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("Trusted, checked ")
    assert sum(line.startswith("PCR ") for line in lines) == PCR_COUNT
    audit = [line.split() for line in lines if line.startswith("audit ")]
    assert [(a[3], a[4], a[5], a[6]) for a in audit] == [
        ("admin:admin", "CreateDomain", "vm1", "ok"),
        ("admin:tester", "SetReferenceMeasurements", "-", "ok")]
    document = json.loads(run("host", "diagnostics", "--json")[1])
    assert document["status"]["state"] == "Trusted" and document["unavailable"] is None
    assert [e["operation"] for e in document["audit"]] == ["CreateDomain",
                                                           "SetReferenceMeasurements"]


def test_host_reference(connect: list[vc.BiosClient], host: AttestedHost) -> None:
    code, out, _ = run("host", "reference")
    assert code == 0
    assert out.startswith("version 1, set ") and ", digest " in out
    digest = out.rsplit(" ", 1)[1].strip()
    status = json.loads(run("host", "status", "--json")[1])
    assert status["reference_digest"] == digest
    manifest = json.loads(run("host", "reference", "--json")[1])
    assert manifest["format"] == "bios-ws-reference-v1"


def test_host_reference_when_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = build_attested_host()
    monkeypatch.setattr(cli, "_connect", lambda args: guest_client(fresh.app, fresh.guest))
    assert run("host", "reference") == (0, "the host has no reference measurements\n", "")
