"""The attestation operations as XML through the WSGI app, over a FakeTpm host.

GetQuote's nonce, PCR and bank checks; the default selection; hosts without an
AK certificate, without a readable TPM or event log, and without a TPM at all;
GetBootMeasurements against the TPM and the log; CollectDiagnostics and who sees
which audit entries; SetReferenceMeasurements refusals (audited, nothing stored);
and a quote from the app verified by the guest library against the test CA.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from vbios_client.attestation import parse_attest, verify_quote

from bios_ws.domain.eventlog import parse_event_log
from bios_ws.domain.principal import Principal
from bios_ws.pki import certs
from bios_ws.service.integrity import REFERENCE_KEY
from bios_ws.tpm.port import PCR_COUNT
from tests.attested_host import (
    AttestedHost,
    T,
    UnmeasuredHost,
    add_domain,
    audit_of,
    b64,
    binary,
    build_attested_host,
    build_host_without_tpm,
    ca_pem,
    enroll_attestation_key,
    evidence_of,
    fault,
    finding_kinds,
    nonce_xml,
    ok,
    pcr_values,
    pcrs_xml,
    response_text,
)

SET_TAG = ("<tns:Attributes><tns:AttributeValue><tns:Name>AssetTag</tns:Name>"
           "<tns:StringValue>rack-1</tns:StringValue></tns:AttributeValue></tns:Attributes>"
           "<tns:ApplyTime>Immediate</tns:ApplyTime>")
BAD_HEX_MANIFEST = json.dumps({"format": "bios-ws-reference-v1", "pcrs": {
    "0": [{"type": "EV_POST_CODE", "digests": [{"sha256": "zz"}]}]}})


@pytest.fixture
def host() -> AttestedHost:
    host = build_attested_host()
    host.set_reference_from_log()
    return host


@pytest.fixture
def ca(host: AttestedHost) -> certs.Issued:
    return enroll_attestation_key(host)


# -- GetQuote: the nonce ----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 15, 65])
def test_nonce_of_a_wrong_size_is_refused(host: AttestedHost, ca: certs.Issued,
                                          size: int) -> None:
    message = fault(host.call("GetQuote", nonce_xml(b"n" * size)), "InvalidRequest", "Client")
    assert f"not {size}" in message
    assert host.opened == 1  # the reference check only: the TPM was never asked to quote


@pytest.mark.parametrize("size", [16, 64])
def test_nonce_of_16_and_64_bytes_is_quoted(host: AttestedHost, ca: certs.Issued,
                                            size: int) -> None:
    nonce = bytes(range(size))
    evidence = evidence_of(host.call("GetQuote", nonce_xml(nonce)))
    assert parse_attest(evidence.attest).extra_data == nonce


@pytest.mark.parametrize("text", ["!!not base64!!", "abc", "****"])
def test_nonce_that_is_not_base64_is_a_client_fault(host: AttestedHost, ca: certs.Issued,
                                                    text: str) -> None:
    result = host.call("GetQuote", f"<tns:Nonce>{text}</tns:Nonce>")
    fault(result, "InvalidRequest", "Client")


def test_missing_nonce_is_a_client_fault(host: AttestedHost, ca: certs.Issued) -> None:
    fault(host.call("GetQuote"), "InvalidRequest", "Client")


# -- GetQuote: PCRs and bank ----------------------------------------------------------


@pytest.mark.parametrize(("extra", "words"), [
    (pcrs_xml(24), "0 to 23"),
    (pcrs_xml(-1), "0 to 23"),
    (pcrs_xml(3, 3), "distinct"),
    (pcrs_xml(0, 1, 0), "distinct"),
    ("<tns:Bank>md5</tns:Bank>", "'md5'"),
    ("<tns:Bank>SHA256</tns:Bank>", "sha1, sha256"),
])
def test_bad_selection_is_refused(host: AttestedHost, ca: certs.Issued, extra: str,
                                  words: str) -> None:
    message = fault(host.call("GetQuote", nonce_xml(b"n" * 32, extra)), "InvalidRequest",
                    "Client")
    assert words in message


def test_default_selection_is_pcrs_0_to_7_in_sha256(host: AttestedHost,
                                                    ca: certs.Issued) -> None:
    evidence = evidence_of(host.call("GetQuote", nonce_xml(b"n" * 32)))
    assert evidence.bank == "sha256"
    assert list(evidence.pcrs) == list(range(8))
    assert parse_attest(evidence.attest).pcr_selection == {"sha256": tuple(range(8))}
    assert evidence.pcrs == host.tpm.pcr_read(range(8), "sha256")


def test_explicit_selection_and_bank_are_quoted(host: AttestedHost, ca: certs.Issued) -> None:
    extra = "<tns:Bank>sha1</tns:Bank>" + pcrs_xml(7, 0, 23)  # the contract's order
    evidence = evidence_of(host.call("GetQuote", nonce_xml(b"n" * 32, extra)))
    assert evidence.bank == "sha1"
    assert evidence.pcrs == host.tpm.pcr_read([0, 7, 23], "sha1")
    assert parse_attest(evidence.attest).pcr_selection == {"sha1": (0, 7, 23)}


def test_quote_verifies_in_the_guest_library_against_the_test_ca(
    host: AttestedHost, ca: certs.Issued
) -> None:
    nonce = b"fresh-nonce-0123456789"
    evidence = evidence_of(host.call("GetQuote", nonce_xml(nonce)))
    assert evidence.event_log == host.event_log
    verdict = verify_quote(evidence, nonce=nonce, ca_pem=ca_pem(ca))
    assert verdict.trusted, verdict.failures
    assert verdict.authentic


def test_quote_does_not_verify_against_another_ca(host: AttestedHost, ca: certs.Issued) -> None:
    nonce = b"fresh-nonce-0123456789"
    evidence = evidence_of(host.call("GetQuote", nonce_xml(nonce)))
    other = ca_pem(certs.make_ca(datetime.now(UTC)))
    verdict = verify_quote(evidence, nonce=nonce, ca_pem=other)
    assert [f.check for f in verdict.failures] == ["ak-certificate"]


def test_admin_may_quote_too(host: AttestedHost, ca: certs.Issued) -> None:
    ok(host.call("GetQuote", nonce_xml(b"n" * 16), as_=host.admin), "GetQuote")


# -- GetQuote: what the host lacks --------------------------------------------------------


def test_no_ak_certificate_is_attestation_unavailable(host: AttestedHost) -> None:
    assert host.ak_certificate is None
    message = fault(host.call("GetQuote", nonce_xml(b"n" * 16)), "AttestationUnavailable",
                    "Server")
    assert "attestation key" in message


def test_unreadable_event_log_is_attestation_unavailable(host: AttestedHost,
                                                         ca: certs.Issued) -> None:
    host.event_log = None
    for operation, inner in (("GetQuote", nonce_xml(b"n" * 16)), ("GetBootMeasurements", "")):
        message = fault(host.call(operation, inner), "AttestationUnavailable", "Server")
        assert "event log" in message


def test_unreachable_tpm_is_a_tpm_fault_and_untrusted(host: AttestedHost,
                                                      ca: certs.Issued) -> None:
    host.tpm.available = False
    fault(host.call("GetQuote", nonce_xml(b"n" * 16)), "TpmUnavailable", "Server")
    status = ok(host.call("GetIntegrityStatus"), "GetIntegrityStatus")
    assert finding_kinds(status, "GetIntegrityStatus") == ["tpm-unavailable"]
    assert status.text("soap:Body/tns:GetIntegrityStatusResponse/tns:Status/tns:Restricted") \
        == "true"


# -- a host without TPM -----------------------------------------------------------------


@pytest.fixture
def bare() -> UnmeasuredHost:
    return build_host_without_tpm()


def test_no_tpm_host_cannot_quote_or_measure(bare: UnmeasuredHost) -> None:
    for operation, inner in (("GetQuote", nonce_xml(b"n" * 16)), ("GetBootMeasurements", "")):
        message = fault(bare.call(operation, inner), "AttestationUnavailable", "Server")
        assert "without a TPM" in message


def test_no_tpm_host_checks_its_arguments_first(bare: UnmeasuredHost) -> None:
    fault(bare.call("GetQuote", nonce_xml(b"n" * 8)), "InvalidRequest", "Client")
    fault(bare.call("GetBootMeasurements", "<tns:Bank>md5</tns:Bank>"), "InvalidRequest",
          "Client")


def test_no_tpm_host_is_untrusted_but_not_restricted(bare: UnmeasuredHost) -> None:
    result = ok(bare.call("GetIntegrityStatus"), "GetIntegrityStatus")
    status = "soap:Body/tns:GetIntegrityStatusResponse/tns:Status"
    assert result.text(f"{status}/tns:State") == "Untrusted"
    assert result.text(f"{status}/tns:Restricted") == "false"
    assert finding_kinds(result, "GetIntegrityStatus") == ["no-tpm"]
    write = bare.call("SetAttributes", SET_TAG)
    assert write.fault_code() is None, write.body


def test_no_tpm_host_diagnostics_say_why_measurements_are_missing(bare: UnmeasuredHost) -> None:
    result = ok(bare.call("CollectDiagnostics"), "CollectDiagnostics")
    unavailable = response_text(result, "CollectDiagnostics", "Unavailable") or ""
    assert unavailable.startswith("AttestationUnavailable: ")
    for absent in ("Bank", "Pcrs", "EventLog", "Events"):
        assert result.find(f"soap:Body/tns:CollectDiagnosticsResponse/tns:{absent}") is None
    assert finding_kinds(result, "CollectDiagnostics") == ["no-tpm"]


# -- GetBootMeasurements ----------------------------------------------------------------


@pytest.mark.parametrize("bank", ["sha256", "sha1"])
def test_boot_measurements_are_the_tpm_pcrs_and_the_host_log(host: AttestedHost,
                                                             bank: str) -> None:
    inner = "" if bank == "sha256" else f"<tns:Bank>{bank}</tns:Bank>"
    result = ok(host.call("GetBootMeasurements", inner), "GetBootMeasurements")
    assert response_text(result, "GetBootMeasurements", "Bank") == bank
    pcrs = pcr_values(result, "GetBootMeasurements")
    assert list(pcrs) == list(range(PCR_COUNT)) == list(range(24))
    assert pcrs == host.tpm.pcr_read(range(PCR_COUNT), bank)
    assert host.event_log is not None
    assert binary(result, "GetBootMeasurements", "EventLog") == host.event_log
    expected = parse_event_log(host.event_log)
    events = result.xml().findall(
        f".//{T}GetBootMeasurementsResponse/{T}Events/{T}MeasuredEvent")
    assert len(events) == len(expected) > 1
    for element, event in zip(events, expected, strict=True):
        assert int(element.findtext(f"{T}Index") or "-1") == event.index
        assert int(element.findtext(f"{T}Pcr") or "-1") == event.pcr
        assert element.findtext(f"{T}Type") == event.type_name
        assert int(element.findtext(f"{T}DataSize") or "-1") == len(event.data)
        digests = {d.findtext(f"{T}Bank"): base64.b64decode(d.findtext(f"{T}Digest") or "")
                   for d in element.iter(f"{T}BankDigest")}
        assert digests == event.digests


def test_unparsable_log_goes_out_raw_and_unknown_banks_are_refused(host: AttestedHost) -> None:
    host.event_log = b"\x00not an event log"
    result = ok(host.call("GetBootMeasurements"), "GetBootMeasurements")
    assert binary(result, "GetBootMeasurements", "EventLog") == host.event_log
    assert result.xml().findall(f".//{T}MeasuredEvent") == []
    fault(host.call("GetBootMeasurements", "<tns:Bank>md5</tns:Bank>"), "InvalidRequest",
          "Client")


# -- CollectDiagnostics -----------------------------------------------------------------


def test_diagnostics_hold_status_measurements_and_audit(host: AttestedHost) -> None:
    result = ok(host.call("CollectDiagnostics"), "CollectDiagnostics")
    assert response_text(result, "CollectDiagnostics", "CollectedAt")
    assert result.text("soap:Body/tns:CollectDiagnosticsResponse/tns:Status/tns:State") \
        == "Trusted"
    assert response_text(result, "CollectDiagnostics", "Unavailable") is None
    assert response_text(result, "CollectDiagnostics", "Bank") == "sha256"
    assert pcr_values(result, "CollectDiagnostics") == host.tpm.pcr_read(range(24), "sha256")
    assert binary(result, "CollectDiagnostics", "EventLog") == host.event_log
    assert len(result.xml().findall(f".//{T}MeasuredEvent")) > 1
    assert audit_of(result) == [
        ("admin:admin", "CreateDomain", "vm1", "ok"),
        ("admin:tester", "SetReferenceMeasurements", None, "ok"),
    ]
    seqs = [int(e.findtext(f"{T}Seq") or "0") for e in result.xml().iter(f"{T}AuditEntry")]
    assert seqs == sorted(seqs)


def test_a_guest_sees_only_its_own_and_host_wide_audit_entries(host: AttestedHost) -> None:
    other = add_domain(host, "vm2")
    assert host.call("SetAttributes", SET_TAG, as_=other).fault_code() is None
    assert host.call("SetAttributes", SET_TAG).fault_code() is None
    mine = audit_of(ok(host.call("CollectDiagnostics"), "CollectDiagnostics"))
    assert {domain for _, _, domain, _ in mine} == {"vm1", None}
    assert ("guest:vm1", "SetAttributes", "vm1", "ok") in mine
    assert ("admin:tester", "SetReferenceMeasurements", None, "ok") in mine
    theirs = audit_of(ok(host.call("CollectDiagnostics", as_=other), "CollectDiagnostics"))
    assert {domain for _, _, domain, _ in theirs} == {"vm2", None}
    everything = audit_of(ok(host.call("CollectDiagnostics", as_=host.admin),
                             "CollectDiagnostics"))
    assert ("guest:vm2", "SetAttributes", "vm2", "ok") in everything
    assert ("guest:vm1", "SetAttributes", "vm1", "ok") in everything


def test_diagnostics_keep_the_last_50_entries(host: AttestedHost) -> None:
    for n in range(60):  # a different value each time: a write that changes nothing is not audited
        set_tag = SET_TAG.replace("rack-1", f"rack-{n}")
        assert host.call("SetAttributes", set_tag).fault_code() is None
    entries = audit_of(ok(host.call("CollectDiagnostics"), "CollectDiagnostics"))
    assert len(entries) == 50
    assert entries[-1] == ("guest:vm1", "SetAttributes", "vm1", "ok")


# -- SetReferenceMeasurements / GetReferenceMeasurements ----------------------------------


def test_no_reference_yet_is_an_empty_response() -> None:
    fresh = build_attested_host()
    result = ok(fresh.call("GetReferenceMeasurements"), "GetReferenceMeasurements")
    response = result.find("soap:Body/tns:GetReferenceMeasurementsResponse")
    assert response is not None and len(response) == 0
    assert response_text(result, "GetReferenceMeasurements", "Version") is None


def test_reference_from_the_log_is_returned(host: AttestedHost) -> None:
    result = ok(host.call("GetReferenceMeasurements"), "GetReferenceMeasurements")
    assert response_text(result, "GetReferenceMeasurements", "Version") == "1"
    manifest = response_text(result, "GetReferenceMeasurements", "Manifest") or ""
    assert json.loads(manifest)["format"] == "bios-ws-reference-v1"
    digest = response_text(result, "GetReferenceMeasurements", "ReferenceDigest")
    status = ok(host.call("GetIntegrityStatus"), "GetIntegrityStatus")
    assert status.text("soap:Body/tns:GetIntegrityStatusResponse/tns:Status/"
                       "tns:ReferenceDigest") == digest


def test_manifest_round_trips_as_a_new_version(host: AttestedHost) -> None:
    before = ok(host.call("GetReferenceMeasurements"), "GetReferenceMeasurements")
    manifest = response_text(before, "GetReferenceMeasurements", "Manifest") or ""
    result = ok(host.call("SetReferenceMeasurements", f"<tns:Manifest>{manifest}</tns:Manifest>",
                          as_=host.admin), "SetReferenceMeasurements")
    assert response_text(result, "SetReferenceMeasurements", "Version") == "2"
    assert response_text(result, "SetReferenceMeasurements", "ReferenceDigest") == \
        response_text(before, "GetReferenceMeasurements", "ReferenceDigest")
    assert result.text("soap:Body/tns:SetReferenceMeasurementsResponse/tns:Status/tns:State") \
        == "Trusted"


def log_xml(host: AttestedHost) -> str:
    assert host.event_log is not None
    return f"<tns:EventLog>{b64(host.event_log)}</tns:EventLog>"


def test_description_of_1024_characters_is_kept(host: AttestedHost) -> None:
    inner = log_xml(host) + f"<tns:Description>{'d' * 1024}</tns:Description>"
    ok(host.call("SetReferenceMeasurements", inner, as_=host.admin), "SetReferenceMeasurements")
    manifest = response_text(host.call("GetReferenceMeasurements"), "GetReferenceMeasurements",
                             "Manifest") or ""
    assert json.loads(manifest)["description"] == "d" * 1024


REFUSALS: list[tuple[str, str, str, str]] = [
    ("neither", "", "InvalidRequest", "exactly one of EventLog and Manifest"),
    ("both", "LOG<tns:Manifest>{}</tns:Manifest>", "InvalidRequest",
     "exactly one of EventLog and Manifest"),
    ("manifest not JSON", "<tns:Manifest>{</tns:Manifest>", "InvalidRequest", "not valid JSON"),
    ("manifest bad digest", f"<tns:Manifest>{BAD_HEX_MANIFEST}</tns:Manifest>", "InvalidRequest",
     'pcrs."0"[0].digests[0].sha256: expected 64 hex digits'),
    ("manifest missing format", "<tns:Manifest>{\"pcrs\": {}}</tns:Manifest>", "InvalidRequest",
     'missing key "format"'),
    ("log malformed", f"<tns:EventLog>{b64(b'garbage')}</tns:EventLog>", "InvalidRequest",
     "invalid reference: event log"),
    ("description too long", f"LOG<tns:Description>{'d' * 1025}</tns:Description>",
     "InvalidRequest", "at most 1024 characters"),
]


@pytest.mark.parametrize(("case", "inner", "code", "words"), REFUSALS,
                         ids=[r[0] for r in REFUSALS])
def test_reference_refusals_are_audited_and_store_nothing(
    host: AttestedHost, case: str, inner: str, code: str, words: str
) -> None:
    stored = host.store.records[REFERENCE_KEY]
    audit_before = len(host.store.audit)
    result = host.call("SetReferenceMeasurements", inner.replace("LOG", log_xml(host)),
                       as_=host.admin)
    message = fault(result, code, "Client")
    assert words in message
    assert host.store.records[REFERENCE_KEY] == stored
    assert host.audit_operations()[audit_before:] == [
        ("SetReferenceMeasurements", f"refused:{code}")]
    after = ok(host.call("GetReferenceMeasurements"), "GetReferenceMeasurements")
    assert response_text(after, "GetReferenceMeasurements", "Version") == "1"


@pytest.mark.parametrize("guest", [Principal.guest("vm1"), Principal.guest("ghost")])
def test_a_guest_cannot_set_the_reference(host: AttestedHost, guest: Principal) -> None:
    stored = host.store.records[REFERENCE_KEY]
    result = host.call("SetReferenceMeasurements", log_xml(host), as_=guest)
    fault(result, "AccessDenied", "Client")
    assert host.store.records[REFERENCE_KEY] == stored
    assert host.audit_operations()[-1] == ("SetReferenceMeasurements", "refused:AccessDenied")
    assert host.store.audit[-1].principal == str(guest)


def test_a_refusal_before_any_reference_leaves_none(host: AttestedHost) -> None:
    fresh = build_attested_host()
    fault(fresh.call("SetReferenceMeasurements", "<tns:Manifest>{</tns:Manifest>",
                     as_=fresh.admin), "InvalidRequest", "Client")
    assert REFERENCE_KEY not in fresh.store.records
    result = ok(fresh.call("GetReferenceMeasurements"), "GetReferenceMeasurements")
    assert response_text(result, "GetReferenceMeasurements", "Version") is None
