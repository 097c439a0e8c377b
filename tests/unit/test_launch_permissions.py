"""The home permission rule (bios_ws.launch.permissions): judged from entries, no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from bios_ws.launch.permissions import (
    Entry,
    Finding,
    Kind,
    Role,
    fix_command,
    judge,
    refusal,
)

HOME = Path("/srv/vbios home")
KEY = HOME / "pki" / "ca-key.pem"


def _directory(mode: int, path: Path = HOME, kind: Kind = Kind.DIRECTORY) -> Entry:
    return Entry(path, Role.KEY_DIRECTORY, kind, mode)


def _private(mode: int, path: Path = KEY, kind: Kind = Kind.REGULAR) -> Entry:
    return Entry(path, Role.PRIVATE_FILE, kind, mode)


@pytest.mark.parametrize("mode", [0o700, 0o750, 0o755, 0o500, 0o711])
def test_a_directory_nobody_else_may_write_passes(mode: int) -> None:
    assert judge(_directory(mode)) is None


@pytest.mark.parametrize(("mode", "who"), [
    (0o770, "writable by its group"), (0o720, "writable by its group"),
    (0o702, "writable by others"), (0o777, "writable by its group and others"),
    (0o1777, "writable by its group and others"),
])
def test_a_directory_others_may_write_is_fixed_with_go_minus_w(mode: int, who: str) -> None:
    finding = judge(_directory(mode))
    assert finding is not None
    assert finding.chmod == "go-w"
    assert who in finding.problem
    assert f"mode {mode:04o}" in finding.problem


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_a_private_file_only_its_owner_may_use_passes(mode: int) -> None:
    assert judge(_private(mode)) is None


@pytest.mark.parametrize(("mode", "who"), [
    (0o640, "its group"), (0o604, "others"), (0o644, "its group and others"),
    (0o620, "its group"), (0o601, "others"), (0o666, "its group and others"),
])
def test_a_private_file_others_may_read_or_write_is_fixed_with_chmod_600(
    mode: int, who: str
) -> None:
    finding = judge(_private(mode))
    assert finding is not None
    assert finding.chmod == "600"
    assert finding.problem.endswith(f"accessible to {who}")
    assert f"mode {mode:04o}" in finding.problem


@pytest.mark.parametrize("entry", [
    _private(0o777, kind=Kind.SYMLINK), _directory(0o777, HOME / "pki", Kind.SYMLINK),
])
def test_a_symbolic_link_is_refused_whatever_its_mode_and_no_chmod_fixes_it(
    entry: Entry
) -> None:
    finding = judge(entry)
    assert finding is not None
    assert finding.chmod is None
    assert "symbolic link" in finding.problem and entry.role.value in finding.problem


@pytest.mark.parametrize("entry", [
    _private(0o600, kind=Kind.DIRECTORY), _private(0o600, kind=Kind.OTHER),
    _directory(0o700, kind=Kind.REGULAR),
])
def test_the_wrong_kind_of_file_is_refused(entry: Entry) -> None:
    finding = judge(entry)
    assert finding is not None and finding.chmod is None
    assert f"where a {entry.role.value} belongs" in finding.problem


def test_the_refusal_names_every_path_and_ends_with_one_command() -> None:
    bundle_key = HOME / "bundles" / "web1" / "key.pem"
    findings = [judge(_directory(0o775)), judge(_private(0o640)),
                judge(_private(0o777, HOME / "admin" / "key.pem", Kind.SYMLINK)),
                judge(_private(0o644, bundle_key))]
    message = refusal(HOME, [f for f in findings if f is not None])
    assert "\n" not in message
    assert message.startswith(f"refusing {HOME}: other users could read or replace its keys")
    assert f"{HOME} (directory, mode 0775)" in message
    assert f"{KEY} (private key material, mode 0640)" in message
    assert f"{HOME / 'admin' / 'key.pem'} is a symbolic link" in message
    assert message.endswith(
        "; fix: chmod go-w '/srv/vbios home'"
        " && chmod 600 '/srv/vbios home/pki/ca-key.pem'"
        " '/srv/vbios home/bundles/web1/key.pem'")


def test_a_refusal_no_chmod_fixes_has_no_command() -> None:
    finding = judge(_private(0o600, kind=Kind.SYMLINK))
    assert finding is not None
    message = refusal(HOME, [finding])
    assert "fix:" not in message and "chmod" not in message


def test_the_command_has_only_the_parts_needed() -> None:
    assert fix_command([Finding(KEY, "", "600")]) == "chmod 600 '/srv/vbios home/pki/ca-key.pem'"
    assert fix_command([Finding(Path("/h"), "", "go-w"), Finding(Path("/h/b"), "", "go-w")]
                       ) == "chmod go-w /h /h/b"
    assert fix_command([]) == ""
