"""Hostile and malformed requests: always a parseable SOAP 1.1 fault, and the app stays healthy."""

from __future__ import annotations

import io
from typing import Any

import pytest

from bios_ws.soap.testing import Endpoint, WsgiResult, build_endpoint, call_wsgi, soap_envelope

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
TNS = "urn:bios-ws:vbios:v1"
GOOD = soap_envelope("GetAttributes")


@pytest.fixture(scope="module")
def ep() -> Endpoint:
    return build_endpoint(max_body_bytes=64 * 1024)


def post(ep: Endpoint, body: bytes, **kwargs: Any) -> WsgiResult:
    return call_wsgi(ep.app, body, principal=ep.guest, **kwargs)


def assert_fault(
    ep: Endpoint, result: WsgiResult, status: int, faultcode: str, code: str | None
) -> None:
    assert result.status == status, result.body
    assert result.content_type == "text/xml; charset=utf-8"
    assert int(result.headers["Content-Length"]) == len(result.body)
    assert result.find("soap:Body/soap:Fault") is not None, result.body
    assert result.fault_code() == f"soap11env:{faultcode}"
    assert result.detail("Code") == code
    assert "." not in (result.fault_code() or "").split(":")[1]
    still_good = post(ep, GOOD)
    assert still_good.status == 200 and still_good.fault_code() is None


def envelope(body: str, *, ns: str = SOAP11, header: str = "", prolog: str = "") -> bytes:
    head = f"<s:Header>{header}</s:Header>" if header else ""
    return (f'{prolog}<s:Envelope xmlns:s="{ns}" xmlns:tns="{TNS}">{head}'
            f"<s:Body>{body}</s:Body></s:Envelope>").encode()


def test_a_good_request_works(ep: Endpoint) -> None:
    result = post(ep, GOOD)
    assert result.status == 200 and result.fault_code() is None


def test_billion_laughs_internal_entities_are_refused(ep: Endpoint) -> None:
    lol = ('<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY lol "lol">'
           + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">'
                     for i in range(10))
           + "]>")
    body = envelope("<tns:GetAttributes><tns:Names><tns:Name>&lol9;</tns:Name></tns:Names>"
                    "</tns:GetAttributes>", prolog=lol)
    result = post(ep, body)
    assert_fault(ep, result, 500, "Client", "InvalidRequest")
    assert b"lollol" not in result.body


def test_external_entity_content_never_appears(ep: Endpoint) -> None:
    xxe = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    body = envelope("<tns:GetAttributes><tns:Names><tns:Name>&xxe;</tns:Name></tns:Names>"
                    "</tns:GetAttributes>", prolog=xxe)
    result = post(ep, body)
    assert_fault(ep, result, 500, "Client", "InvalidRequest")
    assert b"root:" not in result.body


def test_bad_utf8_bytes(ep: Endpoint) -> None:
    body = envelope("<tns:GetAttributes><tns:Names><tns:Name>X</tns:Name></tns:Names>"
                    "</tns:GetAttributes>").replace(b">X<", b">\xff\xfe\xc3<")
    assert_fault(ep, post(ep, body), 500, "Client", "InvalidRequest")


def test_declared_charset_mismatch(ep: Endpoint) -> None:
    latin = b"<?xml version='1.0' encoding='iso-8859-1'?>" + envelope(
        "<tns:GetAttributes/>")
    assert_fault(ep, post(ep, latin), 500, "Client", "InvalidRequest")
    utf16 = GOOD.decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    assert_fault(ep, post(ep, utf16, content_type="text/xml; charset=utf-8"), 500, "Client",
                 "InvalidRequest")
    assert_fault(ep, post(ep, GOOD, content_type="text/xml; charset=iso-8859-1"), 500, "Client",
                 "InvalidRequest")
    ok16 = post(ep, utf16, content_type="text/xml; charset=utf-16")
    assert ok16.status == 200 and ok16.fault_code() is None


def test_two_body_children(ep: Endpoint) -> None:
    body = envelope("<tns:GetAttributes/><tns:GetBootOrder/>")
    assert_fault(ep, post(ep, body), 500, "Client", "InvalidRequest")


