"""The interop scenario every stack's client program plays: the inputs a test writes
for it (a JSON file: the server, the guest's and the admin's bundles, a Secure Boot
certificate, a CSR, a quote nonce, the attribute changes, a signed firmware capsule) and
the check of what it printed (its ``RESULT <json>`` line) against what the Python guest
library reads afterwards, and the firmware update it made against the server's store
(``check_firmware``, which the stacks with their own inputs use too).
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from dataclasses import dataclass
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

#: The name the server certificate holds (its SAN: localhost and 127.0.0.1).
PEER_NAME = "127.0.0.1"
IMMEDIATE: dict[str, str | int | bool] = {"BootTimeout": 10, "NumLock": False}
ON_RESET: dict[str, str | int | bool] = {"BootMode": "Bios"}
SECURE_BOOT_DATABASE = "db"
BANK = "sha256"
PCRS = list(range(8))


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


def _bundle(guest: Guest) -> dict[str, str]:
    return {"cert": str(guest.cert), "key": str(guest.key), "ca": str(guest.ca)}


def firmware_input(capsule: FirmwareCapsule) -> dict[str, str | int]:
    """What a client program needs to upload ``capsule``."""
    return {"capsule": str(capsule.path), "size": capsule.size, "sha256": capsule.sha256,
            "chunk_size": CHUNK_SIZE}


def prepare(deployment: Deployment, domain: str, work: Path, signers: Signers) -> Scenario:
    """A guest domain of its own and the program's input file in ``work``."""
    guest = deployment.new_guest(domain)
    renewed = work / "renewed"
    renewed.mkdir()
    shutil.copyfile(guest.ca, renewed / "ca.pem")
    key = new_private_key()
    (renewed / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (work / "request.der").write_bytes(certificate_request(key, domain))
    sha256 = db_certificate(work / "db-cert.pem", "interop db key").sha256
    nonce = secrets.token_bytes(32)
    capsule = firmware_capsule(work / "update.cap", signers)
    values = {
        "wsdl": str(deployment.wsdl), "url": deployment.url, "peer_name": PEER_NAME,
        "domain": domain, "guest": _bundle(guest), "admin": _bundle(deployment.admin),
        "renewed": {"cert": str(renewed / "cert.pem"), "key": str(renewed / "key.pem"),
                    "ca": str(renewed / "ca.pem")},
        "immediate": IMMEDIATE, "on_reset": ON_RESET,
        "setup_password": "interop-" + secrets.token_hex(4),
        "secure_boot_database": SECURE_BOOT_DATABASE,
        "secure_boot_certificate": str(work / "db-cert.pem"),
        "bank": BANK, "pcrs": PCRS, "nonce": base64.b64encode(nonce).decode(),
        "certificate_request": str(work / "request.der"),
        "firmware": firmware_input(capsule),
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
    assert boot.boot_next is None  # booted once by the On reset

    assert result["secure_boot_pending"] is (not result["secure_boot_before"])
    assert result["secure_boot_after_reset"] is secure_boot.enabled
    assert secure_boot.enabled is (not result["secure_boot_before"])
    assert scenario.secure_boot_sha256 in result["databases"][SECURE_BOOT_DATABASE]
    assert result["removed"] == scenario.secure_boot_sha256
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
    assert "SetAttributes" in result["diagnostics"]["audit_operations"]

    assert result["provisioning_before"] in ("S2", "S3")
    assert result["provisioning_renewed"] == provisioning.state
    check_firmware(deployment, scenario.guest.domain, scenario.capsule,
                   FirmwareSeen.of(result["firmware"]))


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
