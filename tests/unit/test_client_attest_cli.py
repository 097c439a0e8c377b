"""`vbios-client attest` and `host ...`: arguments, exit codes and output shapes (no I/O).

``cli._connect`` is replaced by a stub client that records what it was asked and
answers canned models, so nothing is sent and no state file is written; the same
commands against the in-process app are in
tests/integration/test_client_attest_cli_inprocess.py.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import vbios_client as vc
from vbios_client import attest_cli, cli
from vbios_client.attestation import CHECKS, ClockState, ClockStore, ClockStoreError, Verdict
from vbios_client.attestation.verify import Failure
from vbios_client.integrity import (
    AuditEntry,
    BootMeasurements,
    Diagnostics,
    IntegrityFinding,
    IntegrityStatus,
    MeasuredEvent,
    ReferenceMeasurements,
)

PCRS = {i: bytes([i]) * 32 for i in range(8)}
TRUSTED = Verdict(trusted=True, failures=(), checks=CHECKS[:7],
                  clock=ClockState(5000, 3, 1), bank="sha256", pcrs=PCRS, events=29)
UNTRUSTED = Verdict(
    trusted=False,
    failures=(Failure("nonce", "extraData is not the nonce sent"),
              Failure("event-log", "replaying the event log does not give PCR 4")),
    checks=CHECKS, clock=ClockState(5000, 3, 1), bank="sha256", pcrs=PCRS, events=29)
RESTRICTED = IntegrityStatus(
    trusted=False, restricted=True, checked_at="2026-11-01T12:00:00.000Z", bank="sha256",
    checked_pcrs=(0, 4), reference_digest="ab" * 32,
    findings=(IntegrityFinding("pcr-value", "PCR 4 differs", pcr=4),
              IntegrityFinding("no-tpm", "host-wide")))
MEASUREMENTS = BootMeasurements(
    "sha256", {0: b"\x01" * 32, 1: b"\x02" * 32}, b"L" * 100,
    (MeasuredEvent(0, 0, "EV_S_CRTM_VERSION", {"sha256": b"\x03" * 32}, 4),))
REFERENCE = ReferenceMeasurements(3, "2026-11-01T12:00:00.000Z", "cd" * 32,
                                  '{"format": "bios-ws-reference-v1", "pcrs": {}}')
AUDIT = (AuditEntry(7, "2026-11-01T12:00:00.000Z", "guest:vm1", "SetAttributes", "vm1", "ok"),
         AuditEntry(8, "2026-11-01T12:00:01.000Z", "admin:root", "SetReferenceMeasurements",
                    None, "refused:InvalidRequest"))


class StubClient:
    """Stands in for BiosClient: records calls, answers canned values or raises ``error``."""

    def __init__(self, verdict: Verdict = TRUSTED, error: Exception | None = None) -> None:
        self.verdict, self.error = verdict, error
        self.calls: list[tuple[str, Any]] = []
        self.reference: ReferenceMeasurements | None = REFERENCE
        self.closed = False

    def __enter__(self) -> StubClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.closed = True

    def _answer(self, name: str, value: Any, args: Any = None) -> Any:
        self.calls.append((name, args))
        if self.error is not None:
            raise self.error
        return value

    def attest(self, pcrs: Sequence[int] | None = None, bank: str = "sha256", *,
               ca_pem: bytes | None = None, clock_store: ClockStore | None = None) -> Verdict:
        return self._answer("attest", self.verdict, (pcrs, bank, clock_store))  # type: ignore[no-any-return]

    def get_integrity_status(self) -> IntegrityStatus:
        return self._answer("status", RESTRICTED)  # type: ignore[no-any-return]

    def get_boot_measurements(self, bank: str = "sha256") -> BootMeasurements:
        return self._answer("measurements", MEASUREMENTS)  # type: ignore[no-any-return]

    def get_reference_measurements(self) -> ReferenceMeasurements | None:
        return self._answer("reference", self.reference)  # type: ignore[no-any-return]

    def collect_diagnostics(self) -> Diagnostics:
        return self._answer("diagnostics", Diagnostics(  # type: ignore[no-any-return]
            "2026-11-01T12:00:02.000Z", RESTRICTED, None, "AttestationUnavailable: no TPM",
            AUDIT))


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> StubClient:
    client = StubClient()
    monkeypatch.setattr(cli, "_connect", lambda args: client)
    return client


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# -- --pcrs ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("0-3,7", [0, 1, 2, 3, 7]),
    ("5", [5]),
    ("7,0", [7, 0]),
    (" 1 , 2-3 ", [1, 2, 3]),
    ("0-23", list(range(24))),
    ("23-23", [23]),
])
def test_pcr_lists_are_parsed(text: str, expected: list[int]) -> None:
    assert attest_cli.parse_pcrs(text) == expected


@pytest.mark.parametrize(("text", "words"), [
    ("24", "0 to 23"), ("0-24", "0 to 23"), ("3-1", "0 to 23"), ("x", "like 0-7,23"),
    ("", "like 0-7,23"), ("1-", "like 0-7,23"), ("1,,2", "like 0-7,23"),
    ("0-3,3", "named twice"), ("1-2-3", "like 0-7,23"), ("0x3", "like 0-7,23"),
])
def test_bad_pcr_lists_are_refused(text: str, words: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        attest_cli.parse_pcrs(text)


@pytest.mark.parametrize("argv", [
    ["attest", "--pcrs", "24"],
    ["attest", "--pcrs", "0-3,3"],
    ["attest", "--pcrs", "seven"],
    ["attest", "--pcrs=-1"],
    ["attest", "--bank", "md5"],
    ["attest", "--state", "f.json", "--no-state"],
    ["attest", "--pcrs"],
    ["host"],
    ["host", "reboot"],
])
def test_usage_errors_exit_2_before_connecting(argv: list[str], stub: StubClient,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(*argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err
    assert stub.calls == []


def test_pcrs_bank_and_state_reach_the_client(stub: StubClient) -> None:
    state = Path("/nonexistent/never-written.json")
    assert run("attest", "--pcrs", "0-3,7", "--bank", "sha1", "--state", str(state))[0] == 0
    (name, (pcrs, bank, store)), = stub.calls
    assert (name, pcrs, bank) == ("attest", [0, 1, 2, 3, 7], "sha1")
    assert isinstance(store, ClockStore) and store.path == state


def test_no_state_passes_no_store(stub: StubClient) -> None:
    assert run("attest", "--no-state")[0] == 0
    assert stub.calls == [("attest", (None, "sha256", None))]


def test_default_state_file_follows_xdg_state_home(stub: StubClient,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/nonexistent/state")
    expected = Path("/nonexistent/state/vbios-client/attest-clock.json")
    assert attest_cli.default_state_file() == expected
    run("attest")
    store = stub.calls[0][1][2]
    assert isinstance(store, ClockStore) and store.path == expected


def test_default_state_file_without_xdg_is_under_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", "/nonexistent/home")
    assert attest_cli.default_state_file() == Path(
        "/nonexistent/home/.local/state/vbios-client/attest-clock.json")


# -- attest: verdicts and exit codes -----------------------------------------------------


def test_trusted_text_exits_0(stub: StubClient) -> None:
    code, out, err = run("attest", "--no-state")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"trusted: every check passed ({', '.join(CHECKS[:7])})"
    assert lines[1] == f"  PCR  0 sha256: {'00' * 32}"
    assert len([line for line in lines if " PCR " in line]) == 8
    assert lines[-1] == "  TPM clock 5000 ms, resets 3, restarts 1"
    assert stub.closed


def test_trusted_json_exits_0(stub: StubClient) -> None:
    code, out, _ = run("attest", "--no-state", "--json")
    document = json.loads(out)
    assert code == 0
    assert document == TRUSTED.to_dict()
    assert document["trusted"] is True and document["failures"] == []


def test_untrusted_text_lists_failures_and_exits_1(stub: StubClient) -> None:
    stub.verdict = UNTRUSTED
    code, out, err = run("attest", "--no-state")
    assert (code, err) == (1, "")
    assert out.splitlines()[:3] == [
        f"NOT TRUSTED: 2 of {len(CHECKS)} checks failed",
        "  nonce: extraData is not the nonce sent",
        "  event-log: replaying the event log does not give PCR 4",
    ]


def test_untrusted_json_lists_failures_and_exits_1(stub: StubClient) -> None:
    stub.verdict = UNTRUSTED
    code, out, _ = run("--json", "attest", "--no-state")  # --json before the command too
    document = json.loads(out)
    assert code == 1 and document["trusted"] is False
    assert [f["check"] for f in document["failures"]] == ["nonce", "event-log"]


def test_unreadable_quote_prints_no_clock(stub: StubClient) -> None:
    stub.verdict = Verdict(False, (Failure("attest-format", "unreadable"),), CHECKS[:7], None,
                           "sha256", {}, None)
    code, out, _ = run("attest", "--no-state")
    assert code == 1 and "TPM clock" not in out and "PCR" not in out


@pytest.mark.parametrize(("error", "code", "words"), [
    (vc.AttestationUnavailable("no attestation key"), 1,
     "vbios-client: AttestationUnavailable: no attestation key"),
    (ClockStoreError("/s/clock.json: not JSON"), 2, "vbios-client: error: /s/clock.json"),
    (vc.TransportError("connection refused"), 3, "TransportError"),
])
def test_failures_of_attest_exit_with_their_status(stub: StubClient, error: Exception,
                                                   code: int, words: str) -> None:
    stub.error = error
    status, out, err = run("attest", "--no-state")
    assert (status, out) == (code, "")
    assert words in err


# -- host ... ------------------------------------------------------------------------------


def test_host_status_text(stub: StubClient) -> None:
    code, out, _ = run("host", "status")
    assert code == 1  # Untrusted
    assert out.splitlines() == [
        "Untrusted (restricted mode: state changes refused), checked 2026-11-01T12:00:00Z",
        "  pcr-value: PCR 4: PCR 4 differs",
        "  no-tpm: host-wide",
    ]


def test_host_status_json(stub: StubClient) -> None:
    code, out, _ = run("host", "status", "--json")
    assert code == 1 and json.loads(out) == RESTRICTED.to_dict()
    assert json.loads(out)["findings"][0] == {"kind": "pcr-value", "pcr": 4, "event_index": None,
                                              "message": "PCR 4 differs"}


def test_host_measurements_text_and_json(stub: StubClient) -> None:
    code, out, _ = run("host", "measurements")
    assert code == 0
    assert out.splitlines() == [f"PCR  0 sha256: {'01' * 32}", f"PCR  1 sha256: {'02' * 32}",
                                "1 events, event log 100 bytes"]
    document = json.loads(run("host", "measurements", "--json")[1])
    assert document == {"bank": "sha256", "pcrs": {"0": "01" * 32, "1": "02" * 32},
                        "events": [{"pcr": 0, "type": "EV_S_CRTM_VERSION",
                                    "digests": {"sha256": "03" * 32}}]}


def test_host_reference_text_json_and_none(stub: StubClient) -> None:
    assert run("host", "reference")[1] == (
        f"version 3, set 2026-11-01T12:00:00Z, digest {'cd' * 32}\n")
    assert json.loads(run("host", "reference", "--json")[1]) == json.loads(REFERENCE.manifest)
    stub.reference = None
    assert run("host", "reference") == (0, "the host has no reference measurements\n", "")


def test_host_diagnostics_text_and_json(stub: StubClient) -> None:
    code, out, _ = run("host", "diagnostics")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("Untrusted (restricted mode")
    assert "measurements unavailable: AttestationUnavailable: no TPM" in lines
    assert lines[-2:] == [
        "audit 7 2026-11-01T12:00:00Z guest:vm1 SetAttributes vm1 ok",
        "audit 8 2026-11-01T12:00:01Z admin:root SetReferenceMeasurements -"
        " refused:InvalidRequest",
    ]
    document = json.loads(run("host", "diagnostics", "--json")[1])
    assert document["status"] == RESTRICTED.to_dict()
    assert document["unavailable"] == "AttestationUnavailable: no TPM"
    assert document["audit"][1] == {"seq": 8, "time": "2026-11-01T12:00:01.000Z",
                                    "principal": "admin:root",
                                    "operation": "SetReferenceMeasurements", "domain": None,
                                    "outcome": "refused:InvalidRequest"}


def test_host_fault_exits_1(stub: StubClient) -> None:
    stub.error = vc.AccessDenied("not yours")
    assert run("host", "status") == (1, "", "vbios-client: AccessDenied: not yours\n")


def test_host_reference_json_without_reference_is_json(stub: StubClient) -> None:
    stub.reference = None
    code, out, _ = run("host", "reference", "--json")
    assert code == 0
    json.loads(out)


@pytest.mark.parametrize(("argv", "words"), [
    (["host", "status"], "exit status: 0 Trusted, 1 Untrusted"),
    (["attest"], "exit status: 0 trusted"),
    (["attest"], "e.g. 0-7,23"),
])
def test_help_documents_exit_codes_and_the_service_pcr(argv: list[str], words: str,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "--help"])
    assert done.value.code == 0
    assert words in " ".join(capsys.readouterr().out.split())
