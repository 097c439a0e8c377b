"""A described platform's measured boot: boot manifest -> TCG events -> PCR extends.

The boot manifest (JSON, shipped as ``bios_ws/data/boot-manifest.json``) lists
the components a platform measures, in boot order: each names its PCR (0-7), its
event type, its event data and what is measured (the event data itself, or a
content string standing for the firmware image). Digests are computed for each
active bank, so a boot replays to the same PCR values every time.

Event data encodings (``"data"``: exactly one key): ``text`` (UTF-8), ``utf16``
(UTF-16LE with a NUL, as S-CRTM versions are), ``hex``, ``blob`` (UEFI platform
firmware blob: base, length), ``image`` (UEFI image load event: address, length,
link_address, device_path_hex), ``variable`` (UEFI variable: guid, name, hex or
signature_list), ``handoff`` (handoff table pointers: guid, address), ``gpt``
(GUID partition table: disk_guid, partitions). ``"measure"`` is ``"data"`` or
``{"text": ...}`` / ``{"hex": ...}``.
"""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bios_ws.domain.eventlog import Event, write_event_log
from bios_ws.domain.eventlog_types import EV_NO_ACTION, EVENT_TYPES_BY_NAME
from bios_ws.tpm.port import BOOT_PCRS, Tpm

__all__ = [
    "BootComponent",
    "BootManifest",
    "ManifestError",
    "measure_boot",
    "shipped_manifest_text",
]

MANIFEST_FORMAT = 1
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_COMPONENTS = 512
EFI_CERT_SHA256 = "c1c41626-504c-4092-aca9-41f936934328"
_GPT_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")


class ManifestError(ValueError):
    """An invalid boot manifest; the message names the component."""


@dataclass(frozen=True)
class BootComponent:
    """One measured component: its event data and the bytes whose digest is extended."""

    pcr: int
    type: int
    type_name: str
    name: str
    data: bytes
    measured: bytes

    def digests(self, banks: Sequence[str]) -> dict[str, bytes]:
        return {bank: hashlib.new(bank, self.measured).digest() for bank in banks}