def test_empty_body_and_empty_request(ep: Endpoint) -> None:
    assert_fault(ep, post(ep, envelope("")), 500, "Client", "InvalidRequest")
    assert_fault(ep, post(ep, b""), 500, "Client", "InvalidRequest")
    assert_fault(ep, post(ep, envelope("<tns:GetAttributes/>").replace(b"<s:Body>", b"<s:Nobody>")
                      .replace(b"</s:Body>", b"</s:Nobody>")), 500, "Client", "InvalidRequest")


def test_unknown_or_unqualified_operation(ep: Endpoint) -> None:
    assert_fault(ep, post(ep, envelope("<tns:FlashFirmware/>")), 500, "Client", "InvalidRequest")
    assert_fault(ep, post(ep, envelope("<GetAttributes/>")), 500, "Client", "InvalidRequest")
    other = envelope('<o:GetAttributes xmlns:o="urn:other"/>')
    assert_fault(ep, post(ep, other), 500, "Client", "InvalidRequest")
    assert_fault(ep, post(ep, envelope("<tns:GetAttributesResponse/>")), 500, "Client",
                 "InvalidRequest")


def test_soap12_envelope_is_version_mismatch(ep: Endpoint) -> None:
    assert_fault(ep, post(ep, envelope("<tns:GetAttributes/>", ns=SOAP12)), 500,
                 "VersionMismatch", None)


def test_not_an_envelope_at_all(ep: Endpoint) -> None:
    assert_fault(ep, post(ep, b"<GetAttributes/>"), 500, "Client", "InvalidRequest")


def test_must_understand_header(ep: Endpoint) -> None:
    header = '<x:Security xmlns:x="urn:x" s:mustUnderstand="1"/>'
    assert_fault(ep, post(ep, envelope("<tns:GetAttributes/>", header=header)), 500,
                 "MustUnderstand", None)
    # a header for another actor, or without mustUnderstand, is ignored
    other = ('<x:Security xmlns:x="urn:x" s:mustUnderstand="1" s:actor="urn:someone-else"/>'
             '<x:Trace xmlns:x="urn:x">1</x:Trace>')
    result = post(ep, envelope("<tns:GetAttributes/>", header=other))
    assert result.status == 200 and result.fault_code() is None


def test_version_mismatch_is_checked_before_must_understand(ep: Endpoint) -> None:
    header = '<x:Security xmlns:x="urn:x" s:mustUnderstand="1"/>'
    assert_fault(ep, post(ep, envelope("<tns:GetAttributes/>", ns=SOAP12, header=header)), 500,
                 "VersionMismatch", None)


def test_wrong_content_type_is_415(ep: Endpoint) -> None:
    assert_fault(ep, post(ep, GOOD, content_type="text/plain"), 415, "Client", "InvalidRequest")
    assert_fault(ep, post(ep, GOOD, content_type="application/soap+xml; charset=utf-8"), 415,
                 "Client", "InvalidRequest")
    assert_fault(ep, post(ep, GOOD, content_type=None), 415, "Client", "InvalidRequest")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_are_405(ep: Endpoint, method: str) -> None:
    result = post(ep, b"", method=method)
    assert_fault(ep, result, 405, "Client", "InvalidRequest")
    assert result.headers["Allow"] == "POST"


def test_oversize_is_413_by_length_and_by_reading(ep: Endpoint) -> None:
    big = envelope("<tns:GetAttributes><tns:Names>" + "<tns:Name>A</tns:Name>" * 8000
                   + "</tns:Names></tns:GetAttributes>")
    assert len(big) > 64 * 1024
    assert_fault(ep, post(ep, big), 413, "Client", "InvalidRequest")
    assert_fault(ep, post(ep, big, content_length=""), 413, "Client", "InvalidRequest")


def test_a_lying_content_length_never_reads_past_the_limit(ep: Endpoint) -> None:
    class Stream(io.BytesIO):
        read_total = 0

        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            Stream.read_total += len(data)
            return data

    body = b"<" * (200 * 1024)
    result = call_wsgi(ep.app, b"", principal=ep.guest, content_length="10",
                       extra={"wsgi.input": Stream(body)})
    assert_fault(ep, result, 500, "Client", "InvalidRequest")
    assert Stream.read_total == 10


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", " 12x"])
def test_invalid_content_length_is_400(ep: Endpoint, length: str) -> None:
    assert_fault(ep, post(ep, GOOD, content_length=length), 400, "Client", "InvalidRequest")


