"""One guest domain's vBIOS state and the rules that change it.

Every method validates everything before it changes anything, so a refused
change leaves the state exactly as it was (all-or-nothing). The caller (the
service layer) owns versions and persistence.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bios_ws.domain.firmware import KeyDatabases
from bios_ws.domain.password import hash_password, verify_password
from bios_ws.domain.registry import AttributeRegistry, Value
from bios_ws.errors import (
    InvalidAttributeValue,
    InvalidBootOrder,
    InvalidPassword,
    InvalidRequest,
    PasswordRequired,
    ReadOnlyAttribute,
    ResetRequired,
    UnknownBootOption,
)

SETUP_PASSWORD = "SetupPassword"  # noqa: S105 (an attribute name)


class ApplyTime(StrEnum):
    IMMEDIATE = "Immediate"
    ON_RESET = "OnReset"


@dataclass(frozen=True)
class BootOption:
    id: str
    display_name: str
    enabled: bool = True


#: The boot options a new domain gets: what a typical VM's firmware offers.
DEFAULT_BOOT_OPTIONS: tuple[BootOption, ...] = (
    BootOption("Disk.Virtio.0", "VirtIO disk 0"),
    BootOption("Cd.Sata.0", "SATA CD-ROM 0"),
    BootOption("Pxe.Nic.0", "PXE IPv4 on NIC 0"),
    BootOption("Http.Nic.0", "UEFI HTTP boot on NIC 0"),
    BootOption("Shell.Uefi", "UEFI Shell"),
)


@dataclass
class DomainState:
    domain_id: str
    version: int
    current: dict[str, Value]
    pending: dict[str, Value] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    boot_options: tuple[BootOption, ...] = DEFAULT_BOOT_OPTIONS
    boot_order: tuple[str, ...] = tuple(o.id for o in DEFAULT_BOOT_OPTIONS)
    boot_next: str | None = None
    #: The Secure Boot key databases the firmware gets at its next boot; None: the
    #: installation's default key set.
    secure_boot_keys: KeyDatabases | None = None

    @classmethod
    def new(cls, domain_id: str, registry: AttributeRegistry) -> DomainState:
        return cls(domain_id=domain_id, version=1, current=registry.defaults())

    def copy(self) -> DomainState:
        return copy.deepcopy(self)

    def snapshot(self) -> tuple[object, ...]:
        """Everything a write may change, cheaply copied (values, hashes, tuples and key
        databases are immutable): equal snapshots before and after a write mean it changed
        nothing."""
        return (dict(self.current), dict(self.pending), dict(self.passwords),
                self.boot_options, self.boot_order, self.boot_next, self.secure_boot_keys)

    # -- passwords -----------------------------------------------------------

    @property
    def setup_password_set(self) -> bool:
        return SETUP_PASSWORD in self.passwords

    def check_setup_password(self, password: str | None) -> None:
        """Every write carries the setup password once one is set."""
        stored = self.passwords.get(SETUP_PASSWORD)
        if stored is None:
            return
        if password is None or password == "":
            raise PasswordRequired("a setup password is set: this change must carry it")
        if not verify_password(password, stored):
            raise InvalidPassword("the setup password is wrong")

    def change_password(
        self,
        registry: AttributeRegistry,
        name: str,
        old_password: str | None,
        new_password: str,
        setup_password: str | None,
        *,
        hasher: Callable[[str], str] = hash_password,
    ) -> None:
        definition = registry.get(name)
        if not definition.is_password:
            raise InvalidAttributeValue(f"attribute {name} is not a password", attribute=name)
        if name != SETUP_PASSWORD:
            self.check_setup_password(setup_password)
        stored = self.passwords.get(name)
        if stored is not None:
            if not old_password:
                raise PasswordRequired(f"{name} is set: give the old password", attribute=name)
            if not verify_password(old_password, stored):
                raise InvalidPassword(f"the old {name} is wrong", attribute=name)
        if new_password == "":
            self.passwords.pop(name, None)
            return
        definition.validate(new_password)
        self.passwords[name] = hasher(new_password)

    # -- attributes ----------------------------------------------------------

    def set_attributes(
        self, registry: AttributeRegistry, changes: Mapping[str, object], apply_time: ApplyTime
    ) -> dict[str, Value]:
        """Validate all changes against the registry, then apply them; return them typed."""
        if not changes:
            raise InvalidRequest("no attributes to set")
        typed: dict[str, Value] = {}
        for name, value in changes.items():
            definition = registry.get(name)
            if definition.is_password:
                raise InvalidAttributeValue(
                    f"attribute {name} is a password: use ChangePassword", attribute=name
                )
            if definition.read_only:
                raise ReadOnlyAttribute(f"attribute {name} is read-only", attribute=name)
            typed[name] = definition.validate(value)
        if apply_time is ApplyTime.IMMEDIATE:
            for name, value in typed.items():
                if registry.get(name).reset_required and self.current.get(name) != value:
                    raise ResetRequired(
                        f"attribute {name} takes effect only on reset: use apply time OnReset",
                        attribute=name,
                    )
            self.current.update(typed)
            for name in typed:  # a later immediate value wins over an older pending one
                self.pending.pop(name, None)
        else:
            for name, value in typed.items():
                if name in self.current and _same(self.current[name], value):
                    self.pending.pop(name, None)  # at reset it stays what it is: no change
                else:
                    self.pending[name] = value
        return typed

    def cancel_pending(self) -> None:
        self.pending.clear()

    def reset_to_defaults(self, registry: AttributeRegistry) -> dict[str, Value]:
        """Registry defaults become pending values, applied at the next reset."""
        self.pending = registry.writable_defaults()
        return dict(self.pending)

    def apply_pending(self, *, consume_boot_next: bool = False) -> dict[str, Value]:
        """Pending values become current. A boot without firmware of its own (a simulated
        machine) also consumes BootNext; a real firmware consumes it itself."""
        applied = dict(self.pending)
        self.current.update(applied)
        self.pending.clear()
        if consume_boot_next:
            self.boot_next = None
        return applied

    # -- boot ----------------------------------------------------------------

    def set_boot_order(self, order: Sequence[str]) -> None:
        known = {o.id for o in self.boot_options}
        for option_id in order:
            if option_id not in known:
                raise UnknownBootOption(f"unknown boot option {option_id!r}", attribute=option_id)
        if len(set(order)) != len(order) or set(order) != known:
            raise InvalidBootOrder(
                "a boot order names every boot option exactly once: "
                + ", ".join(o.id for o in self.boot_options)
            )
        self.boot_order = tuple(order)

    def set_boot_next(self, option_id: str | None) -> None:
        if option_id is None:
            self.boot_next = None
            return
        for option in self.boot_options:
            if option.id == option_id:
                if not option.enabled:
                    raise UnknownBootOption(
                        f"boot option {option_id!r} is disabled", attribute=option_id
                    )
                self.boot_next = option_id
                return
        raise UnknownBootOption(f"unknown boot option {option_id!r}", attribute=option_id)


def _same(stored: Value, value: Value) -> bool:
    """Equal values of one attribute (True is not 1: a type changed by a registry is not
    the same value)."""
    return type(stored) is type(value) and stored == value
