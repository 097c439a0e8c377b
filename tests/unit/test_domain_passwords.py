"""scrypt password hashing and the password rules of a domain."""

from __future__ import annotations

import pytest

from bios_ws.domain.password import hash_password, verify_password
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import SETUP_PASSWORD, DomainState
from bios_ws.errors import (
    InvalidAttributeValue,
    InvalidPassword,
    PasswordRequired,
    UnknownAttribute,
)

SETUP, POWER_ON = SETUP_PASSWORD, "PowerOnPassword"
SECRET, OTHER = "correct horse", "battery staple"


# -- hashing -------------------------------------------------------------------


def test_verify_accepts_the_password_and_refuses_others() -> None:
    encoded = hash_password(SECRET)
    assert verify_password(SECRET, encoded)
    assert not verify_password(OTHER, encoded)
    assert not verify_password(SECRET + " ", encoded)
    assert not verify_password("", encoded)


def test_hash_hides_the_password_and_salts_each_hash() -> None:
    first, second = hash_password(SECRET), hash_password(SECRET)
    assert first != second
    assert SECRET not in first
    assert first.startswith("scrypt$")
    assert first.split("$")[4] != second.split("$")[4]


def test_salt_source_is_injected() -> None:
    fixed = hash_password(SECRET, salt_source=lambda n: b"\x01" * n)
    assert fixed == hash_password(SECRET, salt_source=lambda n: b"\x01" * n)
    assert fixed != hash_password(SECRET, salt_source=lambda n: b"\x02" * n)
    assert verify_password(SECRET, fixed)


def test_unicode_passwords() -> None:
    encoded = hash_password("pässwörd-Ω")
    assert verify_password("pässwörd-Ω", encoded)
    assert not verify_password("passwort-Ω", encoded)


def _tampered(field: int, value: str) -> str:
    parts = hash_password(SECRET, salt_source=lambda n: b"\x00" * n).split("$")
    parts[field] = value
    return "$".join(parts)


@pytest.mark.parametrize("encoded", [
    "", "plain text", SECRET, "scrypt$1$2$3", "scrypt$a$b$c$d$e$f",
    _tampered(0, "bcrypt"),
    _tampered(1, "abc"),              # cost not a number
    _tampered(1, "3"),                # cost not a power of two
    _tampered(1, str(2**64)),         # cost too large for C
    _tampered(1, str(2**40)),         # cost beyond the memory limit
    _tampered(2, str(2**64)),         # block size too large for C
    _tampered(3, "0"),
    _tampered(4, "!!not base64!!"),
    _tampered(5, ""),
    _tampered(5, "AAAA"),
])
def test_malformed_hashes_verify_false(encoded: str) -> None:
    assert verify_password(SECRET, encoded) is False


# -- domain rules ------------------------------------------------------------------


def _set(state: DomainState, registry: AttributeRegistry, name: str, new: str,
         old: str | None = None, setup: str | None = None) -> None:
    state.change_password(registry, name, old, new, setup)


def test_setting_a_password_stores_a_hash(registry: AttributeRegistry, state: DomainState) -> None:
    _set(state, registry, SETUP, SECRET)
    assert state.setup_password_set
    stored = state.passwords[SETUP]
    assert stored != SECRET and SECRET not in stored
    assert verify_password(SECRET, stored)
    assert SETUP not in state.current and SETUP not in state.pending


def test_check_setup_password(registry: AttributeRegistry, state: DomainState) -> None:
    state.check_setup_password(None)  # nothing set: nothing required
    _set(state, registry, SETUP, SECRET)
    with pytest.raises(PasswordRequired):
        state.check_setup_password(None)
    with pytest.raises(PasswordRequired):
        state.check_setup_password("")
    with pytest.raises(InvalidPassword):
        state.check_setup_password(OTHER)
    state.check_setup_password(SECRET)


