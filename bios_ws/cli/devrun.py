"""`vbios devrun` (what `make run` runs): make what is missing, say how to try it, serve.

On a fresh home it initializes one with the development TPM and shows the
recovery code on the terminal only (never on stdout, never where the server
logs). On the home's own development TPM it reseals by itself after a change
of the service (an edited source file, a `git pull`): see
``bios_ws.launch.reseal.reseal_after_service_change`` and docs/deployment.md.
A real TPM is never resealed without the admin asking.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys
from pathlib import Path

from bios_ws.cli.options import chosen_tpm, config_from_args
from bios_ws.cli.serve import ensure_demo_domain, serve
from bios_ws.config import Config
from bios_ws.domain.power import MachineKind
from bios_ws.home import DEV_TPM, HOME_ENV, MARKER_NAME, Home, TpmChoice, resolve_home_path
from bios_ws.launch.warnings import NO_TPM_WARNING
from bios_ws.server.options import bind_listener, bound_address, service_url
from bios_ws.server.serve_lock import ServeLock

#: The controlling terminal, where the recovery code goes when stderr is not one.
TERMINAL = "/dev/tty"


def run_devrun(args: argparse.Namespace) -> int:
    tpm = chosen_tpm(args)
    listener = bind_listener(args.bind)  # a taken port refuses before anything is made
    try:
        config, lock = prepare_devrun(args, tpm, listener)
    except BaseException:
        listener.close()  # a refusal (an unsafe home, a served home...) leaves no socket
        raise
    with lock:
        return serve(config, listener, lock)


def prepare_devrun(args: argparse.Namespace, tpm: TpmChoice | None,
                   listener: socket.socket) -> tuple[Config, ServeLock]:
    """Make what is missing (home, development TPM, demo domain) and say how to try it;
    the configuration to serve, and the home's serve lock (held)."""
    home, created = ensure_home(resolve_home_path(args.home), tpm or DEV_TPM)
    lock = ServeLock.acquire(home.serve_lock, home.path)  # before the TPM or store is touched
    try:
        if created:
            print(f"vbios: initialized a new state directory at {home.path}")
        elif (tpm or home.tpm).is_dev:
            ensure_dev_tpm(home)
            ensure_dev_reference(home)
            reseal_dev_tpm(home)
        config = config_from_args(args, home)
        bundle = ensure_demo_domain(home, args.demo_domain, MachineKind.QEMU, config)
        booting = power_on_demo(config, args.demo_domain)
    except BaseException:
        lock.release()
        raise
    bin_dir = Path(sys.executable).parent
    client = _display_path(bin_dir / "vbios-client")
    vbios = _display_path(bin_dir / "vbios")
    print(f"vbios: admin bundle:  {home.admin_dir}")
    print(f"vbios: demo bundle:   {bundle}  (domain {args.demo_domain})")
    if booting:
        print(f"vbios: {booting}")
    print("vbios: try it in another terminal (the admin's vbios finds this home by"
          f" {HOME_ENV}, or --home):")
    url = service_url(bound_address(listener))
    print(f"  export {HOME_ENV}={shlex.quote(str(home.path))}")
    print(f"  {vbios} domain list")
    print(f"  {client} --url {url} --bundle {bundle} attributes get")
    print(f"  {client} --url {url} --bundle {bundle} power get")
    print(f"  {vbios} domain console {args.demo_domain} --follow --home {home.path}", flush=True)
    return config, lock


def power_on_demo(config: Config, name: str) -> str | None:
    """Boot the demo domain's machine unless it runs; a line saying what happened."""
    from bios_ws.bootstrap import bootstrap
    from bios_ws.domain.power import PowerState, ResetType
    from bios_ws.domain.principal import Principal
    from bios_ws.service.power import PowerService

    admin = Principal.admin("devrun")
    with bootstrap(config) as app:
        power = app.use(PowerService)
        view = power.get_domain_power(admin, name)
        if view.state is not PowerState.OFF:
            return f"the demo domain's {view.kind.value} machine is {view.state.value}"
        power.reset_domain(admin, name, ResetType.ON)
    what = ("a QEMU + OVMF guest: its firmware boots now" if view.kind is MachineKind.QEMU
            else "a simulated machine")
    return f"powered on the demo domain, {what}"


