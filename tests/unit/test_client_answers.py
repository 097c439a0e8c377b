"""Answers: every response shape read as zeep reads it, every fault mapped to its class,
and hostile or misshapen answers refused with a reason that carries no value (no I/O)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import vbios_client as vc
from vbios_client import _answers, _contract, _xml
from vbios_client.exceptions import FAULT_CLASSES

from tests.unit.client_samples import envelope, plain, sample, zeep_binding, zeep_response

CONTRACT = _contract.contract()
OPERATIONS = sorted(CONTRACT.operations)
TNS = "urn:bios-ws:vbios:v1"
BOOT = ("<tns:GetBootOrderResponse><tns:Version>2</tns:Version><tns:Options><tns:BootOption>"
        "<tns:Id>a</tns:Id><tns:DisplayName>A</tns:DisplayName><tns:Enabled>true</tns:Enabled>"
        "</tns:BootOption></tns:Options><tns:Order><tns:OptionId>a</tns:OptionId></tns:Order>"
        "</tns:GetBootOrderResponse>")


def _zeep_reads(name: str, body: bytes) -> Any:
    from lxml import etree

    return zeep_binding()._operations[name].process_reply(etree.fromstring(body))


def _same(mine: Any, theirs: Any) -> bool:
    """Equal, but for zeep's shortcut: a complex element with nothing in it is None."""
    if isinstance(mine, dict) and theirs is None:
        return all(v is None or v == [] for v in mine.values())
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return mine.keys() == theirs.keys() and all(_same(mine[k], theirs[k]) for k in mine)
    if isinstance(mine, list) and isinstance(theirs, list):
        return len(mine) == len(theirs) and all(map(_same, mine, theirs))
    return bool(mine == theirs)


@pytest.mark.parametrize("name", OPERATIONS)
@pytest.mark.parametrize(("optional", "repeat", "text"),
                         [(True, 2, "x < & > é"), (False, 0, "y"), (True, 1, "")],
                         ids=["every-field", "required-only", "empty-strings"])
def test_every_response_reads_as_zeep_reads_it(name: str, optional: bool, repeat: int,
                                               text: str) -> None:
    values = sample(CONTRACT.operations[name].output_type, optional=optional, repeat=repeat,
                    text=text)
    body = zeep_response(name, values)
    mine, theirs = plain(_answers.answer(name, 200, body)), plain(_zeep_reads(name, body))
    if isinstance(theirs, list) and isinstance(mine, dict) and len(mine) == 1:
        mine = next(iter(mine.values()))  # zeep unwraps a one-field list type as well
    assert _same(mine, theirs), (mine, theirs)


def test_typed_values() -> None:
    result = _answers.answer("GetBootOrder", 200, envelope(BOOT))
    assert (result.Version, result.BootNext) == (2, None)
    assert result.Options.BootOption[0].Enabled is True
    assert result.Order.OptionId == ["a"]
    whitespace = BOOT.replace(">2<", "> +2\n<").replace(">true<", "> 1 <")
    result = _answers.answer("GetBootOrder", 200, envelope(whitespace))
    assert result.Version == 2 and result.Options.BootOption[0].Enabled is True
    assert _answers.answer("SetBootNext", 200, envelope(
        "<tns:SetBootNextResponse><tns:Version>9</tns:Version></tns:SetBootNextResponse>")) == 9


# -- faults -------------------------------------------------------------------------------


def _fault(code: str, detail: str = "", faultstring: str = "why") -> bytes:
    detail_xml = f"<detail><tns:VbiosFaultDetail>{detail}</tns:VbiosFaultDetail></detail>" \
        if detail else ""
    return envelope(f"<soap11env:Fault><faultcode>soap11env:{code}</faultcode>"
                    f"<faultstring>{faultstring}</faultstring>{detail_xml}</soap11env:Fault>")


@pytest.mark.parametrize("code", sorted(FAULT_CLASSES))
def test_every_fault_maps_to_its_class(code: str) -> None:
    detail = (f"<tns:Code>{code}</tns:Code><tns:Message>refused &lt;here&gt;</tns:Message>"
              "<tns:Attribute>BootTimeout</tns:Attribute><tns:CorrelationId>c-1"
              "</tns:CorrelationId>")
    with pytest.raises(FAULT_CLASSES[code]) as caught:
        _answers.answer("GetAttributes", 500, _fault("Client", detail))
    error = caught.value
    assert (error.code, error.message, error.attribute, error.correlation_id) == (
        code, "refused <here>", "BootTimeout", "c-1")


