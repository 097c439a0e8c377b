"""The home's permissions: no other user may read the home's private keys or swap them.

`vbios serve`, `vbios devrun` (on an existing home) and `vbios domain create`
call ``check_home_permissions`` before they unseal, start or write anything.
It refuses, naming each offending path with its mode and ending with the one
command line that fixes them all (``chmod go-w ... && chmod 600 ...``):

- a directory leading to keys that its group or others may write (whoever may
  write a directory may replace the files in it): the home itself, ``pki/``,
  ``secrets/``, ``admin/``, ``bundles/`` and each bundle directory in it,
  ``tpm/``, ``tpm/sealed/`` and ``tpm/state/``;
- a private file that its group or others may read or write:
  ``pki/ca-key.pem``, ``pki/server-key.pem`` and ``pki/transfer-key.pem`` (encrypted),
  ``secrets/key-passphrase``, ``admin/key.pem`` and ``bundles/*/key.pem``
  (clear), the sealed passphrases ``tpm/sealed/{server,ca}-key.json`` and
  ``tpm/sealed/recovery.json``, and the development TPM's state
  ``tpm/state/tpm2-*`` (its seeds);
- a symbolic link (or any other non-regular file) where one of these
  directories or files belongs: a link is followed wherever it points, so the
  modes seen here would say nothing. The home itself may be reached through a
  link; its target is checked.

Only the home is checked, not the directories above it, nor bundles written
elsewhere with ``--out``. A missing entry is not refused here: each command
refuses what it needs and lacks. The rule (``judge``, ``refusal``) is pure and
tested without I/O; ``observe`` reads the entries with ``lstat``.
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from bios_ws.errors import UnsafePermissions
from bios_ws.home import Home
from bios_ws.launch.sealing import KEYS
from bios_ws.pki.files import PRIVATE_MODE
from bios_ws.tpm.devtpm import DevTpm

#: The chmod arguments that fix a directory and a private file.
DIRECTORY_FIX = "go-w"
PRIVATE_FIX = f"{PRIVATE_MODE:o}"
#: swtpm's state files (NVRAM, volatile and saved state); its ``.lock`` holds nothing.
TPM_STATE_PATTERN = "tpm2-*"
_GROUP_OR_OTHERS = 0o077
_WRITABLE_BY_GROUP_OR_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class Role(Enum):
    """What the home keeps at a path."""

    KEY_DIRECTORY = "directory"
    PRIVATE_FILE = "private file"


class Kind(Enum):
    """What the path is on disk (a link is never followed, except to the home itself)."""

    DIRECTORY = "directory"
    REGULAR = "regular file"
    SYMLINK = "symbolic link"
    OTHER = "special file"


@dataclass(frozen=True)
class Entry:
    """One path the check looked at: what belongs there, what is there, its mode bits."""

    path: Path
    role: Role
    kind: Kind
    mode: int


@dataclass(frozen=True)
class Finding:
    """Why ``path`` is refused; ``chmod`` the argument that fixes it (None: no chmod does)."""

    path: Path
    problem: str
    chmod: str | None


def judge(entry: Entry) -> Finding | None:
    """The finding against ``entry``, or None if it is safe."""
    expected = Kind.DIRECTORY if entry.role is Role.KEY_DIRECTORY else Kind.REGULAR
    if entry.kind is Kind.SYMLINK:
        return Finding(entry.path, f"is a symbolic link where a {entry.role.value} belongs"
                                   " (replace the link by what it points to)", None)
    if entry.kind is not expected:
        return Finding(entry.path, f"is a {entry.kind.value} where a {entry.role.value}"
                                   " belongs", None)
    if entry.role is Role.KEY_DIRECTORY:
        if entry.mode & _WRITABLE_BY_GROUP_OR_OTHERS:
            return Finding(entry.path, f"(directory, mode {entry.mode:04o}) is writable by"
                                       f" {_who(entry.mode & _WRITABLE_BY_GROUP_OR_OTHERS)}",
                           DIRECTORY_FIX)
        return None
    if entry.mode & _GROUP_OR_OTHERS:
        return Finding(entry.path, f"(private key material, mode {entry.mode:04o}) is"
                                   f" accessible to {_who(entry.mode & _GROUP_OR_OTHERS)}",
                       PRIVATE_FIX)
    return None


def refusal(home: Path, findings: Sequence[Finding]) -> str:
    """One line: each finding, then the command line that fixes every chmod-able one."""
    described = "; ".join(f"{finding.path} {finding.problem}" for finding in findings)
    message = f"refusing {home}: other users could read or replace its keys: {described}"
    command = fix_command(findings)
    return f"{message}; fix: {command}" if command else message


def fix_command(findings: Iterable[Finding]) -> str:
    """``chmod go-w DIRS && chmod 600 FILES`` (the parts needed), paths shell-quoted."""
    commands = []
    for argument in (DIRECTORY_FIX, PRIVATE_FIX):
        paths = [shlex.quote(str(f.path)) for f in findings if f.chmod == argument]
        if paths:
            commands.append(" ".join(["chmod", argument, *paths]))
    return " && ".join(commands)


def _who(bits: int) -> str:
    group, others = bool(bits & 0o070), bool(bits & 0o007)
    return "its group and others" if group and others else "its group" if group else "others"


# -- reading the home ----------------------------------------------------------------


def check_home_permissions(home: Home) -> None:
    """Refuse ``home`` (UnsafePermissions, an AdminError) if another user could read or
    replace one of its keys; the message ends with the chmod that fixes it."""
    findings = [finding for finding in map(judge, observe(home)) if finding is not None]
    if findings:
        raise UnsafePermissions(refusal(home.path, findings))


def observe(home: Home) -> list[Entry]:
    """Every entry of ``home`` the rule applies to, directories before their files."""
    root = _entry(home.path, Role.KEY_DIRECTORY, follow_link=True)
    if root is None or root.kind is not Kind.DIRECTORY:
        return [] if root is None else [root]
    tpm_state = DevTpm(home.tpm_dir).state_dir
    entries = [root]
    entries += _directory_of_keys(home.pki_dir, lambda: [home.ca_key, home.server_key,
                                                          home.transfer_key])
    entries += _directory_of_keys(home.secrets_dir, lambda: [home.passphrase_file])
    entries += _bundle(home.admin_dir)
    bundles = _entry(home.bundles_dir, Role.KEY_DIRECTORY)
    if bundles is not None:
        entries.append(bundles)
        if bundles.kind is Kind.DIRECTORY:
            for child in _children(home.bundles_dir):
                if child.is_symlink() or child.is_dir():
                    entries += _bundle(child)
    tpm = _entry(home.tpm_dir, Role.KEY_DIRECTORY)
    if tpm is not None:
        entries.append(tpm)
        if tpm.kind is Kind.DIRECTORY:
            sealed = [*(home.sealed_blob(key) for key in KEYS), home.recovery_file]
            entries += _directory_of_keys(home.sealed_dir, lambda: sealed)
            entries += _directory_of_keys(
                tpm_state, lambda: [p for p in _children(tpm_state)
                                    if p.match(TPM_STATE_PATTERN)])
    return entries


def _bundle(directory: Path) -> list[Entry]:
    return _directory_of_keys(directory, lambda: [directory / "key.pem"])


def _directory_of_keys(directory: Path, keys: Callable[[], list[Path]]) -> list[Entry]:
    """``directory`` and, if it is a real directory, those of its ``keys`` that exist."""
    found = _entry(directory, Role.KEY_DIRECTORY)
    if found is None:
        return []
    if found.kind is not Kind.DIRECTORY:
        return [found]
    files = (_entry(path, Role.PRIVATE_FILE) for path in keys())
    return [found, *(entry for entry in files if entry is not None)]


def _entry(path: Path, role: Role, *, follow_link: bool = False) -> Entry | None:
    """``path`` as it is on disk (its target, with ``follow_link``), None if missing."""
    try:
        status = os.stat(path) if follow_link else os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnsafePermissions(f"cannot check the permissions of {path}:"
                                f" {exc.strerror or exc}") from None
    return Entry(path, role, _kind(status.st_mode), stat.S_IMODE(status.st_mode))


def _kind(mode: int) -> Kind:
    if stat.S_ISLNK(mode):
        return Kind.SYMLINK
    if stat.S_ISDIR(mode):
        return Kind.DIRECTORY
    return Kind.REGULAR if stat.S_ISREG(mode) else Kind.OTHER


def _children(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except OSError as exc:
        raise UnsafePermissions(f"cannot check the permissions in {directory}:"
                                f" {exc.strerror or exc}") from None
