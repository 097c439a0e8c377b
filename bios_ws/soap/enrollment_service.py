"""Enrollment operations: ``Enroll`` (anonymous, with a bootstrap URI's ticket; who may
call what is declared in ``bios_ws.soap.callers``),
``RenewCertificate`` and ``GetProvisioningState`` (the guest, over mutual TLS).

A certificate goes over the wire as DER (``base64Binary``), with the CA's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from spyne import Enum, Integer64, Service, Unicode

from bios_ws.domain.enrollment import ProvisioningState, Ticket
from bios_ws.errors import InvalidRequest
from bios_ws.service.credentials import IssuedCertificate
from bios_ws.service.enrollment import EnrollmentService
from bios_ws.soap.attestation_codec import decode_bytes, iso
from bios_ws.soap.attestation_types import Base64
from bios_ws.soap.context import call_of
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.types import TNS, operation, optional, required

ProvisioningStateType = Enum(*(s.value for s in ProvisioningState),
                             type_name="ProvisioningState").customize(__namespace__=TNS)

_ISSUED = (required(Base64), required(Base64), required(Unicode), required(Unicode))
_ISSUED_NAMES = ("Certificate", "CaCertificate", "Serial", "NotAfter")


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def _issued(issued: IssuedCertificate) -> tuple[Any, ...]:
    return (_der(issued.cert_pem), _der(issued.ca_pem), issued.record.serial_hex,
            iso(issued.record.not_after))


class EnrollmentSoapService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(required(Unicode), required(Unicode), required(Integer64), required(Unicode),
               required(Base64), returns=_ISSUED, names=_ISSUED_NAMES)
    def Enroll(ctx: Any, Domain: str, Nonce: str, Expires: int, Token: str,
               CertificateRequest: Any) -> tuple[Any, ...]:
        call = call_of(ctx)
        try:
            expires = datetime.fromtimestamp(int(Expires), UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidRequest("Expires is not a time") from None
        ticket = Ticket(str(Domain)[:256], str(Nonce)[:256], expires, str(Token)[:256])
        enrollment = call.use(EnrollmentService)
        return _issued(enrollment.enroll(call.principal.subject, ticket,
                                         decode_bytes(CertificateRequest)))

    @operation(required(Base64), returns=_ISSUED, names=_ISSUED_NAMES)
    def RenewCertificate(ctx: Any, CertificateRequest: Any) -> tuple[Any, ...]:
        call = call_of(ctx)
        return _issued(call.use(EnrollmentService).renew(call.principal,
                                                          decode_bytes(CertificateRequest)))

    @operation(returns=(required(ProvisioningStateType), required(Unicode), optional(Unicode)),
               names=("State", "NextStep", "CertificateNotAfter"))
    def GetProvisioningState(ctx: Any) -> tuple[Any, ...]:
        call = call_of(ctx)
        view = call.use(EnrollmentService).provisioning(call.principal)
        not_after = None if view.certificate_not_after is None \
            else iso(view.certificate_not_after)
        return view.state.value, view.next_step, not_after
