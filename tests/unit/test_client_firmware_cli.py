"""`vbios-client firmware`: arguments, output shapes, progress on stderr only, exit
statuses; over a fake client (no I/O)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import vbios_client as vc
from vbios_client import _firmware_output as show
from vbios_client import cli, firmware_cli

CREATED = datetime(2030, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
JOB = vc.FirmwareJob(
    job_id="0123456789abcdef0123456789abcdef", state="NeedsReset", percent_complete=40,
    apply_time="OnReset", message="applied at the next reset", requested_by="guest:fw",
    capsule_sha256="ab" * 32, created_at=CREATED, updated_at=CREATED,
    firmware_class="5b7b6c1e-4f2a-4c59-9e0e-2f1d6a0c7b31", fw_version=2, from_version=1,
    lowest_supported_version=1, monotonic_count=2, slot="B", signer="CN=Update Signer")
ENTRY = vc.FirmwareEntry("5b7b6c1e-4f2a-4c59-9e0e-2f1d6a0c7b31", 2, 1, 2, "Success", 0, "B",
                         "vbios-2")


class FakeClient:
    def __init__(self, states: list[str] | None = None, error: Exception | None = None
                 ) -> None:
        self.states = states or []
        self.error = error
        self.calls: list[tuple[str, Any]] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def firmware_inventory(self) -> list[vc.FirmwareEntry]:
        return [ENTRY]

    def firmware_history(self) -> list[vc.FirmwareJob]:
        return [replace(JOB, state="Completed", status="Success", status_code=0),
                replace(JOB, job_id="f" * 32, state="Failed", fw_version=None,
                        from_version=None, signer=None, status="IncorrectVersion")]

    def firmware_job(self, job_id: str | None = None) -> vc.FirmwareJob:
        self.calls.append(("firmware_job", job_id))
        return JOB if job_id is None else replace(JOB, job_id=job_id)

    def update_firmware(self, capsule: bytes, **options: Any) -> vc.FirmwareJob:
        self.calls.append(("update_firmware", (capsule, options["apply_time"],
                                               options["encrypt"])))
        for sent in (0, 2 << 20, 4 << 20):
            options["progress"](sent, 4 << 20)
        if self.error is not None:  # at the commit, after the upload
            raise self.error
        return JOB

    def wait_for_firmware_job(self, job_id: str, *, timeout: float, progress: Any
                              ) -> vc.FirmwareJob:
        self.calls.append(("wait", timeout))
        job = JOB
        for state in self.states:
            job = replace(JOB, state=state, percent_complete=100 if state != "Running" else 60)
            progress(job)
        if not job.finished:
            raise vc.FirmwareJobTimeout(f"firmware job {job_id} is still {job.state}", job)
        return job


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(monkeypatch: pytest.MonkeyPatch, fake: FakeClient, *argv: str,
        err: io.StringIO | None = None) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "_connect", lambda args: fake)
    out, err = io.StringIO(), err or io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err, stdin=io.StringIO())
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def capsule(tmp_path: Path) -> Path:
    path = tmp_path / "update.cap"
    path.write_bytes(b"capsule bytes")
    return path


def test_the_wait_bound_and_the_per_call_timeout() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["firmware", "update", "f", "--wait", "--timeout", "90"])
    assert (args.wait_timeout, args.timeout, args.apply_time, args.encrypt) == (
        90.0, 30.0, "OnReset", False)
    args = parser.parse_args(["--timeout", "5", "firmware", "update", "f", "--apply-time",
                              "Immediate", "--encrypt", "--json"])
    assert (args.wait_timeout, args.timeout, args.apply_time, args.encrypt, args.json) == (
        None, 5.0, "Immediate", True, True)
    assert parser.parse_args(["firmware", "history", "--timeout", "7"]).timeout == 7.0


@pytest.mark.parametrize("argv", [
    ["firmware"], ["firmware", "update"], ["firmware", "update", "f", "--timeout", "0"],
    ["firmware", "update", "f", "--apply-time", "Later"], ["firmware", "job", "a", "b"],
])
def test_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(argv)
    assert exited.value.code == 2 and "usage:" in capsys.readouterr().err


def test_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(monkeypatch, FakeClient(), "firmware", "inventory", "--json")
    assert code == 0 and json.loads(out) == [{
        "firmware_class": ENTRY.firmware_class, "fw_version": 2, "lowest_supported_version": 1,
        "last_attempt_version": 2, "last_attempt_status": "Success",
        "last_attempt_status_code": 0, "active_slot": "B", "bios_version": "vbios-2"}]
    assert out.startswith("[\n  {\n")  # indented
    _, out, _ = run(monkeypatch, FakeClient(), "firmware", "inventory")
    assert out.splitlines() == [
        f"firmware {ENTRY.firmware_class}", "  version          = 2 (vbios-2)",
        "  lowest supported = 1", "  last attempt     = version 2: Success (0)",
        "  active slot      = B"]


def test_history_is_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(monkeypatch, FakeClient(), "firmware", "history")
    assert code == 0
    header, done, failed = out.splitlines()
    assert header.split() == ["CREATED", "STATE", "VERSION", "STATUS", "JOB", "SIGNER"]
    assert done.split() == ["2030-01-01T12:00:00Z", "Completed", "1->2", "Success", JOB.job_id,
                            "CN=Update", "Signer"]
    assert failed.split() == ["2030-01-01T12:00:00Z", "Failed", "?->?", "IncorrectVersion",
                              "f" * 32, "-"]
    assert header.index("STATE") == done.index("Completed") == failed.index("Failed")
    _, out, _ = run(monkeypatch, FakeClient(), "firmware", "history", "--json")
    rows = json.loads(out)
    assert [row["state"] for row in rows] == ["Completed", "Failed"]
    assert rows[0]["created_at"] == "2030-01-01T12:00:00Z" and rows[1]["signer"] is None


def test_job_by_id_or_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClient()
    code, out, _ = run(monkeypatch, fake, "firmware", "job", "--json")
    assert code == 0 and json.loads(out)["job_id"] == JOB.job_id
    _, out, _ = run(monkeypatch, fake, "firmware", "job", "c" * 32)
    assert "job            = " + "c" * 32 in out.splitlines()
    assert "state          = NeedsReset (40%)" in out.splitlines()
    assert fake.calls == [("firmware_job", None), ("firmware_job", "c" * 32)]


def test_update_json_stays_clean_under_a_terminal_s_bars(monkeypatch: pytest.MonkeyPatch,
                                                         capsule: Path) -> None:
    fake = FakeClient(states=["Running", "Completed"])
    code, out, err = run(monkeypatch, fake, "firmware", "update", str(capsule), "--wait",
                         "--timeout", "90", "--encrypt", "--json", err=Tty())
    assert code == 0 and json.loads(out)["state"] == "Completed"
    assert fake.calls[0] == ("update_firmware", (b"capsule bytes", "OnReset", True))
    assert fake.calls[1] == ("wait", 90.0)
    assert "\ruploading [" in err and " 50%  2.0 of 4.0 MiB" in err and "100%" in err
    assert " 60%  Running" in err and "100%  Completed" in err and err.endswith("\n")


def test_update_without_a_terminal_prints_the_job_s_states(monkeypatch: pytest.MonkeyPatch,
                                                            capsule: Path) -> None:
    fake = FakeClient(states=["Running", "Running", "Completed"])
    code, out, err = run(monkeypatch, fake, "firmware", "update", str(capsule), "--wait")
    assert code == 0 and "state          = Completed (100%)" in out.splitlines()
    assert err.splitlines() == [f"job {JOB.job_id}: Running (60%)",
                                f"job {JOB.job_id}: Completed (100%)"]


@pytest.mark.parametrize("end", ["Failed", "RolledBack"])
def test_a_job_that_did_not_complete_exits_1(monkeypatch: pytest.MonkeyPatch, capsule: Path,
                                             end: str) -> None:
    code, out, err = run(monkeypatch, FakeClient(states=[end]), "firmware", "update",
                         str(capsule), "--wait", "--json")
    assert code == 1 and json.loads(out)["state"] == end
    assert err.splitlines()[-1].startswith(f"vbios-client: firmware job {JOB.job_id}"
                                           f" ended {end}: ")


def test_a_wait_that_gives_up_exits_1(monkeypatch: pytest.MonkeyPatch, capsule: Path) -> None:
    code, out, err = run(monkeypatch, FakeClient(states=["Running"]), "firmware", "update",
                         str(capsule), "--wait", "--timeout", "1")
    assert code == 1 and "state          = Running (60%)" in out.splitlines()
    assert err.splitlines()[-1].endswith(f"(it goes on: vbios-client firmware job {JOB.job_id})")


def test_without_wait_the_job_is_printed_as_committed(monkeypatch: pytest.MonkeyPatch,
                                                      capsule: Path) -> None:
    fake = FakeClient()
    code, out, err = run(monkeypatch, fake, "firmware", "update", str(capsule),
                         "--apply-time", "Immediate", "--json")
    assert (code, json.loads(out)["state"], err) == (0, "NeedsReset", "")
    assert [name for name, _ in fake.calls] == ["update_firmware"]


def test_a_refused_capsule_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch,
                                                  capsule: Path) -> None:
    refused = vc.FirmwareUpdateRefused("FwVersion 1 is below the floor 2",
                                       attribute="FwVersion")
    code, out, err = run(monkeypatch, FakeClient(error=refused), "firmware", "update",
                         str(capsule), "--json", err=Tty())
    assert code == 1 and json.loads(out) == {"error": {
        "code": "FirmwareUpdateRefused", "message": "FwVersion 1 is below the floor 2"}}
    bar, line = err.rsplit("\n", 2)[:2]
    assert "100%  4.0 of 4.0 MiB" in bar
    assert line == "vbios-client: FirmwareUpdateRefused: FwVersion 1 is below the floor 2"


def test_bad_inputs_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                           capsule: Path) -> None:
    code, _, err = run(monkeypatch, FakeClient(), "firmware", "update", str(tmp_path / "no"))
    assert code == 2 and "cannot read capsule" in err
    (tmp_path / "empty").write_bytes(b"")
    code, _, err = run(monkeypatch, FakeClient(), "firmware", "update", str(tmp_path / "empty"))
    assert code == 2 and "is empty" in err
    code, _, err = run(monkeypatch, FakeClient(), "firmware", "update", str(capsule),
                       "--timeout", "5")
    assert code == 2 and "give --wait too" in err
    monkeypatch.setattr(firmware_cli, "MAX_CAPSULE_FILE_BYTES", 4)
    code, _, err = run(monkeypatch, FakeClient(), "firmware", "update", str(capsule))
    assert code == 2 and "larger than 4 bytes" in err


def test_the_job_s_words_on_stderr_are_escaped() -> None:
    hostile = replace(JOB, job_id="j\x1b[2J", state="Failed\u202e", message="m\x07")
    err = io.StringIO()
    show.Progress(err).job(hostile)
    assert err.getvalue() == "job j\\u001b[2J: Failed\\u202e (40%)\n"
    tty = Tty()
    show.Progress(tty).job(hostile)
    assert "\\u001b[2J" in tty.getvalue() and "\u202e" not in tty.getvalue()
    assert tty.getvalue().endswith("Failed\\u202e\x1b[K")  # the bar's own control stays
