"""The service measurement: reproducible, sensitive to code and configuration, blind to noise."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from bios_ws.bootstrap import initialize_home
from bios_ws.errors import AdminError
from bios_ws.home import Home
from bios_ws.launch.measure import (
    HEADER,
    describe_entry_changes,
    expected_service_pcr,
    installed_package_root,
    measure,
    measurement_of,
)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen copy of the installed package (the live tree may be edited meanwhile)."""
    copy = tmp_path_factory.mktemp("pkg") / "bios_ws"
    shutil.copytree(installed_package_root(), copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return initialize_home(tmp_path_factory.mktemp("measure") / "home")


def test_digest_is_reproducible_and_follows_the_documented_formula(
    home: Home, package: Path
) -> None:
    first, second = measure(home, package), measure(home, package)
    assert first == second
    text = HEADER + b"".join(f"{v.hex()}  {n}\n".encode() for n, v in first.entries)
    assert first.digest == hashlib.sha256(text).digest()
    assert expected_service_pcr(first.digest) == hashlib.sha256(bytes(32) + first.digest).digest()
    names = [name for name, _ in first.entries]
    assert names == sorted(names)
    assert "code/__init__.py" in names and "code/data/registry.json" in names
    assert {"config/registry.json", "config/pki/ca.pem", "config/pki/server.pem"} <= set(names)
    assert (first.files["code/launch/measure.py"]
            == hashlib.sha256((package / "launch" / "measure.py").read_bytes()).digest())


def test_bytecode_caches_do_not_count(home: Home, package: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bios_ws"
    shutil.copytree(package, copy)
    before = measure(home, copy)
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (copy / "stray.pyc").write_bytes(b"junk")
    assert measure(home, copy) == before


def test_a_modified_or_added_file_changes_the_digest_and_is_named(
    home: Home, package: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "bios_ws"
    shutil.copytree(package, copy)
    before = measure(home, copy)
    with (copy / "soap" / "guard.py").open("a") as handle:
        handle.write("\n# tampered\n")
    (copy / "backdoor.py").write_text("x = 1\n")
    after = measure(home, copy)
    assert after.digest != before.digest
    lines = describe_entry_changes(before.files, after.files)
    assert lines == ["changed: code/soap/guard.py", "added: code/backdoor.py"]


def test_the_home_path_does_not_matter_but_its_configuration_does(
    home: Home, package: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(home.path, moved)
    assert measure(Home.open(moved), package) == measure(home, package)
    registry = moved / "registry.json"
    registry.write_text(registry.read_text().replace('"', '"', 1) + "\n")
    changed = measure(Home.open(moved), package)
    assert changed.digest != measure(home, package).digest
    assert describe_entry_changes(measure(home, package).files, changed.files) == [
        "changed: config/registry.json"]


def test_measurement_of_is_order_independent() -> None:
    a = measurement_of({"b": b"\x01" * 32, "a": b"\x02" * 32})
    b = measurement_of({"a": b"\x02" * 32, "b": b"\x01" * 32})
    assert a == b and [n for n, _ in a.entries] == ["a", "b"]


def test_a_non_package_or_linked_directory_is_refused(home: Home, tmp_path: Path,
                                                      package: Path) -> None:
    with pytest.raises(AdminError, match="not a Python package"):
        measure(home, tmp_path)
    copy = tmp_path / "bios_ws"
    shutil.copytree(package, copy)
    (copy / "elsewhere").symlink_to(tmp_path)
    with pytest.raises(AdminError, match="symbolic link"):
        measure(home, copy)
