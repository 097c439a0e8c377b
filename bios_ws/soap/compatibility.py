"""Whether a WSDL still serves the clients of a baseline: the breaking changes between two
contracts (``docs/contract.md``, "Changing the contract").

The question is always the wire: does a client generated from the baseline still work?
So a change is judged by the direction its element travels. A type reached from a
request travels to the server ("input"); one reached from a response or a fault detail
travels to the client ("output"); a type reached from both, or from neither, is judged
both ways.

Breaking, anywhere: an operation, type, enumeration, field or enumeration value of the
baseline that is gone; a field whose type changed; fields of the baseline in another
order (a schema-validating peer refuses it); a request or response element renamed; a
declared fault gone or its detail retyped; another target namespace.

Breaking by direction: input: a new required field (old clients would not send it), a
field that became required, or that is no longer repeated; output: a field that became
optional (old clients rely on it), or that became repeated.

Compatible: new operations, types, enumerations, enumeration values, optional fields;
new required fields in output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bios_ws.soap.wsdl_model import Field, WsdlModel


@dataclass(frozen=True)
class Break:
    """One change that breaks clients of the baseline."""

    #: ``operation GetQuote request``, ``type AttributeValue``, ``enumeration ApplyTime``...
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class _Direction:
    input: bool
    output: bool


_REQUEST = _Direction(input=True, output=False)
_RESPONSE = _Direction(input=False, output=True)


def breaking_changes(baseline: WsdlModel, current: WsdlModel) -> list[Break]:
    """What in ``current`` breaks clients of ``baseline`` (empty: nothing)."""
    found: list[Break] = []
    if current.namespace != baseline.namespace:
        found.append(Break("contract", f"namespace {baseline.namespace} ->"
                           f" {current.namespace}: a new namespace is a new contract (v2),"
                           " with a baseline of its own"))
    found += _operations(baseline, current)
    found += _faults(baseline.faults, current.faults)
    found += _types(baseline, current)
    found += _enumerations(baseline.enumerations, current.enumerations)
    return found


def _operations(baseline: WsdlModel, current: WsdlModel) -> Iterable[Break]:
    now = {operation.name: operation for operation in current.operations}
    for old in baseline.operations:
        where = f"operation {old.name}"
        new = now.get(old.name)
        if new is None:
            yield Break(where, "removed")
            continue
        for side, old_element, new_element in (("request", old.request, new.request),
                                               ("response", old.response, new.response)):
            if old_element != new_element:
                yield Break(where, f"{side} element {old_element} renamed {new_element}")
        yield from _fields(f"{where} request", old.request_fields, new.request_fields,
                           _REQUEST)
        yield from _fields(f"{where} response", old.response_fields, new.response_fields,
                           _RESPONSE)
        for fault in sorted(set(old.faults) - set(new.faults)):
            yield Break(where, f"fault {fault} no longer declared")


def _faults(baseline: Mapping[str, str], current: Mapping[str, str]) -> Iterable[Break]:
    for name, detail in baseline.items():
        if name in current and current[name] != detail:
            yield Break(f"fault {name}", f"detail retyped {detail} -> {current[name]}")


def _types(baseline: WsdlModel, current: WsdlModel) -> Iterable[Break]:
    inputs, outputs = _reached(baseline)
    now_inputs, now_outputs = _reached(current)
    inputs |= now_inputs
    outputs |= now_outputs
    for name, fields in baseline.types.items():
        where = f"type {name}"
        if name not in current.types:
            kind = "is now an enumeration" if name in current.enumerations else "removed"
            yield Break(where, kind)
            continue
        used = name in inputs or name in outputs
        direction = _Direction(input=name in inputs or not used,
                               output=name in outputs or not used)
        yield from _fields(where, fields, current.types[name], direction)


def _enumerations(baseline: Mapping[str, Sequence[str]],
                  current: Mapping[str, Sequence[str]]) -> Iterable[Break]:
    for name, values in baseline.items():
        where = f"enumeration {name}"
        if name not in current:
            yield Break(where, "removed")
            continue
        for value in values:
            if value not in current[name]:
                yield Break(where, f"value {value} removed")


def _fields(where: str, baseline: Sequence[Field], current: Sequence[Field],
            direction: _Direction) -> Iterable[Break]:
    now = {field.name: field for field in current}
    for old in baseline:
        new = now.get(old.name)
        if new is None:
            yield Break(where, f"field {old.name} removed")
            continue
        if new.type != old.type:
            yield Break(where, f"field {old.name} retyped {old.type} -> {new.type}")
        yield from _occurrence(where, old, new, direction)
    kept = [field.name for field in current if field.name in {f.name for f in baseline}]
    expected = [field.name for field in baseline if field.name in now]
    if kept != expected:
        yield Break(where, f"fields reordered {', '.join(expected)} -> {', '.join(kept)}:"
                    " a peer validating against the schema refuses the other order")
    if direction.input:
        known = {field.name for field in baseline}
        for field in current:
            if field.required and field.name not in known:
                yield Break(where, f"new required field {field.name}: old clients would"
                            " not send it (make it optional, or make it part of v2)")


def _occurrence(where: str, old: Field, new: Field,
                direction: _Direction) -> Iterable[Break]:
    name = old.name
    if direction.input and new.required and not old.required:
        yield Break(where, f"field {name} optional -> required: old clients may not send it")
    if direction.output and old.required and not new.required:
        yield Break(where, f"field {name} required -> optional: old clients rely on it")
    if direction.input and old.repeated and not new.repeated:
        yield Break(where, f"field {name} no longer repeated: old clients may send several")
    if direction.output and new.repeated and not old.repeated:
        yield Break(where, f"field {name} now repeated: old clients expect one")


def _reached(model: WsdlModel) -> tuple[set[str], set[str]]:
    """The named types reached from requests, and those reached from responses and faults."""
    requests = [f.type for o in model.operations for f in o.request_fields]
    responses = [f.type for o in model.operations for f in o.response_fields]
    return _closure(model, requests), _closure(model, [*responses, *model.faults.values()])


def _closure(model: WsdlModel, roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    pending = [name.removeprefix("tns:") for name in roots if name.startswith("tns:")]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending += [f.type.removeprefix("tns:") for f in model.types.get(name, ())
                    if f.type.startswith("tns:")]
    return seen
