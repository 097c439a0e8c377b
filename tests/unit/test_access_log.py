"""The access log's line of a call: its fields, the RFC 3339 UTC time, a bounded length
(one atomic write), no way to forge a line; a rotation too small is refused. Files and
processes: tests/integration/test_access_log_files.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bios_ws.server.access_log import MAX_LINE_BYTES, Rotation, format_line
from bios_ws.server.calls import Call

STARTED = datetime(2026, 11, 5, 9, 30, 15, 123_000, tzinfo=UTC).timestamp()


def a_call(**changes: object) -> Call:
    fields: dict[str, object] = {
        "started": STARTED, "duration": 0.0012345, "peer": "127.0.0.1",
        "principal": "guest:vm1", "operation": "SetAttributes", "outcome": "PasswordRequired",
        "status": 500, "request_bytes": 612, "response_bytes": 498}
    fields.update(changes)
    return Call(**fields)  # type: ignore[arg-type]


def test_a_line_holds_the_call_and_nothing_else() -> None:
    line = format_line(a_call(), worker=4242)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "time": "2026-11-05T09:30:15.123Z", "principal": "guest:vm1",
        "operation": "SetAttributes", "outcome": "PasswordRequired", "status": 500,
        "duration_ms": 1.234, "request_bytes": 612, "response_bytes": 498,
        "peer": "127.0.0.1", "worker": 4242}


def test_the_time_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    import time

    time.tzset()
    try:
        assert json.loads(format_line(a_call(), 1))["time"] == "2026-11-05T09:30:15.123Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_line_stays_within_one_atomic_write_however_long_its_fields() -> None:
    line = format_line(a_call(principal="admin:" + "x" * 5000, peer="\u00e9" * 3000,
                              operation="o" * 300), worker=1)
    assert len(line) <= MAX_LINE_BYTES <= 4096
    record = json.loads(line)
    assert record["principal"].startswith("admin:") and record["status"] == 500


def test_control_characters_cannot_break_a_line() -> None:
    line = format_line(a_call(principal="admin:evil\n{\"forged\": 1}"), worker=1)
    assert line.count(b"\n") == 1
    assert json.loads(line)["principal"] == "admin:evil\n{\"forged\": 1}"


@pytest.mark.parametrize(("max_bytes", "backups"), [(MAX_LINE_BYTES - 1, 1), (1 << 20, -1),
                                                    (1 << 20, 1001)])
def test_a_rotation_too_small_or_too_many_files_is_refused(max_bytes: int,
                                                           backups: int) -> None:
    with pytest.raises(ValueError, match="rotates past at least"):
        Rotation(max_bytes, backups)
