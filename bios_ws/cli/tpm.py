"""`vbios tpm start|stop|status|reboot|reseal`: the home's TPM.

start, stop, status and reboot drive the development TPM (swtpm) of a home;
reseal (``bios_ws.cli.launch``) applies to whichever TPM the home uses. A
``--no-tpm`` home answers the same one line for each (status answers it,
the others refuse with it); a home on a real TPM has no development TPM to
drive. The home is resolved when the command runs (--home, else VBIOS_HOME,
else the default); refusals are ``VbiosError``s, printed as one line by
``bios_ws.cli``.
"""

from __future__ import annotations

import argparse

from bios_ws.cli.options import add_home
from bios_ws.cli.output import print_json
from bios_ws.errors import AdminError
from bios_ws.home import Home, resolve_home_path
from bios_ws.tpm.devtpm import DevTpm, DevTpmStatus

__all__ = ["register"]

Subparsers = argparse._SubParsersAction


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    home_option = argparse.ArgumentParser(add_help=False)
    add_home(home_option)

    tpm = commands.add_parser(
        "tpm", help="the home's TPM: the development swtpm's lifecycle, reseal",
        description="The home's TPM: start, stop, status and reboot drive the development"
                    " TPM (swtpm) of a home; reseal applies to whichever TPM the home uses.")
    tpm_commands = tpm.add_subparsers(dest="tpm_command", required=True, metavar="COMMAND")
    start = tpm_commands.add_parser(
        "start", parents=[home_option],
        help="start the development TPM (provisioned at first start) and boot it")
    start.set_defaults(run=run_start)
    stop = tpm_commands.add_parser("stop", parents=[home_option],
                                   help="stop the development TPM")
    stop.set_defaults(run=run_stop)
    status = tpm_commands.add_parser("status", parents=[home_option],
                                     help="tell whether the development TPM runs, and where")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=run_status)
    reboot = tpm_commands.add_parser(
        "reboot", parents=[home_option],
        help="simulate a platform reset (PCRs cleared) and replay the boot")
    reboot.set_defaults(run=run_reboot)

    from bios_ws.cli import launch

    launch.register_reseal(tpm_commands)


def no_tpm_line(home: Home) -> str:
    """The one answer of every TPM command on a home without TPM."""
    return f"{home.path}: this home has no TPM (created with --no-tpm)"


def _home(args: argparse.Namespace) -> Home:
    return Home.open(resolve_home_path(args.home))


def _device(args: argparse.Namespace) -> DevTpm:
    """The home's development TPM; a home without TPM, or on a real one, is refused.
    A directory not yet initialized (no TPM recorded) may start one."""
    home = _home(args)
    if home.is_initialized or home.uses_tpm:
        if not home.uses_tpm:
            raise AdminError(no_tpm_line(home))
        if not home.tpm.is_dev:
            raise AdminError(f"{home.path}: this home uses the TPM {home.tpm},"
                             " not a development TPM: nothing to start, stop or reboot")
    return DevTpm(home.tpm_dir)


def _describe(status: DevTpmStatus) -> str:
    if not status.running:
        return "development TPM: stopped"
    return (f"development TPM: running, tcti {status.tcti}"
            f" (pid {status.pid}, control port {status.ctrl_port})")


def run_start(args: argparse.Namespace) -> int:
    device = _device(args)
    print(_describe(device.start()))
    print(f"boot event log: {device.event_log_path}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    device = _device(args)
    device.stop()
    print(_describe(device.status()))
    return 0


def run_status(args: argparse.Namespace) -> int:
    home = _home(args)
    if home.is_initialized and not home.uses_tpm:
        if args.json:
            print_json({"running": False, "tpm": "none"})
        else:
            print(no_tpm_line(home))
        return 0
    if home.is_initialized and not home.tpm.is_dev:
        if args.json:
            print_json({"running": None, "tpm": str(home.tpm)})
        else:
            print(f"{home.path}: this home uses the TPM {home.tpm} (not a development TPM)")
        return 0
    status = DevTpm(home.tpm_dir).status()
    if args.json:
        print_json(status.to_dict())
    else:
        print(_describe(status))
    return 0


def run_reboot(args: argparse.Namespace) -> int:
    device = _device(args)
    status = device.reboot()
    print(f"{_describe(status)}; rebooted, boot replayed into PCRs 0-7")
    return 0
