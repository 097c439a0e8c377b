"""The one way vbios-client writes times, JSON and untrusted text.

- Times: RFC 3339 in UTC to the second, ``2026-11-30T19:10:13Z`` (``utc_text``; a time the
  server sent as text is read and written again, ``utc_text_of``).
- JSON: indented by 2, keys sorted, ASCII only (``json_text``): every character beyond
  ASCII, bidirectional overrides included, is written ``\\uXXXX``, and so is DEL.
  A stream of events is one object a line (``json_line``), escaped the same way.
- Text: control characters (C0 but newline and tab, DEL, C1) and the invisible
  bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) are
  never written raw: ``escape_controls`` writes them ``\\uXXXX``, and ``EscapingWriter``
  does it to everything written to stdout, so that a value a hostile server or an older
  store holds cannot move the cursor, recolour the terminal or reorder what is shown.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, TextIO

_UTC = timezone.utc  # noqa: UP017 - the client distribution still supports Python 3.10

#: What is never written raw in text output (newline and tab are layout, kept).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                    "\u2066-\u2069]")


def utc_text(moment: datetime | None) -> str | None:
    """An aware time as RFC 3339 UTC to the second with ``Z`` (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_text_of(text: str | None) -> str | None:
    """A time the server wrote as ISO 8601 text, in the form of ``utc_text``; text that is
    not such a time (or has no offset) is given back as it came."""
    if not text:
        return text
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return text
    return text if moment.tzinfo is None else utc_text(moment)


def escape_controls(text: str) -> str:
    """``text`` with each unsafe character written ``\\uXXXX``."""
    return UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def json_text(data: Any) -> str:
    """Indented, sorted, ASCII-only JSON (DEL escaped too) and a newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True).replace(
        "\x7f", "\\u007f") + "\n"


def json_line(data: Any) -> str:
    """One JSON object on one line (the keys in their order), escaped as ``json_text``."""
    return json.dumps(data, ensure_ascii=True).replace("\x7f", "\\u007f")


def dump(out: TextIO, data: Any) -> None:
    out.write(json_text(data))


class EscapingWriter:
    """Stands for a text stream and writes through it with ``escape_controls``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(escape_controls(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def fileno(self) -> int:
        return self.stream.fileno()
