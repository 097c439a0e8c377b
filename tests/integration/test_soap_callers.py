"""Who may call each operation: the table in ``bios_ws/soap/callers.py`` against what the
endpoint does, for every operation of the committed WSDL and every caller.

Each operation is called in-process with a request valid against the contract, as a
guest (an enrolled one: its certificate's serial and incarnation), as the admin, and
anonymously (no client certificate, through the TLS front's identity middleware). A
caller the table lists is served (HTTP 200: never AccessDenied); a caller it does not
list is refused with AccessDenied.

The attestation operations run on an attested host (``tests/attested_host.py``: a
FakeTpm booted from the shipped manifest, its reference set, an attestation key
enrolled), so that their listed callers are really served; the other operations on
``build_endpoint`` (every other capability, simulated machines, no TPM).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bios_ws.capabilities import CAPABILITIES
from bios_ws.domain.principal import Principal, Role
from bios_ws.registry_file import load_registry
from bios_ws.server.identity import PeerIdentity
from bios_ws.service.enrollment import EnrollmentService
from bios_ws.service.firmware_trust import FirmwareTrustService
from bios_ws.soap.callers import CALLERS, ROLE_ORDER, describe
from bios_ws.soap.testing import WsgiResult, build_endpoint, call_wsgi, soap_envelope
from bios_ws.soap.wsdl_model import read_wsdl
from tests.attested_host import build_attested_host, enroll_attestation_key, nonce_xml
from tests.firmware_support import capsule, make_signers
from tests.unit.test_service_enrollment import csr, principal_of
from tests.unit.test_service_secureboot import PLATFORM_KEY, pem

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "wsdl" / "vbios.wsdl"
WSDL_OPERATIONS = tuple(o.name for o in read_wsdl(COMMITTED.read_bytes()).operations)
ATTESTATION_OPERATIONS = frozenset(
    name for capability in CAPABILITIES if capability.name == "attestation"
    for service in capability.services() for name in service.public_methods)
URL = "https://127.0.0.1:8443/"
CA_PEM = b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"
DOMAIN = "vm1"


@dataclass
class Host:
    """An in-process endpoint, its callers, and what valid requests need from it."""

    app: Any
    guest: Principal
    admin: Principal
    #: A fresh bootstrap URI's ticket for the guest's domain, as Enroll's children.
    enroll_request: Callable[[], str]
    event_log: bytes = b""
    #: A capsule the host's admin trusts the signer of.
    capsule: bytes = b""

    def call(self, role: Role, operation: str, inner: str) -> WsgiResult:
        body = soap_envelope(operation, inner)
        if role is Role.ANONYMOUS:  # as the TLS front passes on a caller without certificate
            front = PeerIdentity(self.app, ca_pem=CA_PEM)
            return call_wsgi(front, body, extra={"REMOTE_ADDR": "10.1.2.3"})
        principal = self.guest if role is Role.GUEST else self.admin
        return call_wsgi(self.app, body, principal=principal)


def services_host() -> Host:
    endpoint = build_endpoint(DOMAIN, registry=load_registry())  # with Secure Boot
    enrollment = endpoint.use_cases.use(EnrollmentService)

    def enroll_request() -> str:
        ticket, _ = enrollment.ticket(endpoint.admin, DOMAIN, URL)
        return (f"<tns:Domain>{ticket.domain_id}</tns:Domain>"
                f"<tns:Nonce>{ticket.nonce}</tns:Nonce>"
                f"<tns:Expires>{int(ticket.expires_at.timestamp())}</tns:Expires>"
                f"<tns:Token>{ticket.token}</tns:Token>"
                f"<tns:CertificateRequest>{b64(csr(DOMAIN))}</tns:CertificateRequest>")

    ticket, _ = enrollment.ticket(endpoint.admin, DOMAIN, URL)
    issued = enrollment.enroll("setup", ticket, csr(DOMAIN))
    signers = make_signers(endpoint.clock.now())
    endpoint.use_cases.use(FirmwareTrustService).add(endpoint.admin, signers.root.cert_pem())
    return Host(endpoint.app, principal_of(issued.cert_pem), endpoint.admin, enroll_request,
                capsule=capsule(signers, 2))


def attested_host() -> Host:
    host = build_attested_host()
    host.set_reference_from_log()
    enroll_attestation_key(host)

    def no_enrollment() -> str:
        raise AssertionError("the attested host serves attestation operations only")

    return Host(host.app, host.guest, host.admin, no_enrollment, host.event_log or b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def password_change() -> str:
    return ("<tns:PasswordName>SetupPassword</tns:PasswordName>"
            "<tns:NewPassword>secret-1</tns:NewPassword>")


#: A request valid against the contract, per operation: the wrapper's children.
REQUESTS: dict[str, Callable[[Host], str]] = {
    "Enroll": lambda host: host.enroll_request(),
    "RenewCertificate": lambda host: (
        f"<tns:CertificateRequest>{b64(csr(DOMAIN))}</tns:CertificateRequest>"),
    "GetProvisioningState": lambda host: "",
    "GetAttributeRegistry": lambda host: "",
    "GetAttributes": lambda host: "<tns:Names><tns:Name>AssetTag</tns:Name></tns:Names>",
    "SetAttributes": lambda host: (
        "<tns:Attributes><tns:AttributeValue><tns:Name>AssetTag</tns:Name>"
        "<tns:StringValue>rack-1</tns:StringValue></tns:AttributeValue></tns:Attributes>"
        "<tns:ApplyTime>OnReset</tns:ApplyTime>"),
    "GetPendingAttributes": lambda host: "",
    "CancelPendingAttributes": lambda host: "",
    "ResetAttributesToDefaults": lambda host: "",
    "ChangePassword": lambda host: password_change(),
    "GetBootOrder": lambda host: "",
    "SetBootOrder": lambda host: boot_order(host),
    "SetBootNext": lambda host: "",
    "ApplyPendingAttributes": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "GetPowerState": lambda host: "",
    "Reset": lambda host: "<tns:ResetType>On</tns:ResetType>",
    "GetDomainPowerState": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "ResetDomain": lambda host: (
        f"<tns:Domain>{DOMAIN}</tns:Domain><tns:ResetType>On</tns:ResetType>"),
    "GetSecureBoot": lambda host: "",
    "SetSecureBoot": lambda host: "<tns:Enabled>false</tns:Enabled>",
    "ResetSecureBootKeys": lambda host: (
        "<tns:ResetKeysType>ResetAllKeysToDefault</tns:ResetKeysType>"),
    "GetSecureBootDatabases": lambda host: "",
    "AddSecureBootCertificate": lambda host: (
        f"<tns:Domain>{DOMAIN}</tns:Domain><tns:Database>db</tns:Database>"
        f"<tns:Certificate>{pem(PLATFORM_KEY)}</tns:Certificate>"),
    "RemoveSecureBootCertificate": lambda host: removable_certificate(host),
    "GetBootMeasurements": lambda host: "",
    "GetQuote": lambda host: nonce_xml(b"n" * 32),
    "GetIntegrityStatus": lambda host: "",
    "GetReferenceMeasurements": lambda host: "",
    "CollectDiagnostics": lambda host: "",
    "SetReferenceMeasurements": lambda host: (
        f"<tns:EventLog>{b64(host.event_log)}</tns:EventLog>"),
    "GetFirmwareInventory": lambda host: "",
    "GetFirmwareHistory": lambda host: "",
    "GetDomainFirmwareInventory": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "GetDomainFirmwareHistory": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "BeginFirmwareUpload": lambda host: upload_size(host),
    "BeginDomainFirmwareUpload": lambda host: (
        f"<tns:Domain>{DOMAIN}</tns:Domain>{upload_size(host)}"),
    "UploadFirmwareChunk": lambda host: upload_chunk(host, begun_upload(host)),
    "GetFirmwareUpload": lambda host: f"<tns:UploadId>{begun_upload(host)}</tns:UploadId>",
    "CommitFirmwareUpload": lambda host: f"<tns:UploadId>{uploaded(host)}</tns:UploadId>",
    "GetFirmwareJob": lambda host: f"<tns:JobId>{committed_job(host)}</tns:JobId>",
    "GetSmbios": lambda host: "",
    "GetSystemEventLog": lambda host: "",
    "ClearSystemEventLog": lambda host: "",
    "GetWakeAlarm": lambda host: "",
    "SetWakeAlarm": lambda host: f"<tns:WakeTime>{WAKE_TIME}</tns:WakeTime>",
    "ClearWakeAlarm": lambda host: "",
    "GetWatchdog": lambda host: "",
    "SetWatchdog": lambda host: "<tns:Enabled>true</tns:Enabled>",
    "PetWatchdog": lambda host: armed_watchdog(host),
    "GetDomainSmbios": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "GetDomainSystemEventLog": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "ClearDomainSystemEventLog": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "SetDomainSystemEventLogPolicy": lambda host: (
        f"<tns:Domain>{DOMAIN}</tns:Domain><tns:MaxNumberOfRecords>64</tns:MaxNumberOfRecords>"
        "<tns:OverWritePolicy>NeverOverWrites</tns:OverWritePolicy>"),
    "GetDomainWakeAlarm": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "SetDomainWakeAlarm": lambda host: (
        f"<tns:Domain>{DOMAIN}</tns:Domain><tns:WakeTime>{WAKE_TIME}</tns:WakeTime>"),
    "ClearDomainWakeAlarm": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "GetDomainWatchdog": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "SetDomainWatchdog": lambda host: (
        f"<tns:Domain>{DOMAIN}</tns:Domain><tns:Enabled>true</tns:Enabled>"
        "<tns:TimeoutSeconds>60</tns:TimeoutSeconds>"),
    "GetThermal": lambda host: "",
    "GetDomainThermal": lambda host: f"<tns:Domain>{DOMAIN}</tns:Domain>",
    "SetThermalThresholds": lambda host: (
        f"<tns:Domain>{DOMAIN}</tns:Domain><tns:UpperCaution>70.5</tns:UpperCaution>"
        "<tns:UpperCritical>85</tns:UpperCritical><tns:UpperFatal>95.25</tns:UpperFatal>"),
    "OverrideSensor": lambda host: (
        f"<tns:Domain>{DOMAIN}</tns:Domain><tns:Sensor>Inlet</tns:Sensor>"
        "<tns:Reading>30.5</tns:Reading><tns:DurationSeconds>60</tns:DurationSeconds>"),
    "Subscribe": lambda host: (
        "<tns:EventTypes><tns:EventType>SettingsChanged</tns:EventType></tns:EventTypes>"),
    "GetEvents": lambda host: (
        f"<tns:SubscriptionId>{subscribed(host)}</tns:SubscriptionId><tns:Wait>1</tns:Wait>"),
    "Renew": lambda host: (
        f"<tns:SubscriptionId>{subscribed(host)}</tns:SubscriptionId>"
        "<tns:ExpiresIn>600</tns:ExpiresIn>"),
    "Unsubscribe": lambda host: f"<tns:SubscriptionId>{subscribed(host)}</tns:SubscriptionId>",
}
#: A wake time in the future of the endpoint's manual clock (2026-01-01).
WAKE_TIME = "2026-06-01T06:30:00Z"


def armed_watchdog(host: Host) -> str:
    """Nothing to send; the guest armed its watchdog first (a pet of a disarmed one is
    WatchdogNotArmed whoever asks)."""
    _guest_answer(host, "SetWatchdog", "<tns:Enabled>true</tns:Enabled>", "Enabled")
    return ""


def subscribed(host: Host) -> str:
    """A subscription the guest made (the admin may use any)."""
    return _guest_answer(host, "Subscribe", "", "SubscriptionId")


def upload_size(host: Host) -> str:
    return (f"<tns:Size>{len(host.capsule)}</tns:Size>"
            f"<tns:Sha256>{hashlib.sha256(host.capsule).hexdigest()}</tns:Sha256>")


def _guest_answer(host: Host, operation: str, inner: str, field: str) -> str:
    reply = host.call(Role.GUEST, operation, inner)
    assert reply.status == 200, reply.body
    value = reply.xml().findtext(f".//{{urn:bios-ws:vbios:v1}}{field}")
    assert value, reply.body
    return value


def begun_upload(host: Host) -> str:
    """An upload of the host's capsule the guest began."""
    return _guest_answer(host, "BeginFirmwareUpload", upload_size(host), "UploadId")


