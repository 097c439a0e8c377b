"""The interop scenario every stack's client program plays: the inputs a test writes
for it (a JSON file: the server, the guest's and the admin's bundles, a Secure Boot
certificate, a CSR, a quote nonce, the attribute changes, a signed firmware capsule) and
the check of what it printed (its ``RESULT <json>`` line) against what the Python guest
library reads afterwards, and the firmware update it made against the server's store
(``check_firmware``, which the stacks with their own inputs use too), and what it read
and changed of the system management and thermal operations against the same store
(``check_system``, likewise), and the events it read of its subscription against the
same store (``check_events``, likewise).
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import vbios_client as vc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from vbios_client.attestation import QuoteEvidence, verify_quote
from vbios_client.enrollment import certificate_request, new_private_key

from bios_ws.domain.firmware_job import ApplyTime, JobState
from bios_ws.domain.firmware_update import SYSTEM_FIRMWARE_CLASS, Slot
from bios_ws.domain.thermal_policy import Sensor
from tests.firmware_support import Signers
from tests.interop.conftest import Deployment, Guest
from tests.interop.materials import (
    CAPSULE_FW_VERSION,
    CHUNK_SIZE,
    FIRST_FW_VERSION,
    FirmwareCapsule,
    db_certificate,
    firmware_capsule,
)
from tests.interop.routed import check_admin_certificate, check_reset_secure_boot

#: The name the server certificate holds (its SAN: localhost and 127.0.0.1).
PEER_NAME = "127.0.0.1"
IMMEDIATE: dict[str, str | int | bool] = {"BootTimeout": 10, "NumLock": False}
ON_RESET: dict[str, str | int | bool] = {"BootMode": "Bios"}
SECURE_BOOT_DATABASE = "db"
BANK = "sha256"
PCRS = list(range(8))
#: The watchdog's timeout a program arms it with: far longer than a run, it never bites.
WATCHDOG_SECONDS = 600
#: The MessageId of the entries the Reset (On) leaves in the System Event Log.
POWER_ENTRY = "VbiosSel.1.0.PowerStateChanged"
CLEARED_ENTRY = "VbiosSel.1.0.LogCleared"
#: Subscribe's ExpiresIn, then Renew's; GetEvents' Wait (short: the Reset's events are in
#: the store already when the program reads).
EVENTS_EXPIRES_IN = 300
EVENTS_RENEW_IN = 900
EVENTS_WAIT = 2


@dataclass(frozen=True)
class Scenario:
    """What a client program gets (``input``, a JSON file) and what the test keeps to
    check its answers."""

    input: Path
    guest: Guest
    nonce: bytes
    secure_boot_sha256: str
    renewed: Path  # the bundle directory the program completes with the renewed cert.pem
    renewed_key: ec.EllipticCurvePrivateKey
    capsule: FirmwareCapsule


@dataclass(frozen=True)
class FirmwareSeen:
    """What a client program read of the firmware update it made as the guest."""

    fw_version: int  # GetFirmwareInventory, before the upload
    active_slot: str
    chunks: int  # UploadFirmwareChunk calls
    next_offset: int  # GetFirmwareUpload after the last chunk
    job_id: str  # CommitFirmwareUpload's Job
    state: str
    slot: str
    monotonic_count: str  # the Job's xs:unsignedLong, in decimal as the stack read it
    job_state: str  # GetFirmwareJob(JobId)
    history: tuple[str, ...]  # GetFirmwareHistory: the job ids, newest first

    @classmethod
    def of(cls, values: dict[str, Any]) -> FirmwareSeen:
        """From a client's ``firmware`` RESULT object (or the same keys as text)."""
        history = values["history"]
        return cls(int(values["fw_version"]), str(values["active_slot"]),
                   int(values["chunks"]), int(values["next_offset"]), str(values["job_id"]),
                   str(values["state"]), str(values["slot"]), str(values["monotonic_count"]),
                   str(values["job_state"]),
                   tuple(history.split(",") if isinstance(history, str) else history))


