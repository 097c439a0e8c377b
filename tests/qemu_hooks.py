"""Hooks for keepers under test: each call becomes a JSON line in the machine's directory.

A keeper is another process, so the test cannot hand it a ``RecordingHooks``.
``factory`` (named ``tests.qemu_hooks:factory`` on the keeper's command line)
appends every ``before_boot`` and ``on_event`` to ``<machine dir>/hooks.jsonl``;
``FileRecorder`` reads them back with the ``boots`` and ``events`` of
``tests.platform_contract.RecordingHooks``, so the contract suite runs unchanged.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from bios_ws.config import Config
from bios_ws.domain.power import PowerState, ResetCause
from bios_ws.platform.port import MachineEvent, MachineHooks

FACTORY = "tests.qemu_hooks:factory"
RECORD = "hooks.jsonl"


def factory(config: Config, domain_id: str) -> MachineHooks:
    record = config.home.machines_dir / domain_id / RECORD

    def append(entry: dict[str, str]) -> None:
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)

    def before_boot(domain: str, cause: ResetCause) -> None:
        append({"hook": "before_boot", "domain": domain, "cause": cause.value})

    def on_event(domain: str, event: MachineEvent) -> None:
        append({"hook": "on_event", "domain": domain, "state": event.state.value,
                "cause": event.cause.value, "time": event.time.isoformat()})

    return MachineHooks(before_boot=before_boot, on_event=on_event)


class FileRecorder:
    """What the keepers of the machines under ``machines_dir`` called."""

    def __init__(self, machines_dir: Path) -> None:
        self.machines_dir = machines_dir

    def _entries(self) -> list[dict[str, str]]:
        entries = []
        for path in sorted(self.machines_dir.glob(f"*/{RECORD}")):
            entries += [json.loads(line) for line in path.read_text().splitlines() if line]
        return entries

    @property
    def boots(self) -> list[tuple[str, ResetCause]]:
        return [(e["domain"], ResetCause(e["cause"])) for e in self._entries()
                if e["hook"] == "before_boot"]

    @property
    def events(self) -> list[tuple[str, MachineEvent]]:
        return [(e["domain"], MachineEvent(PowerState(e["state"]), ResetCause(e["cause"]),
                                           datetime.fromisoformat(e["time"])))
                for e in self._entries() if e["hook"] == "on_event"]