def ensure_home(path: Path, tpm: TpmChoice = DEV_TPM) -> tuple[Home, bool]:
    """The home at ``path``, initialized first (CA, server and admin keys, sealed with
    ``tpm``) if needed; and whether it was initialized now. An existing home is refused
    if other users could read or replace its keys."""
    from bios_ws.bootstrap import initialize
    from bios_ws.launch.permissions import check_home_permissions

    if (path / MARKER_NAME).is_file():
        home = Home.open(path)
        if home.is_initialized:
            check_home_permissions(home)  # before its TPM starts or its demo domain is made
            return home, False
    if tpm.is_none:
        print(NO_TPM_WARNING, file=sys.stderr, flush=True)
    done = initialize(path, tpm=tpm)
    if done.recovery_code is not None:
        show_recovery_code(done.recovery_code)
    return done.home, True


def show_recovery_code(code: str) -> bool:
    """Show the recovery code on the terminal only: stderr if it is one, else the
    controlling terminal; never on stdout and never where stderr is redirected (the
    server logs there). Without a terminal it is not shown (stored nowhere): say so."""
    text = ("vbios: RECOVERY CODE (shown once, on this terminal only, stored nowhere;"
            f" needed by vbios tpm reseal after a boot change): {code}\n")
    if sys.stderr.isatty():
        sys.stderr.write(text)
        sys.stderr.flush()
        return True
    try:
        fd = os.open(TERMINAL, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        print("vbios: no terminal to show the recovery code on (stdout and stderr are"
              " not one): it was not shown and is stored nowhere; a boot change of this"
              " development TPM then needs a new home", file=sys.stderr, flush=True)
        return False
    try:
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)
    return True


def ensure_dev_tpm(home: Home) -> None:
    """Start the home's development TPM unless it runs (it then replays the boot)."""
    from bios_ws.tpm.devtpm import DevTpm

    device = DevTpm(home.tpm_dir)
    if not device.status().running:
        status = device.start()
        print(f"vbios: started the development TPM ({status.tcti})", flush=True)


def ensure_dev_reference(home: Home) -> None:
    """A development home made before references existed takes its current boot as one."""
    from bios_ws.bootstrap import set_initial_reference
    from bios_ws.launch.sealing import LaunchContext
    from bios_ws.service.integrity import load_reference
    from bios_ws.store import open_store

    store = open_store(home.db_url)
    try:
        if load_reference(store.unit_of_work, home.host_name) is not None:
            return
    finally:
        store.dispose()
    if set_initial_reference(home, LaunchContext(home).event_log(),
                             "the boot event log at vbios devrun"):
        print("vbios: no reference measurements were set: took this boot's event log"
              " (development TPM)", flush=True)


def reseal_dev_tpm(home: Home) -> None:
    """After a change of the service (source edited, `git pull`), seal the passphrases
    to it again in the home's development TPM, saying so on stderr. A boot change still
    refuses (it needs the recovery code)."""
    from bios_ws.launch.reseal import reseal_after_service_change
    from bios_ws.launch.sealing import LaunchContext

    if not home.uses_tpm:
        return
    report = reseal_after_service_change(LaunchContext(home, DEV_TPM))
    if report is None:
        return
    lines = [f"vbios: the service changed since its keys were sealed; resealed them to it"
             f" in the development TPM ({home.path}; a real TPM is resealed by the admin"
             " only: vbios tpm reseal):",
             *(f"vbios:   {line}" for line in report.changes)]
    print("\n".join(lines), file=sys.stderr, flush=True)


def _display_path(path: Path) -> str:
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        return str(path)
    return os.path.join(".", str(relative)) if relative.parts else str(path)
