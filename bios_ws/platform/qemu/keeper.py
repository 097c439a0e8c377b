"""The keeper: a small supervisor process per running QEMU machine (a tiny virtual BMC).

``QemuPlatform.power_on`` starts it detached::

    python -P -m bios_ws.platform.qemu.keeper --home H --machines-dir M --domain D
        --cause C --delay S --hooks module:function --<every PlatformOptions field> V

It writes ``keeper.pid`` once its control socket (``bios_ws.platform.qemu.control``)
listens, waits ``delay`` seconds (PoweringOn), boots, and from then on owns
the machine: it answers requests one at a time, turns QEMU's own doings into
``on_event`` calls (a guest shutdown; a guest reset, which is a new QEMU after
``before_boot``; a crash; the watchdog), escalates graceful shutdowns, and exits
once the machine is off. All machine changes happen in its main thread, which is
also the parent of every QEMU (they die with it).

A boot (no QEMU running): the store is checked and read; ``after_run`` hears it if the
firmware ran on it since; ``before_boot``'s plan is checked, written into it (the old
file kept as ``vars.prev.fd``) and gives QEMU its options. A failing hook, a damaged
store or a malformed plan refuses the boot, the store left as it was. A plan that tries a
firmware slot's new image is watched by ``trial``.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from bios_ws.config import Config, PlatformOptions
from bios_ws.domain.firmware import BootPlan
from bios_ws.domain.power import PowerState, ResetCause
from bios_ws.errors import MachineError, VbiosError
from bios_ws.home import Home
from bios_ws.platform.locks import hold_for_life
from bios_ws.platform.port import MachineEvent, MachineHooks
from bios_ws.platform.qemu import control, nvram
from bios_ws.platform.qemu.console import ConsoleLog
from bios_ws.platform.qemu.firmware import apply_image, check_plan, read_state
from bios_ws.platform.qemu.guest import Bitten, Exited, Guest
from bios_ws.platform.qemu.keeper_args import KeeperArgs
from bios_ws.platform.qemu.layout import MachineDir
from bios_ws.platform.qemu.qmp import QmpError
from bios_ws.platform.qemu.trial import AttemptSeen, Trials
from bios_ws.platform.qemu.varstore import check_before_boot

log = logging.getLogger("bios_ws.platform.qemu")

_T = TypeVar("_T")


class _Terminate:
    """SIGTERM or SIGINT: hard off, then exit."""


class Keeper:
    def __init__(self, machine: MachineDir, options: PlatformOptions,
                 hooks: MachineHooks, listener: socket.socket) -> None:
        self.machine = machine
        self.options = options
        self.hooks = hooks
        self.state = PowerState.POWERING_ON
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._console = ConsoleLog(machine.console, options.console_bytes)
        self._guest: Guest | None = None
        self._generation = 0
        #: A boot to do: (when, cause, whether a failure is an event).
        self._boot: tuple[float, ResetCause, bool] | None = None
        #: A graceful shutdown under way: (escalation time, cause, boot again after).
        self._off: tuple[float, ResetCause, bool] | None = None
        self._trial = Trials(machine.domain_id, hooks, options.firmware_trial_timeout,
                             self._note, store=machine.vars, snapshot=machine.trial_vars)
        self._done = False
        self._server = control.Server(listener, self._queue.put, self._status)

    # -- the main thread ----------------------------------------------------------------

    def run(self, cause: ResetCause, delay: float) -> None:
        self._boot = (time.monotonic() + max(delay, 0.0), cause, delay > 0)
        self._server.start()
        signal.signal(signal.SIGTERM, self._terminate)
        signal.signal(signal.SIGINT, self._terminate)
        while not self._done:
            try:
                item = self._queue.get(timeout=self._wait())
            except queue.Empty:
                item = None
            if item is not None:
                self._handle(item)
            self._due()
        self._finish()

    def _terminate(self, signum: int, frame: object) -> None:
        self._queue.put(_Terminate())  # SimpleQueue.put is safe in a signal handler

    def _wait(self) -> float:
        deadlines = [item[0] for item in (self._boot, self._off) if item is not None]
        if self._trial.deadline is not None:
            deadlines.append(self._trial.deadline)
        if not deadlines:
            return 3600.0
        return max(min(deadlines) - time.monotonic(), 0.0)

    def _due(self) -> None:
        now = time.monotonic()
        if self._boot is not None and self._boot[0] <= now and not self._done:
            _, cause, announce = self._boot
            self._boot = None
            self._start(cause, announce=announce)
        if self._off is not None and self._off[0] <= now and not self._done:
            _, cause, again = self._off
            self._off = None
            log.info("the guest ignored the power button for %g s: power off",
                     self.options.graceful_timeout)
            self._halt("the machine was turned off")
            self._went_off(cause, boot_again=again)
        if self._trial.expired(now) and not self._done:
            self._trial_failed(f"no boot attempt within {self._trial.timeout:g} s")

    def _handle(self, item: object) -> None:
        if isinstance(item, control.Request):
            try:
                item.reply.give(self._request(item.message))
            except (VbiosError, QmpError, OSError, ValueError) as exc:
                item.reply.give({"ok": False, "error": str(exc)})
        elif isinstance(item, Exited) and self._current(item.generation):
            assert self._guest is not None
            self._guest.drain()
            self._exited(item.reason)
        elif isinstance(item, Bitten) and self._current(item.generation):
            log.warning("watchdog: %s; killing it", item.why)
            self._note(f"watchdog: {item.why}; the machine is killed")
            if self._trial.pending:
                self._trial_failed(f"watchdog: {item.why}")
                return
            assert self._guest is not None
            self._guest.kill()
            self._guest = None
            self._went_off(ResetCause.WATCHDOG)
        elif isinstance(item, AttemptSeen):
            self._trial.seen(item)
        elif isinstance(item, _Terminate):
            self._halt("the keeper was stopped")
            self._off = self._boot = None
            self._set_off()

    def _current(self, generation: int) -> bool:
        return self._guest is not None and self._guest.generation == generation

    def _request(self, message: control.Message) -> control.Message:
        op = message["op"]
        if op in ("power_off", "restart"):
            cause = ResetCause(message.get("cause", ResetCause.MANAGEMENT_COMMAND))
            again = op == "restart"
            if message.get("graceful") and self._guest is not None:
                self._guest.qmp.execute("system_powerdown")
                escalate = time.monotonic() + self.options.graceful_timeout
                if self._off is not None:  # pressed again: the first deadline stands
                    escalate = min(escalate, self._off[0])
                self._off = (escalate, cause, again)
                self.state = PowerState.POWERING_OFF
            else:
                self._halt(f"the machine was {'restarted' if again else 'turned off'}")
                self._off = self._boot = None
                if not again:
                    self._set_off()
                elif not self._start(cause, announce=True):  # answered once it boots
                    return {"ok": False, "error": self._last_error()}
        elif op in ("pause", "resume", "nmi"):
            if self._guest is None:
                raise MachineError(f"cannot {op}: the machine is {self.state.value}")
            command = {"pause": "stop", "resume": "cont", "nmi": "inject-nmi"}[op]
            self._guest.qmp.execute(command)
            if op != "nmi":
                self.state = PowerState.PAUSED if op == "pause" else PowerState.ON
                if op == "pause":
                    self._trial.pause()
                else:
                    self._trial.resume()
        return self._status()

    def _status(self) -> control.Message:
        guest = self._guest
        return {"ok": True, "state": self.state.value,
                "qemu_pid": guest.process.pid if guest is not None else None}

    def _exited(self, reason: str | None) -> None:
        """The current QEMU ended by itself."""
        self._guest = None
        if self._trial.pending and self._off is None:
            self._trial_failed(f"QEMU ended before the first boot attempt ({reason or 'killed'})")
            return
        self._trial.cut("the machine was turned off")
        if reason == "guest-reset":
            log.info("the guest reset itself: booting a new QEMU")
            if self._start(ResetCause.GUEST_RESET, announce=True):
                self._event(PowerState.ON, ResetCause.GUEST_RESET)
        elif reason == "guest-shutdown":
            off, self._off = self._off, None
            if off is not None:  # the guest obeyed the power button
                self._went_off(off[1], boot_again=off[2])
            else:
                self._went_off(ResetCause.GUEST_SHUTDOWN)
        else:
            log.warning("QEMU ended without a guest shutdown (%s)", reason or "killed")
            self._note(f"QEMU ended without a guest shutdown ({reason or 'killed'})")
            self._off = None
            self._went_off(ResetCause.CRASH)

    def _start(self, cause: ResetCause, *, announce: bool) -> bool:
        """Prepare the store, spawn QEMU and let it run."""
        self.state = PowerState.POWERING_ON
        self.machine.keeper_error.unlink(missing_ok=True)
        try:
            plan = self._prepare(cause)
            self._note(f"boot ({cause.value})")  # where each boot begins on the console
            self._generation += 1
            scan = self._trial.begin(plan, cause, self._generation, self._queue.put)
            self._guest = Guest.start(self._generation, self.options, self.machine,
                                      self._console, self._queue.put, plan, on_output=scan)
            self._guest.cont()
            self._trial.running()
        except (VbiosError, QmpError, OSError, subprocess.SubprocessError) as exc:
            if self._trial.pending:  # the image's QEMU would not start or run
                return self._trial_failed(str(exc))
            self._fail(str(exc), announce=announce)
            return False
        log.info("booted (%s)", cause.value)
        self.state = PowerState.ON
        return True

    def _prepare(self, cause: ResetCause) -> BootPlan | None:
        """The store read back (after_run) and the plan of this boot written into it."""
        machine, domain = self.machine, self.machine.domain_id
        if self._guest is not None:
            raise MachineError("the store is written only while QEMU is not running")
        check_before_boot(machine.vars, machine.good_vars, self.options.ovmf_vars)
        store = nvram.load(machine.vars, expected_size=self.options.ovmf_vars.stat().st_size)
        if machine.booted_marker.exists():
            _hook("after_run", self.hooks.after_run, domain, read_state(store.variables))
            machine.booted_marker.unlink()
        plan = _hook("before_boot", self.hooks.before_boot, domain, cause)
        if plan is not None:
            plan = check_plan(plan)
            started = time.perf_counter()
            if nvram.save(machine.vars, store,
                          apply_image(store.variables, plan.firmware, machine.layout)):
                log.info("boot plan written into %s in %.1f ms", machine.vars,
                         (time.perf_counter() - started) * 1000)
        machine.booted_marker.touch(mode=0o600)
        return plan

    def _trial_failed(self, why: str) -> bool:
        """The trial boot under way failed: its QEMU is killed, after_trial hears ``why``,
        and the machine boots again at once (unless too many trials failed in a row)."""
        guest, self._guest = self._guest, None
        if guest is not None:
            guest.kill()
        if self._trial.failed(why):
            return self._start(self._trial.cause, announce=True)
        self._fail(f"{self._trial.failures} trial boots failed in a row", announce=True)
        return False

    def _fail(self, reason: str, *, announce: bool) -> None:
        log.error("the machine cannot boot: %s", reason)
        self._note(f"boot refused: {reason}")
        self.machine.keeper_error.write_text(reason.replace("\n", " ") + "\n",
                                             encoding="utf-8")
        if self._guest is not None:
            self._guest.kill()
            self._guest = None
        self._off = None
        if announce:
            self._event(PowerState.OFF, ResetCause.CRASH)
        self._set_off()

    def _last_error(self) -> str:
        try:
            return self.machine.keeper_error.read_text(encoding="utf-8").strip()
        except OSError:
            return "the machine could not boot"

    def _went_off(self, cause: ResetCause, *, boot_again: bool = False) -> None:
        self._event(PowerState.OFF, cause)
        if boot_again:
            self._start(cause, announce=True)
        else:
            self._set_off()

    def _halt(self, why: str) -> None:
        guest, self._guest = self._guest, None
        if guest is not None:
            guest.stop()
        self._trial.cut(why)

    def _set_off(self) -> None:
        self.state = PowerState.OFF
        self._done = True

    def _event(self, state: PowerState, cause: ResetCause) -> None:
        event = MachineEvent(state, cause, datetime.now(UTC))
        try:
            self.hooks.on_event(self.machine.domain_id, event)
        except Exception as exc:  # the hooks are not ours; the machine goes on
            log.error("on_event(%s, %s) failed: %s: %s", state.value, cause.value,
                      type(exc).__name__, exc)

    def _note(self, text: str) -> None:
        self._console.write(f"\r\nvbios: {text}\r\n".encode())

    def _finish(self) -> None:
        self._server.stop()
        while self._server.alive:  # answer what the control thread still waits for
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if isinstance(item, control.Request):
                item.reply.give(self._status())
        self._console.close()
        try:
            if int(self.machine.keeper_pid.read_text(encoding="ascii")) == os.getpid():
                self.machine.keeper_pid.unlink()
                self.machine.keeper_socket.unlink(missing_ok=True)
        except (OSError, ValueError):
            pass
        log.info("the machine is off; the keeper exits")


def _hook(name: str, call: Callable[..., _T], *args: object) -> _T:
    try:
        return call(*args)
    except Exception as exc:  # the hooks are not ours: any failure refuses the boot
        raise MachineError(f"{name} failed: {type(exc).__name__}: {exc}") from None


def load_hooks(spec: str) -> Callable[[Config, str], MachineHooks]:
    module, _, name = spec.partition(":")
    factory = getattr(importlib.import_module(module), name, None) if name else None
    if not callable(factory):
        raise MachineError(f"no hooks factory {spec!r} (module:function)")
    return factory  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s keeper[%(process)d] %(levelname)s %(message)s")
    args = KeeperArgs.parse(sys.argv[1:] if argv is None else argv)
    options = args.options
    machine = MachineDir(args.machines_dir, args.domain)
    try:
        hold_for_life(machine.keeper_lock)
        config = Config.of(Home.open(args.home), platform=options)
        hooks = load_hooks(args.hooks)(config, args.domain)
        listener = control.listen(machine.keeper_socket)
    except Exception as exc:  # the hooks factory is not ours: whatever it raises, say why
        reason = f"the keeper cannot start: {exc}"
        log.error("%s", reason)
        machine.keeper_error.write_text(reason + "\n", encoding="utf-8")
        return 2
    pid_tmp = machine.keeper_pid.with_name(f".keeper.pid.{os.getpid()}")
    pid_tmp.write_text(f"{os.getpid()}\n", encoding="ascii")
    os.replace(pid_tmp, machine.keeper_pid)
    log.info("keeping %s (%s, delay %g s)", args.domain, args.cause.value, args.delay)
    Keeper(machine, options, hooks, listener).run(args.cause, args.delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
