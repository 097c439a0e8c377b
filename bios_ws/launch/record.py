"""The sealed-state record: what the key passphrases were sealed to.

Stored next to the sealed blobs (``<home>/tpm/sealed/sealed-state.json``) with
a copy of the boot event log at sealing time, so that a refusal can name the
PCRs, the boot events and the service files that changed since.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bios_ws.errors import KeyUnreadable
from bios_ws.pki.files import PUBLIC_MODE, write_file_atomic

RECORD_FORMAT = 1
_MAX_RECORD_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class SealedState:
    """PCR values (sha256 bank) sealed to, the service digest and its entries."""

    pcrs: dict[int, bytes]
    service_digest: bytes
    measured: dict[str, bytes]
    sealed_at: str
    bank: str = "sha256"

    @classmethod
    def now(cls, pcrs: Mapping[int, bytes], service_digest: bytes,
            measured: Mapping[str, bytes]) -> SealedState:
        return cls(dict(pcrs), service_digest, dict(measured),
                   datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> str:
        return json.dumps({
            "format": RECORD_FORMAT,
            "bank": self.bank,
            "sealed_at": self.sealed_at,
            "pcrs": {str(index): value.hex() for index, value in sorted(self.pcrs.items())},
            "service_digest": self.service_digest.hex(),
            "measured": {name: value.hex() for name, value in sorted(self.measured.items())},
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SealedState:
        """Parse a record; ValueError if anything is missing or malformed."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise ValueError("unsupported sealed-state format")
        pcrs, measured = data["pcrs"], data["measured"]
        if not isinstance(pcrs, dict) or not isinstance(measured, dict):
            raise ValueError("malformed sealed-state record")
        return cls(
            pcrs={int(index): bytes.fromhex(value) for index, value in pcrs.items()},
            service_digest=bytes.fromhex(data["service_digest"]),
            measured={str(name): bytes.fromhex(value) for name, value in measured.items()},
            sealed_at=str(data["sealed_at"]),
            bank=str(data["bank"]),
        )


def write_record(path: Path, state: SealedState) -> None:
    write_file_atomic(path, state.to_json().encode("utf-8"), PUBLIC_MODE)


def read_record(path: Path) -> SealedState | None:
    """The record at ``path``; None if it does not exist; KeyUnreadable if damaged."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_RECORD_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyUnreadable(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if len(data) > _MAX_RECORD_BYTES:
            raise ValueError("too large")
        return SealedState.from_json(data.decode("utf-8"))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise KeyUnreadable(f"sealed-state record {path} is damaged") from None
