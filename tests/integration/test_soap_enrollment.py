"""Enrollment over SOAP in-process: a caller without a certificate may enroll (and fetch
the CA), nothing else; the guest then renews and reads its provisioning state."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bios_ws.domain.enrollment import Ticket
from bios_ws.server.identity import CA_PATH, PeerIdentity
from bios_ws.service.enrollment import EnrollmentService
from bios_ws.soap.testing import (
    NS,
    Endpoint,
    WsgiResult,
    build_endpoint,
    call_wsgi,
    soap_envelope,
)
from tests.unit.test_service_enrollment import csr, principal_of

URL = "https://127.0.0.1:8443/"
CA_PEM = b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"


@pytest.fixture
def endpoint() -> Endpoint:
    return build_endpoint("g1")


def enroll_body(ticket: Ticket, request: bytes) -> bytes:
    inner = (f"<tns:Domain>{ticket.domain_id}</tns:Domain><tns:Nonce>{ticket.nonce}</tns:Nonce>"
             f"<tns:Expires>{int(ticket.expires_at.timestamp())}</tns:Expires>"
             f"<tns:Token>{ticket.token}</tns:Token><tns:CertificateRequest>"
             f"{base64.b64encode(request).decode()}</tns:CertificateRequest>")
    return soap_envelope("Enroll", inner)


def anonymous(endpoint: Endpoint, body: bytes, *, method: str = "POST",
              path: str = "/") -> WsgiResult:
    """A request as the TLS front passes it on for a caller without a certificate."""
    front = PeerIdentity(endpoint.app, ca_pem=CA_PEM)
    return call_wsgi(front, body, method=method,
                     content_type="text/xml; charset=utf-8" if method == "POST" else None,
                     extra={"REMOTE_ADDR": "10.1.2.3", "PATH_INFO": path})


def out(reply: WsgiResult, name: str) -> str:
    found = reply.xml().find(f".//tns:{name}", NS)
    assert found is not None and found.text is not None, reply.body
    return found.text


def test_a_caller_without_a_certificate_enrolls(endpoint: Endpoint) -> None:
    enrollment = endpoint.use_cases.use(EnrollmentService)
    ticket, _ = enrollment.ticket(endpoint.admin, "g1", URL)
    reply = anonymous(endpoint, enroll_body(ticket, csr()))
    assert reply.status == 200, reply.body
    cert = x509.load_der_x509_certificate(base64.b64decode(out(reply, "Certificate")))
    assert out(reply, "Serial") == format(cert.serial_number, "X")
    guest = principal_of(cert.public_bytes(Encoding.PEM))
    state = endpoint.call("GetProvisioningState", as_=guest)
    assert out(state, "State") == "S3"
    audit = [(e.principal, e.operation) for e in endpoint.store.audit]
    assert ("enrollment:10.1.2.3", "Enroll") in audit


def test_a_caller_without_a_certificate_may_do_nothing_else(endpoint: Endpoint) -> None:
    for operation in ("GetAttributes", "GetIntegrityStatus", "RenewCertificate",
                      "GetProvisioningState"):
        inner = "<tns:CertificateRequest>AA==</tns:CertificateRequest>" \
            if operation == "RenewCertificate" else ""
        reply = anonymous(endpoint, soap_envelope(operation, inner))
        assert reply.status == 500
        assert reply.detail("Code") == "AccessDenied", operation
        assert "only Enroll works without a client certificate" in str(reply.detail("Message"))


def test_the_ca_certificate_is_served_to_callers_without_a_certificate(
    endpoint: Endpoint,
) -> None:
    reply = anonymous(endpoint, b"", method="GET", path=CA_PATH)
    assert (reply.status, reply.body) == (200, CA_PEM)


def test_a_refused_enrollment_is_a_typed_fault(endpoint: Endpoint) -> None:
    enrollment = endpoint.use_cases.use(EnrollmentService)
    ticket, _ = enrollment.ticket(endpoint.admin, "g1", URL)
    forged = Ticket(ticket.domain_id, ticket.nonce, ticket.expires_at, "0" * 64)
    reply = anonymous(endpoint, enroll_body(forged, csr()))
    assert reply.detail("Code") == "AccessDenied"
    assert "not valid for this domain" in str(reply.detail("Message"))
    weak = anonymous(endpoint, enroll_body(ticket, b"not a request"))
    assert weak.detail("Code") == "InvalidRequest"


def test_renew_and_provisioning_over_soap(endpoint: Endpoint) -> None:
    enrollment = endpoint.use_cases.use(EnrollmentService)
    ticket, _ = enrollment.ticket(endpoint.admin, "g1", URL)
    first = enrollment.enroll("10.1.2.3", ticket, csr())
    guest = principal_of(first.cert_pem)
    body = soap_envelope("RenewCertificate", "<tns:CertificateRequest>"
                         f"{base64.b64encode(csr()).decode()}</tns:CertificateRequest>")
    reply = call_wsgi(endpoint.app, body, principal=guest)
    assert reply.status == 200, reply.body
    renewed = x509.load_der_x509_certificate(base64.b64decode(out(reply, "Certificate")))
    assert renewed.serial_number != guest.serial
    view = endpoint.call("GetProvisioningState", as_=guest)
    assert out(view, "State") == "S3"
    assert "renew" in out(view, "NextStep")
