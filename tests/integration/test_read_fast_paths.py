"""The read path's shortcuts give exactly what the plain path gives, and are never stale."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree
from spyne.context import MethodContext
from sqlalchemy import text

from bios_ws.domain.state import DomainState
from bios_ws.soap import codec
from bios_ws.soap.contract import contract
from bios_ws.soap.encoder import encode_response, render
from bios_ws.soap.types import TNS, AttributeValueList, NameList
from bios_ws.store import SqlStore, open_store
from tests.integration.test_store_domains import T0, add, rich_state


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'vbios.db'}")
    yield s
    s.dispose()


def read(store: SqlStore, domain_id: str = "guest-1") -> DomainState:
    with store.unit_of_work() as uow:
        return uow.domains.get(domain_id)


def test_a_write_by_another_store_is_seen_at_once(store: SqlStore, tmp_path: Path) -> None:
    add(store, rich_state())
    assert read(store).current["Count"] == 1
    other = open_store(f"sqlite:///{tmp_path / 'vbios.db'}")  # as another process would
    try:
        with other.unit_of_work() as uow:
            state = uow.domains.get("guest-1", for_update=True)
            state.current["Count"] = 2
            state.version += 1
            uow.domains.save(state, expected_version=7)
            uow.commit()
    finally:
        other.dispose()
    again = read(store)
    assert (again.version, again.current["Count"]) == (8, 2)


def test_same_version_with_other_text_is_decoded_again(store: SqlStore) -> None:
    add(store, rich_state())
    read(store)
    with store.engine.begin() as conn:  # a change that kept the version (e.g. a repair)
        conn.execute(text("UPDATE domains SET state = replace(state, :old, :new)"),
                     {"old": '"Zero":0', "new": '"Zero":5'})
    assert read(store).current["Zero"] == 5


def test_each_read_gets_its_own_state(store: SqlStore) -> None:
    add(store, rich_state())
    first = read(store)
    first.current["Count"] = 99
    first.pending.clear()
    first.passwords.clear()
    second = read(store)
    assert second == rich_state()
    assert second.current is not first.current


def test_for_update_read_sees_the_same_row(store: SqlStore) -> None:
    add(store, rich_state("a"))
    add(store, DomainState("b", 1, {"A": 1}), T0)
    with store.unit_of_work() as uow:
        assert uow.domains.get("b", for_update=True) == DomainState("b", 1, {"A": 1})
        assert uow.domains.get("a", for_update=True) == rich_state("a")


def spyne_response(operation: str, values: tuple[Any, ...]) -> etree._Element:
    dispatcher = contract().dispatcher
    descriptor = dispatcher.app.interface.service_method_map[f"{{{TNS}}}{operation}"][0]
    ctx = MethodContext(dispatcher, MethodContext.SERVER)
    ctx.descriptor = descriptor
    ctx.out_object = list(values)
    dispatcher.app.out_protocol.serialize(ctx, message=dispatcher.app.out_protocol.RESPONSE)
    dispatcher.app.out_protocol.create_out_string(ctx)
    return etree.fromstring(b"".join(ctx.out_string))


VALUES: dict[str, str | int | bool] = {"A": True, "B": 1, "C": "1", "D": "<&>\r", "E": False}


def test_rendered_values_encode_like_spyne() -> None:
    descriptor = contract().dispatcher.app.interface.service_method_map[
        f"{{{TNS}}}GetAttributes"][0]
    ours = encode_response(descriptor.out_message, (4, False, codec.render_values(VALUES)))
    theirs = spyne_response("GetAttributes", (4, False, codec.encode_values(VALUES)))
    assert etree.tostring(etree.fromstring(ours), method="c14n") == etree.tostring(
        theirs, method="c14n")


def test_rendered_values_tell_types_apart() -> None:
    as_int = codec.render_values({"A": 1}).xml
    as_bool = codec.render_values({"A": True}).xml
    as_text = codec.render_values({"A": "1"}).xml
    assert "IntegerValue>1<" in as_int
    assert "BooleanValue>true<" in as_bool
    assert "StringValue>1<" in as_text
    assert codec.render_values({"B": 1, "A": 2}).xml != codec.render_values({"A": 2, "B": 1}).xml


def test_rendered_value_of_another_class_is_refused() -> None:
    descriptor = contract().dispatcher.app.interface.service_method_map[
        f"{{{TNS}}}GetAttributes"][0]
    wrong = render(NameList, SimpleNamespace(Name=["A"]))
    assert wrong.xml == "<tns:Name>A</tns:Name>"
    with pytest.raises(TypeError):
        encode_response(descriptor.out_message, (1, False, wrong))
    assert render(AttributeValueList, codec.encode_values({})).xml == ""