@dataclass(frozen=True)
class BootManifest:
    """A validated boot manifest."""

    platform: str
    components: tuple[BootComponent, ...]

    @classmethod
    def from_json(cls, text: str) -> BootManifest:
        if len(text) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"boot manifest larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            raw: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"boot manifest is not JSON: {exc.msg} (line {exc.lineno})"
                                ) from None
        if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"boot manifest must be an object with format {MANIFEST_FORMAT}")
        items = raw.get("components")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_COMPONENTS:
            raise ManifestError(f"boot manifest needs 1..{MAX_COMPONENTS} components")
        components = tuple(_component(position, item) for position, item in enumerate(items, 1))
        missing = set(BOOT_PCRS) - {c.pcr for c in components if c.type_name == "EV_SEPARATOR"}
        if missing:
            raise ManifestError(f"boot manifest lacks a separator on PCRs {sorted(missing)}")
        return cls(str(raw.get("platform", "")), components)

    @classmethod
    def load(cls, path: Path) -> BootManifest:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise ManifestError(f"cannot read boot manifest {path}: {exc.strerror or exc}"
                                ) from None
        try:
            return cls.from_json(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ManifestError(f"boot manifest {path} is not UTF-8") from None

    def events(self, banks: Sequence[str]) -> list[Event]:
        """The events of this boot, indexed from 1 (index 0 is a log's Spec ID event)."""
        return [
            Event(index, c.pcr, c.type, c.type_name, c.digests(banks), c.data)
            for index, c in enumerate(self.components, 1)
        ]

    def event_log(self, banks: Sequence[str]) -> bytes:
        """The crypto-agile event log of this boot."""
        return write_event_log(self.events(banks), banks)


def shipped_manifest_text() -> str:
    """The boot manifest shipped with bios-ws (the development platform)."""
    return resources.files("bios_ws").joinpath("data/boot-manifest.json").read_text("utf-8")


def measure_boot(tpm: Tpm, events: Sequence[Event]) -> None:
    """Extend each event's digests into the TPM, in order (EV_NO_ACTION skipped)."""
    for event in events:
        if event.type != EV_NO_ACTION:
            tpm.pcr_extend(event.pcr, event.digests)


def _component(position: int, item: Any) -> BootComponent:
    where = f"component {position}"
    if not isinstance(item, dict):
        raise ManifestError(f"{where} is not an object")
    name = item.get("name")
    where = f"component {position} ({name})" if isinstance(name, str) else where
    pcr, type_name = item.get("pcr"), item.get("type")
    if isinstance(pcr, bool) or pcr not in BOOT_PCRS:
        raise ManifestError(f"{where}: pcr must be one of {list(BOOT_PCRS)}")
    if type_name not in EVENT_TYPES_BY_NAME or type_name == "EV_NO_ACTION":
        raise ManifestError(f"{where}: unknown or unmeasured event type {type_name!r}")
    try:
        data = _encode_data(item.get("data"))
        measured = data if item.get("measure") == "data" else _literal(item.get("measure"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{where}: {exc}") from None
    return BootComponent(pcr, EVENT_TYPES_BY_NAME[type_name], type_name,
                         name if isinstance(name, str) else "", data, measured)


def _only_key(spec: Any, what: str) -> tuple[str, Any]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"{what} must be an object with exactly one key")
    key, value = next(iter(spec.items()))
    return str(key), value


def _literal(spec: Any) -> bytes:
    key, value = _only_key(spec, 'measure ("data", {"text": ...} or {"hex": ...})')
    if key == "text" and isinstance(value, str):
        return value.encode("utf-8")
    if key == "hex" and isinstance(value, str):
        return bytes.fromhex(value)
    raise ValueError(f"measure: unknown form {key!r}")


def _guid(text: Any) -> bytes:
    """A GUID in the UEFI (mixed-endian) byte order."""
    return uuid.UUID(str(text)).bytes_le


def _u64(value: Any) -> bytes:
    number = int(value, 0) if isinstance(value, str) else value
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**64:
        raise ValueError(f"not a 64-bit unsigned number: {value!r}")
    return struct.pack("<Q", number)


def _encode_data(spec: Any) -> bytes:
    key, value = _only_key(spec, "data")
    if key == "text":
        return str(value).encode("utf-8")
    if key == "utf16":
        return (str(value) + "\0").encode("utf-16-le")
    if key == "hex":
        return bytes.fromhex(str(value))
    if key == "blob":
        return _u64(value["base"]) + _u64(value["length"])
    if key == "image":
        path = bytes.fromhex(value.get("device_path_hex", "7fff0400"))
        return (_u64(value["address"]) + _u64(value["length"])
                + _u64(value.get("link_address", 0)) + _u64(len(path)) + path)
    if key == "variable":
        return _variable(value)
    if key == "handoff":
        tables = value["tables"]
        return _u64(len(tables)) + b"".join(
            _guid(t["guid"]) + _u64(t["address"]) for t in tables)
    if key == "gpt":
        return _gpt(value)
    raise ValueError(f"data: unknown encoding {key!r}")


def _variable(value: Mapping[str, Any]) -> bytes:
    name = str(value["name"])
    if "signature_list" in value:
        content = _signature_list(value["signature_list"])
    else:
        content = bytes.fromhex(str(value.get("hex", "")))
    return (_guid(value["guid"]) + _u64(len(name)) + _u64(len(content))
            + name.encode("utf-16-le") + content)


def _signature_list(spec: Mapping[str, Any]) -> bytes:
    """An EFI_SIGNATURE_LIST of SHA-256 entries: each is owner GUID + SHA-256 of a text."""
    entries = [_guid(spec["owner"]) + hashlib.sha256(str(text).encode("utf-8")).digest()
               for text in spec["sha256_of"]]
    size = 16 + 32
    header = _guid(EFI_CERT_SHA256) + struct.pack("<III", 28 + size * len(entries), 0, size)
    return header + b"".join(entries)


def _gpt(value: Mapping[str, Any]) -> bytes:
    """UEFI_GPT_DATA: the partition table header, the partition count, the entries."""
    entries = b""
    for part in value["partitions"]:
        label = str(part["name"]).encode("utf-16-le")[:72].ljust(72, b"\0")
        entries += (_guid(part["type_guid"]) + _guid(part["guid"]) + _u64(part["first_lba"])
                    + _u64(part["last_lba"]) + _u64(part.get("attributes", 0)) + label)
    count = len(value["partitions"])
    header = _GPT_HEADER.pack(
        b"EFI PART", 0x00010000, 92, 0, 0, 1, int(value["last_lba"]), 34,
        int(value["last_lba"]) - 33, _guid(value["disk_guid"]), 2, 128, 128, 0)
    return header + _u64(count) + entries
