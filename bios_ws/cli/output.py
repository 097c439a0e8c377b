"""How every `vbios` command writes what it shows: one time format, one JSON style.

Times are RFC 3339 in UTC with a ``Z`` (``2026-11-30T19:10:13Z``), to the second
unless the value needs more (``precise``: an audit entry's time, which its hash
covers). JSON is indented by two spaces, in text and in refusals alike.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

__all__ = ["json_text", "print_error_json", "print_json", "rfc3339", "rfc3339_or_none"]

JSON_INDENT = 2


def rfc3339(moment: datetime, *, precise: bool = False) -> str:
    """``moment`` in UTC as RFC 3339 (a naive time is taken as UTC, as the store keeps it);
    to the second, or with its microseconds when ``precise`` and it has any."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    spec = "microseconds" if precise and utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def rfc3339_or_none(moment: datetime | None, *, precise: bool = False) -> str | None:
    """``rfc3339`` of ``moment``, None for no time."""
    return None if moment is None else rfc3339(moment, precise=precise)


def json_text(data: object) -> str:
    """``data`` as the JSON every --json prints."""
    return json.dumps(data, indent=JSON_INDENT)


def print_json(data: object) -> None:
    """Print ``data`` on stdout as the JSON every --json prints."""
    print(json_text(data))


def print_error_json(code: str, message: str) -> None:
    """A refusal as --json prints it on stdout: ``{"error": {"code": ..., "message": ...}}``."""
    print_json({"error": {"code": code, "message": message}})
