"""DomainState rules: attributes, pending values, defaults and boot order."""

from __future__ import annotations

import pytest

from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import DEFAULT_BOOT_OPTIONS, ApplyTime, BootOption, DomainState
from bios_ws.errors import (
    InvalidAttributeValue,
    InvalidBootOrder,
    InvalidRequest,
    ReadOnlyAttribute,
    ResetRequired,
    UnknownAttribute,
    UnknownBootOption,
    VbiosError,
)

IMMEDIATE, ON_RESET = ApplyTime.IMMEDIATE, ApplyTime.ON_RESET


def test_new_domain_holds_the_defaults(registry: AttributeRegistry) -> None:
    state = DomainState.new("vm1", registry)
    assert state.version == 1
    assert state.current == registry.defaults()
    assert state.pending == {} and state.passwords == {}
    assert state.boot_order == tuple(o.id for o in DEFAULT_BOOT_OPTIONS)
    assert state.boot_next is None


def test_copy_is_deep(state: DomainState) -> None:
    twin = state.copy()
    twin.current["Counter"] = 9
    twin.pending["Counter"] = 9
    assert state.current["Counter"] == 0 and state.pending == {}


def test_immediate_sets_current(registry: AttributeRegistry, state: DomainState) -> None:
    typed = state.set_attributes(registry, {"Counter": 5, "WakeOnLan": True}, IMMEDIATE)
    assert typed == {"Counter": 5, "WakeOnLan": True}
    assert state.current["Counter"] == 5 and state.current["WakeOnLan"] is True
    assert state.pending == {}


def test_on_reset_goes_to_pending(registry: AttributeRegistry, state: DomainState) -> None:
    state.set_attributes(registry, {"BootMode": "Bios", "Counter": 3}, ON_RESET)
    assert state.pending == {"BootMode": "Bios", "Counter": 3}
    assert state.current["BootMode"] == "Uefi" and state.current["Counter"] == 0


def test_later_immediate_value_replaces_a_pending_one(
    registry: AttributeRegistry, state: DomainState
) -> None:
    state.set_attributes(registry, {"Counter": 3, "WakeOnLan": True}, ON_RESET)
    state.set_attributes(registry, {"Counter": 7}, IMMEDIATE)
    assert state.pending == {"WakeOnLan": True}
    state.apply_pending()
    assert state.current["Counter"] == 7


@pytest.mark.parametrize(("changes", "error", "attribute"), [
    ({"Nope": 1}, UnknownAttribute, "Nope"),
    ({"BiosVersion": "2.0"}, ReadOnlyAttribute, "BiosVersion"),
    ({"Counter": "5"}, InvalidAttributeValue, "Counter"),
    ({"Counter": True}, InvalidAttributeValue, "Counter"),
    ({"Counter": -1}, InvalidAttributeValue, "Counter"),
    ({"Counter": 1_000_001}, InvalidAttributeValue, "Counter"),
    ({"Delay": 22}, InvalidAttributeValue, "Delay"),
    ({"AssetTag": "123456789"}, InvalidAttributeValue, "AssetTag"),
    ({"AssetTag": "a\nb"}, InvalidAttributeValue, "AssetTag"),
    ({"BootMode": "Legacy"}, InvalidAttributeValue, "BootMode"),
    ({"WakeOnLan": 1}, InvalidAttributeValue, "WakeOnLan"),
    ({"SetupPassword": "hunter22hunter"}, InvalidAttributeValue, "SetupPassword"),
])
@pytest.mark.parametrize("apply_time", [IMMEDIATE, ON_RESET])
def test_one_bad_value_among_good_ones_changes_nothing(
    registry: AttributeRegistry, state: DomainState, changes: dict[str, object],
    error: type[VbiosError], attribute: str, apply_time: ApplyTime,
) -> None:
    before = state.copy()
    mixed = {"WakeOnLan": True, "Counter": 42, **changes, "AssetTag": "ok"}
    if attribute in ("Counter", "WakeOnLan", "AssetTag"):
        mixed = {"Delay": 30, **changes, "BootMode": "Uefi"}
    with pytest.raises(error) as caught:
        state.set_attributes(registry, mixed, apply_time)
    assert caught.value.attribute == attribute
    assert state == before


def test_password_via_set_attributes_names_change_password(
    registry: AttributeRegistry, state: DomainState
) -> None:
    with pytest.raises(InvalidAttributeValue, match="ChangePassword"):
        state.set_attributes(registry, {"SetupPassword": "a-long-secret"}, ON_RESET)
    assert state.passwords == {} and state.pending == {}


def test_empty_change_set_is_refused(registry: AttributeRegistry, state: DomainState) -> None:
    with pytest.raises(InvalidRequest):
        state.set_attributes(registry, {}, IMMEDIATE)


def test_immediate_on_reset_required_is_refused_without_change(
    registry: AttributeRegistry, state: DomainState
) -> None:
    before = state.copy()
    with pytest.raises(ResetRequired) as caught:
        state.set_attributes(registry, {"Counter": 1, "BootMode": "Bios"}, IMMEDIATE)
    assert caught.value.attribute == "BootMode"
    assert state == before


