"""Hooks for keepers under test that hand out boot plans and record what comes back.

A keeper is another process: a test writes the plans of the next boots into
``<machine dir>/plans.json`` (``write_plans``); the hooks factory
(``tests.qemu_plan_hooks:factory`` on the keeper's command line) answers the n-th
``before_boot`` with the n-th plan (the last one again once they run out; ``null``:
no plan), and appends every call, ``after_run`` with its ``FirmwareState``
and ``after_trial`` with its ``TrialOutcome`` included, to ``hooks.jsonl`` in the
format of ``tests.qemu_hooks`` (so its ``FileRecorder`` reads boots and events from
it). ``PlanRecorder`` reads the ``after_run`` states and the trials back, and gives
plans (``give_plans``) like the contract's ``RecordingHooks``. While ``fail_after_run``
exists in the machine directory, ``after_run`` raises.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from bios_ws.config import Config
from bios_ws.domain.firmware import (
    BootDevice,
    BootEntry,
    BootPlan,
    FirmwareImage,
    FirmwareState,
    KeyDatabases,
    MachineOptions,
    SlotBoot,
)
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.power import ResetCause
from bios_ws.platform.port import MachineEvent, MachineHooks, TrialOutcome
from tests.qemu_hooks import RECORD, FileRecorder

FACTORY = "tests.qemu_plan_hooks:factory"
PLANS = "plans.json"
#: While this file is in the machine directory, after_run fails.
FAIL_AFTER_RUN = "fail_after_run"
_FIELDS = ("pk", "kek", "db", "dbx")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def keys_to_json(keys: KeyDatabases) -> dict[str, list[str]]:
    return {name: [_b64(der) for der in getattr(keys, name)] for name in _FIELDS}


def keys_from_json(data: dict[str, list[str]]) -> KeyDatabases:
    return KeyDatabases(**{name: tuple(base64.b64decode(der) for der in data[name])
                           for name in _FIELDS})


def plan_to_json(plan: BootPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    image = plan.firmware
    return {
        "entries": [{"number": e.number, "option_id": e.option_id,
                     "description": e.description, "device": e.device.value,
                     "active": e.active, "uri": e.uri} for e in image.entries],
        "order": list(image.order), "boot_next": image.boot_next,
        "secure_boot_enable": image.secure_boot_enable, "keys": keys_to_json(image.keys),
        "published": _b64(image.published),
        "machine": {"cpus": plan.machine.cpus, "threads_per_core": plan.machine.threads_per_core,
                    "nic": plan.machine.nic, "serial": plan.machine.serial},
        "slot": None if plan.slot is None else {
            "slot": plan.slot.slot.value, "bios_version": plan.slot.bios_version,
            "trial": plan.slot.trial},
    }


def plan_from_json(data: dict[str, Any] | None) -> BootPlan | None:
    if data is None:
        return None
    entries = tuple(BootEntry(e["number"], e["option_id"], e["description"],
                              BootDevice(e["device"]), e["active"], e["uri"])
                    for e in data["entries"])
    image = FirmwareImage(entries, tuple(data["order"]), data["boot_next"],
                          data["secure_boot_enable"], keys_from_json(data["keys"]),
                          base64.b64decode(data["published"]))
    slot = data.get("slot")
    return BootPlan(image, MachineOptions(**data["machine"]),
                    None if slot is None else SlotBoot(Slot(slot["slot"]), slot["bios_version"],
                                                       slot["trial"]))


def write_plans(machine_dir: Path, *plans: BootPlan | None) -> None:
    """The plans of the next boots of the machine in ``machine_dir``, first one first,
    counted from its first boot ever (a test writes them before powering on)."""
    (machine_dir / PLANS).write_text(json.dumps([plan_to_json(p) for p in plans]))


def factory(config: Config, domain_id: str) -> MachineHooks:
    machine = config.home.machines_dir / domain_id
    record = machine / RECORD

    def append(entry: dict[str, Any]) -> None:
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)

    def before_boot(domain: str, cause: ResetCause) -> BootPlan | None:
        boots = sum(1 for e in _entries(record) if e["hook"] == "before_boot")
        append({"hook": "before_boot", "domain": domain, "cause": cause.value})
        try:
            plans = json.loads((machine / PLANS).read_text())
        except FileNotFoundError:
            return None
        return plan_from_json(plans[min(boots, len(plans) - 1)]) if plans else None

    def after_run(domain: str, state: FirmwareState) -> None:
        if (machine / FAIL_AFTER_RUN).exists():
            raise RuntimeError("after_run told to fail")
        append({"hook": "after_run", "domain": domain, "boot_order": list(state.boot_order),
                "boot_next": state.boot_next,
                "secure_boot_enable": state.secure_boot_enable,
                "keys": keys_to_json(state.keys)})

    def on_event(domain: str, event: MachineEvent) -> None:
        append({"hook": "on_event", "domain": domain, "state": event.state.value,
                "cause": event.cause.value, "time": event.time.isoformat()})

    def after_trial(domain: str, outcome: TrialOutcome) -> None:
        append({"hook": "after_trial", "domain": domain, "slot": outcome.slot.value,
                "booted": outcome.booted, "reason": outcome.reason})

    return MachineHooks(before_boot=before_boot, on_event=on_event, after_run=after_run,
                        after_trial=after_trial)


class PlanRecorder(FileRecorder):
    """Everything the keepers of the machines under ``machines_dir`` called."""

    @property
    def states(self) -> list[FirmwareState]:
        return [FirmwareState(tuple(e["boot_order"]), e["boot_next"],
                              e["secure_boot_enable"], keys_from_json(e["keys"]))
                for e in self._all() if e["hook"] == "after_run"]

    @property
    def trials(self) -> list[tuple[str, TrialOutcome]]:
        return [(e["domain"], TrialOutcome(Slot(e["slot"]), e["booted"], e["reason"]))
                for e in self._all() if e["hook"] == "after_trial"]

    def give_plans(self, domain_id: str, *plans: BootPlan | None) -> None:
        write_plans(self.machines_dir / domain_id, *plans)

    def _all(self) -> list[dict[str, Any]]:
        return [e for path in sorted(self.machines_dir.glob(f"*/{RECORD}"))
                for e in _entries(path)]


def _entries(record: Path) -> list[dict[str, Any]]:
    try:
        text = record.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line]