def test_deep_nesting(ep: Endpoint) -> None:
    deep = "<tns:Names>" + "<x>" * 100 + "</x>" * 100 + "</tns:Names>"
    assert_fault(ep, post(ep, envelope(f"<tns:GetAttributes>{deep}</tns:GetAttributes>")), 500,
                 "Client", "InvalidRequest")
    very_deep = "<x>" * 5000 + "</x>" * 5000
    assert_fault(ep, post(ep, envelope(very_deep)), 500, "Client", "InvalidRequest")


def test_not_xml_at_all(ep: Endpoint) -> None:
    assert_fault(ep, post(ep, b"\x00\x01binary garbage"), 500, "Client", "InvalidRequest")
    assert_fault(ep, post(ep, b"{\"json\": true}"), 500, "Client", "InvalidRequest")
    assert_fault(ep, post(ep, GOOD[:-20]), 500, "Client", "InvalidRequest")


def test_processing_instructions_are_refused(ep: Endpoint) -> None:
    assert_fault(ep, post(ep, envelope("<tns:GetAttributes/>", prolog="<?evil x?>")), 500, "Client",
                 "InvalidRequest")
    assert_fault(ep, post(ep, envelope("<tns:GetAttributes><?evil x?></tns:GetAttributes>")), 500,
                 "Client", "InvalidRequest")


def test_text_or_elements_outside_the_body(ep: Endpoint) -> None:
    trailing = envelope("<tns:GetAttributes/>").replace(b"</s:Body>", b"</s:Body><s:More/>")
    assert_fault(ep, post(ep, trailing), 500, "Client", "InvalidRequest")
    text = envelope("text<tns:GetAttributes/>")
    assert_fault(ep, post(ep, text), 500, "Client", "InvalidRequest")


def test_comments_are_harmless(ep: Endpoint) -> None:
    body = envelope("<!-- hi --><tns:GetAttributes><!-- there --></tns:GetAttributes>")
    result = post(ep, body)
    assert result.status == 200 and result.fault_code() is None


def test_get_wsdl_is_served_with_the_request_address(ep: Endpoint) -> None:
    result = call_wsgi(ep.app, b"", method="GET", query="wsdl",
                       extra={"HTTP_HOST": "vbios.example:9443"})
    assert result.status == 200
    assert result.content_type.startswith("text/xml")
    assert b'location="https://vbios.example:9443/"' in result.body
    evil = call_wsgi(ep.app, b"", method="GET", query="wsdl",
                     extra={"HTTP_HOST": 'x"><evil/>', "SERVER_NAME": "127.0.0.1",
                            "SERVER_PORT": "8443"})
    assert b"<evil/>" not in evil.body
    assert b'location="https://127.0.0.1:8443/"' in evil.body


def test_a_crash_inside_the_guard_is_a_server_fault(
    ep: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bios_ws.soap import guard

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret-abc")

    monkeypatch.setattr(guard, "parse_xml", broken)
    result = post(ep, GOOD)
    assert result.status == 500
    assert result.fault_code() == "soap11env:Server"
    assert result.detail("Code") == "InternalError"
    assert result.detail("CorrelationId")
    assert b"secret-abc" not in result.body
    monkeypatch.undo()
    assert post(ep, GOOD).status == 200


@pytest.mark.parametrize("document", [
    "<?evil x?>" + GOOD.decode().split("?>", 1)[1],  # a PI in place of the declaration
    '<?xml-stylesheet href="x"?>' + GOOD.decode().split("?>", 1)[1],
    GOOD.decode().replace("<soap:Body>", "<soap:Body><![CDATA[<?]]>").replace(
        "</soap:Envelope>", "<?evil?></soap:Envelope>"),
])
def test_processing_instructions_anywhere_are_refused(ep: Endpoint, document: str) -> None:
    assert_fault(ep, post(ep, document.encode()), 500, "Client", "InvalidRequest")


def test_processing_instructions_in_utf16_are_refused(ep: Endpoint) -> None:
    text = envelope("<tns:GetAttributes><?evil x?></tns:GetAttributes>").decode()
    utf16 = text.replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    assert_fault(ep, post(ep, utf16, content_type="text/xml; charset=utf-16"), 500, "Client",
                 "InvalidRequest")

