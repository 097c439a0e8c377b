"""Rows <-> domain objects: DomainState as versioned JSON text, datetimes as UTC text.

Both encodings are deterministic, so what is read back compares (and hashes)
equal to what was written: JSON keeps ``true``, ``1`` and ``"1"`` apart, and a
datetime is stored as ISO-8601 in UTC with microseconds.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from bios_ws.domain.firmware import DATABASES, KeyDatabases
from bios_ws.domain.registry import Value
from bios_ws.domain.state import BootOption, DomainState
from bios_ws.errors import StoreUnavailable

#: Version of the JSON layout of a stored DomainState; bump with a migration.
STATE_FORMAT = 1


def time_to_text(moment: datetime) -> str:
    """ISO-8601 in UTC with microseconds; refuses a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the store keeps timezone-aware datetimes only")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def time_from_text(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise _corrupt("a stored time is unreadable") from None
    if moment.tzinfo is None:
        raise _corrupt("a stored time has no timezone")
    return moment.astimezone(UTC)


def to_utc(moment: datetime) -> datetime:
    """The same instant in UTC: what the store will give back."""
    return time_from_text(time_to_text(moment))


def encode_state(state: DomainState) -> str:
    return json.dumps(state_document(state), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True)


def state_document(state: DomainState) -> dict[str, Any]:
    """``state`` as the JSON object the store keeps (and the host protocol carries:
    ``bios_ws.server.host_protocol``); its id and version are not part of it."""
    body: dict[str, Any] = {
        "format": STATE_FORMAT,
        "current": dict(state.current),
        "pending": dict(state.pending),
        "passwords": dict(state.passwords),
        "boot_options": [
            {"id": o.id, "display_name": o.display_name, "enabled": o.enabled}
            for o in state.boot_options
        ],
        "boot_order": list(state.boot_order),
        "boot_next": state.boot_next,
    }
    if state.secure_boot_keys is not None:
        keys = state.secure_boot_keys
        body["secure_boot_keys"] = {
            name: [base64.b64encode(der).decode("ascii") for der in keys.of(name)]
            for name in DATABASES
        }
    return body


def decode_state(domain_id: str, version: int, text: str) -> DomainState:
    try:
        body = json.loads(text)
    except (TypeError, ValueError):
        raise _corrupt(f"stored state of domain {domain_id!r} is not JSON") from None
    return state_from_document(domain_id, version, body)


def state_from_document(domain_id: str, version: int, body: Any) -> DomainState:
    """The state ``state_document`` made; StoreUnavailable if ``body`` is none."""
    if not isinstance(body, dict) or body.get("format") != STATE_FORMAT:
        raise _corrupt(f"stored state of domain {domain_id!r} has an unknown format")
    try:
        return DomainState(
            domain_id=domain_id,
            version=version,
            current=_values(body["current"]),
            pending=_values(body["pending"]),
            passwords=_strings(body["passwords"]),
            boot_options=tuple(_boot_option(o) for o in _list(body["boot_options"])),
            boot_order=tuple(_string(i) for i in _list(body["boot_order"])),
            boot_next=None if body["boot_next"] is None else _string(body["boot_next"]),
            secure_boot_keys=_keys(body.get("secure_boot_keys")),
        )
    except (KeyError, TypeError):
        raise _corrupt(f"stored state of domain {domain_id!r} is malformed") from None


class DecodedStates:
    """Recently decoded states, one per domain, reused when the stored row is unchanged.

    Decoding is a pure function of (domain id, version, stored text), and the
    row is read from the database every time: only its decoding is skipped, so
    a write by any process is seen at once. Each caller gets its own copy (the
    use cases change states in place). Bounded: emptied when full. Thread-safe.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._entries: dict[str, tuple[int, str, DomainState]] = {}

    def decode(self, domain_id: str, version: int, text: str) -> DomainState:
        entry = self._entries.get(domain_id)
        if entry is not None and entry[0] == version and entry[1] == text:
            return _copy(entry[2])
        state = decode_state(domain_id, version, text)
        if len(self._entries) >= self._capacity:
            self._entries.clear()
        self._entries[domain_id] = (version, text, _copy(state))
        return state


def _copy(state: DomainState) -> DomainState:
    """A copy sharing only immutable parts (values, tuples, frozen boot options)."""
    return DomainState(
        domain_id=state.domain_id,
        version=state.version,
        current=dict(state.current),
        pending=dict(state.pending),
        passwords=dict(state.passwords),
        boot_options=state.boot_options,
        boot_order=state.boot_order,
        boot_next=state.boot_next,
        secure_boot_keys=state.secure_boot_keys,
    )


def _values(raw: Any) -> dict[str, Value]:
    if not isinstance(raw, dict):
        raise TypeError("values")
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, (bool, int, str)):
            raise TypeError("value")
    return dict(raw)


def _strings(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise TypeError("strings")
    return {_string(k): _string(v) for k, v in raw.items()}


def _list(raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise TypeError("list")
    return raw


def _string(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError("string")
    return raw


def _keys(raw: Any) -> KeyDatabases | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TypeError("keys")
    try:
        found = {name: tuple(base64.b64decode(_string(item), validate=True)
                             for item in _list(raw.get(name, [])))
                 for name in DATABASES}
    except ValueError:
        raise TypeError("keys") from None
    return KeyDatabases(found["PK"], found["KEK"], found["db"], found["dbx"])


def _boot_option(raw: Any) -> BootOption:
    if not isinstance(raw, dict) or not isinstance(raw.get("enabled"), bool):
        raise TypeError("boot option")
    return BootOption(_string(raw["id"]), _string(raw["display_name"]), raw["enabled"])


def _corrupt(why: str) -> StoreUnavailable:
    return StoreUnavailable(f"the state store is corrupt: {why}")
