"""The answer reader (``_answers._Reader``) gives exactly the objects of the plain reading
it replaced: a SimpleNamespace per complex element, its fields in the type's order and
the repeated ones (lists) last, an optional field absent None, "" read as None; for
every response of the contract, and for flat items with repeated fields (which the
contract does not have today)."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree
from vbios_client import _answers, _contract, _xml
from vbios_client._contract import ComplexType, Field

from tests.unit.client_samples import sample, zeep_response

CONTRACT = _contract.contract()
TNS = "urn:bios-ws:vbios:v1"


def reference(types: dict[str, ComplexType], type_name: str, element: Any) -> SimpleNamespace:
    """The plain reading: each child's field by tag, then the namespace of the values."""
    ctype = types[type_name]
    values: dict[str, Any] = {f.name: None for f in ctype.fields if not f.repeated}
    for field in ctype.fields:
        if field.repeated:
            values[field.name] = []
    by_tag = {f.tag: f for f in ctype.fields}
    for child in element:
        field = by_tag[child.tag]
        text = child.text
        if field.kind == "complex":
            value: Any = reference(types, field.type, child)
        elif field.kind in ("string", "enum"):
            value = text or None
        elif field.kind == "boolean":
            value = (text or "").strip() in ("true", "1")
        elif field.kind in ("int", "long", "unsignedLong"):
            value = int(text or "")
        elif field.kind == "double":
            value = float(text or "")
        else:
            value = base64.b64decode("".join((text or "").split()))
        if field.repeated:
            values[field.name].append(value)
        else:
            values[field.name] = value
    return SimpleNamespace(**values)


def exactly(value: Any) -> Any:
    """``value`` with each namespace's attributes as a list of pairs (their order counts)."""
    if isinstance(value, list):
        return [exactly(v) for v in value]
    if isinstance(value, SimpleNamespace):
        return [(k, exactly(v)) for k, v in vars(value).items()]
    return value


@pytest.mark.parametrize("name", sorted(CONTRACT.operations))
@pytest.mark.parametrize(("optional", "repeat", "text"),
                         [(True, 3, "x < & > é"), (False, 0, "y"), (True, 1, "")])
def test_every_response_is_read_exactly_as_before(name: str, optional: bool, repeat: int,
                                                  text: str) -> None:
    spec = CONTRACT.operations[name]
    values = sample(spec.output_type, optional=optional, repeat=repeat, text=text)
    payload = _answers._payload(_xml.parse(zeep_response(name, values)))
    mine = _answers._reader(CONTRACT, spec.output_type).read(payload)
    assert type(mine) is SimpleNamespace
    assert exactly(mine) == exactly(reference(CONTRACT.types, spec.output_type, payload))


def _field(name: str, kind: str, *, repeated: bool = False, type_name: str = "") -> Field:
    return Field(name, f"{{{TNS}}}{name}", kind, type_name or kind, False, repeated)


def test_flat_items_with_repeated_fields() -> None:
    types = {
        "List": ComplexType("List", (_field("Item", "complex", repeated=True,
                                            type_name="Item"),)),
        "Item": ComplexType("Item", (_field("Tag", "string", repeated=True),
                                     _field("Name", "string"), _field("On", "boolean"),
                                     _field("Size", "long", repeated=True),
                                     _field("Blob", "base64Binary"))),
    }
    made = {name: _answers._Reader(ctype) for name, ctype in types.items()}
    for reader in made.values():
        reader.link(made)
    assert made["List"].read == made["List"]._read_flat_items
    element = etree.fromstring(
        f'<List xmlns="{TNS}"><Item><Tag>a</Tag><Tag></Tag><Name>n</Name><On> 1 </On>'
        "<Size>1</Size><Size>-2</Size><Blob>aGk=\n</Blob></Item><Item/>"
        "<Item><Name></Name></Item></List>")
    mine = made["List"].read(element)
    assert exactly(mine) == exactly(reference(types, "List", element))
    assert exactly(mine.Item[0]) == [("Name", "n"), ("On", True), ("Blob", b"hi"),
                                     ("Tag", ["a", None]), ("Size", [1, -2])]
