"""A new attribute registry meets the values domains already hold.

The registry decides which values are valid when they are written; replacing it
does not rewrite what is stored. Before a new registry is put in force, every
stored value (current and pending, of every domain) is checked against it
(``rejected_values``); the domain is then made to conform (``conform``):

- an attribute the new registry no longer has disappears (current and pending);
- an attribute it adds gets its default;
- a value it rejects is reset, only when the admin asked for it: a current value
  to the new default (a Password holds none: removed), a pending one is dropped
  (the attribute stays what it is at the next reset).

Password hashes are left alone: a registry change never clears a password.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from bios_ws.domain.registry import AttributeDefinition, AttributeRegistry, Value
from bios_ws.domain.state import DomainState
from bios_ws.errors import InvalidAttributeValue


def registry_digest(text: str) -> str:
    """The SHA-256 (hex) of a registry document, as ``sha256sum`` prints it for the file."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RegistryDocument:
    """A registry and the text it was read from."""

    text: str
    registry: AttributeRegistry

    @property
    def digest(self) -> str:
        return registry_digest(self.text)

    @classmethod
    def parse(cls, text: str) -> RegistryDocument:
        return cls(text, AttributeRegistry.from_json(text))


@dataclass(frozen=True)
class RejectedValue:
    """A stored value the new registry would refuse, and why."""

    domain_id: str
    attribute: str
    value: Value
    pending: bool
    reason: str

    def describe(self) -> str:
        where = "pending value" if self.pending else "value"
        return (f"domain {self.domain_id}: {self.attribute} {where} {shown(self.value)}:"
                f" {self.reason}")

    def to_json_obj(self) -> dict[str, object]:
        return {"domain": self.domain_id, "attribute": self.attribute, "value": self.value,
                "pending": self.pending, "reason": self.reason}


@dataclass(frozen=True)
class ValueReset:
    """A rejected value replaced: ``new`` None means removed (a pending change dropped, a
    Password holds no value)."""

    rejected: RejectedValue
    new: Value | None

    def describe(self) -> str:
        new = "removed" if self.new is None else shown(self.new)
        return f"{self.rejected.describe()}; reset to {new}"

    def to_json_obj(self) -> dict[str, object]:
        return {**self.rejected.to_json_obj(), "new": self.new}


@dataclass(frozen=True)
class Conformed:
    """What making one domain conform to a registry changed."""

    resets: tuple[ValueReset, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.resets or self.added or self.removed)

    def to_json_obj(self) -> dict[str, object]:
        return {"reset": [r.to_json_obj() for r in self.resets], "added": list(self.added),
                "removed": list(self.removed)}


def shown(value: Value) -> str:
    """A value as one printable token (JSON: control characters escaped)."""
    return json.dumps(value)


def rejected_values(state: DomainState, registry: AttributeRegistry) -> list[RejectedValue]:
    """Every value of ``state`` that ``registry`` knows and would refuse (an attribute it
    does not know is removed, not rejected)."""
    found: list[RejectedValue] = []
    for pending, values in ((False, state.current), (True, state.pending)):
        for name, value in sorted(values.items()):
            definition = registry.definitions.get(name)
            if definition is None:
                continue
            reason = _rejection(definition, value, pending=pending)
            if reason is not None:
                found.append(RejectedValue(state.domain_id, name, value, pending, reason))
    return found


def conform(state: DomainState, registry: AttributeRegistry) -> Conformed:
    """Make ``state`` hold what ``registry`` defines: removed attributes go, added ones get
    their default, rejected values are reset (see the module docstring)."""
    removed = sorted({n for n in (*state.current, *state.pending)
                      if n not in registry.definitions})
    for name in removed:
        state.current.pop(name, None)
        state.pending.pop(name, None)
    resets: list[ValueReset] = []
    for rejected in rejected_values(state, registry):
        new = None if rejected.pending else registry.definitions[rejected.attribute].default
        values = state.pending if rejected.pending else state.current
        if new is None:
            del values[rejected.attribute]
        else:
            values[rejected.attribute] = new
        resets.append(ValueReset(rejected, new))
    added = sorted(n for n in registry.defaults() if n not in state.current)
    for name, value in registry.defaults().items():
        state.current.setdefault(name, value)
    return Conformed(tuple(resets), tuple(added), tuple(removed))


def _rejection(definition: AttributeDefinition, value: Value, *, pending: bool) -> str | None:
    if definition.is_password:
        return "is now a Password, which holds no value"
    if pending and definition.read_only:
        return "is now read-only: a pending change cannot apply"
    try:
        definition.validate(value)
    except InvalidAttributeValue as exc:
        return exc.message
    return None
