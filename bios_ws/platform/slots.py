"""A machine's two firmware slots on disk (issue 13): one file per slot in the machine's
directory, ``firmware-A.fd`` and ``firmware-B.fd`` (mode 0600). A slot without its file
holds the installation's image.

A slot is written so that a crash leaves the old or the new image, never a mix (a temporary
file, fsync, rename, fsync of the directory), then read back: the digest returned is that
of what the slot holds, not of what was meant to be written. A machine may run from the
other slot meanwhile, or even from this one: a running QEMU keeps the file it opened.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bios_ws.domain.firmware import SlotBoot
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.firmware_upload import MAX_CAPSULE_BYTES
from bios_ws.errors import AdminError, MachineError

#: The largest image a slot takes (a capsule's payload is smaller than the capsule).
MAX_IMAGE_BYTES = MAX_CAPSULE_BYTES


def slot_file(directory: Path, slot: Slot) -> Path:
    return directory / f"firmware-{Slot(slot).value}.fd"


def check_image(image: bytes) -> None:
    """MachineError when ``image`` cannot be a slot's image (empty, or too large)."""
    if not isinstance(image, bytes | bytearray | memoryview):
        raise MachineError(f"a firmware image is bytes, not {type(image).__name__}")
    if not 0 < len(image) <= MAX_IMAGE_BYTES:
        raise MachineError(f"a firmware image has 1 to {MAX_IMAGE_BYTES} bytes, not"
                           f" {len(image)}")


def write_slot(path: Path, image: bytes) -> str:
    """Replace the slot file ``path`` by ``image`` atomically and durably; the SHA-256 (hex)
    of the file as read back. MachineError if it cannot be written or read."""
    from bios_ws.pki.files import write_file_atomic  # here: bios_ws.pki loads cryptography

    check_image(image)
    try:
        write_file_atomic(path, image, 0o600)
    except AdminError as exc:
        raise MachineError(f"cannot write the firmware slot: {exc.message}") from None
    digest = slot_digest(path)
    if digest is None:
        raise MachineError(f"the firmware slot {path} vanished while it was written")
    return digest


def slot_digest(path: Path) -> str | None:
    """The SHA-256 (hex) of the slot file ``path``; None when there is none (the slot holds
    the installation's image). MachineError if it cannot be read."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MachineError(f"cannot read the firmware slot {path}: {exc}") from None


def read_slot(path: Path) -> bytes | None:
    """The image of the slot file ``path``; None when there is none."""
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_IMAGE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MachineError(f"cannot read the firmware slot {path}: {exc}") from None


def remove_slots(directory: Path) -> None:
    """Delete both slot files of the machine in ``directory`` (and any temporary one a
    crash left behind)."""
    for slot in Slot:
        path = slot_file(directory, slot)
        path.unlink(missing_ok=True)
        for tmp in directory.glob(f".{path.name}.*.tmp") if directory.is_dir() else ():
            tmp.unlink(missing_ok=True)


def check_staged(plan: SlotBoot, held: str | None) -> None:
    """MachineError unless the slot a trial boots holds the image the plan expects (its
    SHA-256 ``held``; None: the installation's image): a slot changed since the update
    staged it is never tried."""
    if plan.expected_sha256 is not None and held != plan.expected_sha256:
        raise MachineError(f"slot {plan.slot.value} holds an image with SHA-256"
                           f" {held or '(the installation image)'}, not the staged"
                           f" {plan.expected_sha256}: it is not tried")
