"""`vbios eventlog show|replay FILE [--json]`, in-process, on the real logs of tpm2-tools.

Every vector in /work/shared/vectors/eventlogs is compared with `tpm2_eventlog`
(skipped without tpm2-tools); the JSON layout, the text layout and every
refusal are checked without the tool.
"""

from __future__ import annotations

import errno
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bios_ws.cli import main
from bios_ws.domain.eventlog import MAX_LOG_BYTES
from tests.eventlog_tool import (
    TOOL_UNKNOWN_TYPE,
    VECTOR_FILES,
    VECTORS,
    ToolLog,
    needs_tool,
    run_tool,
)

Run = Callable[..., tuple[int, str, str]]

UEFIVAR = VECTORS / "event-uefivar.bin"
UEFIVAR_SHA1 = "d4fdd1f14d4041494deb8fc990c45343d2277d08"
UEFIVAR_SHA256 = "ccfc4bb32888a345bc8aeadaba552b627d99348c767681ab3141f5b01e40a40e"
UEFIVAR_PCR7_SHA1 = "3a1ea200b8fafe60c290e903c5e6443cfef67f04"
UEFIVAR_PCR7_SHA256 = "e58ada1ba75f2e4722b539824598ad5e10c55f2e4aeab2033f3b0a8ee3f3eca6"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """`vbios ARGV` in-process: (exit status, stdout, stderr)."""

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return invoke


def show_json(run: Run, path: Path) -> list[dict[str, Any]]:
    code, out, err = run("eventlog", "show", str(path), "--json")
    assert code == 0, err
    events: list[dict[str, Any]] = json.loads(out)
    return events


def replay_json(run: Run, path: Path) -> dict[str, dict[str, str]]:
    code, out, err = run("eventlog", "replay", str(path), "--json")
    assert code == 0, err
    values: dict[str, dict[str, str]] = json.loads(out)
    return values


def test_the_vectors_are_there() -> None:
    assert len(VECTOR_FILES) >= 12, "the comparisons below would test nothing"


# --- agreement with tpm2_eventlog, on every vector ---------------------------------------


def assert_show_agrees(tool: ToolLog, ours: list[dict[str, Any]]) -> None:
    assert len(ours) == len(tool.events)
    for position, (event, expected) in enumerate(zip(ours, tool.events, strict=True)):
        assert event["index"] == position
        assert event["pcr"] == expected.pcr, position
        if expected.type_name != TOOL_UNKNOWN_TYPE:
            assert event["type"] == expected.type_name, position
        assert event["digests"] == {bank: digest.hex()
                                    for bank, digest in expected.digests.items()}, position


@needs_tool
@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_show_json_agrees_with_tpm2_eventlog(run: Run, path: Path) -> None:
    assert_show_agrees(run_tool(path), show_json(run, path))


@needs_tool
@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_replay_json_agrees_with_tpm2_eventlog(run: Run, path: Path) -> None:
    expected = {bank: {str(pcr): value.hex() for pcr, value in pcrs.items()}
                for bank, pcrs in run_tool(path).pcrs.items()}
    assert replay_json(run, path) == expected


@needs_tool
@pytest.mark.parametrize("path", [p for p in VECTOR_FILES if p.name != "specid-vendordata.bin"],
                         ids=lambda p: p.name)
def test_replay_text_is_the_pcrs_section_of_tpm2_eventlog(run: Run, path: Path) -> None:
    tool = subprocess.run(["tpm2_eventlog", str(path)], capture_output=True, text=True,
                          timeout=60, check=True).stdout.splitlines()
    section = tool[tool.index("pcrs:") + 1:]
    assert section and all(line.startswith("  ") for line in section)
    code, out, err = run("eventlog", "replay", str(path))
    assert code == 0, err
    assert out.splitlines() == [line[2:] for line in section]


@needs_tool
def test_the_comparison_can_fail(run: Run) -> None:
    other = VECTORS / "event-uefiaction.bin"
    assert replay_json(run, other) != replay_json(run, UEFIVAR)
    with pytest.raises(AssertionError):
        assert_show_agrees(run_tool(other), show_json(run, UEFIVAR))


# --- layouts, without the tool -----------------------------------------------------------


def test_show_json_layout(run: Run) -> None:
    assert show_json(run, UEFIVAR) == [
        {"index": 0, "pcr": 0, "type": "EV_NO_ACTION", "digests": {"sha1": "00" * 20},
         "data_size": 45},
        {"index": 1, "pcr": 7, "type": "EV_EFI_VARIABLE_DRIVER_CONFIG",
         "digests": {"sha1": UEFIVAR_SHA1, "sha256": UEFIVAR_SHA256}, "data_size": 53},
    ]


def test_replay_json_layout(run: Run) -> None:
    assert replay_json(run, UEFIVAR) == {"sha1": {"7": UEFIVAR_PCR7_SHA1},
                                         "sha256": {"7": UEFIVAR_PCR7_SHA256}}


def test_replay_json_keys_are_decimal_in_numeric_order(run: Run) -> None:
    values = replay_json(run, VECTORS / "event-gce-ubuntu-2104-log.bin")
    assert values, "the log extends PCRs"
    for pcrs in values.values():
        assert [int(key) for key in pcrs] == sorted(int(key) for key in pcrs)
        assert all(key == str(int(key)) for key in pcrs)
        assert all(value == value.lower() and bytes.fromhex(value) for value in pcrs.values())
    assert list(values["sha256"])[-2:] == ["9", "14"]  # not "14" before "9"