def test_change_needs_the_old_password(registry: AttributeRegistry, state: DomainState) -> None:
    _set(state, registry, SETUP, SECRET)
    before = state.copy()
    with pytest.raises(PasswordRequired) as missing:
        _set(state, registry, SETUP, OTHER)
    assert missing.value.attribute == SETUP
    with pytest.raises(InvalidPassword):
        _set(state, registry, SETUP, OTHER, old=OTHER)
    assert state == before
    _set(state, registry, SETUP, OTHER, old=SECRET)
    assert verify_password(OTHER, state.passwords[SETUP])
    assert not verify_password(SECRET, state.passwords[SETUP])


def test_the_setup_password_proves_itself_by_old_not_by_setup(
    registry: AttributeRegistry, state: DomainState
) -> None:
    _set(state, registry, SETUP, SECRET)
    with pytest.raises(PasswordRequired):
        _set(state, registry, SETUP, OTHER, setup=SECRET)


def test_empty_new_password_clears(registry: AttributeRegistry, state: DomainState) -> None:
    _set(state, registry, SETUP, SECRET)
    _set(state, registry, SETUP, "", old=SECRET)
    assert not state.setup_password_set
    state.check_setup_password(None)


def test_clearing_needs_the_old_password(registry: AttributeRegistry, state: DomainState) -> None:
    _set(state, registry, SETUP, SECRET)
    with pytest.raises(PasswordRequired):
        _set(state, registry, SETUP, "")
    with pytest.raises(InvalidPassword):
        _set(state, registry, SETUP, "", old=OTHER)
    assert state.setup_password_set


@pytest.mark.parametrize("new", ["short", "x" * 33, "tab\tinside-it"])
def test_new_password_is_validated(
    registry: AttributeRegistry, state: DomainState, new: str
) -> None:
    with pytest.raises(InvalidAttributeValue) as caught:
        _set(state, registry, SETUP, new)
    assert caught.value.attribute == SETUP
    assert state.passwords == {}


def test_only_password_attributes_change_by_change_password(
    registry: AttributeRegistry, state: DomainState
) -> None:
    with pytest.raises(InvalidAttributeValue, match="not a password"):
        _set(state, registry, "AssetTag", SECRET)
    with pytest.raises(UnknownAttribute):
        _set(state, registry, "RootPassword", SECRET)
    assert state.passwords == {}


def test_power_on_password_needs_the_setup_password_when_set(
    registry: AttributeRegistry, state: DomainState
) -> None:
    _set(state, registry, POWER_ON, SECRET)  # no setup password: free to set
    _set(state, registry, SETUP, OTHER)
    with pytest.raises(PasswordRequired):
        _set(state, registry, POWER_ON, "new-power-on", old=SECRET)
    with pytest.raises(InvalidPassword):
        _set(state, registry, POWER_ON, "new-power-on", old=SECRET, setup=SECRET)
    assert verify_password(SECRET, state.passwords[POWER_ON])
    _set(state, registry, POWER_ON, "new-power-on", old=SECRET, setup=OTHER)
    assert verify_password("new-power-on", state.passwords[POWER_ON])


def test_power_on_password_also_needs_its_old_value(
    registry: AttributeRegistry, state: DomainState
) -> None:
    _set(state, registry, POWER_ON, SECRET)
    with pytest.raises(InvalidPassword):
        _set(state, registry, POWER_ON, OTHER, old="not-the-one")
    _set(state, registry, POWER_ON, "", old=SECRET)
    assert state.passwords == {}


def test_hasher_is_injected(registry: AttributeRegistry, state: DomainState) -> None:
    seen: list[str] = []

    def hasher(password: str) -> str:
        seen.append(password)
        return hash_password(password, salt_source=lambda n: b"\x07" * n)

    state.change_password(registry, SETUP, None, SECRET, None, hasher=hasher)
    assert seen == [SECRET]
    assert state.passwords[SETUP] == hash_password(SECRET, salt_source=lambda n: b"\x07" * n)
