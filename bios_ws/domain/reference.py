"""Reference measurements: what a known-good measured boot looks like (standard library only).

The admin sets them, from a known-good event log (``from_events``) or from a
JSON manifest (``from_manifest``, format in docs/reference-manifest.md); the
integrity verdict (``bios_ws.domain.integrity``) compares the live boot with them.

For each PCR the reference lists the events extended into it, in order. An
expected event names its type and one or more allowed digest sets
("alternatives", e.g. two approved firmware versions). EV_NO_ACTION events are
never extended, so they are never part of a reference.

A manifest is hostile input: sizes are bounded, unknown and duplicate keys are
refused (a typo must not silently weaken a reference), and every refusal is a
``ReferenceError`` whose message starts with the path of the offending value,
for example ``pcrs."4"[2].digests[0].sha256: expected 64 hex digits``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bios_ws.domain.eventlog import Event
from bios_ws.domain.eventlog_types import EV_NO_ACTION, EVENT_TYPES_BY_NAME, event_type_name

__all__ = [
    "BANK_SIZES",
    "MANIFEST_FORMAT",
    "MAX_ALTERNATIVES",
    "MAX_DESCRIPTION_CHARS",
    "MAX_MANIFEST_BYTES",
    "MAX_REFERENCE_EVENTS",
    "MAX_REFERENCE_PCR",
    "ReferenceError",
    "ReferenceEvent",
    "ReferenceMeasurements",
]

MANIFEST_FORMAT = "bios-ws-reference-v1"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_REFERENCE_PCR = 23
MAX_REFERENCE_EVENTS = 10_000
MAX_ALTERNATIVES = 16
MAX_DESCRIPTION_CHARS = 1024
MAX_SOURCE_CHARS = 1024
#: The banks a reference may name, with their digest sizes.
BANK_SIZES: Mapping[str, int] = MappingProxyType(
    {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64})

_ROOT = "manifest"
_TOP_LEVEL_KEYS = ("description", "format", "pcrs", "source")
_EVENT_KEYS = ("digests", "type")
_PCR_KEY = re.compile(r"0|[1-9][0-9]?")
_HEX = re.compile(r"[0-9a-fA-F]*")
_UNKNOWN_TYPE = re.compile(r"EV_UNKNOWN_0x([0-9A-F]{8})")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class ReferenceError(ValueError):
    """Malformed reference measurements; the message starts with the offending path.

    (It shadows the builtin ``ReferenceError`` of weak references in modules that import it.)
    """


def _quote(text: str, limit: int = 40) -> str:
    """A key or value of hostile input, JSON-quoted and bounded, for an error message."""
    shown = json.dumps(text[:limit])
    return shown if len(text) <= limit else shown[:-1] + '..."'


@dataclass(frozen=True)
class ReferenceEvent:
    """One expected extended event: its type name and the allowed digest sets.

    Each alternative maps a bank name to a digest. An observed event matches if
    its type name is equal and some alternative agrees with its digests: every
    bank present in both is equal, and at least one bank is shared.
    """

    type_name: str
    alternatives: tuple[Mapping[str, bytes], ...] = field(hash=False)

    def __post_init__(self) -> None:
        _check_type_name(self.type_name, "type")
        if isinstance(self.alternatives, Mapping | str | bytes) or not isinstance(
                self.alternatives, Sequence):
            raise ReferenceError("digests: expected a sequence of alternatives")
        if not 1 <= len(self.alternatives) <= MAX_ALTERNATIVES:
            raise ReferenceError(f"digests: {len(self.alternatives)} alternatives"
                                 f" (expected 1..{MAX_ALTERNATIVES})")
        frozen = []
        for number, alternative in enumerate(self.alternatives):
            frozen.append(_frozen_alternative(alternative, f"digests[{number}]"))
        object.__setattr__(self, "alternatives", tuple(frozen))

    def matches(self, type_name: str, digests: Mapping[str, bytes]) -> bool:
        """Whether an observed event (type name, bank -> digest) is this expected one."""
        return type_name == self.type_name and self.digest_matches(digests)

    def digest_matches(self, digests: Mapping[str, bytes]) -> bool:
        """Whether some alternative agrees with the observed digests (type not compared)."""
        return any(_agrees(alternative, digests) for alternative in self.alternatives)


def _agrees(alternative: Mapping[str, bytes], digests: Mapping[str, bytes]) -> bool:
    shared = [bank for bank in alternative if bank in digests]
    return bool(shared) and all(alternative[bank] == digests[bank] for bank in shared)


def _check_type_name(name: object, path: str) -> None:
    if not isinstance(name, str):
        raise ReferenceError(f"{path}: expected an event type name string")
    unknown = _UNKNOWN_TYPE.fullmatch(name)
    known = name in EVENT_TYPES_BY_NAME or (
        unknown is not None and event_type_name(int(unknown.group(1), 16)) == name)
    if not known:
        raise ReferenceError(f"{path}: {_quote(name)} is not an event type name"
                             " (EV_... or EV_UNKNOWN_0x%08X, as the event log names them)")
    if name == event_type_name(EV_NO_ACTION):
        raise ReferenceError(f"{path}: EV_NO_ACTION events are never extended and cannot"
                             " be part of a reference")


def _frozen_alternative(alternative: object, path: str) -> Mapping[str, bytes]:
    if not isinstance(alternative, Mapping):
        raise ReferenceError(f"{path}: expected a mapping of bank name to digest")
    if not alternative:
        raise ReferenceError(f"{path}: expected at least one bank digest")
    frozen: dict[str, bytes] = {}
    for bank in sorted(alternative, key=str):
        digest = alternative[bank]
        where = f"{path}.{bank}" if isinstance(bank, str) else path
        if not isinstance(bank, str) or bank not in BANK_SIZES:
            shown = _quote(bank) if isinstance(bank, str) else repr(type(bank).__name__)
            raise ReferenceError(f"{where}: unknown bank {shown}"
                                 f" (known: {', '.join(BANK_SIZES)})")
        if not isinstance(digest, bytes) or len(digest) != BANK_SIZES[bank]:
            raise ReferenceError(f"{where}: expected a {BANK_SIZES[bank]}-byte digest")
        frozen[bank] = digest
    return MappingProxyType(frozen)


@dataclass(frozen=True)
class ReferenceMeasurements:
    """The expected extended events of each referenced PCR, in order.

    A PCR mapped to an empty tuple is expected never to be extended. ``source``
    says where the reference came from; ``description`` is the admin's note.
    """

    pcrs: Mapping[int, tuple[ReferenceEvent, ...]] = field(hash=False)
    source: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        _check_text(self.source, "source", MAX_SOURCE_CHARS)
        _check_text(self.description, "description", MAX_DESCRIPTION_CHARS)
        if not isinstance(self.pcrs, Mapping):
            raise ReferenceError("pcrs: expected a mapping of PCR index to events")
        if len(self.pcrs) > MAX_REFERENCE_PCR + 1:
            raise ReferenceError(f"pcrs: {len(self.pcrs)} PCRs (at most {MAX_REFERENCE_PCR + 1})")
        frozen: dict[int, tuple[ReferenceEvent, ...]] = {}
        total = 0
        for pcr in sorted(self.pcrs, key=lambda key: (not isinstance(key, int), str(key))):
            if isinstance(pcr, bool) or not isinstance(pcr, int) or not (
                    0 <= pcr <= MAX_REFERENCE_PCR):
                raise ReferenceError(f"pcrs: {pcr!r:.40} is not a PCR index 0..{MAX_REFERENCE_PCR}")
            events = self.pcrs[pcr]
            if not isinstance(events, Sequence) or not all(
                    isinstance(event, ReferenceEvent) for event in events):
                raise ReferenceError(f'pcrs."{pcr}": expected a sequence of ReferenceEvent')
            total += len(events)
            if total > MAX_REFERENCE_EVENTS:
                raise ReferenceError(f"pcrs: more than {MAX_REFERENCE_EVENTS} events in all")
            frozen[pcr] = tuple(events)
        object.__setattr__(self, "pcrs", MappingProxyType(dict(sorted(frozen.items()))))

    @property
    def pcr_indexes(self) -> tuple[int, ...]:
        """The referenced PCRs, ascending."""
        return tuple(sorted(self.pcrs))

    @property
    def event_count(self) -> int:
        return sum(len(events) for events in self.pcrs.values())

    @classmethod
    def from_events(cls, events: Sequence[Event], source: str = "",
                    description: str = "") -> ReferenceMeasurements:
        """The reference of a known-good log: every PCR with extended events.

        Each event becomes one alternative holding all its digests in the known
        banks (digests in other banks, e.g. sm3_256, are left out).
        """
        pcrs: dict[int, list[ReferenceEvent]] = {}
        for event in events:
            if event.type == EV_NO_ACTION:
                continue
            if not 0 <= event.pcr <= MAX_REFERENCE_PCR:
                raise ReferenceError(f"event {event.index}: PCR {event.pcr} is out of range"
                                     f" 0..{MAX_REFERENCE_PCR}")
            digests = {bank: digest for bank, digest in event.digests.items()
                       if bank in BANK_SIZES}
            if not digests:
                raise ReferenceError(f"event {event.index}: no digest in a known bank"
                                     f" ({', '.join(BANK_SIZES)})")
            try:
                expected = ReferenceEvent(event.type_name, (digests,))
            except ReferenceError as error:
                raise ReferenceError(f"event {event.index}: {error}") from None
            pcrs.setdefault(event.pcr, []).append(expected)
        return cls({pcr: tuple(listed) for pcr, listed in pcrs.items()}, source, description)

    @classmethod
    def from_manifest(cls, text: str) -> ReferenceMeasurements:
        """Parse a JSON reference manifest; anything malformed is a ReferenceError."""
        return _parse_manifest(text)

    def to_manifest_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data (digests in lowercase hex)."""
        return {
            "format": MANIFEST_FORMAT,
            "description": self.description,
            "source": self.source,
            "pcrs": {
                str(pcr): [
                    {"type": event.type_name,
                     "digests": [{bank: digest.hex() for bank, digest in alternative.items()}
                                 for alternative in event.alternatives]}
                    for event in events]
                for pcr, events in self.pcrs.items()},
        }

    def to_json(self) -> str:
        """The canonical manifest: sorted keys, two-space indent, ASCII only."""
        return json.dumps(self.to_manifest_dict(), sort_keys=True, indent=2, ensure_ascii=True)

    def digest(self) -> str:
        """SHA-256 hex of the canonical manifest: a stable identifier of this reference."""
        return hashlib.sha256(self.to_json().encode("ascii")).hexdigest()


