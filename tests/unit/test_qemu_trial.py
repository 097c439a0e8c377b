"""The keeper's trial boots without QEMU: the console scan for the first boot attempt, and
``Trials`` deciding, counting, reporting and putting the variable store back."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from bios_ws.domain.firmware import BootPlan, FirmwareImage, KeyDatabases, SlotBoot
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.power import ResetCause
from bios_ws.platform.port import MAX_FAILED_TRIALS, MachineHooks, TrialOutcome
from bios_ws.platform.qemu.trial import AttemptScan, AttemptSeen, Trials

IMAGE = FirmwareImage((), (), None, False, KeyDatabases(), b"")


def _plan(slot: Slot | None = Slot.B, *, trial: bool = True) -> BootPlan:
    return BootPlan(IMAGE, slot=None if slot is None else SlotBoot(slot, "vbios-3", trial))


def test_the_scan_finds_the_marker_even_split_across_chunks_and_posts_once() -> None:
    posted: list[object] = []
    scan = AttemptScan(7, posted.append)
    for chunk in (b"\x1b[2J PlatformDxe", b" Bds", b"Dxe", b": loading Boot0001 ",
                  b'"x"\r\nBdsDxe: failed to load'):
        scan.feed(chunk)
    [seen] = posted
    assert isinstance(seen, AttemptSeen) and seen.generation == 7
    assert seen.at <= time.monotonic()


def test_the_scan_ignores_other_output() -> None:
    posted: list[object] = []
    scan = AttemptScan(1, posted.append)
    for chunk in (b"Bds", b"dxe:", b"BdsDxe", b" loading", b"vbios: BdsDx"):
        scan.feed(chunk)
    assert posted == []


class Harness:
    def __init__(self, tmp_path: Path, *, fail: bool = False) -> None:
        self.outcomes: list[tuple[str, TrialOutcome]] = []
        self.notes: list[str] = []
        self.posted: list[object] = []

        def after_trial(domain_id: str, outcome: TrialOutcome) -> None:
            self.outcomes.append((domain_id, outcome))
            if fail:
                raise RuntimeError("the service is down")

        hooks = MachineHooks(before_boot=lambda d, c: None, on_event=lambda d, e: None,
                             after_trial=after_trial)
        self.store, self.snapshot = tmp_path / "vars.fd", tmp_path / "vars.trial.fd"
        self.store.write_bytes(b"the store before the trial")
        self.trials = Trials("d1", hooks, 30.0, self.notes.append, store=self.store,
                             snapshot=self.snapshot)

    def begin(self, plan: BootPlan | None, generation: int = 1) -> None:
        scan = self.trials.begin(plan, ResetCause.GUEST_RESET, generation, self.posted.append)
        if scan is not None:
            self.trials.running()
            scan(b"BdsDxe: loading")


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_a_boot_without_a_trial_is_not_watched(harness: Harness) -> None:
    for plan in (None, _plan(None), _plan(Slot.A, trial=False)):
        harness.begin(plan)
        assert not harness.trials.pending and harness.trials.deadline is None
    assert harness.posted == [] and harness.outcomes == []
    assert not harness.snapshot.exists()


def test_the_attempt_seen_in_time_is_a_booted_slot(harness: Harness) -> None:
    harness.begin(_plan())
    assert harness.trials.pending and harness.trials.cause is ResetCause.GUEST_RESET
    assert harness.snapshot.read_bytes() == b"the store before the trial"
    deadline = harness.trials.deadline
    assert deadline is not None and deadline - time.monotonic() > 29.0
    [seen] = harness.posted
    assert isinstance(seen, AttemptSeen)
    harness.trials.seen(AttemptSeen(99, seen.at))  # another QEMU's: ignored
    assert harness.trials.pending
    harness.trials.seen(seen)
    assert harness.outcomes == [("d1", TrialOutcome(Slot.B, True))]
    assert not harness.trials.pending and not harness.snapshot.exists()
    assert len(harness.notes) == 1  # the guest prints on the console by now: no note


def test_an_attempt_seen_too_late_is_left_to_the_deadline(harness: Harness) -> None:
    harness.begin(_plan())
    deadline = harness.trials.deadline
    assert deadline is not None
    harness.trials.seen(AttemptSeen(1, deadline + 0.5))
    assert harness.trials.pending and harness.outcomes == []
    assert harness.trials.expired(deadline) and not harness.trials.expired(deadline - 1)


def test_a_failure_puts_the_store_back_and_counts_until_the_machine_gives_up(
    harness: Harness,
) -> None:
    for count in range(1, MAX_FAILED_TRIALS + 1):
        harness.begin(_plan(), generation=count)
        harness.store.write_bytes(b"scribbled on by a broken image")
        again = harness.trials.failed("no boot attempt within 30 s")
        assert again is (count < MAX_FAILED_TRIALS)
        assert harness.store.read_bytes() == b"the store before the trial"
        assert not harness.trials.pending
    assert [o for _, o in harness.outcomes] == [
        TrialOutcome(Slot.B, False, "no boot attempt within 30 s")] * MAX_FAILED_TRIALS
    harness.begin(_plan(Slot.A, trial=False))  # a boot without a trial starts the count again
    assert harness.trials.failures == 0


def test_a_trial_cut_short_is_not_booted_and_pausing_stops_its_clock(harness: Harness) -> None:
    harness.trials.begin(_plan(Slot.A), ResetCause.MANAGEMENT_COMMAND, 1, harness.posted.append)
    harness.trials.running()
    before = harness.trials.deadline
    harness.trials.pause()
    assert harness.trials.deadline is None and not harness.trials.expired(1e12)
    time.sleep(0.05)
    harness.trials.resume()
    after = harness.trials.deadline
    assert before is not None and after is not None and after - before >= 0.05
    harness.store.write_bytes(b"changed")
    harness.trials.cut("the machine was turned off")
    [(_, outcome)] = harness.outcomes
    assert (outcome.slot, outcome.booted) == (Slot.A, False)
    assert outcome.reason == ("the machine was turned off before the firmware reached a boot"
                              " attempt")
    assert harness.store.read_bytes() == b"the store before the trial"
    harness.trials.cut("again")  # nothing under way: nothing more
    assert len(harness.outcomes) == 1


def test_a_failing_after_trial_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(tmp_path, fail=True)
    harness.begin(_plan())
    with caplog.at_level(logging.ERROR, "bios_ws.platform.qemu"):
        assert harness.trials.failed("QEMU would not start: wrong size") is True
    assert "after_trial(d1, B) failed: RuntimeError: the service is down" in caplog.text
    assert len(harness.outcomes) == 1