def upload_chunk(host: Host, upload_id: str) -> str:
    return (f"<tns:UploadId>{upload_id}</tns:UploadId><tns:Offset>0</tns:Offset>"
            f"<tns:Data>{b64(host.capsule)}</tns:Data>"
            f"<tns:Sha256>{hashlib.sha256(host.capsule).hexdigest()}</tns:Sha256>")


def uploaded(host: Host) -> str:
    """An upload the guest began and sent whole."""
    upload_id = begun_upload(host)
    _guest_answer(host, "UploadFirmwareChunk", upload_chunk(host, upload_id), "NextOffset")
    return upload_id


def committed_job(host: Host) -> str:
    """The job of an upload the guest committed."""
    return _guest_answer(host, "CommitFirmwareUpload",
                         f"<tns:UploadId>{uploaded(host)}</tns:UploadId>", "JobId")


def boot_order(host: Host) -> str:
    """The domain's boot order as it is (read as the guest)."""
    current = host.call(Role.GUEST, "GetBootOrder", "")
    order = current.xml().iterfind(".//{urn:bios-ws:vbios:v1}Order/{urn:bios-ws:vbios:v1}"
                                   "OptionId")
    ids = "".join(f"<tns:OptionId>{item.text}</tns:OptionId>" for item in order)
    return f"<tns:Order>{ids}</tns:Order>"