def _check_text(value: object, path: str, limit: int) -> None:
    if not isinstance(value, str):
        raise ReferenceError(f"{path}: expected a string")
    if len(value) > limit:
        raise ReferenceError(f"{path}: {len(value)} characters (at most {limit})")
    if _CONTROL_CHARS.search(value):
        raise ReferenceError(f"{path}: control characters are not allowed")


# -- the JSON manifest --------------------------------------------------------------


class _JsonObject(dict[str, Any]):
    """A decoded JSON object that remembers the keys it saw more than once."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _JsonObject:
    result = _JsonObject(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        repeated: list[str] = []
        for key, _ in pairs:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        result.duplicates = tuple(repeated)
    return result


def _refuse_constant(name: str) -> Any:
    raise ReferenceError(f"manifest: {name} is not valid JSON")


def _parse_manifest(text: str) -> ReferenceMeasurements:
    if not isinstance(text, str):
        raise TypeError("a reference manifest is text (str)")
    if len(text) > MAX_MANIFEST_BYTES or len(text.encode("utf-8", "surrogatepass")) > (
            MAX_MANIFEST_BYTES):
        raise ReferenceError(f"manifest: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document = json.loads(text, object_pairs_hook=_object_pairs,
                              parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise ReferenceError(f"manifest: not valid JSON: {error.msg} at line {error.lineno}"
                             f" column {error.colno}") from None
    except RecursionError:
        raise ReferenceError("manifest: nested too deeply") from None
    top = _object(document, _ROOT, _TOP_LEVEL_KEYS, required=("format", "pcrs"))
    if top["format"] != MANIFEST_FORMAT:
        shown = _quote(top["format"]) if isinstance(top["format"], str) else "a non-string"
        raise ReferenceError(f"format: {shown} is not {json.dumps(MANIFEST_FORMAT)}")
    description = top.get("description", "")
    source = top.get("source", "")
    _check_text(description, "description", MAX_DESCRIPTION_CHARS)
    _check_text(source, "source", MAX_SOURCE_CHARS)
    raw_pcrs = _object(top["pcrs"], "pcrs", None)
    pcrs: dict[int, tuple[ReferenceEvent, ...]] = {}
    total = 0
    for key, value in raw_pcrs.items():
        path = f"pcrs.{_quote(key)}"
        if not _PCR_KEY.fullmatch(key) or int(key) > MAX_REFERENCE_PCR:
            raise ReferenceError(f"{path}: expected a PCR index 0..{MAX_REFERENCE_PCR}"
                                 " as a decimal string")
        if not isinstance(value, list):
            raise ReferenceError(f"{path}: expected a list of events")
        total += len(value)
        if total > MAX_REFERENCE_EVENTS:
            raise ReferenceError(f"{path}: more than {MAX_REFERENCE_EVENTS} events in all")
        pcrs[int(key)] = tuple(_event(item, f"{path}[{number}]")
                               for number, item in enumerate(value))
    return ReferenceMeasurements(pcrs, source, description)


def _object(value: object, path: str, allowed: Sequence[str] | None,
            required: Sequence[str] = ()) -> _JsonObject:
    """A JSON object without duplicate keys, with only ``allowed`` keys (None: any)."""
    if not isinstance(value, _JsonObject):
        raise ReferenceError(f"{path}: expected a JSON object")
    if value.duplicates:
        raise ReferenceError(f"{path}: key {_quote(value.duplicates[0])} appears more than once")
    if allowed is not None:
        for key in value:
            if key not in allowed:
                where = _quote(key) if path == _ROOT else f"{path}.{_quote(key)}"
                raise ReferenceError(f"{where}: unknown key (allowed: {', '.join(allowed)})")
    for key in required:
        if key not in value:
            raise ReferenceError(f"{path}: missing key {json.dumps(key)}")
    return value


def _event(value: object, path: str) -> ReferenceEvent:
    event = _object(value, path, _EVENT_KEYS, required=_EVENT_KEYS)
    _check_type_name(event["type"], f"{path}.type")
    digests = event["digests"]
    if not isinstance(digests, list):
        raise ReferenceError(f"{path}.digests: expected a list of alternatives")
    if not 1 <= len(digests) <= MAX_ALTERNATIVES:
        raise ReferenceError(f"{path}.digests: {len(digests)} alternatives"
                             f" (expected 1..{MAX_ALTERNATIVES})")
    alternatives = [_alternative(item, f"{path}.digests[{number}]")
                    for number, item in enumerate(digests)]
    return ReferenceEvent(event["type"], tuple(alternatives))


def _alternative(value: object, path: str) -> dict[str, bytes]:
    alternative = _object(value, path, None)
    if not alternative:
        raise ReferenceError(f"{path}: expected at least one bank digest")
    result: dict[str, bytes] = {}
    for bank, text in alternative.items():
        if bank not in BANK_SIZES:
            raise ReferenceError(f"{path}.{_quote(bank)}: unknown bank"
                                 f" (known: {', '.join(BANK_SIZES)})")
        digits = 2 * BANK_SIZES[bank]
        if not isinstance(text, str) or len(text) != digits or not _HEX.fullmatch(text):
            raise ReferenceError(f"{path}.{bank}: expected {digits} hex digits")
        result[bank] = bytes.fromhex(text)
    return result
