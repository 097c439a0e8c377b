"""Load the attribute registry: the shipped one, or the admin's replacement file."""

from __future__ import annotations

import os
import stat
from importlib import resources
from pathlib import Path

from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.registry_change import RegistryDocument
from bios_ws.errors import RegistryError

#: Name of the registry shipped in the ``bios_ws`` package.
SHIPPED_REGISTRY = "data/registry.json"
#: A registry file larger than this is refused unread.
MAX_REGISTRY_BYTES = 4 * 1024 * 1024


def shipped_registry_text() -> str:
    """The text of the registry that ships with bios-ws (what ``vbios init`` copies)."""
    resource = resources.files("bios_ws").joinpath(*SHIPPED_REGISTRY.split("/"))
    return resource.read_text(encoding="utf-8")


def load_registry(path: Path | None = None) -> AttributeRegistry:
    """Load ``path``, or the shipped registry when None; RegistryError naming the file."""
    if path is None:
        name = f"shipped registry {SHIPPED_REGISTRY}"
        try:
            text = shipped_registry_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{name}: cannot read it: {exc}") from None
    else:
        name = str(path)
        text = read_registry_text(path)
    try:
        return AttributeRegistry.from_json(text)
    except RegistryError as exc:
        raise RegistryError(f"{name}: {exc.message}") from None
    except RecursionError:
        raise RegistryError(f"{name}: the JSON document is nested too deeply") from None


def load_registry_document(path: Path) -> RegistryDocument:
    """The registry file at ``path`` and its text; RegistryError naming the file."""
    text = read_registry_text(path)
    try:
        return RegistryDocument.parse(text)
    except RegistryError as exc:
        raise RegistryError(f"{path}: {exc.message}") from None
    except RecursionError:
        raise RegistryError(f"{path}: the JSON document is nested too deeply") from None


def read_registry_bytes(path: Path) -> bytes:
    """The bytes of the registry file at ``path``: a regular file only (a FIFO or a device
    would block the reader or never end), at most MAX_REGISTRY_BYTES; RegistryError naming
    the path."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise RegistryError(f"{path}: no such attribute registry file") from None
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the attribute registry: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RegistryError(f"{path}: not a regular file; an attribute registry is a"
                                " JSON file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_REGISTRY_BYTES + 1)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the attribute registry: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_REGISTRY_BYTES:
        raise RegistryError(f"{path}: larger than {MAX_REGISTRY_BYTES} bytes")
    return data


def read_registry_text(path: Path) -> str:
    """The text of the registry file at ``path`` (see ``read_registry_bytes``), UTF-8."""
    data = read_registry_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RegistryError(f"{path}: not UTF-8 text") from None
