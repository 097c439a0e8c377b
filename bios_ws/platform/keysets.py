"""Secure Boot key sets: what a domain's firmware gets unless the domain has keys of its own.

``snakeoil``: Debian's OVMF test certificate (``/usr/share/ovmf/PkKek-1-snakeoil.pem``,
from the ``ovmf`` package; its key is public, so anyone can sign for it: tests
and development only) as PK, KEK and db. ``none``: no keys (setup mode).
``template:PATH``: the keys an OVMF variable-store template holds
(``/usr/share/OVMF/OVMF_VARS_4M.ms.fd``: Microsoft's KEK and db, as shipped by
Debian's ``ovmf``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bios_ws.domain.firmware import KeyDatabases
from bios_ws.errors import PlatformUnavailable

log = logging.getLogger("bios_ws.platform")

SNAKEOIL_CERT = Path("/usr/share/ovmf/PkKek-1-snakeoil.pem")
KEY_SETS = ("snakeoil", "none", "template:PATH")


def load_key_set(spec: str) -> KeyDatabases:
    """The key databases ``spec`` names; PlatformUnavailable when they cannot be read."""
    if spec == "none":
        return KeyDatabases()
    if spec == "snakeoil":
        der = certificate_der(SNAKEOIL_CERT, "the Secure Boot test key set (apt-get install"
                              " ovmf)")
        return KeyDatabases(pk=(der,), kek=(der,), db=(der,))
    if spec.startswith("template:"):
        return template_keys(Path(spec.removeprefix("template:")))
    raise PlatformUnavailable(f"unknown Secure Boot key set {spec!r}: use one of"
                              f" {', '.join(KEY_SETS)}")


def lazy_key_set(spec: str) -> Callable[[], KeyDatabases]:
    """``load_key_set(spec)`` on first use, then the same databases; a set that cannot be
    read gives no keys (setup mode) and says so in the log, once."""

    @functools.cache
    def load() -> KeyDatabases:
        try:
            return load_key_set(spec)
        except PlatformUnavailable as exc:
            log.warning("%s: domains without keys of their own boot in setup mode",
                        exc.message)
            return KeyDatabases()

    return load


def template_keys(path: Path) -> KeyDatabases:
    """The Secure Boot databases an OVMF variable-store template holds."""
    from bios_ws.errors import MachineError
    from bios_ws.platform.qemu.firmware import read_state
    from bios_ws.platform.qemu.nvram import load

    try:
        return read_state(load(path).variables).keys
    except MachineError as exc:
        raise PlatformUnavailable(f"no Secure Boot key set in {path}: {exc.message}") from None


def certificate_der(path: Path, what: str) -> bytes:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise PlatformUnavailable(f"cannot read {what} at {path}: {exc.strerror}") from None
    try:
        return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    except ValueError:
        raise PlatformUnavailable(f"{path} holds no PEM certificate ({what})") from None
