"""`vbios-client events watch`: arguments, one line per event (text or JSON in Redfish's
field names), --count, the subscription ended on the way out, exit statuses; over a fake
client (no I/O)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import vbios_client as vc
from vbios_client import cli

AT = datetime(2030, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)


def event(event_id: int, domain: str | None = "web1", **fields: Any) -> vc.Event:
    values: dict[str, Any] = {
        "event_type": "SettingsChanged", "timestamp": AT, "severity": "OK",
        "message": "The settings of domain web1 changed (SetAttributes); they are at\n"
                   "version 4.", "message_id": "VbiosEvent.1.0.SettingsChanged",
        "message_args": ("web1", "SetAttributes", "4"),
        "origin": "/vbios/domains/web1/Bios", "domain": domain, **fields}
    return vc.Event(event_id, **values)


class Stream:
    def __init__(self, events: list[vc.Event], error: Exception | None) -> None:
        self.events, self.error, self.closed = events, error, False

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def __iter__(self) -> Iterator[vc.Event]:
        yield from self.events
        if self.error is not None:
            raise self.error


class FakeClient:
    def __init__(self, events: list[vc.Event], error: Exception | None = None) -> None:
        self.stream = Stream(events, error)
        self.asked: dict[str, Any] = {}

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def events(self, types: list[str] | None, **options: Any) -> Stream:
        self.asked = {"types": types, **options}
        return self.stream


def run(monkeypatch: pytest.MonkeyPatch, fake: FakeClient, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "_connect", lambda args: fake)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err, stdin=io.StringIO())
    return code, out.getvalue(), err.getvalue()


def test_each_event_on_one_line_until_count(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClient([event(7), event(8, None, event_type="IntegrityChanged",
                                      severity="Critical", message="The host entered"),
                       event(9)])
    code, out, _ = run(monkeypatch, fake, "events", "watch", "--count", "2")
    assert code == 0 and fake.stream.closed
    assert out.splitlines() == [
        "2030-01-01T12:00:00Z OK       SettingsChanged web1: The settings of domain web1"
        " changed (SetAttributes); they are at version 4. (#7)",
        "2030-01-01T12:00:00Z Critical IntegrityChanged host: The host entered (#8)"]
    assert fake.asked == {"types": None, "wait": 30.0, "cursor": None}


def test_json_lines_in_redfish_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(monkeypatch, FakeClient([event(7), event(8, None)]), "events",
                       "watch", "--json", "--count", "2")
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 0 and first == {
        "EventId": 7, "EventType": "SettingsChanged",
        "EventTimestamp": "2030-01-01T12:00:00Z", "Severity": "OK",
        "Message": "The settings of domain web1 changed (SetAttributes); they are at\n"
                   "version 4.", "MessageId": "VbiosEvent.1.0.SettingsChanged",
        "MessageArgs": ["web1", "SetAttributes", "4"],
        "OriginOfCondition": "/vbios/domains/web1/Bios", "Domain": "web1"}
    assert second["Domain"] is None


def test_types_cursor_and_wait_go_to_the_iterator(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClient([event(12)])
    code, _, _ = run(monkeypatch, fake, "events", "watch", "--types",
                     "PowerStateChanged, SettingsChanged", "--cursor", "11", "--wait", "5",
                     "--count", "1")
    assert code == 0
    assert fake.asked == {"types": ["PowerStateChanged", "SettingsChanged"], "wait": 5.0,
                          "cursor": 11}


@pytest.mark.parametrize("argv", [
    ["events"], ["events", "watch", "--types", "Nope"], ["events", "watch", "--types", ","],
    ["events", "watch", "--count", "0"], ["events", "watch", "--cursor", "-1"],
    ["events", "watch", "--wait", "31"], ["events", "watch", "--wait", "0"],
])
def test_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(argv)
    assert exited.value.code == 2 and "usage:" in capsys.readouterr().err


def test_a_fault_or_a_lost_service_after_some_events(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClient([event(7)], vc.TransportError("https://v/: connection refused"))
    code, out, err = run(monkeypatch, fake, "events", "watch")
    assert (code, out.count("\n")) == (3, 1) and fake.stream.closed
    assert err == "vbios-client: TransportError: https://v/: connection refused\n"
    code, _, err = run(monkeypatch, FakeClient([], vc.AccessDenied("revoked")), "events",
                       "watch")
    assert code == 1 and "AccessDenied" in err


def test_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClient([event(7)], KeyboardInterrupt())
    code, out, err = run(monkeypatch, fake, "events", "watch", "--json")
    assert (code, err) == (130, "vbios-client: interrupted\n") and fake.stream.closed
    assert json.loads(out)["EventId"] == 7