def test_immediate_on_reset_required_is_allowed_when_unchanged(
    registry: AttributeRegistry, state: DomainState
) -> None:
    state.set_attributes(registry, {"Counter": 1, "BootMode": "Uefi"}, IMMEDIATE)
    assert state.current["Counter"] == 1 and state.current["BootMode"] == "Uefi"


def test_on_reset_accepts_reset_required(registry: AttributeRegistry, state: DomainState) -> None:
    state.set_attributes(registry, {"BootMode": "Bios"}, ON_RESET)
    assert state.pending == {"BootMode": "Bios"}


def test_cancel_pending(registry: AttributeRegistry, state: DomainState) -> None:
    state.set_attributes(registry, {"BootMode": "Bios"}, ON_RESET)
    state.cancel_pending()
    assert state.pending == {} and state.current["BootMode"] == "Uefi"


def test_reset_to_defaults_pends_writable_defaults_only(
    registry: AttributeRegistry, state: DomainState
) -> None:
    state.set_attributes(registry, {"Counter": 9, "AssetTag": "rack-4"}, IMMEDIATE)
    state.current["BiosVersion"] = "9.9.9"  # what a firmware update would do
    pending = state.reset_to_defaults(registry)
    assert pending == state.pending == registry.writable_defaults()
    assert "BiosVersion" not in pending and "SetupPassword" not in pending
    assert state.current["Counter"] == 9  # nothing applies before a reset
    state.apply_pending()
    assert state.current["Counter"] == 0 and state.current["AssetTag"] == ""
    assert state.current["BiosVersion"] == "9.9.9"


def test_reset_to_defaults_replaces_older_pending(
    registry: AttributeRegistry, state: DomainState
) -> None:
    state.set_attributes(registry, {"BootMode": "Bios"}, ON_RESET)
    state.reset_to_defaults(registry)
    assert state.pending["BootMode"] == "Uefi"


def test_reset_to_defaults_keeps_passwords(registry: AttributeRegistry, state: DomainState) -> None:
    state.passwords["SetupPassword"] = "stored-hash"
    state.reset_to_defaults(registry)
    state.apply_pending()
    assert state.passwords == {"SetupPassword": "stored-hash"}


def test_apply_pending_moves_values_and_leaves_boot_next_to_the_firmware(
    registry: AttributeRegistry, state: DomainState
) -> None:
    state.set_attributes(registry, {"BootMode": "Bios", "Counter": 4}, ON_RESET)
    state.set_boot_next("Pxe.Nic.0")
    applied = state.apply_pending()
    assert applied == {"BootMode": "Bios", "Counter": 4}
    assert state.current["BootMode"] == "Bios" and state.current["Counter"] == 4
    assert state.pending == {} and state.boot_next == "Pxe.Nic.0"


def test_a_boot_without_firmware_of_its_own_consumes_boot_next(state: DomainState) -> None:
    state.set_boot_next("Cd.Sata.0")
    assert state.apply_pending(consume_boot_next=True) == {}
    assert state.boot_next is None


# -- boot --------------------------------------------------------------------

IDS = [o.id for o in DEFAULT_BOOT_OPTIONS]


def test_boot_order_accepts_a_permutation(state: DomainState) -> None:
    order = list(reversed(IDS))
    state.set_boot_order(order)
    assert state.boot_order == tuple(order)


@pytest.mark.parametrize("order", [
    IDS[:-1],                      # one missing
    [*IDS, IDS[0]],                # one twice
    [IDS[0], *IDS[:-1]],           # same length, duplicate instead of the last
    [],
])
def test_boot_order_must_name_every_option_once(state: DomainState, order: list[str]) -> None:
    with pytest.raises(InvalidBootOrder):
        state.set_boot_order(order)
    assert state.boot_order == tuple(IDS)


def test_boot_order_unknown_option_is_named(state: DomainState) -> None:
    order = [*IDS[:-1], "Usb.Stick.0"]
    with pytest.raises(UnknownBootOption) as caught:
        state.set_boot_order(order)
    assert caught.value.attribute == "Usb.Stick.0"
    assert state.boot_order == tuple(IDS)


def test_boot_next_set_and_clear(state: DomainState) -> None:
    state.set_boot_next("Shell.Uefi")
    assert state.boot_next == "Shell.Uefi"
    state.set_boot_next(None)
    assert state.boot_next is None


def test_boot_next_unknown_is_refused(state: DomainState) -> None:
    state.set_boot_next("Cd.Sata.0")
    with pytest.raises(UnknownBootOption) as caught:
        state.set_boot_next("Floppy.0")
    assert caught.value.attribute == "Floppy.0"
    assert state.boot_next == "Cd.Sata.0"


def test_boot_next_disabled_option_is_refused(state: DomainState) -> None:
    state.boot_options = (BootOption("Disk.0", "Disk"), BootOption("Pxe.0", "PXE", False))
    state.boot_order = ("Disk.0", "Pxe.0")
    with pytest.raises(UnknownBootOption, match="disabled"):
        state.set_boot_next("Pxe.0")
    assert state.boot_next is None
    state.set_boot_order(["Pxe.0", "Disk.0"])  # a disabled option still has a place
    assert state.boot_order == ("Pxe.0", "Disk.0")
