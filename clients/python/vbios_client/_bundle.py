"""Client bundle files: cert.pem, key.pem (0600) and ca.pem in a 0700 directory.

A new bundle (enrollment) is written into a private staging directory beside the
target and renamed onto the target at the end: the bundle appears whole or not at
all (an empty target directory is replaced by the rename, a non-empty one refused).

A renewal replaces the pair in place. The new key and certificate are first
written whole, each atomically, as key.pem.new and cert.pem.new; then key.pem and
cert.pem are replaced by rename, the key first. A crash between the two renames
leaves the new key.pem, the old cert.pem and cert.pem.new: ``recover`` (run when a
client opens the bundle) finishes the second rename; the files of a renewal that
never reached its renames are removed (the old pair stands, still valid). No old
key is kept: the server revokes the old certificate at the new one's first use.
Renewals and recoveries of one bundle are serialized by an exclusive lock on its
directory (``locked``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from vbios_client import _cert_validity
from vbios_client.exceptions import BundleError

if TYPE_CHECKING:  # cryptography is imported by the functions that need it
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

BUNDLE_FILES = ("cert.pem", "key.pem", "ca.pem")
PRIVATE_MODE, PUBLIC_MODE, DIR_MODE = 0o600, 0o644, 0o700
_NEW = ".new"


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The key as clear PKCS#8 PEM (the layout of the bundles the admin issues)."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def public_der(public: PublicKeyTypes) -> bytes:
    """SubjectPublicKeyInfo DER of a public key (to compare keys)."""
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def check_new(out: Path) -> None:
    """Refuse a target that exists and is not an empty directory (or is a link)."""
    if out.is_symlink():
        raise BundleError(f"bundle directory {out} is a symbolic link; choose another")
    if out.exists():
        if not out.is_dir():
            raise BundleError(f"bundle directory {out} exists and is not a directory")
        if any(out.iterdir()):
            raise BundleError(f"bundle directory {out} is not empty; choose another")


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A private directory beside ``out`` (0700), removed unless ``commit`` moved it."""
    try:
        out.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".enrolling",
                                      dir=out.parent))
    except OSError as exc:
        raise BundleError(f"cannot write beside {out}: {exc.strerror or exc}") from None
    try:
        yield stage
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def commit(stage: Path, out: Path) -> None:
    """Rename the finished ``stage`` onto ``out`` (absent or an empty directory)."""
    try:
        os.chmod(stage, DIR_MODE)
        os.rename(stage, out)
        _fsync_dir(out.parent)
    except OSError as exc:
        raise BundleError(f"cannot write bundle directory {out}: {exc.strerror or exc}"
                          ) from None


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically; the file has ``mode`` from its creation."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            os.fchmod(fd, mode)  # the umask may have removed bits only
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BundleError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_new(stage: Path, cert: bytes, key: bytes, ca: bytes) -> None:
    write_file(stage / "key.pem", key, PRIVATE_MODE)
    write_file(stage / "cert.pem", cert, PUBLIC_MODE)
    write_file(stage / "ca.pem", ca, PUBLIC_MODE)


def replace_pair(bundle: Path, cert: bytes, key: bytes) -> None:
    """Replace cert.pem and key.pem of ``bundle`` (hold ``locked``): see the module."""
    new_key, new_cert = bundle / f"key.pem{_NEW}", bundle / f"cert.pem{_NEW}"
    write_file(new_key, key, PRIVATE_MODE)
    write_file(new_cert, cert, PUBLIC_MODE)
    try:
        os.replace(new_key, bundle / "key.pem")
        os.replace(new_cert, bundle / "cert.pem")
        _fsync_dir(bundle)
    except OSError as exc:
        raise BundleError(f"cannot replace the pair in {bundle}: {exc.strerror or exc}"
                          ) from None


def recover(bundle: Path) -> None:
    """Finish or drop a renewal a crash interrupted (see the module)."""
    new_key, new_cert = bundle / f"key.pem{_NEW}", bundle / f"cert.pem{_NEW}"
    if not (new_key.exists() or new_cert.exists()):
        return
    with locked(bundle):
        try:
            if new_key.exists():  # the renames never began: the old pair stands
                new_key.unlink()
                new_cert.unlink(missing_ok=True)
            elif new_cert.exists() and _pair_matches(new_cert, bundle / "key.pem"):
                os.replace(new_cert, bundle / "cert.pem")
            _fsync_dir(bundle)
        except OSError as exc:
            raise BundleError(f"cannot finish the renewal left in {bundle}:"
                              f" {exc.strerror or exc}") from None


@contextlib.contextmanager
def locked(bundle: Path) -> Iterator[None]:
    """An exclusive lock on the bundle directory, for as long as the block runs."""
    try:
        fd = os.open(bundle, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise BundleError(f"cannot open bundle directory {bundle}: {exc.strerror or exc}"
                          ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def key_mode_warning(bundle: Path) -> str | None:
    """What to say when the bundle's key.pem is readable by its group or others."""
    key = bundle / "key.pem"
    try:
        mode = key.stat().st_mode
    except OSError:
        return None  # opening the bundle says what is wrong
    if mode & 0o077 == 0:
        return None
    return (f"{key} can be read by others (mode {mode & 0o777:03o}): the key lets anyone"
            f" act as this guest; run chmod 600 {key}")


def load_certificate(path: Path) -> x509.Certificate:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read the certificate {path}: {exc}") from None


def certificate_validity(path: Path) -> tuple[datetime, datetime]:
    """notBefore and notAfter of the certificate in ``path`` (without cryptography)."""
    try:
        return _cert_validity.validity(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read the certificate {path}: {exc}") from None


def _pair_matches(cert_path: Path, key_path: Path) -> bool:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return False
    return public_der(cert.public_key()) == public_der(key.public_key())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
