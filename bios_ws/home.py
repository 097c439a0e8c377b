"""The state directory of one vBIOS installation: where every file lives.

A home is a directory (mode 0700) holding the marker ``vbios-home.json``, the
database, the attribute registry, the PKI and the key passphrase. ``Home``
only knows paths and the marker; the files themselves are written by
``bios_ws.pki`` and ``bios_ws.bootstrap``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bios_ws.errors import KeyUnreadable, StateDirectoryError

MARKER_NAME = "vbios-home.json"
HOME_FORMAT = 1
HOME_ENV = "VBIOS_HOME"
_MAX_PASSPHRASE_BYTES = 1024


@dataclass(frozen=True)
class Home:
    """An opened (or just created) state directory; ``path`` is absolute."""

    path: Path

    @classmethod
    def create(cls, path: Path) -> Home:
        """Make ``path`` a state directory; an existing foreign directory is refused."""
        path = Path(path).expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise StateDirectoryError(f"{path} exists and is not a directory")
        marker = path / MARKER_NAME
        if path.is_dir():
            if marker.is_file():
                return cls.open(path)
            if any(path.iterdir()):
                raise StateDirectoryError(
                    f"{path} is not empty and is not a vbios state directory;"
                    " choose another --home"
                )
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.chmod(0o700)
            _write_marker(marker)
        except OSError as exc:
            raise StateDirectoryError(f"cannot create state directory {path}: "
                                      f"{exc.strerror or exc}") from None
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> Home:
        """Open an existing state directory, or refuse with one clear sentence."""
        path = Path(path).expanduser().absolute()
        if not path.is_dir():
            raise StateDirectoryError(
                f"{path}: no such state directory; run vbios init --home {path}"
            )
        marker = path / MARKER_NAME
        if not marker.is_file():
            raise StateDirectoryError(f"{path} is not a vbios state directory")
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise StateDirectoryError(f"{marker} is unreadable or damaged") from None
        if not isinstance(data, dict) or data.get("format") != HOME_FORMAT:
            raise StateDirectoryError(
                f"{path} has an unsupported state directory format"
                f" (this vbios reads format {HOME_FORMAT})"
            )
        return cls(path)

    @staticmethod
    def default_path() -> Path:
        """The last fallback when neither --home nor VBIOS_HOME is given."""
        return Path.home() / ".local" / "share" / "vbios"

    # -- layout ----------------------------------------------------------------

    @property
    def marker(self) -> Path:
        return self.path / MARKER_NAME

    @property
    def db_path(self) -> Path:
        return self.path / "vbios.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def registry_path(self) -> Path:
        return self.path / "registry.json"

    @property
    def pki_dir(self) -> Path:
        return self.path / "pki"

    @property
    def ca_cert(self) -> Path:
        return self.pki_dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.pki_dir / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.pki_dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.pki_dir / "server-key.pem"

    @property
    def secrets_dir(self) -> Path:
        return self.path / "secrets"

    @property
    def passphrase_file(self) -> Path:
        return self.secrets_dir / "key-passphrase"

    @property
    def admin_dir(self) -> Path:
        return self.path / "admin"

    @property
    def bundles_dir(self) -> Path:
        return self.path / "bundles"

    @property
    def is_initialized(self) -> bool:
        """True once `vbios init` has made the CA (the first key material it writes)."""
        return self.ca_cert.exists()

    def key_passphrase(self) -> bytes:
        """The passphrase of the CA and server keys; KeyUnreadable on any failure."""
        path = self.passphrase_file
        try:
            with path.open("rb") as handle:
                mode = os.fstat(handle.fileno()).st_mode
                data = handle.read(_MAX_PASSPHRASE_BYTES + 1)
        except OSError as exc:
            raise KeyUnreadable(
                f"cannot read the key passphrase {path}: {exc.strerror or exc}"
            ) from None
        if not stat.S_ISREG(mode):
            raise KeyUnreadable(f"key passphrase {path} is not a regular file")
        if mode & 0o077:
            raise KeyUnreadable(
                f"key passphrase {path} is accessible by others"
                f" (mode {stat.S_IMODE(mode):04o}); it must be 0600"
            )
        passphrase = data.strip()
        if not passphrase or len(data) > _MAX_PASSPHRASE_BYTES:
            raise KeyUnreadable(f"key passphrase {path} is empty or damaged")
        return passphrase


def resolve_home_path(
    explicit: str | Path | None, environ: Mapping[str, str] | None = None
) -> Path:
    """--home, else VBIOS_HOME, else the default; read when called, never at import."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ if environ is None else environ
    from_env = env.get(HOME_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Home.default_path()


def _write_marker(marker: Path) -> None:
    body = json.dumps({"format": HOME_FORMAT}, indent=2).encode("utf-8") + b"\n"
    tmp = marker.with_name(f".{marker.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, marker)