def test_show_text_of_a_known_log(run: Run) -> None:
    code, out, err = run("eventlog", "show", str(UEFIVAR))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "event 0: PCR 0 EV_NO_ACTION (45 bytes of data)" in lines
    assert f"  sha1: {'00' * 20}" in lines
    assert "event 1: PCR 7 EV_EFI_VARIABLE_DRIVER_CONFIG (53 bytes of data)" in lines
    assert f"  sha1:   {UEFIVAR_SHA1}" in lines
    assert f"  sha256: {UEFIVAR_SHA256}" in lines
    assert lines[-1] == "2 events"


def test_replay_text_of_a_known_log(run: Run) -> None:
    code, out, err = run("eventlog", "replay", str(UEFIVAR))
    assert (code, err) == (0, "")
    assert out.splitlines() == ["sha1:", f"  7  : 0x{UEFIVAR_PCR7_SHA1}",
                                "sha256:", f"  7  : 0x{UEFIVAR_PCR7_SHA256}"]


def test_a_log_that_extends_nothing(run: Run) -> None:
    path = VECTORS / "specid-vendordata.bin"
    assert replay_json(run, path) == {}
    code, out, _ = run("eventlog", "replay", str(path))
    assert (code, out) == (0, "the log extends no PCR\n")
    assert [event["type"] for event in show_json(run, path)] == ["EV_NO_ACTION"]


def test_a_sha1_only_log(run: Run) -> None:
    path = VECTORS / "event-uefi-sha1-log.bin"
    events = show_json(run, path)
    assert events[0]["type"] == "EV_S_CRTM_VERSION"
    assert all(set(event["digests"]) == {"sha1"} for event in events)
    assert set(replay_json(run, path)) == {"sha1"}


# --- refusals ----------------------------------------------------------------------------


def assert_refused(run: Run, path: Path, *words: str) -> None:
    for command in ("show", "replay"):
        for extra in ((), ("--json",)):
            code, out, err = run("eventlog", command, str(path), *extra)
            assert code == 1
            if extra:  # with --json, the refusal is on stdout as JSON too
                assert json.loads(out) == {"error": {"code": "AdminError",
                                                     "message": err[len("vbios: "):-1]}}
            else:
                assert out == ""
            assert err.count("\n") == 1 and err.startswith("vbios: "), err
            assert str(path) in err
            for word in words:
                assert word in err


def test_a_missing_file_is_refused(run: Run, tmp_path: Path) -> None:
    assert_refused(run, tmp_path / "absent.bin", "does not exist")


def test_a_directory_is_refused(run: Run, tmp_path: Path) -> None:
    assert_refused(run, tmp_path, "is a directory")


def test_a_path_through_a_file_is_refused(run: Run, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    assert_refused(run, tmp_path / "file" / "log.bin", "cannot read", "Not a directory")


def test_an_unreadable_file_is_refused(run: Run, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # tests may run as root, for whom mode 000 does not stop a read: refuse the open instead
    path = tmp_path / "log.bin"
    path.write_bytes(UEFIVAR.read_bytes())
    real_open = Path.open

    def guarded_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded_open)
    assert_refused(run, path, "cannot read", "Permission denied")


def test_a_file_over_the_limit_is_refused_unread(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "huge.bin"
    with path.open("wb") as stream:
        stream.truncate(MAX_LOG_BYTES + 1)  # sparse: nothing is written
    assert_refused(run, path, f"{MAX_LOG_BYTES + 1} bytes", str(MAX_LOG_BYTES))


def test_a_file_at_the_limit_is_read(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "padded.bin"
    data = UEFIVAR.read_bytes()
    path.write_bytes(data + bytes(MAX_LOG_BYTES - len(data)))
    code, _, err = run("eventlog", "show", str(path))
    assert code == 1
    assert "allowed" not in err  # not refused for its size: read and parsed
    assert "malformed" in err and "offset" in err  # the zero padding is refused


def test_a_stream_over_the_limit_is_refused(run: Run) -> None:
    # /dev/zero reports no size (like securityfs): the read stops one byte past the limit
    assert_refused(run, Path("/dev/zero"), "more than", str(MAX_LOG_BYTES))


def test_a_truncated_log_is_refused_with_its_offset(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "truncated.bin"
    path.write_bytes((VECTORS / "event-arch-linux.bin").read_bytes()[:100])
    assert_refused(run, path, "malformed", "truncated event log at offset 83")


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, b"not an event log at all, really"],
                         ids=["empty", "short", "text"])
def test_a_garbage_file_is_refused(run: Run, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(content)
    assert_refused(run, path, "malformed")


def test_a_bad_spec_id_event_is_refused(run: Run, tmp_path: Path) -> None:
    data = bytearray(UEFIVAR.read_bytes())
    # the first algorithm (after the 32-byte SHA-1 header and 28 fixed Spec ID bytes):
    # sha1 with 20 bytes becomes sha256 with 20 bytes
    assert data[60:64] == bytes.fromhex("04001400")
    data[60:62] = (0x000B).to_bytes(2, "little")
    path = tmp_path / "bad-spec.bin"
    path.write_bytes(bytes(data))
    assert_refused(run, path, "malformed", "Spec ID event offset 60")


def test_a_hostile_file_name_stays_on_one_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "evil\nvbios: all is well"
    code, out, err = run("eventlog", "show", str(path))
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "evil\\nvbios: all is well" in err
