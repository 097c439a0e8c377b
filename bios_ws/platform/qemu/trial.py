"""Trial boots of a new firmware image on a QEMU machine (issue 13), for its keeper.

A boot whose plan has a ``SlotBoot`` with ``trial`` runs QEMU on that slot's image with the
serial console on (``guest.qemu_argv``), and ``AttemptScan`` watches what QEMU prints for
the boot manager's first ``BdsDxe:`` line (``loading Boot...`` or ``failed to load ...``:
the firmware reached a boot attempt). ``Trials`` keeps the trial under way and decides:

- the line seen within ``firmware_trial_timeout`` of the start: ``after_trial`` hears that
  the slot booted;
- no line in time, QEMU refusing to start (a code image of the wrong size), QEMU ending
  (the guest resetting or shutting down, a crash) or the watchdog biting first: the keeper
  kills that QEMU, ``after_trial`` hears why, and the keeper boots again at once with the
  same cause (``before_boot`` then plans the previous slot). After ``MAX_FAILED_TRIALS``
  failures in a row the keeper gives up: the machine turns off (a crash);
- the machine turned off or restarted on request first: ``after_trial`` hears that the
  slot did not boot (the request goes on as asked).

The variable store is copied aside (``vars.trial.fd``) when a trial begins and put back
when the trial ends without its boot attempt: an image that does not boot may have
written anything into the store, and the next boot would refuse a damaged one. Time spent
paused does not count. A failing ``after_trial`` is logged; the machine goes on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bios_ws.domain.firmware import BootPlan
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.power import ResetCause
from bios_ws.platform.port import MAX_FAILED_TRIALS, MachineHooks, TrialOutcome
from bios_ws.platform.qemu.varstore import write_atomically

log = logging.getLogger("bios_ws.platform.qemu")

#: What the boot manager prints first at each boot attempt (OVMF's BdsDxe driver).
ATTEMPT = b"BdsDxe:"


@dataclass(frozen=True)
class AttemptSeen:
    """The console of QEMU ``generation`` showed a boot attempt (monotonic time ``at``)."""

    generation: int
    at: float


class AttemptScan:
    """Looks through one QEMU's console output, chunk by chunk as it comes (the marker may
    be split across two), for its first boot attempt, and posts ``AttemptSeen`` once."""

    def __init__(self, generation: int, post: Callable[[object], None]) -> None:
        self._generation = generation
        self._post = post
        self._tail = b""
        self._seen = False

    def feed(self, chunk: bytes) -> None:
        if self._seen:
            return
        data = self._tail + chunk
        if ATTEMPT in data:
            self._seen = True
            self._post(AttemptSeen(self._generation, time.monotonic()))
        else:
            self._tail = data[-(len(ATTEMPT) - 1):]


class Trials:
    """The trial boot under way on one machine (at most one), and the failures in a row."""

    def __init__(self, domain_id: str, hooks: MachineHooks, timeout: float,
                 note: Callable[[str], None], *, store: Path, snapshot: Path) -> None:
        self._domain_id = domain_id
        self._store = store
        self._snapshot = snapshot
        self._hooks = hooks
        self.timeout = timeout
        self._note = note
        self.slot: Slot | None = None
        self.cause = ResetCause.MANAGEMENT_COMMAND
        self._generation = 0
        self._deadline: float | None = None
        self._paused: float | None = None
        self.failures = 0

    @property
    def pending(self) -> bool:
        return self.slot is not None

    @property
    def deadline(self) -> float | None:
        """When the trial under way fails unless its boot attempt has been seen."""
        return self._deadline if self._paused is None else None

    def begin(self, plan: BootPlan | None, cause: ResetCause, generation: int,
              post: Callable[[object], None]) -> Callable[[bytes], None] | None:
        """A boot with ``plan`` (and ``cause``) starts as QEMU ``generation`` (the store
        written): if it is a trial, what its console output goes through; None when not."""
        self.slot, self._deadline, self._paused = None, None, None
        if plan is None or plan.slot is None or not plan.slot.trial:
            self.failures = 0
            return None
        write_atomically(self._snapshot, self._store.read_bytes())
        self.slot, self.cause, self._generation = Slot(plan.slot.slot), cause, generation
        self._note(f"trial boot of firmware slot {self.slot.value}"
                   f" ({plan.slot.bios_version}): waiting {self.timeout:g} s for a boot attempt")
        return AttemptScan(generation, post).feed

    def running(self) -> None:
        """QEMU runs: the trial's time starts."""
        if self.pending:
            self._deadline = time.monotonic() + self.timeout

    def pause(self) -> None:
        if self.pending and self._paused is None:
            self._paused = time.monotonic()

    def resume(self) -> None:
        if self._paused is not None:
            if self._deadline is not None:
                self._deadline += time.monotonic() - self._paused
            self._paused = None

    def expired(self, now: float) -> bool:
        deadline = self.deadline
        return self.pending and deadline is not None and now >= deadline

    def seen(self, item: AttemptSeen) -> None:
        """The console showed a boot attempt: the trial booted, if it was this QEMU's and in
        time (a late one is left to the deadline, which has passed)."""
        if not self.pending or item.generation != self._generation:
            return
        if self._deadline is not None and self._paused is None and item.at > self._deadline:
            return
        assert self.slot is not None
        slot, self.slot, self._deadline = self.slot, None, None
        self.failures = 0
        self._snapshot.unlink(missing_ok=True)
        # no note on the console: the guest is printing there (the keeper's log says it)
        self._report(TrialOutcome(slot, True))

    def failed(self, why: str) -> bool:
        """The trial under way failed (its QEMU is gone): after_trial hears ``why``. Whether
        the machine should boot again (False: too many failures in a row, it gives up)."""
        if self.slot is None:
            return True
        slot, self.slot, self._deadline, self._paused = self.slot, None, None, None
        self.failures += 1
        self._restore()
        self._note(f"trial boot of firmware slot {slot.value} failed: {why}")
        self._report(TrialOutcome(slot, False, why))
        return self.failures < MAX_FAILED_TRIALS

    def cut(self, why: str) -> None:
        """The trial under way ends without its boot attempt: the machine was turned off or
        restarted (``why``) first."""
        if self.slot is not None:
            slot, self.slot, self._deadline, self._paused = self.slot, None, None, None
            self._restore()
            self._report(TrialOutcome(
                slot, False, f"{why} before the firmware reached a boot attempt"))

    def _restore(self) -> None:
        """The store as it was when the trial began (its QEMU is gone)."""
        try:
            os.replace(self._snapshot, self._store)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("cannot put the variable store back from %s: %s", self._snapshot, exc)

    def _report(self, outcome: TrialOutcome) -> None:
        log.info("trial of slot %s: %s", outcome.slot.value,
                 "booted" if outcome.booted else f"failed ({outcome.reason})")
        try:
            self._hooks.after_trial(self._domain_id, outcome)
        except Exception as exc:  # the hooks are not ours; the machine goes on
            log.error("after_trial(%s, %s) failed: %s: %s", self._domain_id,
                      outcome.slot.value, type(exc).__name__, exc)
