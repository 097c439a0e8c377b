"""The shipped attribute registry and the loader of registry files."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from bios_ws.domain.registry import AttributeRegistry, AttributeType
from bios_ws.domain.state import SETUP_PASSWORD, DomainState
from bios_ws.errors import RegistryError
from bios_ws.registry_file import MAX_REGISTRY_BYTES, load_registry, shipped_registry_text


def test_shipped_registry_is_large_and_uses_every_type(shipped_registry: AttributeRegistry) -> None:
    assert len(shipped_registry) >= 30
    assert {d.type for d in shipped_registry} == set(AttributeType)
    assert shipped_registry.registry_version


def test_shipped_registry_uses_read_only_and_reset_required(
    shipped_registry: AttributeRegistry,
) -> None:
    flags = [(d.read_only, d.reset_required) for d in shipped_registry]
    assert any(ro for ro, _ in flags)
    assert any(reset for _, reset in flags)
    assert any(not ro and not reset for ro, reset in flags)
    for name in ("BiosVersion", "SystemServiceTag", "TpmState"):
        assert shipped_registry.get(name).read_only
    for name in ("BootMode", "SecureBoot", "ProcVirtualization", "LogicalProc"):
        assert shipped_registry.get(name).reset_required


def test_every_shipped_attribute_is_documented(shipped_registry: AttributeRegistry) -> None:
    for definition in shipped_registry:
        assert definition.display_name, definition.name
        assert len(definition.help_text) > 10, definition.name
    raw = json.loads(shipped_registry_text())
    for entry in raw["attributes"]:
        assert entry.get("display_name"), entry["name"]
        assert entry.get("help_text"), entry["name"]


def test_shipped_passwords_have_no_default_and_bounded_length(
    shipped_registry: AttributeRegistry,
) -> None:
    passwords = [d for d in shipped_registry if d.is_password]
    assert {d.name for d in passwords} >= {SETUP_PASSWORD, "PowerOnPassword"}
    for definition in passwords:
        assert definition.default is None
        assert definition.min_length == 8
        assert definition.max_length == 32
    assert SETUP_PASSWORD not in shipped_registry.defaults()


def test_shipped_models_a_server_bios(shipped_registry: AttributeRegistry) -> None:
    assert shipped_registry.get("BootMode").allowed_values == ("Uefi", "Bios")
    assert set(shipped_registry.get("AcPwrRcvry").allowed_values) == {"On", "Off", "Last"}
    baud = shipped_registry.get("ConsoleBaudRate")
    assert baud.type is AttributeType.ENUMERATION and "115200" in baud.allowed_values
    tag = shipped_registry.get("AssetTag")
    assert tag.type is AttributeType.STRING and tag.max_length == 64
    delay = shipped_registry.get("AcPwrRcvryDelay")
    assert delay.type is AttributeType.INTEGER
    assert delay.lower_bound is not None and delay.upper_bound is not None
    assert shipped_registry.get("BootTimeout").scalar_increment


def test_shipped_defaults_are_valid_and_make_a_new_domain(
    shipped_registry: AttributeRegistry,
) -> None:
    state = DomainState.new("vm1", shipped_registry)
    non_passwords = {d.name for d in shipped_registry if not d.is_password}
    assert set(state.current) == non_passwords
    for name, value in state.current.items():
        assert shipped_registry.get(name).validate(value) == value
    read_only = {d.name for d in shipped_registry if d.read_only}
    assert set(shipped_registry.writable_defaults()) == non_passwords - read_only


def test_load_registry_reads_an_admin_file(tmp_path: Path) -> None:
    doc = json.loads(shipped_registry_text())
    doc["registry_version"] = "site-7"
    doc["attributes"] = doc["attributes"][:3]
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    loaded = load_registry(path)
    assert loaded.registry_version == "site-7"
    assert len(loaded) == 3


def test_load_registry_none_is_the_shipped_one(shipped_registry: AttributeRegistry) -> None:
    assert load_registry(None) == shipped_registry


def _expect_refusal(path: Path, fragment: str) -> None:
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    assert str(path) in caught.value.message
    assert fragment in caught.value.message


def test_missing_file_is_named(tmp_path: Path) -> None:
    _expect_refusal(tmp_path / "absent.json", "no such attribute registry file")


def test_directory_is_refused(tmp_path: Path) -> None:
    _expect_refusal(tmp_path, "not a regular file")


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "registry.json"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    reader = threading.Thread(target=_load_into, args=(fifo, outcome), daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # unblock the reader (a writer end) so the thread can end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("loading a FIFO registry blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], RegistryError)
    assert outcome[0].message == f"{fifo}: not a regular file; an attribute registry is a JSON file"


def test_device_is_refused(tmp_path: Path) -> None:
    _expect_refusal(Path("/dev/zero"), "not a regular file")


def _load_into(path: Path, outcome: list[BaseException]) -> None:
    try:
        load_registry(path)
    except BaseException as exc:  # handed to the test thread
        outcome.append(exc)


def test_invalid_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"registry_version": "1", "attributes": [', encoding="utf-8")
    _expect_refusal(path, "not valid JSON")


def test_invalid_registry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"registry_version": "1", "attributes": [
        {"name": "X", "type": "Float", "default": 1.5}]}), encoding="utf-8")
    _expect_refusal(path, "unknown type")


def test_non_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"registry_version": "\xe9", "attributes": []}')
    _expect_refusal(path, "not UTF-8")


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    _expect_refusal(path, "nested too deeply")


def test_oversized_file_is_refused_unparsed(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_bytes(b" " * (MAX_REGISTRY_BYTES + 1))
    _expect_refusal(path, "larger than")