@pytest.mark.parametrize("code", ["VersionMismatch", "MustUnderstand"])
def test_envelope_faults_without_detail(code: str) -> None:
    with pytest.raises(FAULT_CLASSES[code]):
        _answers.answer("GetAttributes", 500, _fault(code))


def test_a_fault_with_status_200_is_still_a_fault() -> None:
    with pytest.raises(vc.UnknownAttribute):
        _answers.answer("GetAttributes", 200, _fault(
            "Client", "<tns:Code>UnknownAttribute</tns:Code><tns:Message>m</tns:Message>"))


def test_an_unknown_code_is_a_plain_fault_error() -> None:
    with pytest.raises(vc.FaultError) as caught:
        _answers.answer("GetAttributes", 500, _fault(
            "Server", "<tns:Code>Brand.New</tns:Code><tns:Message>m</tns:Message>"))
    assert type(caught.value) is vc.FaultError and caught.value.code == "Brand.New"


# -- hostile and misshapen answers ----------------------------------------------------------

BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                   .encode() for i in range(1, 10))
        + b"]>" + envelope("<x>&lol9;</x>"))
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            + envelope("<x>&e;</x>"))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (BOMB, "document type declaration"),
        (EXTERNAL, "document type declaration"),
        (b'<!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd">' + envelope(BOOT),
         "document type declaration"),
        (envelope(BOOT.replace(">2<", ">boom<")), "Version"),
        (envelope(BOOT.replace(">2<", ">99999999999999999999<")), "Version"),
        (envelope(BOOT.replace(">true<", ">boom<")), "Enabled"),
        (envelope(BOOT.replace("<tns:Order>", "<tns:Order>boom")), "Order"),
        (envelope(BOOT.replace("<tns:Order>", '<tns:Order tns:boom="1">')), "Order"),
        (envelope(BOOT.replace("<tns:Id>a</tns:Id>", "")), "BootOption"),
        (envelope(BOOT.replace("<tns:Version>2</tns:Version>", "")), "GetBootOrderResponse"),
        (envelope(BOOT.replace("</tns:Version>", "</tns:Version><tns:Version>3</tns:Version>")),
         "Version"),
        (envelope(BOOT.replace("<tns:Order>", "<tns:Boom/><tns:Order>")), "Boom"),
        (envelope(BOOT.replace("tns:GetBootOrderResponse", "tns:GetAttributesResponse")),
         "GetAttributesResponse instead of GetBootOrderResponse"),
        (envelope(BOOT + BOOT), "2 elements"),
        (envelope(""), "0 elements"),
        (BOOT.replace("<tns:GetBootOrderResponse>",
                      f'<tns:GetBootOrderResponse xmlns:tns="{TNS}">', 1).encode(),
         "instead of a SOAP 1.1 envelope"),
        (envelope(BOOT).replace(b"schemas.xmlsoap.org/soap/envelope/",
                                b"www.w3.org/2003/05/soap-envelope"), "SOAP 1.1 envelope"),
        (envelope(BOOT).replace(b"<soap11env:Body>", b"<soap11env:Header><h/>"
                                b"</soap11env:Header><soap11env:Body>"), "header"),
    ],
)
def test_misshapen_answers_are_refused(body: bytes, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(_answers.UnreadableAnswer, match=reason) as caught:
        _answers.answer("GetBootOrder", 200, body)
    assert "boom" not in str(caught.value) and "lol" not in str(caught.value)
    assert time.monotonic() - started < 1


def test_an_oversized_answer_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    body = envelope(BOOT)
    monkeypatch.setattr(_xml, "MAX_ANSWER_BYTES", len(body) - 1)
    with pytest.raises(_answers.UnreadableAnswer, match=f"longer than {len(body) - 1} bytes"):
        _answers.answer("GetBootOrder", 200, body)


def test_a_deep_answer_is_refused() -> None:
    deep = "<a>" * 300 + "</a>" * 300
    with pytest.raises(_answers.NotSoap, match="not well-formed"):  # libxml2 bounds depth
        _answers.answer("GetBootOrder", 200, envelope(BOOT.replace(
            "<tns:Order>", f"<tns:Order>{deep}")))


@pytest.mark.parametrize(("status", "body"), [
    (500, b"Internal Server Error"), (502, b""), (200, b"<not-closed>"), (200, b""),
    (503, b"<html><body>busy</body></html>"), (500, envelope(BOOT)),
])
def test_no_soap_answer(status: int, body: bytes) -> None:
    with pytest.raises(_answers.NotSoap):
        _answers.answer("GetBootOrder", status, body)
