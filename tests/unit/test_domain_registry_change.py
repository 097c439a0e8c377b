"""A new registry meets stored values: which it rejects, and how a domain conforms."""

from __future__ import annotations

import hashlib
from typing import Any

from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.registry_change import RegistryDocument, conform, rejected_values
from bios_ws.domain.state import DomainState


def registry(*attributes: dict[str, Any]) -> AttributeRegistry:
    return AttributeRegistry.from_dict({"registry_version": "t", "attributes": list(attributes)})


OLD = registry(
    {"name": "Delay", "type": "Integer", "default": 5, "lower_bound": 0, "upper_bound": 100},
    {"name": "Tag", "type": "String", "default": ""},
    {"name": "Mode", "type": "Enumeration", "allowed_values": ["A", "B"], "default": "A"},
    {"name": "Gone", "type": "Boolean", "default": True},
)


def state() -> DomainState:
    s = DomainState.new("vm1", OLD)
    s.current.update({"Delay": 80, "Tag": "rack-4", "Mode": "B"})
    s.pending.update({"Delay": 90, "Gone": False})
    return s


NEW = registry(
    {"name": "Delay", "type": "Integer", "default": 10, "lower_bound": 0, "upper_bound": 50},
    {"name": "Tag", "type": "Integer", "default": 0},
    {"name": "Mode", "type": "Enumeration", "allowed_values": ["A", "B"], "default": "A",
     "read_only": True},
    {"name": "Added", "type": "Boolean", "default": True},
)


def test_every_rejected_value_is_named_with_its_reason_current_and_pending() -> None:
    found = {(r.attribute, r.pending): r for r in rejected_values(state(), NEW)}
    assert set(found) == {("Delay", False), ("Delay", True), ("Tag", False)}
    assert found[("Delay", False)].reason == "attribute Delay must be at most 50"
    assert found[("Delay", True)].value == 90
    assert found[("Tag", False)].reason == "attribute Tag expects an Integer"
    assert found[("Tag", False)].describe() == \
        'domain vm1: Tag value "rack-4": attribute Tag expects an Integer'


def test_a_pending_change_of_an_attribute_now_read_only_is_rejected() -> None:
    s = state()
    s.pending["Mode"] = "A"
    reasons = {(r.attribute, r.pending): r.reason for r in rejected_values(s, NEW)}
    assert reasons[("Mode", True)] == "is now read-only: a pending change cannot apply"
    assert ("Mode", False) not in reasons  # a read-only attribute still holds its value


def test_a_value_of_an_attribute_now_a_password_is_rejected_and_removed() -> None:
    secret = registry({"name": "Tag", "type": "Password"})
    s = DomainState.new("vm1", OLD)
    assert [r.reason for r in rejected_values(s, secret) if r.attribute == "Tag"] == [
        "is now a Password, which holds no value"]
    conform(s, secret)
    assert s.current == {}


def test_removed_attributes_are_not_rejected_but_disappear() -> None:
    assert all(r.attribute != "Gone" for r in rejected_values(state(), NEW))
    s = state()
    done = conform(s, NEW)
    assert done.removed == ("Gone",)
    assert "Gone" not in s.current and "Gone" not in s.pending


def test_conform_resets_rejected_values_adds_defaults_and_says_what_changed() -> None:
    s = state()
    done = conform(s, NEW)
    assert s.current == {"Delay": 10, "Tag": 0, "Mode": "B", "Added": True}
    assert s.pending == {}  # the rejected pending Delay is dropped
    assert done.added == ("Added",)
    assert [(r.rejected.attribute, r.rejected.pending, r.new) for r in done.resets] == [
        ("Delay", False, 10), ("Tag", False, 0), ("Delay", True, None)]
    assert done.changed
    assert done.resets[2].describe().endswith("reset to removed")


def test_a_domain_that_already_conforms_is_unchanged() -> None:
    s = DomainState.new("vm1", NEW)
    before = s.snapshot()
    assert not conform(s, NEW).changed
    assert s.snapshot() == before


def test_a_value_with_a_now_refused_character_is_rejected() -> None:
    s = DomainState.new("vm1", OLD)
    s.current["Tag"] = "evil\u202etxt"  # stored before such characters were refused
    (rejected,) = rejected_values(s, OLD)
    assert rejected.reason == "Tag: U+202E is not allowed (a bidirectional control)"
    assert '"evil\\u202etxt"' in rejected.describe()  # shown escaped, not rendered


def test_a_document_digest_is_the_sha256_of_its_file_bytes() -> None:
    text = '{"registry_version": "\u00e9", "attributes": []}'
    document = RegistryDocument.parse(text)
    assert document.digest == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert document.registry.registry_version == "\u00e9"