def _flag(value: object) -> bool:
    """An xs:boolean as a program gave it: a JSON boolean or its text."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    assert text in ("true", "false", "1", "0"), f"not a boolean: {value!r}"
    return text in ("true", "1")


def _time(text: str) -> datetime:
    """An RFC 3339 time with its offset (``Z`` too)."""
    parsed = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, f"a time without its offset: {text!r}"
    return parsed


@dataclass(frozen=True)
class SystemSeen:
    """What a client program read and changed as the guest with the system-management and
    thermal operations (after the Reset On and the firmware update)."""

    bios_vendor: str  # GetSmbios: type 0
    bios_version: str
    system_serial: str  # type 1
    system_uuid: str
    cpu_reading: float  # GetThermal: the CPU sensor's Reading (xs:double)
    cpu_upper_critical: float  # its UpperCritical threshold's Reading
    wake_set: str  # the WakeTime the program sent to SetWakeAlarm
    wake_read: str  # GetWakeAlarm's WakeTime afterwards
    wake_cleared: bool  # ClearWakeAlarm's Cleared
    watchdog_armed: int  # SetWatchdog (Enabled, WATCHDOG_SECONDS): TimeoutSeconds answered
    watchdog_pet_deadline: str  # PetWatchdog's Deadline
    watchdog_enabled: bool  # GetWatchdog after the pet
    watchdog_disarmed: bool  # SetWatchdog (Enabled false): the answer's Enabled
    sel_entries: int  # GetSystemEventLog: how many entries
    sel_last_id: int  # the largest Id among them
    sel_message_ids: tuple[str, ...]
    sel_removed: int  # ClearSystemEventLog's Removed

    @classmethod
    def of(cls, values: dict[str, Any]) -> SystemSeen:
        """From a client's ``system`` RESULT object (or the same keys as text)."""
        ids = values["sel_message_ids"]
        return cls(
            str(values["bios_vendor"]), str(values["bios_version"]),
            str(values["system_serial"]), str(values["system_uuid"]),
            float(values["cpu_reading"]), float(values["cpu_upper_critical"]),
            str(values["wake_set"]), str(values["wake_read"]), _flag(values["wake_cleared"]),
            int(values["watchdog_armed"]), str(values["watchdog_pet_deadline"]),
            _flag(values["watchdog_enabled"]), _flag(values["watchdog_disarmed"]),
            int(values["sel_entries"]), int(values["sel_last_id"]),
            tuple(ids.split(",") if isinstance(ids, str) else ids), int(values["sel_removed"]))


def check_system(deployment: Deployment, domain: str, seen: SystemSeen) -> None:
    """What the program read and changed with the system-management and thermal operations
    against the server's store: the SMBIOS tables, a CPU reading of the model's range with
    the sensor's thresholds, the wake alarm it set (read back at the same instant) and
    cleared, the watchdog it armed, petted and disarmed, the log it read (the Reset's
    power entries) and cleared (one LogCleared entry after the Ids it read)."""
    state = deployment.system(domain)
    tables = state.smbios
    assert (seen.bios_vendor, seen.bios_version) == (tables.bios.vendor, tables.bios.version)
    assert seen.bios_vendor == "bios-ws" and seen.bios_version == f"vbios-{FIRST_FW_VERSION}"
    assert seen.system_serial == tables.system.serial_number
    assert seen.system_uuid.lower() == str(tables.system.uuid)

    cpu = state.thermal.sensor(Sensor.CPU)
    assert cpu.thresholds is not None
    assert seen.cpu_upper_critical == cpu.thresholds.critical
    assert -40.0 <= seen.cpu_reading <= 150.0, seen.cpu_reading
    assert abs(seen.cpu_reading * 100 - round(seen.cpu_reading * 100)) < 1e-6  # 0.01 degC
    assert abs(seen.cpu_reading - cpu.reading) < 30.0, (seen.cpu_reading, cpu.reading)

    wake = _time(seen.wake_set)
    assert _time(seen.wake_read) == wake, (seen.wake_set, seen.wake_read)
    assert timedelta(0) < wake - datetime.now(UTC) < timedelta(days=1)
    assert seen.wake_cleared is True and state.wake_alarm is None

    assert seen.watchdog_armed == WATCHDOG_SECONDS
    assert _time(seen.watchdog_pet_deadline) > datetime.now(UTC)
    assert seen.watchdog_enabled is True and seen.watchdog_disarmed is False
    watchdog = state.watchdog
    assert (watchdog.enabled, watchdog.timeout_seconds, watchdog.expirations) == (
        False, WATCHDOG_SECONDS, 0)

    assert seen.sel_entries == len(seen.sel_message_ids) >= 1
    assert POWER_ENTRY in seen.sel_message_ids, seen.sel_message_ids
    assert seen.sel_removed >= seen.sel_entries
    entries = state.event_log.entries
    assert all(entry.entry_id > seen.sel_last_id for entry in entries), entries
    cleared = [entry for entry in entries if entry.message_id == CLEARED_ENTRY]
    assert len(cleared) == 1, entries
    assert str(seen.sel_removed) in cleared[0].message_args, cleared[0]


