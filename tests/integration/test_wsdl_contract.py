"""The published WSDL: equal to the code, the contract's shape, deterministic.

The WS-I Basic Profile 1.1 checks are in ``tests/conformance/``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from lxml import etree

from bios_ws.soap.contract import render_wsdl

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "wsdl" / "vbios.wsdl"
CLIENT_COPY = ROOT / "clients" / "python" / "vbios_client" / "wsdl" / "vbios.wsdl"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAPBIND = "http://schemas.xmlsoap.org/wsdl/soap/"
XS = "http://www.w3.org/2001/XMLSchema"
TNS = "urn:bios-ws:vbios:v1"
NS = {"wsdl": WSDL, "soap": SOAPBIND, "xs": XS}
OPERATIONS = {
    "GetAttributeRegistry", "GetAttributes", "SetAttributes", "GetPendingAttributes",
    "CancelPendingAttributes", "ResetAttributesToDefaults", "ChangePassword", "GetBootOrder",
    "SetBootOrder", "SetBootNext", "ApplyPendingAttributes", "GetBootMeasurements", "GetQuote",
    "GetIntegrityStatus", "GetReferenceMeasurements", "SetReferenceMeasurements",
    "CollectDiagnostics", "GetPowerState", "Reset", "GetDomainPowerState", "ResetDomain",
    "GetSecureBoot", "SetSecureBoot", "ResetSecureBootKeys", "GetSecureBootDatabases",
    "AddSecureBootCertificate", "RemoveSecureBootCertificate", "Enroll", "RenewCertificate",
    "GetProvisioningState", "GetFirmwareInventory", "GetDomainFirmwareInventory",
    "GetFirmwareHistory", "GetDomainFirmwareHistory", "GetFirmwareJob", "BeginFirmwareUpload",
    "BeginDomainFirmwareUpload", "UploadFirmwareChunk", "GetFirmwareUpload",
    "CommitFirmwareUpload", "GetSmbios", "GetSystemEventLog", "ClearSystemEventLog",
    "GetWakeAlarm", "SetWakeAlarm", "ClearWakeAlarm", "GetWatchdog", "SetWatchdog",
    "PetWatchdog", "GetDomainSmbios", "GetDomainSystemEventLog", "ClearDomainSystemEventLog",
    "SetDomainSystemEventLogPolicy", "GetDomainWakeAlarm", "SetDomainWakeAlarm",
    "ClearDomainWakeAlarm", "GetDomainWatchdog", "SetDomainWatchdog",
    "GetThermal", "GetDomainThermal", "SetThermalThresholds",
    "OverrideSensor",
    "Subscribe", "GetEvents", "Renew", "Unsubscribe",
}


@pytest.fixture(scope="module")
def text() -> bytes:
    return render_wsdl()


@pytest.fixture(scope="module")
def doc(text: bytes) -> etree._Element:
    return etree.fromstring(text)


def names(doc: etree._Element, path: str) -> list[str]:
    return [str(e.get("name")) for e in doc.iterfind(path, NS)]


def test_committed_wsdl_equals_the_code(text: bytes) -> None:
    assert COMMITTED.read_bytes() == text, "wsdl/vbios.wsdl is stale: run `make wsdl`"


def test_client_copy_equals_the_committed_wsdl() -> None:
    assert CLIENT_COPY.read_bytes() == COMMITTED.read_bytes(), (
        "clients/python/vbios_client/wsdl/vbios.wsdl differs: run `make wsdl`"
    )


def test_rendering_is_deterministic_across_processes(text: bytes) -> None:
    code = ("import sys; from bios_ws.soap.contract import render_wsdl; "
            "sys.stdout.buffer.write(render_wsdl())")
    for seed in ("1", "4242"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                             env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"})
        assert out.stdout == text


def test_the_address_is_the_one_given_and_https_only(doc: etree._Element) -> None:
    assert len(doc.findall("wsdl:service/wsdl:port/soap:address", NS)) == 1
    assert b"https://vbios.example/" in render_wsdl("https://vbios.example/")
    with pytest.raises(ValueError):
        render_wsdl("http://vbios.example/")


def test_one_service_one_port_type_one_binding(doc: etree._Element) -> None:
    assert len(doc.findall("wsdl:service", NS)) == 1
    assert len(doc.findall("wsdl:portType", NS)) == 1
    assert len(doc.findall("wsdl:binding", NS)) == 1


def test_target_namespace_is_versioned_and_absolute(doc: etree._Element) -> None:
    assert doc.get("targetNamespace") == TNS
    schemas = doc.findall("wsdl:types/xs:schema", NS)
    assert schemas
    for schema in schemas:
        target = schema.get("targetNamespace")
        assert target == TNS and urlparse(target).scheme in ("urn", "http", "https")
        assert schema.get("elementFormDefault") == "qualified"


def test_only_used_namespaces_no_soap12_no_pseudo_namespaces(text: bytes,
                                                            doc: etree._Element) -> None:
    assert set(doc.nsmap.values()) == {WSDL, SOAPBIND, XS, TNS}
    for element in doc.iter():
        assert set(element.nsmap.values()) <= {WSDL, SOAPBIND, XS, TNS}
    for forbidden in (b"soap12", b"2003/05/soap-envelope", b"spyne", b"partner-link",
                      b"addressing", b"xop", b"wsdl/http/", b"soap/encoding"):
        assert forbidden not in text


def test_no_unbounded_xs_integer(doc: etree._Element) -> None:
    types = {e.get("type") for e in doc.iter(f"{{{XS}}}element")}
    types |= {e.get("base") for e in doc.iter(f"{{{XS}}}restriction")}
    assert "xs:integer" not in types and "xs:decimal" not in types
    assert {"xs:long", "xs:int", "xs:string", "xs:boolean"} <= types


def test_port_type_and_binding_have_the_same_operations(doc: etree._Element) -> None:
    port_ops = names(doc, "wsdl:portType/wsdl:operation")
    binding_ops = names(doc, "wsdl:binding/wsdl:operation")
    assert sorted(port_ops) == sorted(binding_ops) == sorted(OPERATIONS)
    assert len(set(port_ops)) == len(port_ops)


def test_every_operation_declares_the_typed_fault_in_port_type_and_binding(
    doc: etree._Element,
) -> None:
    fault_message = doc.find("wsdl:message[@name='VbiosFault']/wsdl:part", NS)
    assert fault_message is not None
    assert fault_message.get("element") == "tns:VbiosFaultDetail"
    detail = doc.find("wsdl:types/xs:schema/xs:complexType[@name='VbiosFaultDetail']", NS)
    assert detail is not None
    assert [(e.get("name"), e.get("minOccurs")) for e in detail.iter(f"{{{XS}}}element")] == [
        ("Code", None), ("Message", None), ("Attribute", "0"), ("CorrelationId", "0")]
    for operation in doc.iterfind("wsdl:portType/wsdl:operation", NS):
        faults = operation.findall("wsdl:fault", NS)
        assert [(f.get("name"), f.get("message")) for f in faults] == [
            ("VbiosFault", "tns:VbiosFault")]
    for operation in doc.iterfind("wsdl:binding/wsdl:operation", NS):
        faults = operation.findall("wsdl:fault", NS)
        assert len(faults) == 1
        for fault in faults:
            soap_fault = fault.find("soap:fault", NS)
            assert soap_fault is not None
            assert soap_fault.get("name") == fault.get("name") == "VbiosFault"
            assert soap_fault.get("use") == "literal"
            assert soap_fault.get("namespace") is None


def test_soap_action_is_the_operation_name(doc: etree._Element) -> None:
    for operation in doc.iterfind("wsdl:binding/wsdl:operation", NS):
        soap_operation = operation.find("soap:operation", NS)
        assert soap_operation is not None
        assert soap_operation.get("soapAction") == operation.get("name")


def test_required_and_optional_fields_follow_the_contract(doc: etree._Element) -> None:
    def fields(type_name: str) -> dict[str, tuple[str | None, str | None, str | None]]:
        complex_type = doc.find(f"wsdl:types/xs:schema/xs:complexType[@name='{type_name}']", NS)
        assert complex_type is not None, type_name
        return {str(e.get("name")): (e.get("type"), e.get("minOccurs"), e.get("nillable"))
                for e in complex_type.iter(f"{{{XS}}}element")}

    assert fields("SetAttributes") == {
        "Attributes": ("tns:AttributeValueList", None, None),
        "ApplyTime": ("tns:ApplyTime", None, None),
        "ExpectedVersion": ("xs:long", "0", None),
        "Password": ("xs:string", "0", None),
    }
    assert fields("GetAttributesResponse")["Version"] == ("xs:long", None, None)
    assert fields("AttributeDefinition")["MinLength"] == ("xs:int", "0", None)
    assert fields("ApplyPendingAttributes") == {"Domain": ("xs:string", None, None)}
    for element in doc.iter(f"{{{XS}}}element"):
        assert element.get("nillable") in (None, "false")
