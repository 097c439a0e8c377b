"""The baseline checker on modified copies of the committed WSDL: each kind of change and
its verdict; the baseline file's format; the command that checks and updates it."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from bios_ws.soap.baseline import BaselineError, from_json, main, to_json
from bios_ws.soap.compatibility import breaking_changes
from bios_ws.soap.wsdl_model import UnsupportedWsdl, WsdlModel, read_wsdl

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = (ROOT / "wsdl" / "vbios.wsdl").read_bytes()
BASELINE = read_wsdl(COMMITTED)
NS = {"wsdl": "http://schemas.xmlsoap.org/wsdl/", "xs": "http://www.w3.org/2001/XMLSchema"}
XS = "{http://www.w3.org/2001/XMLSchema}"

Edit = Callable[[etree._Element], None]


def edited_wsdl(*edits: Edit) -> bytes:
    root = etree.fromstring(COMMITTED)
    for edit in edits:
        edit(root)
    return bytes(etree.tostring(root))


def edited(*edits: Edit) -> WsdlModel:
    return read_wsdl(edited_wsdl(*edits))


def verdicts(current: WsdlModel, baseline: WsdlModel = BASELINE) -> list[str]:
    return [str(b) for b in breaking_changes(baseline, current)]


def schema_type(root: etree._Element, name: str) -> etree._Element:
    found = root.find(f"wsdl:types/xs:schema/*[@name='{name}']", NS)
    assert found is not None, name
    return found


def field(root: etree._Element, type_name: str, name: str) -> etree._Element:
    found = schema_type(root, type_name).find(f"xs:sequence/xs:element[@name='{name}']", NS)
    assert found is not None, (type_name, name)
    return found


def remove_operation(name: str) -> Edit:
    def edit(root: etree._Element) -> None:
        for path in ("wsdl:portType/wsdl:operation", "wsdl:binding/wsdl:operation"):
            for node in root.findall(f"{path}[@name='{name}']", NS):
                node.getparent().remove(node)
    return edit


def retype(type_name: str, name: str, new_type: str) -> Edit:
    return lambda root: field(root, type_name, name).set("type", new_type)


def set_occurs(type_name: str, name: str, attribute: str, value: str) -> Edit:
    return lambda root: field(root, type_name, name).set(attribute, value)


def add_field(type_name: str, name: str, *, required: bool) -> Edit:
    def edit(root: etree._Element) -> None:
        sequence = schema_type(root, type_name).find("xs:sequence", NS)
        assert sequence is not None
        child = etree.SubElement(sequence, f"{XS}element", name=name, type="xs:string")
        if not required:
            child.set("minOccurs", "0")
    return edit


def remove_field(type_name: str, name: str) -> Edit:
    def edit(root: etree._Element) -> None:
        node = field(root, type_name, name)
        node.getparent().remove(node)
    return edit


def enumeration_values(type_name: str, *, drop: str = "", add: str = "") -> Edit:
    def edit(root: etree._Element) -> None:
        restriction = schema_type(root, type_name).find("xs:restriction", NS)
        assert restriction is not None
        for node in restriction.findall(f"xs:enumeration[@value='{drop}']", NS):
            restriction.remove(node)
        if add:
            etree.SubElement(restriction, f"{XS}enumeration", value=add)
    return edit


# -- the verdicts the issue names --------------------------------------------------------


def test_the_committed_wsdl_keeps_its_own_baseline() -> None:
    assert verdicts(read_wsdl(COMMITTED)) == []


def test_a_removed_operation_breaks() -> None:
    assert verdicts(edited(remove_operation("GetQuote"))) == ["operation GetQuote: removed"]


def test_a_retyped_field_breaks() -> None:
    assert verdicts(edited(retype("Enroll", "Expires", "xs:string"))) == [
        "operation Enroll request: field Expires retyped xs:long -> xs:string"]
    assert verdicts(edited(retype("AttributeValue", "IntegerValue", "xs:int"))) == [
        "type AttributeValue: field IntegerValue retyped xs:long -> xs:int"]


def test_a_new_optional_field_passes() -> None:
    assert verdicts(edited(add_field("GetQuote", "Purpose", required=False))) == []
    assert verdicts(edited(add_field("AttributeValue", "Note", required=False))) == []


def test_a_new_required_request_field_breaks_and_says_why() -> None:
    assert verdicts(edited(add_field("GetQuote", "Purpose", required=True))) == [
        "operation GetQuote request: new required field Purpose: old clients would not send"
        " it (make it optional, or make it part of v2)"]


def test_a_removed_enumeration_value_breaks() -> None:
    assert verdicts(edited(enumeration_values("ApplyTime", drop="OnReset"))) == [
        "enumeration ApplyTime: value OnReset removed"]


def test_an_added_enumeration_value_passes() -> None:
    assert verdicts(edited(enumeration_values("ApplyTime", add="AtMaintenanceWindow"))) == []


# -- more changes ------------------------------------------------------------------------


def test_a_new_operation_passes() -> None:
    def remove_its_messages_and_types(root: etree._Element) -> None:
        for name in ("GetQuote", "GetQuoteResponse"):
            for path in ("wsdl:message", "wsdl:types/xs:schema/*"):
                for node in root.findall(f"{path}[@name='{name}']", NS):
                    node.getparent().remove(node)

    without_quote = edited(remove_operation("GetQuote"), remove_its_messages_and_types)
    assert "GetQuote" not in without_quote.types
    assert verdicts(read_wsdl(COMMITTED), baseline=without_quote) == []


def test_a_new_required_field_passes_in_responses_and_output_types_only() -> None:
    assert verdicts(edited(add_field("GetQuoteResponse", "Clock", required=True))) == []
    assert verdicts(edited(add_field("BootOption", "Kind", required=True))) == []
    assert verdicts(edited(add_field("AttributeValue", "Unit", required=True))) == [
        "type AttributeValue: new required field Unit: old clients would not send it (make"
        " it optional, or make it part of v2)"]


def test_removed_fields_types_and_enumerations_break() -> None:
    assert verdicts(edited(remove_field("GetQuoteResponse", "EventLog"))) == [
        "operation GetQuote response: field EventLog removed"]

    def drop_enumeration(root: etree._Element) -> None:
        node = schema_type(root, "MachineKind")
        node.getparent().remove(node)
        field(root, "GetDomainPowerStateResponse", "Machine").set("type", "xs:string")

    assert verdicts(edited(drop_enumeration)) == [
        "operation GetDomainPowerState response: field Machine retyped tns:MachineKind ->"
        " xs:string", "enumeration MachineKind: removed"]


def test_occurrence_changes_are_judged_by_direction() -> None:
    assert verdicts(edited(set_occurs("GetQuote", "Bank", "minOccurs", "1"))) == [
        "operation GetQuote request: field Bank optional -> required: old clients may not"
        " send it"]
    assert verdicts(edited(set_occurs("GetQuote", "Nonce", "minOccurs", "0"))) == []
    assert verdicts(edited(set_occurs("GetQuoteResponse", "Bank", "minOccurs", "0"))) == [
        "operation GetQuote response: field Bank required -> optional: old clients rely on it"]
    assert verdicts(edited(set_occurs("NameList", "Name", "maxOccurs", "1"))) == [
        "type NameList: field Name no longer repeated: old clients may send several"]
    assert verdicts(edited(set_occurs("BootOption", "Id", "maxOccurs", "unbounded"))) == [
        "type BootOption: field Id now repeated: old clients expect one"]


def test_reordered_fields_break() -> None:
    def swap(root: etree._Element) -> None:
        nonce = field(root, "GetQuote", "Nonce")
        sequence = nonce.getparent()
        sequence.remove(nonce)
        sequence.append(nonce)

    assert verdicts(edited(swap)) == [
        "operation GetQuote request: fields reordered Nonce, Bank, PcrSelection -> Bank,"
        " PcrSelection, Nonce: a peer validating against the schema refuses the other order"]


def test_another_namespace_breaks() -> None:
    moved = read_wsdl(COMMITTED.replace(b"urn:bios-ws:vbios:v1", b"urn:bios-ws:vbios:v2"))
    assert verdicts(moved) == ["contract: namespace urn:bios-ws:vbios:v1 ->"
                               " urn:bios-ws:vbios:v2: a new namespace is a new contract (v2),"
                               " with a baseline of its own"]


def test_a_fault_no_longer_declared_breaks() -> None:
    def undeclare(root: etree._Element) -> None:
        operation = root.find("wsdl:portType/wsdl:operation[@name='Reset']", NS)
        assert operation is not None
        for node in operation.findall("wsdl:fault", NS):
            operation.remove(node)

    assert verdicts(edited(undeclare)) == ["operation Reset: fault VbiosFault no longer declared"]


def test_constructs_outside_the_model_are_refused_not_skipped() -> None:
    def choice(root: etree._Element) -> None:
        sequence = schema_type(root, "TypedValue").find("xs:sequence", NS)
        assert sequence is not None
        sequence.tag = f"{XS}choice"

    with pytest.raises(UnsupportedWsdl, match="type TypedValue"):
        edited(choice)


# -- the baseline file and its command ---------------------------------------------------


def test_the_baseline_file_round_trips() -> None:
    assert from_json(to_json(BASELINE)) == BASELINE
    with pytest.raises(BaselineError):
        from_json('{"format": "something else"}')
    with pytest.raises(BaselineError):
        from_json(to_json(BASELINE).replace('"required": true', '"required": "yes"', 1))


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), stdout=out), out.getvalue()


def test_the_command_checks_and_updates_on_purpose_only(tmp_path: Path) -> None:
    baseline, wsdl = tmp_path / "baseline.json", tmp_path / "vbios.wsdl"
    files = ["--baseline", str(baseline), "--wsdl", str(wsdl)]
    wsdl.write_bytes(COMMITTED)
    assert run("check", *files)[0] == 1  # no baseline yet
    assert run("update", *files) == (0, f"{baseline}: updated\n")
    assert run("check", *files)[0] == 0
    written = baseline.read_text()

    wsdl.write_bytes(edited_wsdl(enumeration_values("ApplyTime", drop="OnReset")))
    for action in ("check", "update"):
        code, out = run(action, *files)
        assert code == 1
        assert "enumeration ApplyTime: value OnReset removed" in out
        assert "--allow-breaking" in out and "CHANGELOG.md" in out
    assert baseline.read_text() == written
    assert run("update", "--allow-breaking", *files)[0] == 0
    assert from_json(baseline.read_text()).enumerations["ApplyTime"] == ("Immediate",)
