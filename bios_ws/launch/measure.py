"""Measured launch: one reproducible digest over the service's code and configuration.

What is measured (and why):

- ``code/<path>``: every file of the installed ``bios_ws`` package (``*.py``,
  ``py.typed``, the shipped data files), by path relative to the package root,
  skipping ``__pycache__`` directories and ``*.pyc``/``*.pyo`` files (they are
  derived from the sources and rewritten by the interpreter).
- ``config/registry.json``: the attribute registry the service enforces.
- ``config/pki/ca.pem`` and ``config/pki/server.pem``: whom the service trusts
  and whom it claims to be.

Not measured: the home's path (a moved home stays the same installation), the
database (it changes at every write), the bind address, workers and threads
(they change capacity, not trust) and the TPM's TCTI (a sealed object is
FIXEDTPM: another TPM cannot unseal it anyway, and a TPM moved to another port
must keep working).

The digest is SHA-256 over the header ``vbios-measure-v1\\n`` then one line
``<sha256 hex>  <name>\\n`` per entry, entries sorted by name. The service PCR
extended with it from its reset value (32 zero bytes) holds
``SHA-256(0*32 || digest)``: :func:`expected_service_pcr`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bios_ws.errors import AdminError
from bios_ws.home import Home

HEADER = b"vbios-measure-v1\n"
CODE_PREFIX = "code/"
CONFIG_PREFIX = "config/"
_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Measurement:
    """The digest and the (name, sha256) entries behind it, sorted by name."""

    digest: bytes
    entries: tuple[tuple[str, bytes], ...]

    @property
    def files(self) -> dict[str, bytes]:
        return dict(self.entries)

    def to_json_obj(self) -> dict[str, object]:
        return {
            "digest": self.digest.hex(),
            "service_pcr": expected_service_pcr(self.digest).hex(),
            "files": [{"path": name, "sha256": value.hex()} for name, value in self.entries],
        }


def installed_package_root() -> Path:
    """The directory of the ``bios_ws`` package this process runs."""
    import bios_ws

    return Path(next(iter(bios_ws.__path__))).resolve()


def measure(home: Home, package_root: Path | None = None) -> Measurement:
    """Measure ``package_root`` (default: the running package) and ``home``'s configuration."""
    root = package_root if package_root is not None else installed_package_root()
    entries = {f"{CODE_PREFIX}{name}": value for name, value in _code_files(root)}
    for name, path in config_files(home).items():
        entries[f"{CONFIG_PREFIX}{name}"] = _file_digest(path)
    return measurement_of(entries)


def measurement_of(entries: Mapping[str, bytes]) -> Measurement:
    """The measurement of already hashed entries (name -> SHA-256)."""
    ordered = tuple(sorted(entries.items()))
    hasher = hashlib.sha256(HEADER)
    for name, value in ordered:
        hasher.update(f"{value.hex()}  {name}\n".encode())
    return Measurement(hasher.digest(), ordered)


def config_files(home: Home) -> dict[str, Path]:
    """The configuration files that change trust, by measured name."""
    return {
        "registry.json": home.registry_path,
        "pki/ca.pem": home.ca_cert,
        "pki/server.pem": home.server_cert,
    }


def expected_service_pcr(digest: bytes) -> bytes:
    """The service PCR after a reset (zeros) and one SHA-256 extend with ``digest``."""
    return hashlib.sha256(bytes(32) + digest).digest()


def diff_entries(
    sealed: Mapping[str, bytes], current: Mapping[str, bytes]
) -> tuple[list[str], list[str], list[str]]:
    """(changed, added, removed) entry names between two measurements, each sorted."""
    changed = sorted(n for n in sealed.keys() & current.keys() if sealed[n] != current[n])
    added = sorted(current.keys() - sealed.keys())
    removed = sorted(sealed.keys() - current.keys())
    return changed, added, removed


def describe_entry_changes(
    sealed: Mapping[str, bytes], current: Mapping[str, bytes], limit: int = 10
) -> list[str]:
    """Human lines naming what changed between two measurements (at most ``limit`` each)."""
    lines: list[str] = []
    for label, names in zip(("changed", "added", "removed"), diff_entries(sealed, current),
                            strict=True):
        if names:
            shown = ", ".join(names[:limit])
            more = f" and {len(names) - limit} more" if len(names) > limit else ""
            lines.append(f"{label}: {shown}{more}")
    return lines


def _code_files(root: Path) -> Sequence[tuple[str, bytes]]:
    if not (root / "__init__.py").is_file():
        raise AdminError(f"{root} is not a Python package; cannot measure the service")
    found: list[tuple[str, bytes]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS)
        linked = [d for d in dirnames if (here / d).is_symlink()]
        if linked:
            raise AdminError(f"{here / linked[0]} is a symbolic link to a directory;"
                             " the service cannot be measured reliably")
        for name in sorted(filenames):
            if name.endswith(_SKIPPED_SUFFIXES):
                continue
            path = here / name
            if not path.is_file():  # a symlinked file is measured by its content
                continue
            found.append((path.relative_to(root).as_posix(), _file_digest(path)))
    return found


def _file_digest(path: Path) -> bytes:
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
    except OSError as exc:
        raise AdminError(f"cannot measure {path}: {exc.strerror or exc}") from None
    return hasher.digest()