def removable_certificate(host: Host) -> str:
    """A certificate the admin added to the domain's db first, by its SHA-256."""
    added = host.call(Role.ADMIN, "AddSecureBootCertificate",
                      REQUESTS["AddSecureBootCertificate"](host))
    assert added.status == 200, added.body
    listed = host.call(Role.GUEST, "GetSecureBootDatabases", "")
    sha = listed.xml().findtext(".//{urn:bios-ws:vbios:v1}Sha256")
    return (f"<tns:Domain>{DOMAIN}</tns:Domain><tns:Database>db</tns:Database>"
            f"<tns:Sha256>{sha}</tns:Sha256>")


def host_for(operation: str) -> Host:
    return attested_host() if operation in ATTESTATION_OPERATIONS else services_host()


def test_the_table_names_exactly_the_operations_of_the_wsdl() -> None:
    missing = [name for name in WSDL_OPERATIONS if name not in CALLERS]
    unknown = sorted(set(CALLERS) - set(WSDL_OPERATIONS))
    assert not missing, (f"operations of wsdl/vbios.wsdl missing from CALLERS in"
                         f" bios_ws/soap/callers.py: {missing}")
    assert not unknown, f"CALLERS in bios_ws/soap/callers.py names no such operation: {unknown}"


def test_every_operation_has_a_request_here() -> None:
    assert sorted(REQUESTS) == sorted(WSDL_OPERATIONS), "add a valid request to REQUESTS"


@pytest.mark.parametrize("role", ROLE_ORDER, ids=str)
@pytest.mark.parametrize("operation", WSDL_OPERATIONS)
def test_the_table_says_who_may_call(operation: str, role: Role) -> None:
    assert operation in CALLERS, (f"{operation} is missing from CALLERS in"
                                  " bios_ws/soap/callers.py")
    listed = CALLERS[operation]
    host = host_for(operation)
    reply = host.call(role, operation, REQUESTS[operation](host))
    code = reply.detail("Code")
    seen = f"HTTP {reply.status}, fault {code}: {reply.detail('Message')}"
    if role in listed:
        assert code != "AccessDenied", (
            f"{operation} refused {role} although CALLERS lists {describe(listed)} ({seen})")
        assert reply.status == 200, f"{operation} as {role}: the request failed ({seen})"
    else:
        assert code == "AccessDenied", (
            f"{operation} served {role}, which CALLERS does not list (only"
            f" {describe(listed)}): {seen}")
