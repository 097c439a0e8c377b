"""The one time format and the one JSON style of `vbios` output."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bios_ws.cli.output import json_text, print_error_json, rfc3339, rfc3339_or_none

MOMENT = datetime(2026, 11, 30, 19, 10, 13, tzinfo=UTC)


def test_a_utc_time_is_rfc3339_to_the_second() -> None:
    assert rfc3339(MOMENT) == "2026-11-30T19:10:13Z"
    assert rfc3339(MOMENT.replace(microsecond=123456)) == "2026-11-30T19:10:13Z"


def test_another_offset_is_shown_in_utc() -> None:
    paris = MOMENT.astimezone(timezone(timedelta(hours=1)))
    assert paris.isoformat().endswith("+01:00")
    assert rfc3339(paris) == "2026-11-30T19:10:13Z"


def test_a_naive_time_is_taken_as_utc() -> None:
    assert rfc3339(MOMENT.replace(tzinfo=None)) == "2026-11-30T19:10:13Z"


def test_a_precise_time_keeps_its_microseconds_when_it_has_any() -> None:
    assert rfc3339(MOMENT.replace(microsecond=5), precise=True) == "2026-11-30T19:10:13.000005Z"
    assert rfc3339(MOMENT, precise=True) == "2026-11-30T19:10:13Z"


def test_no_time_stays_none() -> None:
    assert rfc3339_or_none(None) is None
    assert rfc3339_or_none(MOMENT) == "2026-11-30T19:10:13Z"


def test_json_is_indented_by_two() -> None:
    assert json_text({"a": [1]}) == '{\n  "a": [\n    1\n  ]\n}'


def test_an_error_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    print_error_json("DomainNotFound", "no domain web1")
    assert json.loads(capsys.readouterr().out) == {
        "error": {"code": "DomainNotFound", "message": "no domain web1"}}
