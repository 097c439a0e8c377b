"""`vbios tpm start|stop|status|reboot`: the development TPM (swtpm) of a home.

The home is resolved when the command runs (--home, else VBIOS_HOME, else the
default); refusals are ``VbiosError``s, printed as one line by ``bios_ws.cli``.
"""

from __future__ import annotations

import argparse
import json

from bios_ws.cli.options import add_home
from bios_ws.home import Home, resolve_home_path
from bios_ws.tpm.devtpm import DevTpm, DevTpmStatus

__all__ = ["register"]

Subparsers = argparse._SubParsersAction


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    home_option = argparse.ArgumentParser(add_help=False)
    add_home(home_option)

    tpm = commands.add_parser("tpm", help="the development TPM (swtpm) of a home")
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


def _device(args: argparse.Namespace) -> DevTpm:
    home = Home.open(resolve_home_path(args.home))
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
    status = _device(args).status()
    if args.json:
        print(json.dumps(status.to_dict(), sort_keys=True))
    else:
        print(_describe(status))
    return 0


def run_reboot(args: argparse.Namespace) -> int:
    device = _device(args)
    status = device.reboot()
    print(f"{_describe(status)}; rebooted, boot replayed into PCRs 0-7")
    return 0
