"""The command line's shared options, and the one place they become a ``Config``.

The environment is read here, when a command runs (``$VBIOS_HOME``,
``$VBIOS_TPM``), never at import and never below the CLI.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bios_ws.config import (
    DEFAULT_GUEST_CERT_DAYS,
    DEFAULT_INTEGRITY_INTERVAL,
    MAX_GUEST_CERT_DAYS,
    Config,
    PlatformOptions,
)
from bios_ws.domain.events import EventRetention
from bios_ws.errors import AdminError, StateDirectoryError
from bios_ws.home import NO_TPM, TPM_NONE, Home, TpmChoice
from bios_ws.launch.warnings import TPM_ENV
from bios_ws.server.options import (
    ACCESS_LOG_STDERR,
    DEFAULT_BIND,
    Bounds,
    ServerOptions,
    parse_bind,
)

HOME_HELP = "state directory (default: $VBIOS_HOME, else ~/.local/share/vbios)"


def add_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", metavar="DIR", help=HOME_HELP)


#: What --no-tpm means for a command that creates a home (init, devrun).
NO_TPM_CREATING = ("DEVELOPMENT ONLY: the new home gets no TPM: its key passphrase is a 0600"
                   " file, not sealed, and nothing is measured (integrity Untrusted)")
#: What --no-tpm means for a command that serves a home.
NO_TPM_SERVING = ("serve a home created with --no-tpm (development only: its key passphrase"
                  " is its 0600 file); refused for a home with a TPM")


def add_tpm_options(parser: argparse.ArgumentParser, *, for_init: bool,
                    no_tpm_help: str | None = None) -> None:
    """--tpm TCTI and --no-tpm (mutually exclusive); $VBIOS_TPM is read when the command runs.

    ``no_tpm_help`` says what --no-tpm means for the command (default: for one creating a
    home if ``for_init``, else for one serving it)."""
    group = parser.add_mutually_exclusive_group()
    default = ("dev: this home's development swtpm, started by init" if for_init
               else "the TPM recorded in the home")
    group.add_argument("--tpm", metavar="TCTI",
                       help="TPM to use: dev, device:/dev/tpmrm0, swtpm:host=H,port=N or tabrmd:"
                            f" (default: $VBIOS_TPM, else {default})")
    group.add_argument("--no-tpm", action="store_true",
                       help=no_tpm_help or (NO_TPM_CREATING if for_init else NO_TPM_SERVING))


def chosen_tpm(args: argparse.Namespace) -> TpmChoice | None:
    """The TPM asked for: --no-tpm, else --tpm, else $VBIOS_TPM, else None (the home's).

    No TPM is only ever the result of an explicit --no-tpm.
    """
    if getattr(args, "no_tpm", False):
        return NO_TPM
    chosen = getattr(args, "tpm", None) or os.environ.get(TPM_ENV) or None
    if chosen is None:
        return None
    if chosen == TPM_NONE:
        raise AdminError("a home without TPM is chosen with --no-tpm only"
                         f" (not with --tpm none or {TPM_ENV}=none)")
    try:
        return TpmChoice(chosen)
    except StateDirectoryError as exc:
        raise AdminError(exc.message) from None


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=DEFAULT_BIND, type=_bind_arg, metavar="HOST:PORT",
                        help=f"address to listen on (default {DEFAULT_BIND}; port 0: any free"
                             " port, printed at start)")
    parser.add_argument("--workers", type=_positive_int, default=ServerOptions.workers,
                        metavar="N", help="worker processes (default %(default)s)")
    parser.add_argument("--threads", type=_positive_int, default=ServerOptions.threads,
                        metavar="N", help="threads per worker that run calls (default"
                                          " %(default)s)")
    parser.add_argument("--drain-timeout", type=_seconds, default=ServerOptions.drain_timeout,
                        metavar="SECONDS", help="a stopping worker lets calls in progress"
                        " finish for this long (default %(default)s)")
    parser.add_argument("--thermal-interval", type=_interval,
                        default=ServerOptions.thermal_interval, metavar="SECONDS",
                        help="each worker evaluates the thermal policy this often (default"
                             " %(default)s)")
    parser.add_argument("--remote-timeout", type=_interval,
                        default=ServerOptions.remote_timeout, metavar="SECONDS",
                        help="a call routed to a remote vBIOS answers RemoteUnavailable after"
                             " this long (default %(default)s; docs/routing.md)")
    add_bound_options(parser)
    add_telemetry_options(parser)
    add_integrity_options(parser)
    add_platform_options(parser)
    add_guest_cert_option(parser)
    add_event_options(parser)


#: The access log and the metrics files, in the home.
ACCESS_LOG_PATH = Path("log") / "access.log"
METRICS_DIR = Path("run") / "metrics"
ACCESS_LOG_OFF = "off"


def add_telemetry_options(parser: argparse.ArgumentParser) -> None:
    defaults = ServerOptions()
    group = parser.add_argument_group("access log and metrics (GET /metrics: admin only)")
    group.add_argument("--access-log", metavar="PATH|-|off",
                       help="one JSON line per call (never a body or a secret): a file, -"
                            f" for standard error, or off (default: HOME/{ACCESS_LOG_PATH})")
    group.add_argument("--access-log-max-bytes", type=_positive_count,
                       default=defaults.access_log_max_bytes, metavar="BYTES",
                       help="rotate the access log file past this size (default"
                            " %(default)s)")
    group.add_argument("--access-log-backups", type=_backups,
                       default=defaults.access_log_backups, metavar="N",
                       help="rotated access log files kept (default %(default)s)")


def _backups(text: str) -> int:
    if not text.isdigit() or int(text) > 1000:
        raise argparse.ArgumentTypeError(f"expected 0 to 1000 files, not {text!r}")
    return int(text)


def with_telemetry(server: ServerOptions, args: argparse.Namespace, home: Home
                   ) -> ServerOptions:
    """``server`` with the access log and the metrics directory of ``home`` and ``args``."""
    chosen = getattr(args, "access_log", None)
    access_log: Path | str | None
    if chosen is None:
        access_log = home.path / ACCESS_LOG_PATH
    elif chosen == ACCESS_LOG_OFF:
        access_log = None
    elif chosen == ACCESS_LOG_STDERR:
        access_log = ACCESS_LOG_STDERR
    else:
        access_log = Path(chosen).absolute()
    max_bytes = getattr(args, "access_log_max_bytes", ServerOptions.access_log_max_bytes)
    if max_bytes < 65_536:
        raise AdminError("--access-log-max-bytes: at least 65536")
    return dataclasses.replace(
        server, access_log=access_log, access_log_max_bytes=max_bytes,
        access_log_backups=getattr(args, "access_log_backups", server.access_log_backups),
        metrics_dir=home.path / METRICS_DIR)


def add_event_options(parser: argparse.ArgumentParser) -> None:
    defaults = EventRetention()
    group = parser.add_argument_group("events")
    group.add_argument("--event-retention-days", type=_positive_count,
                       default=defaults.max_age.days, metavar="DAYS",
                       help="events older than this are removed (default %(default)s)")
    group.add_argument("--event-retention-count", type=_positive_count,
                       default=defaults.max_events, metavar="N",
                       help="at most this many events are kept, the newest"
                            " (default %(default)s)")


def event_retention_from_args(args: argparse.Namespace) -> EventRetention:
    defaults = EventRetention()
    days = getattr(args, "event_retention_days", defaults.max_age.days)
    if days > 36500:
        raise AdminError("--event-retention-days: at most 36500")
    return EventRetention(timedelta(days=days),
                          getattr(args, "event_retention_count", defaults.max_events))


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected seconds above 0, not {text!r}")
    return value


def _positive_count(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 1 << 40:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return int(text)


#: The connection bounds: option, field of ``Bounds``, parser, unit, what it bounds.
_BOUND_OPTIONS: tuple[tuple[str, str, Callable[[str], float], str, str], ...] = (
    ("--handshake-timeout", "handshake_timeout", _positive_seconds, "SECONDS",
     "to complete the TLS handshake"),
    ("--head-timeout", "head_timeout", _positive_seconds, "SECONDS",
     "to send a whole request head"),
    ("--idle-timeout", "idle_timeout", _positive_seconds, "SECONDS",
     "a kept-alive connection waits for its next request"),
    ("--body-min-rate", "body_min_rate", _positive_count, "BYTES/S",
     "the slowest request body accepted (after --body-grace)"),
    ("--body-grace", "body_grace", _positive_seconds, "SECONDS",
     "before --body-min-rate applies"),
    ("--write-timeout", "write_timeout", _positive_seconds, "SECONDS",
     "to write a response out"),
    ("--max-head-bytes", "max_head_bytes", _positive_count, "BYTES",
     "of request line and headers (larger: 431)"),
    ("--max-body-bytes", "max_body_bytes", _positive_count, "BYTES",
     "of request body (larger: 413 SOAP fault)"),
    ("--discard-limit", "discard_limit", _positive_count, "BYTES",
     "of an oversized body read and dropped before the 413"),
    ("--max-connections", "max_connections", _positive_count, "N",
     "open connections per worker"),
)


def add_bound_options(parser: argparse.ArgumentParser) -> None:
    """What one connection may cost: every bound of ``Bounds`` as an option."""
    group = parser.add_argument_group("connection bounds (each connection, each worker)")
    defaults = Bounds()
    for flag, name, parse, unit, what in _BOUND_OPTIONS:
        group.add_argument(flag, dest=f"bound_{name}", type=parse,
                           default=getattr(defaults, name), metavar=unit,
                           help=f"{what} (default %(default)s)")


def bounds_from_args(args: argparse.Namespace) -> Bounds:
    defaults = Bounds()
    values = {name: getattr(args, f"bound_{name}", getattr(defaults, name))
              for _, name, _, _, _ in _BOUND_OPTIONS}
    bounds = Bounds(**values)
    if bounds.discard_limit < bounds.max_body_bytes:
        raise AdminError("--discard-limit must be at least --max-body-bytes")
    return bounds


def add_guest_cert_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--guest-cert-days", type=_cert_days, default=DEFAULT_GUEST_CERT_DAYS,
                        metavar="DAYS",
                        help="validity of the guest certificates issued (1-365, default"
                             " %(default)s; guests renew when a third is left)")


def _cert_days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_GUEST_CERT_DAYS:
        raise argparse.ArgumentTypeError(f"give 1 to {MAX_GUEST_CERT_DAYS} days, not {text!r}")
    return int(text)


def add_integrity_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--integrity-interval", type=_seconds,
                        default=DEFAULT_INTEGRITY_INTERVAL, metavar="SECONDS",
                        help="re-check the measurements before a state change when the last"
                             " check is older than this (default %(default)s)")
    parser.add_argument("--event-log", metavar="FILE",
                        help="the platform's boot event log (default: the development TPM's,"
                             " or /sys/kernel/security/tpm0/binary_bios_measurements for a"
                             " device TPM)")


def add_platform_options(parser: argparse.ArgumentParser) -> None:
    """How machines run (the defaults suit Debian's qemu-system-x86 and ovmf packages)."""
    defaults = PlatformOptions()
    group = parser.add_argument_group("machines")
    group.add_argument("--graceful-timeout", type=_seconds, default=defaults.graceful_timeout,
                       metavar="SECONDS", help="a graceful shutdown turns the power off after"
                       " this long without the guest obeying (default %(default)s)")
    group.add_argument("--boot-seconds", type=_seconds, default=defaults.boot_seconds,
                       metavar="SECONDS", help="a simulated machine's boot time"
                       " (default %(default)s)")
    group.add_argument("--firmware-trial-timeout", type=_positive_seconds,
                       default=defaults.firmware_trial_timeout, metavar="SECONDS",
                       help="a qemu machine trying a new firmware image rolls back when its"
                            " firmware reaches no boot attempt within this long"
                            " (default %(default)s)")
    group.add_argument("--qemu", default=defaults.qemu_binary, metavar="BINARY",
                       help="QEMU for qemu machines (default %(default)s)")
    group.add_argument("--ovmf-code", type=Path, default=defaults.ovmf_code, metavar="FILE",
                       help="OVMF firmware code (default %(default)s)")
    group.add_argument("--ovmf-vars", type=Path, default=defaults.ovmf_vars, metavar="FILE",
                       help="OVMF variable store template (default %(default)s)")
    group.add_argument("--secure-boot-keys", default=defaults.secure_boot_keys, metavar="SET",
                       help="the Secure Boot keys of domains without their own: snakeoil"
                            " (Debian's public test key: development only), none, or"
                            " template:PATH (an OVMF store's keys, e.g."
                            " /usr/share/OVMF/OVMF_VARS_4M.ms.fd) (default %(default)s)")


def platform_from_args(args: argparse.Namespace) -> PlatformOptions:
    defaults = PlatformOptions()
    return PlatformOptions(
        qemu_binary=getattr(args, "qemu", defaults.qemu_binary),
        ovmf_code=getattr(args, "ovmf_code", defaults.ovmf_code),
        ovmf_vars=getattr(args, "ovmf_vars", defaults.ovmf_vars),
        graceful_timeout=getattr(args, "graceful_timeout", defaults.graceful_timeout),
        boot_seconds=getattr(args, "boot_seconds", defaults.boot_seconds),
        firmware_trial_timeout=getattr(args, "firmware_trial_timeout",
                                       defaults.firmware_trial_timeout),
        secure_boot_keys=getattr(args, "secure_boot_keys", defaults.secure_boot_keys),
    )


def config_from_args(args: argparse.Namespace, home: Home) -> Config:
    """The configuration a command runs with: ``home`` and the options it was given."""
    server = ServerOptions()
    if getattr(args, "bind", None) is not None:
        server = ServerOptions(bind=args.bind, workers=args.workers, threads=args.threads,
                               drain_timeout=args.drain_timeout,
                               thermal_interval=args.thermal_interval,
                               remote_timeout=args.remote_timeout,
                               bounds=bounds_from_args(args))
        server = with_telemetry(server, args, home)
    event_log = getattr(args, "event_log", None)
    return Config.of(
        home, tpm=chosen_tpm(args), server=server,
        event_log=Path(event_log) if event_log else None,
        integrity_interval=getattr(args, "integrity_interval", DEFAULT_INTEGRITY_INTERVAL),
        platform=platform_from_args(args),
        guest_cert_days=getattr(args, "guest_cert_days", DEFAULT_GUEST_CERT_DAYS),
        event_retention=event_retention_from_args(args),
    )


def _bind_arg(text: str) -> str:
    try:
        parse_bind(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive_int(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 256:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to 256, not {text!r}")
    return int(text)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds from 0.1 to 3600, not {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 86400, not {text!r}")
    return value
