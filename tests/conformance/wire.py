"""The live deployment the wire tests talk to, and one raw HTTPS exchange with it.

Every request the suite sends is a read (``GetAttributes``, ``GET ?wsdl``) or is
refused before anything happens (bad method, media type, envelope, header,
encoding, or a write the contract refuses anyway), so it can run against a
production installation.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
TNS = "urn:bios-ws:vbios:v1"
TIMEOUT = 15.0
XML_TEXT = "text/xml; charset=utf-8"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False)


@dataclass(frozen=True)
class Deployment:
    url: str
    context: ssl.SSLContext

    @classmethod
    def from_bundle(cls, url: str, bundle: Path) -> Deployment:
        """A guest's client bundle: ``cert.pem``, ``key.pem`` and the installation's
        ``ca.pem``."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(bundle / "ca.pem"))
        context.load_cert_chain(str(bundle / "cert.pem"), str(bundle / "key.pem"))
        return cls(url if url.endswith("/") else url + "/", context)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    def exchange(self, method: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None, query: str = "") -> Reply:
        """One request on a fresh connection."""
        parts = urlsplit(self.url)
        assert parts.scheme == "https" and parts.hostname, self.url
        connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443,
                                                 context=self.context, timeout=TIMEOUT)
        try:
            target = self.path + (f"?{query}" if query else "")
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                         response.read())
        finally:
            connection.close()

    def post(self, body: bytes, *, content_type: str = XML_TEXT,
             action: str | None = '"GetAttributes"') -> Reply:
        headers = {"Content-Type": content_type}
        if action is not None:
            headers["SOAPAction"] = action
        return self.exchange("POST", body, headers)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def root(self) -> etree._Element:
        return etree.fromstring(self.body, _PARSER)

    def body_children(self) -> list[etree._Element]:
        body = self.root.find(f"{{{SOAP_ENV}}}Body")
        assert body is not None, self.body[:500]
        return [child for child in body if isinstance(child.tag, str)]

    @property
    def fault(self) -> etree._Element | None:
        return self.root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")

    @property
    def faultcode(self) -> tuple[str | None, str]:
        """The faultcode as (namespace, local name), resolved in the fault's scope."""
        fault = self.fault
        assert fault is not None, f"not a fault: {self.body[:500]!r}"
        code = fault.find("faultcode")
        assert code is not None and code.text, "R1001: no unqualified faultcode in the fault"
        prefix, _, local = code.text.strip().rpartition(":")
        return code.nsmap.get(prefix or None), local

    def detail_code(self) -> str | None:
        found = self.root.findtext(f".//{{{TNS}}}VbiosFaultDetail/{{{TNS}}}Code")
        return None if found is None else str(found)


def envelope(body: str = "<v:GetAttributes/>", *, header: str = "", namespace: str = SOAP_ENV,
             prolog: str = '<?xml version="1.0" encoding="UTF-8"?>') -> bytes:
    head = f"<s:Header>{header}</s:Header>" if header else ""
    return (f'{prolog}<s:Envelope xmlns:s="{namespace}" xmlns:v="{TNS}">{head}'
            f"<s:Body>{body}</s:Body></s:Envelope>").encode()
