"""`vbios domain ...`: guest domains and their machines, for the host admin.

Every command runs in-process on the home's store and machines (a server need
not run), as the admin, through the same use cases the SOAP operations use.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bios_ws.cli import cert, domain_firmware, domain_machine, domain_sm, domain_thermal, host
from bios_ws.cli.cert import issue_guest_bundle
from bios_ws.cli.options import (
    HOME_HELP,
    add_guest_cert_option,
    add_platform_options,
    config_from_args,
)
from bios_ws.cli.output import print_json, rfc3339, rfc3339_or_none
from bios_ws.domain.hosts import runs_here
from bios_ws.domain.power import MachineKind, ResetType
from bios_ws.domain.principal import Principal, check_domain_id
from bios_ws.errors import AdminError
from bios_ws.home import Home, resolve_home_path

if TYPE_CHECKING:  # imported where used: `vbios --help` loads no crypto, database or SOAP
    from bios_ws.bootstrap import App
    from bios_ws.service.power import PowerView

Subparsers = argparse._SubParsersAction
ADMIN = Principal.admin()
#: How often `console --follow` looks for new output.
FOLLOW_INTERVAL = 0.5


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", metavar="DIR", help=HOME_HELP)
    add_platform_options(common)
    named = argparse.ArgumentParser(add_help=False, parents=[common])
    named.add_argument("name", metavar="NAME")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")

    domain = commands.add_parser("domain", help="guest domains and their machines")
    sub = domain.add_subparsers(dest="domain_command", required=True, metavar="COMMAND")
    create = sub.add_parser("create", parents=[named],
                            help="create a domain, its machine, and its client bundle")
    create.add_argument("--machine", choices=[k.value for k in MachineKind],
                        default=MachineKind.SIMULATED.value,
                        help="simulated (no process) or a real QEMU + OVMF guest"
                             " (default %(default)s)")
    create.add_argument("--out", metavar="BUNDLE",
                        help="bundle directory (default: <home>/bundles/NAME)")
    create.add_argument("--enroll", action="store_true",
                        help="print a one-time bootstrap URI for the guest to enroll with,"
                             " instead of writing a bundle")
    add_guest_cert_option(create)
    create.add_argument("--no-firmware", action="store_true",
                        help="no firmware image yet (provisioning state S1): the machine"
                             " gets it at its first contact (enrollment) or with"
                             " `vbios domain firmware-assign`")
    cert.add_enroll_options(create)
    create.add_argument("--disk", action="append", type=Path, default=[], metavar="IMAGE",
                        help="attach a read-only disk (an image or a directory; repeatable,"
                             " the first is the boot disk)")
    create.set_defaults(run=run_create)
    sub.add_parser("firmware-assign", parents=[named],
                   help="give a domain created --no-firmware its firmware image (S1 -> S2)"
                   ).set_defaults(run=run_firmware_assign)
    enroll = sub.add_parser("enroll", parents=[named],
                            help="a one-time bootstrap URI the guest enrolls with")
    cert.add_enroll_options(enroll)
    enroll.set_defaults(run=cert.run_enroll)
    sub.add_parser("list", parents=[common, as_json], help="list domains").set_defaults(
        run=run_list)
    sub.add_parser("show", parents=[named, as_json],
                   help="a domain: its machine, power and settings version").set_defaults(
        run=run_show)
    sub.add_parser("delete", parents=[named],
                   help="delete a domain (its guest is turned off first)").set_defaults(
        run=run_delete)
    sub.add_parser("apply-pending", parents=[named],
                   help="apply pending settings now, without a reset (audited)").set_defaults(
        run=run_apply_pending)
    console = sub.add_parser("console", parents=[named],
                             help="what the domain's firmware printed on its serial console")
    console.add_argument("--follow", action="store_true", help="keep printing new output")
    console.add_argument("--bytes", type=int, default=65536, metavar="N",
                         help="print at most the last N bytes (default %(default)s)")
    console.set_defaults(run=run_console)

    domain_machine.register(sub, named, _run_app)
    domain_firmware.register(sub, common, _run_app)
    domain_sm.register(sub, common, _run_app)
    domain_thermal.register(sub, common, _run_app)
    host.register_take(sub, named, _run_app)

    power = sub.add_parser("power", help="a domain's power state and power requests")
    power_sub = power.add_subparsers(dest="power_command", required=True, metavar="COMMAND")
    power_sub.add_parser("get", parents=[named, as_json],
                         help="state, last reset cause and time, pending changes"
                         ).set_defaults(run=run_power_get)
    reset = power_sub.add_parser("reset", parents=[named, as_json], help="a power request")
    reset.add_argument("reset_type", choices=[t.value for t in ResetType], metavar="TYPE",
                       help=", ".join(t.value for t in ResetType))
    reset.set_defaults(run=run_power_reset)


def _run_app(args: argparse.Namespace, action: domain_machine.Action) -> int:
    with _app(args) as app:
        return action(app, args)


@contextmanager
def _app(args: argparse.Namespace) -> Iterator[App]:
    from bios_ws.bootstrap import bootstrap

    home = Home.open(resolve_home_path(args.home))
    app = bootstrap(config_from_args(args, home))
    try:
        yield app
    finally:
        app.close()


def _name(args: argparse.Namespace) -> str:
    return check_domain_id(args.name)


def run_create(args: argparse.Namespace) -> int:
    from bios_ws.launch.permissions import check_home_permissions
    from bios_ws.pki import check_bundle_dir
    from bios_ws.platform.disks import check_disk
    from bios_ws.service.credentials import CredentialService
    from bios_ws.service.domains import DomainService

    home = Home.open(resolve_home_path(args.home))
    name = _name(args)
    out = Path(args.out).expanduser() if args.out else home.bundles_dir / name
    # Refuse keys others could read or swap, or a used bundle directory, before
    # anything changes (an unreadable CA key is refused below, also before).
    check_home_permissions(home)
    if not args.enroll:
        check_bundle_dir(out)
    kind = MachineKind(args.machine)
    disks = [check_disk(disk) for disk in args.disk]  # refused before anything is made
    with _app(args) as app:
        credentials = app.use(CredentialService)
        credentials.check_issuer()  # an unreadable CA key is refused before anything changes
        domains = app.use(DomainService)
        domains.create(ADMIN, name, kind, firmware=not args.no_firmware)
        for disk in disks:
            domains.attach_disk(ADMIN, name, disk)
        if args.enroll:
            uri = cert.bootstrap_uri(app, name, args)
            print(f"created domain {name} ({kind.value} machine, off"
                  f"{', no firmware image yet: S1' if args.no_firmware else ''})")
            cert.print_bootstrap_uri(name, uri, args.minutes)
            return 0
        try:
            bundle = issue_guest_bundle(credentials, name, out, ADMIN)
        except AdminError as exc:
            raise AdminError(f"{exc.message}; domain {name} was created without a bundle:"
                             f" issue one with vbios cert issue --domain {name} --out DIR"
                             ) from None
    print(f"created domain {name} ({kind.value} machine, off)")
    print(f"  bundle: {out} (cert.pem, key.pem 0600, ca.pem; serial"
          f" {bundle.record.serial_hex})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from bios_ws.service.domains import DomainService

    with _app(args) as app:
        domains = app.use(DomainService).list(ADMIN)
        machines = {d.domain_id: app.use(DomainService).show(ADMIN, d.domain_id).machine
                    for d in domains}
    if args.json:
        rows = [{"domain": d.domain_id, "version": d.version,
                 "created_at": rfc3339(d.created_at),
                 "machine": machines[d.domain_id].kind.value,
                 "host": machines[d.domain_id].host} for d in domains]
        print_json(rows)
        return 0
    if not domains:
        print("no domains")
        return 0
    width = max(len("DOMAIN"), *(len(d.domain_id) for d in domains))
    print(f"{'DOMAIN':<{width}}  {'VERSION':>7}  {'MACHINE':<9}  {'CREATED':<20}  HOST")
    for d in domains:
        kind = machines[d.domain_id].kind.value
        print(f"{d.domain_id:<{width}}  {d.version:>7}  {kind:<9}  {rfc3339(d.created_at):<20}"
              f"  {machines[d.domain_id].host or '-'}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from bios_ws.service.domains import DomainService
    from bios_ws.service.enrollment import EnrollmentService
    from bios_ws.service.power import PowerService

    name = _name(args)
    with _app(args) as app:
        details = app.use(DomainService).show(ADMIN, name)
        if not runs_here(details.machine, app.config.host):  # its host has its live state
            return _print_fields({"domain": name, "machine": details.machine.kind.value,
                                  "host": details.machine.host,
                                  "settings_version": details.version,
                                  "created_at": rfc3339(details.created_at),
                                  "power_state": details.machine.state.value}, as_json=args.json)
        power = app.use(PowerService).get_domain_power(ADMIN, name)
        provisioning = app.use(EnrollmentService).provisioning(ADMIN, name)
        console = app.config.home.machines_dir / name
    not_after = provisioning.certificate_not_after
    data: dict[str, Any] = {
        "domain": name, "machine": details.machine.kind.value, "host": details.machine.host,
        "settings_version": details.version, "created_at": rfc3339(details.created_at),
        **_power_dict(power), "machine_dir": str(console),
        "provisioning_state": provisioning.state.value,
        "provisioning_next": provisioning.next_step,
        "certificate_not_after": rfc3339_or_none(not_after),
    }
    return _print_fields(data, as_json=args.json)


def run_firmware_assign(args: argparse.Namespace) -> int:
    from bios_ws.service.domains import DomainService

    name = _name(args)
    with _app(args) as app:
        assigned = app.use(DomainService).assign_firmware(ADMIN, name)
    print(f"assigned the firmware image of {name}" if assigned
          else f"{name} has its firmware image already")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from bios_ws.service.domains import DomainService

    name = _name(args)
    with _app(args) as app:
        home = app.config.home
        app.use(DomainService).delete(ADMIN, name)
    print(f"deleted domain {name} (its machine was turned off and removed;"
          " every certificate it had is revoked)")
    bundle = home.bundles_dir / name
    if _remove_bundle(bundle):
        print(f"  removed its bundle {bundle}")
    return 0


def run_apply_pending(args: argparse.Namespace) -> int:
    from bios_ws.service.bios import BiosService

    name = _name(args)
    with _app(args) as app:
        version = app.use(BiosService).apply_pending(ADMIN, name)
    print(f"applied the pending settings of {name}: settings version {version}")
    return 0


def run_console(args: argparse.Namespace) -> int:
    from bios_ws.service.power import PowerService

    name = _name(args)
    with _app(args) as app:
        power = app.use(PowerService)
        seen = power.console(ADMIN, name, args.bytes)
        _write(seen)
        while args.follow:
            time.sleep(FOLLOW_INTERVAL)
            now = power.console(ADMIN, name, max(args.bytes, 1 << 20))
            _write(_new_part(seen, now))
            seen = now
    return 0


def run_power_get(args: argparse.Namespace) -> int:
    from bios_ws.service.power import PowerService

    name = _name(args)
    with _app(args) as app:
        view = app.use(PowerService).get_domain_power(ADMIN, name)
    return _print_fields(_power_dict(view), as_json=args.json)


def run_power_reset(args: argparse.Namespace) -> int:
    from bios_ws.service.power import PowerService

    name = _name(args)
    with _app(args) as app:
        outcome = app.use(PowerService).reset_domain(ADMIN, name, ResetType(args.reset_type))
    if args.json:
        print_json({"power_state": outcome.state.value,
                    "pending_changes": outcome.pending_changes, "message": outcome.message})
        return 0
    print(f"{name}: {outcome.message}")
    return 0


def _power_dict(view: PowerView) -> dict[str, Any]:
    return {
        "power_state": view.state.value,
        "last_reset_cause": None if view.last_reset_cause is None
        else view.last_reset_cause.value,
        "last_reset_time": rfc3339_or_none(view.last_reset_time),
        "pending_changes": view.pending_changes,
    }


def _print_fields(data: dict[str, Any], *, as_json: bool) -> int:
    """JSON, or one aligned "field  value" line each."""
    if as_json:
        print_json(data)
        return 0
    width = max(len(key) for key in data)
    for key, value in data.items():
        print(f"{key.replace('_', ' ').ljust(width)}  {_text(value)}")
    return 0


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _write(data: bytes) -> None:
    if data:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def _new_part(seen: bytes, now: bytes) -> bytes:
    """What ``now`` adds after ``seen`` (the console log is a sliding window: find where
    the end of what was printed lies in it)."""
    if now.startswith(seen):
        return now[len(seen):]
    anchor = seen[-4096:]
    found = now.find(anchor) if anchor else -1
    return now if found < 0 else now[found + len(anchor):]


def _remove_bundle(out: Path) -> bool:
    """Remove the bundle files in ``out`` (and ``out`` if then empty); True if any were."""
    from bios_ws.pki import BUNDLE_FILES

    removed = False
    for name in BUNDLE_FILES:
        try:
            (out / name).unlink()
            removed = True
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise AdminError(f"cannot remove {out / name}: {exc.strerror or exc}") from None
    with suppress(OSError):
        out.rmdir()
    return removed
