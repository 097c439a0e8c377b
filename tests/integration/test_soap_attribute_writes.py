"""Attribute writes through XML, in-process: writes that change nothing keep the domain's
version and audit nothing (so ``ExpectedVersion`` callers do not conflict on no-ops), and
string values with control or bidirectional characters are refused by code point."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bios_ws.registry_file import load_registry
from bios_ws.soap.testing import Endpoint, WsgiResult, build_endpoint
from tests.integration.test_soap_operations import av, fault, set_attrs, values, version

ORDER = ("Disk.Virtio.0", "Cd.Sata.0", "Pxe.Nic.0", "Http.Nic.0", "Shell.Uefi")


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint(registry=load_registry())  # the shipped one: Secure Boot too


def expect(version_: int) -> str:
    return f"<tns:ExpectedVersion>{version_}</tns:ExpectedVersion>"


def boot_order(order: tuple[str, ...], extra: str = "") -> str:
    return ("<tns:Order>" + "".join(f"<tns:OptionId>{o}</tns:OptionId>" for o in order)
            + f"</tns:Order>{extra}")


def current_version(ep: Endpoint) -> int:
    return version(ep.call("GetAttributes"), "GetAttributes")


#: Each write path, done twice: the first changes the domain, the second (with the version
#: the first returned as ExpectedVersion) changes nothing.
WRITES: dict[str, Callable[[Endpoint, str], WsgiResult]] = {
    "SetAttributes": lambda ep, extra: set_attrs(
        ep, av("AssetTag", "StringValue", "rack-4"), extra=extra),
    "SetAttributes OnReset": lambda ep, extra: set_attrs(
        ep, av("NumLock", "BooleanValue", "false"), apply_time="OnReset", extra=extra),
    "SetBootOrder": lambda ep, extra: ep.call("SetBootOrder", boot_order(ORDER[::-1], extra)),
    "SetBootNext": lambda ep, extra: ep.call(
        "SetBootNext", f"<tns:BootNext>Pxe.Nic.0</tns:BootNext>{extra}"),
    "SetSecureBoot": lambda ep, extra: ep.call(
        "SetSecureBoot", f"<tns:Enabled>false</tns:Enabled>{extra}"),
    "ResetSecureBootKeys": lambda ep, extra: ep.call(
        "ResetSecureBootKeys", f"<tns:ResetKeysType>DeleteAllKeys</tns:ResetKeysType>{extra}"),
    "ResetAttributesToDefaults": lambda ep, extra: ep.call("ResetAttributesToDefaults", extra),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_a_write_repeated_changes_nothing_the_second_time(ep: Endpoint, name: str) -> None:
    operation = name.split()[0]
    changed = version(WRITES[name](ep, expect(1)), operation)
    assert changed == 2
    audited = len(ep.store.audit)
    again = version(WRITES[name](ep, expect(2)), operation)
    assert again == 2 == current_version(ep)
    assert len(ep.store.audit) == audited  # no entry claiming a change


def test_setting_values_to_what_they_are_keeps_the_version(ep: Endpoint) -> None:
    same = set_attrs(ep, av("NumLock", "BooleanValue", "true"), av("AssetTag", "StringValue", ""),
                     extra=expect(1))
    assert version(same, "SetAttributes") == 1
    on_reset = set_attrs(ep, av("NumLock", "BooleanValue", "true"), apply_time="OnReset",
                         extra=expect(1))
    assert version(on_reset, "SetAttributes") == 1
    assert values(ep.call("GetPendingAttributes"), "GetPendingAttributes") == {}
    assert version(ep.call("SetBootOrder", boot_order(ORDER, expect(1))), "SetBootOrder") == 1
    assert version(ep.call("SetBootNext", expect(1)), "SetBootNext") == 1
    assert version(ep.call("SetSecureBoot", f"<tns:Enabled>true</tns:Enabled>{expect(1)}"),
                   "SetSecureBoot") == 1
    assert ep.store.audit[-1].operation == "CreateDomain"


def test_cancelling_when_nothing_is_pending_keeps_the_version(ep: Endpoint) -> None:
    assert version(ep.call("CancelPendingAttributes", expect(1)),
                   "CancelPendingAttributes") == 1
    set_attrs(ep, av("NumLock", "BooleanValue", "false"), apply_time="OnReset")
    assert version(ep.call("CancelPendingAttributes", expect(2)),
                   "CancelPendingAttributes") == 3
    assert version(ep.call("CancelPendingAttributes", expect(3)),
                   "CancelPendingAttributes") == 3
    assert [e.operation for e in ep.store.audit[-2:]] == ["SetAttributes",
                                                           "CancelPendingAttributes"]


def test_applying_nothing_pending_keeps_the_version(ep: Endpoint) -> None:
    applied = ep.call("ApplyPendingAttributes", "<tns:Domain>vm1</tns:Domain>", as_=ep.admin)
    assert version(applied, "ApplyPendingAttributes") == 1


def test_a_real_change_after_no_ops_still_checks_the_version(ep: Endpoint) -> None:
    set_attrs(ep, av("AssetTag", "StringValue", ""), extra=expect(1))
    fault(set_attrs(ep, av("AssetTag", "StringValue", "x"), extra=expect(0)), "VersionConflict")
    assert version(set_attrs(ep, av("AssetTag", "StringValue", "x"), extra=expect(1)),
                   "SetAttributes") == 2


# -- characters no string attribute may hold -------------------------------------------


@pytest.mark.parametrize(("text", "point"), [
    # XML 1.0 carries no other C0 control than TAB, LF and CR (the parser refuses them)
    ("rack&#x9;4", "U+0009"), ("a&#xd;b", "U+000D"), ("rack&#x7f;", "U+007F"),
    ("rack\u0085", "U+0085"),
    ("rack\u009b31m", "U+009B"), ("invoice\u202efdp.exe", "U+202E"),
    ("a\u2066b\u2069", "U+2066"), ("a\u200fb", "U+200F"), ("a\u061cb", "U+061C"),
])
def test_control_and_bidirectional_characters_are_refused_naming_the_code_point(
        ep: Endpoint, text: str, point: str) -> None:
    refused = fault(set_attrs(ep, av("AssetTag", "StringValue", text)), "InvalidAttributeValue")
    assert refused.detail("Attribute") == "AssetTag"
    assert refused.detail("Message").startswith(f"AssetTag: {point} is not allowed")
    assert current_version(ep) == 1


def test_a_refused_character_in_a_pending_value_is_refused_too(ep: Endpoint) -> None:
    refused = set_attrs(ep, av("AssetTag", "StringValue", "x\u202ey"), apply_time="OnReset")
    assert fault(refused, "InvalidAttributeValue").detail("Attribute") == "AssetTag"
    assert values(ep.call("GetPendingAttributes"), "GetPendingAttributes") == {}
