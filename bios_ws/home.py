"""The state directory of one vBIOS installation: where every file lives.

A home is a directory (mode 0700) holding the marker ``vbios-home.json``, the
database, the attribute registry, the PKI, the development TPM (``tpm/``) and
the key passphrases sealed in the TPM (``tpm/sealed/``). ``Home`` only knows
paths and the marker (which also records the home's TPM: ``"dev"``, an explicit
TCTI, or ``"none"``, and its state store when it is not the SQLite file ``vbios.db``:
``vbios init --store postgresql+psycopg://...``); the files themselves are written by
``bios_ws.pki``, ``bios_ws.launch`` and ``bios_ws.bootstrap``.

With ``"none"`` (``vbios init --no-tpm``, development only) the one key
passphrase lives in a 0600 file, ``secrets/key-passphrase``; with a TPM no
passphrase file exists.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bios_ws.domain.hosts import check_host_name, default_host_name
from bios_ws.errors import KeyUnreadable, StateDirectoryError

MARKER_NAME = "vbios-home.json"
HOME_FORMAT = 1
HOME_ENV = "VBIOS_HOME"
_MAX_PASSPHRASE_BYTES = 1024
_MAX_MARKER_BYTES = 64 * 1024
#: The home's TPM setting: the home's development swtpm, or no TPM at all.
TPM_DEV = "dev"
TPM_NONE = "none"
_TCTI_PREFIXES = ("device:", "swtpm:", "tabrmd:", "mssim:")
#: The marker's key of the state store URL (absent: the SQLite file ``vbios.db``).
STORE_KEY = "store"
#: The marker's key of the name the home registers under in its store.
HOST_KEY = "host"
_MAX_STORE_URL = 1024


@dataclass(frozen=True)
class TpmChoice:
    """Which TPM a home, or one command, uses: ``dev`` (the home's development swtpm),
    ``none`` (no TPM: development only) or an explicit TCTI. Checked when made."""

    setting: str

    def __post_init__(self) -> None:
        check_tpm_setting(self.setting)

    @property
    def is_dev(self) -> bool:
        return self.setting == TPM_DEV

    @property
    def is_none(self) -> bool:
        return self.setting == TPM_NONE

    def __str__(self) -> str:
        return self.setting


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
                f"{path}: no such state directory; run vbios init --home {path} to make it,"
                f" or name the home you have with --home DIR or {HOME_ENV}=DIR"
            )
        marker = path / MARKER_NAME
        if not marker.is_file():
            raise StateDirectoryError(f"{path} is not a vbios state directory")
        home = cls(path)
        home.settings()  # refuse a damaged marker now
        return home

    def settings(self) -> dict[str, object]:
        """The marker's content (format, tpm); StateDirectoryError if damaged."""
        marker = self.marker
        try:
            with marker.open("rb") as handle:
                data = json.loads(handle.read(_MAX_MARKER_BYTES + 1))
        except (OSError, ValueError):
            raise StateDirectoryError(f"{marker} is unreadable or damaged") from None
        if not isinstance(data, dict) or data.get("format") != HOME_FORMAT:
            raise StateDirectoryError(
                f"{self.path} has an unsupported state directory format"
                f" (this vbios reads format {HOME_FORMAT})"
            )
        tpm = data.get("tpm", TPM_NONE)
        if not isinstance(tpm, str) or check_tpm_setting(tpm) != tpm:
            raise StateDirectoryError(f"{marker} names an invalid TPM: {tpm!r}")
        store = data.get(STORE_KEY)
        if store is not None and not _is_store_text(store):
            raise StateDirectoryError(f"{marker} names an invalid state store")
        return data

    @property
    def tpm(self) -> TpmChoice:
        """The home's TPM: its development TPM, a TCTI, or none (homes made before the TPM)."""
        value = self.settings().get("tpm", TPM_NONE)
        assert isinstance(value, str)
        return TpmChoice(value)

    @property
    def uses_tpm(self) -> bool:
        return not self.tpm.is_none

    def record_tpm(self, choice: TpmChoice) -> None:
        """Write the home's TPM into the marker (atomically)."""
        data = self.settings()
        data["tpm"] = choice.setting
        _write_marker(self.marker, data)

    def record_store(self, url: str) -> None:
        """Write the home's state store URL into the marker (atomically); every command
        and ``serve`` then use it (``db_url``). The URL is checked by ``bios_ws.store``
        (no password in it) before it is recorded."""
        if not _is_store_text(url):
            raise StateDirectoryError("invalid state store URL")
        data = self.settings()
        data[STORE_KEY] = url
        _write_marker(self.marker, data)

    def record_host(self, name: str) -> None:
        """Write the name this home registers under in its store (``domain.hosts``)."""
        data = self.settings()
        data[HOST_KEY] = check_host_name(name)
        _write_marker(self.marker, data)

    @property
    def host_name(self) -> str:
        """The home's host name in its store: the one `vbios init` recorded, else (a home
        made before hosts) the machine's name."""
        value = self.settings().get(HOST_KEY)
        if isinstance(value, str):
            return check_host_name(value)
        return default_host_name(socket.gethostname())

    @property
    def recorded_store(self) -> str | None:
        """The store URL ``vbios init --store`` recorded; None: the SQLite file."""
        value = self.settings().get(STORE_KEY)
        return value if isinstance(value, str) else None

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
        """The home's state store: the URL recorded at init, else its SQLite file."""
        return self.recorded_store or f"sqlite:///{self.db_path}"

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
    def crl_file(self) -> Path:
        return self.pki_dir / "crl.pem"

    @property
    def server_cert(self) -> Path:
        return self.pki_dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.pki_dir / "server-key.pem"

    @property
    def transfer_key(self) -> Path:
        """The static key of encrypted capsule delivery (``bios_ws.firmware.transfer``),
        encrypted under the server key's passphrase."""
        return self.pki_dir / "transfer-key.pem"

    @property
    def secrets_dir(self) -> Path:
        return self.path / "secrets"

    @property
    def passphrase_file(self) -> Path:
        return self.secrets_dir / "key-passphrase"

    @property
    def serve_lock(self) -> Path:
        """Held (``flock``) by the process serving this home, with its pid written in."""
        return self.path / "serve.lock"

    @property
    def admin_dir(self) -> Path:
        return self.path / "admin"

    @property
    def bundles_dir(self) -> Path:
        return self.path / "bundles"

    @property
    def tpm_dir(self) -> Path:
        """The development TPM's state (``bios_ws.tpm.devtpm.DevTpm``)."""
        return self.path / "tpm"

    @property
    def sealed_dir(self) -> Path:
        return self.tpm_dir / "sealed"

    def sealed_blob(self, key: str) -> Path:
        """The sealed passphrase of ``key`` ("server" or "ca")."""
        return self.sealed_dir / f"{key}-key.json"

    @property
    def sealed_state(self) -> Path:
        """What the passphrases were sealed to: PCRs, event log, measured files."""
        return self.sealed_dir / "sealed-state.json"

    @property
    def sealed_event_log(self) -> Path:
        """A copy of the boot event log at sealing time."""
        return self.sealed_dir / "binary_bios_measurements"

    @property
    def recovery_file(self) -> Path:
        """The passphrases encrypted under the admin's recovery code (printed once)."""
        return self.sealed_dir / "recovery.json"

    @property
    def attestation_dir(self) -> Path:
        """The attestation key's certificates and record; ``ek-ca/`` holds trusted EK CAs."""
        return self.path / "attestation"

    @property
    def ak_cert(self) -> Path:
        return self.attestation_dir / "ak-cert.pem"

    @property
    def ek_cert(self) -> Path:
        return self.attestation_dir / "ek-cert.pem"

    @property
    def machines_dir(self) -> Path:
        """One directory per domain's machine (``bios_ws.platform``)."""
        return self.path / "machines"

    @property
    def is_initialized(self) -> bool:
        """True once `vbios init` has made the CA (the first key material it writes)."""
        return self.ca_cert.exists()

    def key_passphrase(self, key: str = "ca") -> bytes:
        """The passphrase of ``key`` ("ca" or "server"); KeyUnreadable on any failure.

        With a TPM it is unsealed (``bios_ws.launch.sealing``: measure the service,
        set the service PCR, unseal under the PCR policy); without, it is read from
        the 0600 passphrase file.
        """
        if self.uses_tpm:
            from bios_ws.launch.sealing import unseal_key_passphrase

            return unseal_key_passphrase(self, key)
        return self.file_passphrase()

    def file_passphrase(self) -> bytes:
        """The passphrase of a home without TPM, from its 0600 file."""
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


def check_tpm_setting(setting: str) -> str:
    """``setting`` if it is "dev", "none" or a TCTI we accept; StateDirectoryError if not."""
    if setting in (TPM_DEV, TPM_NONE):
        return setting
    if (setting.startswith(_TCTI_PREFIXES) and len(setting) <= 256
            and setting.isprintable() and not any(c.isspace() for c in setting)):
        return setting
    raise StateDirectoryError(
        f"invalid TPM {setting!r}: expected dev, none, or a TCTI such as"
        " device:/dev/tpmrm0, swtpm:host=127.0.0.1,port=2321 or tabrmd:"
    )


def _is_store_text(value: object) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= _MAX_STORE_URL and value.isprintable()
            and not any(c.isspace() for c in value))


def _write_marker(marker: Path, data: Mapping[str, object] | None = None) -> None:
    content = dict(data) if data is not None else {"format": HOME_FORMAT}
    body = json.dumps(content, indent=2).encode("utf-8") + b"\n"
    tmp = marker.with_name(f".{marker.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, marker)


#: The home's own development swtpm, and no TPM at all (development only).
DEV_TPM = TpmChoice(TPM_DEV)
NO_TPM = TpmChoice(TPM_NONE)
