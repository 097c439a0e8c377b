"""Restricted mode through the SOAP app: an Untrusted host refuses state changes, keeps reads.

FakeTpm booted from the shipped manifest; the reference is taken from that boot's log.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from bios_ws.soap.testing import WsgiResult
from bios_ws.soap.types import TNS
from bios_ws.tpm.bootlog import BootManifest, shipped_manifest_text
from tests.attested_host import AttestedHost, build_attested_host

SET_TAG = ("<tns:Attributes><tns:AttributeValue><tns:Name>AssetTag</tns:Name>"
           "<tns:StringValue>rack-1</tns:StringValue></tns:AttributeValue></tns:Attributes>"
           "<tns:ApplyTime>Immediate</tns:ApplyTime>")
WRITES = [
    ("SetAttributes", SET_TAG),
    ("CancelPendingAttributes", ""),
    ("ResetAttributesToDefaults", ""),
    ("SetBootOrder", "<tns:Order><tns:OptionId>disk0</tns:OptionId></tns:Order>"),
    ("SetBootNext", ""),
    ("ChangePassword", "<tns:PasswordName>SetupPassword</tns:PasswordName>"
                       "<tns:NewPassword>secret-1</tns:NewPassword>"),
]


@pytest.fixture
def host() -> AttestedHost:
    host = build_attested_host(interval=10.0)
    host.set_reference_from_log()
    return host


def state(result: WsgiResult) -> str | None:
    assert result.status == 200, result.body
    return result.text("soap:Body/tns:GetIntegrityStatusResponse/tns:Status/tns:State")


def tamper(host: AttestedHost, pcr: int = 4) -> None:
    """A runtime extend without a logged event."""
    host.tpm.pcr_extend(pcr, {bank: hashlib.new(bank, b"rootkit").digest()
                              for bank in host.tpm.active_banks()})


def test_trusted_host_accepts_writes(host: AttestedHost) -> None:
    assert state(host.call("GetIntegrityStatus")) == "Trusted"
    result = host.call("SetAttributes", SET_TAG)
    assert result.fault_code() is None, result.body


def test_runtime_extend_makes_the_host_untrusted_naming_the_pcr(host: AttestedHost) -> None:
    tamper(host, 4)
    result = host.call("GetIntegrityStatus")
    assert state(result) == "Untrusted"
    assert result.text("soap:Body/tns:GetIntegrityStatusResponse/tns:Status/tns:Restricted") \
        == "true"
    findings = result.xml().findall(".//{urn:bios-ws:vbios:v1}Finding")
    assert [(f.findtext("{urn:bios-ws:vbios:v1}Kind"), f.findtext("{urn:bios-ws:vbios:v1}Pcr"))
            for f in findings] == [("pcr-value", "4")]


@pytest.mark.parametrize(("operation", "inner"), WRITES)
def test_every_write_fails_with_service_restricted_and_is_audited(
    host: AttestedHost, operation: str, inner: str
) -> None:
    tamper(host)
    host.monotonic.now += 60  # past the interval: the write re-measures
    result = host.call(operation, inner)
    assert result.status == 500
    assert result.detail("Code") == "ServiceRestricted"
    assert "restricted mode" in (result.detail("Message") or "")
    assert (operation, "refused:ServiceRestricted") in host.audit_operations()


def test_reads_attestation_and_diagnostics_keep_working(host: AttestedHost) -> None:
    tamper(host)
    host.call("GetIntegrityStatus")
    for operation in ("GetAttributes", "GetAttributeRegistry", "GetPendingAttributes",
                      "GetBootOrder", "GetBootMeasurements", "CollectDiagnostics",
                      "GetReferenceMeasurements"):
        result = host.call(operation)
        assert result.fault_code() is None, (operation, result.body)


def test_reference_update_is_admin_only_and_works_in_restricted_mode(host: AttestedHost) -> None:
    tamper(host)
    host.call("GetIntegrityStatus")
    refused = host.call("SetReferenceMeasurements", "<tns:Manifest>{}</tns:Manifest>")
    assert refused.detail("Code") == "AccessDenied"
    assert ("SetReferenceMeasurements", "refused:AccessDenied") in host.audit_operations()


def test_entering_and_leaving_restricted_mode_is_audited_once(host: AttestedHost) -> None:
    tamper(host)
    for _ in range(3):
        host.call("GetIntegrityStatus")
    host.reboot()  # the expected boot replayed
    assert state(host.call("GetIntegrityStatus")) == "Trusted"
    assert state(host.call("GetIntegrityStatus")) == "Trusted"
    changes = [op for op, _ in host.audit_operations() if op.endswith("RestrictedMode")]
    assert changes == ["EnterRestrictedMode", "LeaveRestrictedMode"]
    assert host.call("SetAttributes", SET_TAG).fault_code() is None


def test_write_check_measures_at_most_once_per_interval(host: AttestedHost) -> None:
    assert host.call("SetAttributes", SET_TAG).fault_code() is None
    opened = host.opened
    tamper(host)
    # within the interval the cached Trusted verdict stands: no TPM use, the write passes
    assert host.call("SetAttributes", SET_TAG).fault_code() is None
    assert host.opened == opened
    host.monotonic.now += 10.0
    assert host.call("SetAttributes", SET_TAG).detail("Code") == "ServiceRestricted"
    assert host.opened == opened + 1


def test_no_reference_is_untrusted(host: AttestedHost) -> None:
    fresh = build_attested_host()
    result = fresh.call("GetIntegrityStatus")
    assert state(result) == "Untrusted"
    kinds = [f.findtext("{urn:bios-ws:vbios:v1}Kind")
             for f in result.xml().findall(".//{urn:bios-ws:vbios:v1}Finding")]
    assert kinds == ["no-reference"]


def test_pcrs_the_log_does_not_cover_are_not_judged(host: AttestedHost) -> None:
    tamper(host, 16)  # the debug PCR: no event of the boot log touches it
    assert state(host.call("GetIntegrityStatus")) == "Trusted"


def test_a_new_firmware_boot_is_untrusted_until_the_admin_accepts_it(host: AttestedHost) -> None:
    text = shipped_manifest_text().replace(
        "PEI firmware volume 1.0.0", "PEI firmware volume 1.0.1")
    host.manifest = BootManifest.from_json(text)
    host.reboot()  # boots the updated firmware
    result = host.call("GetIntegrityStatus")
    assert state(result) == "Untrusted"
    kinds = {(f.findtext(f"{{{TNS}}}Kind"), f.findtext(f"{{{TNS}}}Pcr"))
             for f in result.xml().findall(f".//{{{TNS}}}Finding")}
    assert kinds == {("event-mismatch", "0")}
    assert host.call("SetAttributes", SET_TAG).detail("Code") == "ServiceRestricted"
    # the admin takes this boot's event log as the new reference
    assert host.event_log is not None
    log = base64.b64encode(host.event_log).decode()
    result = host.call("SetReferenceMeasurements", f"<tns:EventLog>{log}</tns:EventLog>",
                       as_=host.admin)
    assert result.fault_code() is None, result.body
    status = result.text("soap:Body/tns:SetReferenceMeasurementsResponse/tns:Status/tns:State")
    assert status == "Trusted"
    assert host.call("SetAttributes", SET_TAG).fault_code() is None
    assert ("SetReferenceMeasurements", "ok") in host.audit_operations()