def _ints(value: object) -> tuple[int, ...]:
    """A list of integers as a program gave it: a JSON list or comma-separated text."""
    if isinstance(value, str):
        return tuple(int(v) for v in value.split(",") if v.strip())
    assert isinstance(value, list | tuple), value
    return tuple(int(v) for v in value)


def _names(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    assert isinstance(value, list | tuple), value
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class EventsSeen:
    """What a client program read of its own events as the guest: Subscribe (every type,
    ``EVENTS_EXPIRES_IN``) before a change of the scenario, GetEvents after it with the
    Subscribe's Cursor, Renew (``EVENTS_RENEW_IN``), Unsubscribe."""

    subscription_id: str  # Subscribe's SubscriptionId
    cursor: int  # Subscribe's Cursor (xs:long)
    expires: str  # Subscribe's Expires
    event_ids: tuple[int, ...]  # GetEvents: the Events' EventId, in the order read
    event_types: tuple[str, ...]  # their EventType
    event_domains: tuple[str, ...]  # their Domain ("" when absent: host-wide)
    next_cursor: int  # GetEvents' NextCursor
    events_lost: bool  # GetEvents' EventsLost
    renewed_expires: str  # Renew's Expires
    unsubscribed: str  # Unsubscribe's SubscriptionId

    @classmethod
    def of(cls, values: dict[str, Any]) -> EventsSeen:
        """From a client's ``events`` RESULT object (or the same keys as text)."""
        domains = values["event_domains"] if _ints(values["event_ids"]) else []  # none read
        return cls(
            str(values["subscription_id"]), int(values["cursor"]), str(values["expires"]),
            _ints(values["event_ids"]), _names(values["event_types"]),
            tuple("" if d is None else str(d) for d in (
                domains.split(",") if isinstance(domains, str) else domains)),
            int(values["next_cursor"]), _flag(values["events_lost"]),
            str(values["renewed_expires"]), str(values["unsubscribed"]))


def check_events(deployment: Deployment, domain: str, seen: EventsSeen) -> None:
    """The events the program read against the store serving them: at least one (not in
    the routed run: B's stream, the Reset's are A's), exactly the ones its guest sees after
    the Subscribe's cursor up to the NextCursor (ids and types in order, its domain's or
    host-wide), none lost; the subscription renewed, then gone after Unsubscribe."""
    now = datetime.now(UTC)
    assert seen.event_ids or deployment.routed, "GetEvents after the change read no event"
    assert len(seen.event_ids) == len(seen.event_types) == len(seen.event_domains)
    assert all(seen.cursor < i <= seen.next_cursor for i in seen.event_ids) and list(
        seen.event_ids) == sorted(set(seen.event_ids)), (seen.event_ids, seen.next_cursor)
    assert seen.events_lost is False
    state = deployment.events(domain, seen.cursor)
    assert seen.next_cursor <= state.head
    stored = [event for event in state.events if event.event_id <= seen.next_cursor]
    assert tuple(event.event_id for event in stored) == seen.event_ids, (stored, seen)
    assert tuple(str(event.record.event_type) for event in stored) == seen.event_types
    assert tuple(event.record.domain_id or "" for event in stored) == seen.event_domains
    assert set(seen.event_domains) <= {domain, ""}, seen.event_domains
    assert domain in seen.event_domains or deployment.routed, "no event of its own domain"
    assert _time(seen.expires) > now  # Subscribe's ExpiresIn counted from the Subscribe
    assert _time(seen.renewed_expires) > _time(seen.expires)
    assert _time(seen.renewed_expires) <= now + timedelta(seconds=EVENTS_RENEW_IN + 5)
    assert seen.unsubscribed == seen.subscription_id
    assert seen.subscription_id not in {s.subscription_id for s in state.subscriptions}


def _bundle(guest: Guest) -> dict[str, str]:
    return {"cert": str(guest.cert), "key": str(guest.key), "ca": str(guest.ca)}


def firmware_input(capsule: FirmwareCapsule) -> dict[str, str | int]:
    """What a client program needs to upload ``capsule``."""
    return {"capsule": str(capsule.path), "size": capsule.size, "sha256": capsule.sha256,
            "chunk_size": CHUNK_SIZE}


def prepare(deployment: Deployment, domain: str, work: Path, signers: Signers) -> Scenario:
    """A guest domain of its own (``domain`` or its routed twin), the input in ``work``."""
    guest = deployment.new_guest(domain)
    renewed = work / "renewed"
    renewed.mkdir()
    shutil.copyfile(guest.ca, renewed / "ca.pem")
    key = new_private_key()
    (renewed / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (work / "request.der").write_bytes(certificate_request(key, guest.domain))
    sha256 = db_certificate(work / "db-cert.pem", "interop db key").sha256
    nonce = secrets.token_bytes(32)
    capsule = firmware_capsule(work / "update.cap", signers)
    values = {
        "wsdl": str(deployment.wsdl), "url": deployment.url, "peer_name": PEER_NAME,
        "domain": guest.domain, "guest": _bundle(guest), "admin": _bundle(deployment.admin),
        "renewed": {"cert": str(renewed / "cert.pem"), "key": str(renewed / "key.pem"),
                    "ca": str(renewed / "ca.pem")},
        "immediate": IMMEDIATE, "on_reset": ON_RESET,
        "setup_password": "interop-" + secrets.token_hex(4),
        "secure_boot_database": SECURE_BOOT_DATABASE,
        "secure_boot_certificate": str(work / "db-cert.pem"),
        "bank": BANK, "pcrs": PCRS, "nonce": base64.b64encode(nonce).decode(),
        "certificate_request": str(work / "request.der"),
        "firmware": firmware_input(capsule),
        "watchdog_seconds": WATCHDOG_SECONDS,
        "events": {"expires_in": EVENTS_EXPIRES_IN, "renew_in": EVENTS_RENEW_IN,
                   "wait": EVENTS_WAIT},
    }
    path = work / "input.json"
    path.write_text(json.dumps(values, indent=1))
    return Scenario(path, guest, nonce, sha256, renewed, key, capsule)


def result_of(output: str) -> dict[str, Any]:
    """The program's ``RESULT <json>`` line."""
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, f"no single RESULT line in:\n{output[-3000:]}"
    result: dict[str, Any] = json.loads(lines[0].removeprefix("RESULT "))
    return result


def check_answers(deployment: Deployment, scenario: Scenario, result: dict[str, Any]) -> None:
    """What the program printed against what the Python guest library reads now (with
    the renewed certificate: the old one is revoked)."""
    renewed_cert = x509.load_pem_x509_certificate((scenario.renewed / "cert.pem").read_bytes())
    assert renewed_cert.public_key() == scenario.renewed_key.public_key()
    assert result["renewed_serial"].upper() == format(renewed_cert.serial_number, "X")
    with vc.BiosClient.from_bundle(deployment.url, scenario.renewed, timeout=15,
                                   auto_renew=False) as bios:
        registry = bios.get_attribute_registry()
        attributes = bios.get_attributes()
        boot = bios.get_boot_order()
        secure_boot = bios.get_secure_boot()
        databases = bios.get_secure_boot_databases()
        power = bios.get_power_state()
        measurements = bios.get_boot_measurements(BANK)
        integrity = bios.get_integrity_status()
        reference = bios.get_reference_measurements()
        provisioning = bios.get_provisioning_state()

    assert set(result["registry"]) == {a.name for a in registry.attributes}
    assert result["registry"]["BootTimeout"]["type"] == registry.lookup("BootTimeout").type
    assert result["attributes_after_set"] == IMMEDIATE
    assert result["pending_after_set"] == ON_RESET
    defaults = result["pending_defaults"]
    assert defaults and all(v == registry.lookup(n).default for n, v in defaults.items())
    assert result["password_set"] is True
    assert result["final"]["version"] == attributes.version
    assert result["final"]["attributes"] == attributes.values
    assert result["final"]["setup_password_set"] is attributes.setup_password_set is False
    assert {n: attributes.values[n] for n in IMMEDIATE} == IMMEDIATE
    # the On reset applied the pending Secure Boot switch, nothing else was pending
    assert attributes.values["BootMode"] != ON_RESET["BootMode"]

    assert result["fault"]["code"] == "VersionConflict", result["fault"]
    assert "version" in result["fault"]["message"]

    assert tuple(result["boot"]["order"]) == boot.order
    assert result["boot"]["boot_next"] == boot.order[0]
    assert boot.boot_next is None  # the reset booted with it (B's, for a routed domain)

    assert result["secure_boot_pending"] is (not result["secure_boot_before"])
    assert result["secure_boot_after_reset"] is secure_boot.enabled
    check_reset_secure_boot(result["secure_boot_before"], secure_boot)
    check_admin_certificate(scenario.secure_boot_sha256,
                            result["databases"][SECURE_BOOT_DATABASE], result["removed"])
    assert scenario.secure_boot_sha256 not in {
        c.sha256 for c in databases[SECURE_BOOT_DATABASE]}
    assert {n: len(c) for n, c in result["databases"].items() if n != SECURE_BOOT_DATABASE} \
        == {n: len(c) for n, c in databases.items() if n != SECURE_BOOT_DATABASE}

    assert result["power_before"] == "Off"
    assert result["power_after"] in ("PoweringOn", "On")
    assert result["domain_power"]["machine"] == "simulated"
    assert power.power_state in ("PoweringOn", "On")

    assert result["measurements"]["bank"] == measurements.bank == BANK
    assert result["measurements"]["pcrs"] == sorted(measurements.pcrs)
    assert result["measurements"]["events"] == len(measurements.events)
    quote = result["quote"]
    evidence = QuoteEvidence(
        attest=base64.b64decode(quote["attest"]), signature=base64.b64decode(quote["signature"]),
        bank=quote["bank"], ak_certificate=base64.b64decode(quote["ak_certificate"]),
        pcrs={p["index"]: base64.b64decode(p["value"]) for p in quote["pcrs"]},
        event_log=base64.b64decode(quote["event_log"]))
    assert evidence.bank == BANK and sorted(evidence.pcrs) == PCRS
    verdict = verify_quote(evidence, nonce=scenario.nonce, ca_pem=scenario.guest.ca.read_bytes())
    assert verdict.authentic, verdict.failures
    assert result["integrity"]["state"] == ("Trusted" if integrity.trusted else "Untrusted")
    assert result["integrity"]["bank"] == integrity.bank
    assert result["reference_digest"] == (None if reference is None else reference.digest)
    assert ("SetAttributes" in result["diagnostics"]["audit_operations"]) is not deployment.routed

    assert result["provisioning_before"] in ("S2", "S3")
    assert result["provisioning_renewed"] == provisioning.state
    check_firmware(deployment, scenario.guest.domain, scenario.capsule,
                   FirmwareSeen.of(result["firmware"]))
    check_system(deployment, scenario.guest.domain, SystemSeen.of(result["system"]))
    check_events(deployment, scenario.guest.domain, EventsSeen.of(result["events"]))


def check_firmware(deployment: Deployment, domain: str, capsule: FirmwareCapsule,
                   seen: FirmwareSeen) -> None:
    """The update the program made (every chunk, the commit OnReset) against the server's
    store: one job of ``domain``, the program's, waiting for the next reset with the image
    in slot B, the capsule's versions, count and digest; the inventory as it was."""
    inventory, jobs = deployment.firmware(domain)
    assert (seen.fw_version, seen.active_slot) == (FIRST_FW_VERSION, "A")
    assert seen.chunks == capsule.chunks >= 2
    assert seen.next_offset == capsule.size
    assert len(jobs) == 1, jobs
    job = jobs[0]
    assert (job.state, job.slot, job.apply_time) == (
        JobState.NEEDS_RESET, Slot.B, ApplyTime.ON_RESET)
    assert (job.fw_version, job.from_version) == (CAPSULE_FW_VERSION, FIRST_FW_VERSION)
    assert (job.monotonic_count, job.capsule_sha256) == (capsule.monotonic_count,
                                                          capsule.sha256)
    assert (seen.job_id, seen.state, seen.slot) == (job.job_id, "NeedsReset", "B")
    assert seen.monotonic_count == str(capsule.monotonic_count), seen.monotonic_count
    assert seen.job_state == "NeedsReset"
    assert seen.history == (job.job_id,)
    entry = inventory.entry(SYSTEM_FIRMWARE_CLASS)
    assert entry is not None  # the update waits for the reset: nothing changed yet
    assert (entry.fw_version, entry.active_slot) == (FIRST_FW_VERSION, Slot.A)
