"""Where simulated machines keep their state: a record per machine (``SimState``) on a
``StateShelf``, in memory (tests) or as JSON files locked across processes
(``FileShelf``), with an index of the machines that have steps due. The images of a
machine's firmware slots are kept on the same shelf: in memory, or as files beside its
state (``bios_ws.platform.slots``)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.power import PowerState
from bios_ws.errors import MachineError
from bios_ws.platform.locks import machine_flock
from bios_ws.platform.slots import (
    check_image,
    read_slot,
    remove_slots,
    slot_digest,
    slot_file,
    write_slot,
)

#: Console lines a simulated machine keeps.
CONSOLE_LINES = 200
_MAX_STATE_BYTES = 256 * 1024


@dataclass
class Step:
    """A scheduled change: ``boot`` (calls before_boot), ``running`` or ``off``."""

    at: float
    action: str
    cause: str


@dataclass
class SimState:
    state: str = PowerState.OFF.value
    steps: list[Step] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    disks: list[str] = field(default_factory=list)
    tftp: str | None = None
    bootfile: str | None = None
    http: str | None = None
    #: Whether a firmware image is assigned (provisioning S1 when not).
    firmware: bool = True
    #: The slot whose new image the current boot tries (until its ``running`` step).
    trial: str | None = None
    #: The SHA-256 the tried slot's image must have (None: not checked).
    trial_expects: str | None = None
    #: Trial boots that failed in a row (``MAX_FAILED_TRIALS`` of them turn it off).
    failed_trials: int = 0
    #: The CPU seconds the machine used until ``state_since`` (when its state last
    #: changed; None: never yet). See ``SimulatedPlatform.cpu_seconds``.
    cpu_seconds: float = 0.0
    state_since: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SimState:
        data = json.loads(text)
        return cls(state=str(PowerState(data["state"])),
                   steps=[Step(float(s["at"]), str(s["action"]), str(s["cause"]))
                          for s in data["steps"]],
                   console=[str(line) for line in data["console"]][-CONSOLE_LINES:],
                   disks=[str(d) for d in data.get("disks", [])],
                   tftp=_text_or_none(data.get("tftp")),
                   bootfile=_text_or_none(data.get("bootfile")),
                   http=_text_or_none(data.get("http")),
                   firmware=bool(data.get("firmware", True)),
                   trial=None if data.get("trial") is None else str(Slot(data["trial"])),
                   trial_expects=_text_or_none(data.get("trial_expects")),
                   failed_trials=int(data.get("failed_trials", 0)),
                   cpu_seconds=float(data.get("cpu_seconds", 0.0)),
                   state_since=None if data.get("state_since") is None
                   else float(data["state_since"]))


class StateShelf:
    """Where simulated machines keep their state: here, in memory (one process)."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        self._images: dict[tuple[str, Slot], bytes] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def load(self, domain_id: str) -> SimState | None:
        text = self._states.get(domain_id)
        return None if text is None else SimState.from_json(text)

    def save(self, domain_id: str, state: SimState) -> None:
        self._states[domain_id] = state.to_json()

    def delete(self, domain_id: str) -> None:
        self._states.pop(domain_id, None)
        for slot in Slot:
            self._images.pop((domain_id, slot), None)

    def put_image(self, domain_id: str, slot: Slot, image: bytes) -> str:
        """Keep ``image`` as the slot's; the SHA-256 (hex) of what the slot now holds."""
        check_image(image)
        self._images[domain_id, Slot(slot)] = bytes(image)
        return hashlib.sha256(self._images[domain_id, Slot(slot)]).hexdigest()

    def image(self, domain_id: str, slot: Slot) -> bytes | None:
        """The slot's image; None while it holds the installation's."""
        return self._images.get((domain_id, Slot(slot)))

    def image_digest(self, domain_id: str, slot: Slot) -> str | None:
        image = self.image(domain_id, slot)
        return None if image is None else hashlib.sha256(image).hexdigest()

    def forget(self, domain_id: str) -> None:
        """Drop what a deleted machine left (its lock), once nobody holds it."""
        self._locks.pop(domain_id, None)

    def due(self, now: float) -> list[str]:
        """The machines with a step scheduled at or before ``now``."""
        found = []
        for domain_id, text in list(self._states.items()):
            steps = SimState.from_json(text).steps
            if steps and steps[0].at <= now:
                found.append(domain_id)
        return found

    @contextlib.contextmanager
    def lock(self, domain_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(domain_id, threading.RLock())
        with lock:
            yield


class FileShelf(StateShelf):
    """One JSON file per machine under ``root/<domain>/``, locked with flock across
    processes (and with a thread lock within one)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def _path(self, domain_id: str) -> Path:
        return self.root / domain_id / "simulated.json"

    def load(self, domain_id: str) -> SimState | None:
        path = self._path(domain_id)
        try:
            with path.open("rb") as handle:
                text = handle.read(_MAX_STATE_BYTES + 1).decode("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise MachineError(f"cannot read the simulated machine {path}: {exc}") from None
        try:
            return SimState.from_json(text)
        except (ValueError, KeyError, TypeError):
            raise MachineError(f"the simulated machine's state {path} is damaged") from None

    def save(self, domain_id: str, state: SimState) -> None:
        path = self._path(domain_id)
        _write_atomic(path, state.to_json())
        due = self._due_dir / domain_id
        if state.steps:
            _write_atomic(due, repr(state.steps[0].at))
        else:
            due.unlink(missing_ok=True)

    def delete(self, domain_id: str) -> None:
        self._path(domain_id).unlink(missing_ok=True)
        (self._due_dir / domain_id).unlink(missing_ok=True)
        remove_slots(self.root / domain_id)

    def put_image(self, domain_id: str, slot: Slot, image: bytes) -> str:
        return write_slot(slot_file(self.root / domain_id, slot), image)

    def image(self, domain_id: str, slot: Slot) -> bytes | None:
        return read_slot(slot_file(self.root / domain_id, slot))

    def image_digest(self, domain_id: str, slot: Slot) -> str | None:
        return slot_digest(slot_file(self.root / domain_id, slot))

    def forget(self, domain_id: str) -> None:
        super().forget(domain_id)
        shutil.rmtree(self.root / domain_id, ignore_errors=True)

    @property
    def _due_dir(self) -> Path:
        """An index: one small file per machine with steps, holding the first one's time."""
        return self.root / ".due"

    def due(self, now: float) -> list[str]:
        try:
            names = sorted(os.listdir(self._due_dir))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            try:
                at = float((self._due_dir / name).read_text(encoding="ascii")[:64])
            except (OSError, ValueError):
                continue  # being rewritten: the next tick sees it
            if at <= now:
                found.append(name)
        return found

    @contextlib.contextmanager
    def lock(self, domain_id: str) -> Iterator[None]:
        with super().lock(domain_id), machine_flock(self.root / domain_id):
            yield


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)
