"""One typed configuration of a vBIOS process, made in one place.

The CLI parses its arguments into a ``Config`` (``bios_ws.cli.options``);
``bios_ws.bootstrap.bootstrap`` builds the whole object graph from it. Nothing
below reads the environment or the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bios_ws.domain.events import EventRetention
from bios_ws.home import Home, TpmChoice
from bios_ws.server.options import ServerOptions

#: Guest certificates are short-lived: the guest renews them when a third is left.
DEFAULT_GUEST_CERT_DAYS = 30
MAX_GUEST_CERT_DAYS = 365

#: Before a state change, the measurements are re-checked if older than this (seconds).
DEFAULT_INTEGRITY_INTERVAL = 10.0
OVMF_DIR = Path("/usr/share/OVMF")


@dataclass(frozen=True)
class PlatformOptions:
    """How machines run: the QEMU + OVMF guests, and the simulated ones."""

    qemu_binary: str = "qemu-system-x86_64"
    #: Firmware code (read-only) and the variable-store template each machine copies.
    ovmf_code: Path = OVMF_DIR / "OVMF_CODE_4M.fd"
    ovmf_vars: Path = OVMF_DIR / "OVMF_VARS_4M.fd"
    memory_mib: int = 256
    #: Seconds a graceful shutdown waits for the guest before turning the power off.
    graceful_timeout: float = 30.0
    #: Seconds a simulated machine takes from power-on to running firmware.
    boot_seconds: float = 2.0
    #: Bytes of serial console kept per machine (in two rotating files of half this size).
    console_bytes: int = 1024 * 1024
    #: The watchdog's polling period, and how long a guest may stay unresponsive or in
    #: QEMU's internal-error state before it is killed.
    watchdog_interval: float = 1.0
    hang_timeout: float = 15.0
    #: The Secure Boot keys a domain's firmware gets unless the domain has its own:
    #: "snakeoil" (Debian's OVMF test key as PK, KEK and db), "none" (setup mode), or
    #: "template:PATH" (the keys of an OVMF variable-store template, e.g. Microsoft's).
    secure_boot_keys: str = "snakeoil"
    #: The cores of a machine whose ProcCores setting is "All".
    all_cores: int = 1
    #: Seconds a trial boot of a new firmware image (a qemu machine's slot) has to reach its
    #: first boot attempt (the boot manager's first ``BdsDxe:`` line on the serial console).
    firmware_trial_timeout: float = 60.0


@dataclass(frozen=True)
class Config:
    """Everything a vBIOS process is built from."""

    home: Home
    #: The TPM this process uses: the command's choice, else the home's own.
    tpm: TpmChoice
    #: The state store (SQLAlchemy URL): the home's SQLite file by default.
    store_url: str
    server: ServerOptions = field(default_factory=ServerOptions)
    #: The platform's boot event log, when the TPM does not tell where it is.
    event_log: Path | None = None
    integrity_interval: float = DEFAULT_INTEGRITY_INTERVAL
    platform: PlatformOptions = field(default_factory=PlatformOptions)
    #: Validity of the guest certificates this process issues.
    guest_cert_days: int = DEFAULT_GUEST_CERT_DAYS
    #: How long events are kept (a serving process prunes the rest periodically).
    event_retention: EventRetention = field(default_factory=EventRetention)
    #: The fleet host this process is (``domain.hosts``): the home's; None: no fleet host.
    host: str | None = None

    @classmethod
    def of(
        cls, home: Home, *, tpm: TpmChoice | None = None, store_url: str | None = None,
        server: ServerOptions | None = None, event_log: Path | None = None,
        integrity_interval: float = DEFAULT_INTEGRITY_INTERVAL,
        platform: PlatformOptions | None = None,
        guest_cert_days: int = DEFAULT_GUEST_CERT_DAYS,
        event_retention: EventRetention | None = None,
    ) -> Config:
        """The configuration of ``home``; ``tpm`` overrides the home's own TPM."""
        return cls(
            home=home,
            tpm=tpm if tpm is not None else home.tpm,
            store_url=store_url or home.db_url,
            server=server or ServerOptions(),
            event_log=event_log,
            integrity_interval=integrity_interval,
            platform=platform or PlatformOptions(),
            guest_cert_days=guest_cert_days,
            event_retention=event_retention or EventRetention(),
            host=home.host_name,
        )
