"""The one place where errors become SOAP 1.1 faults.

- A ``VbiosError`` of the contract becomes a fault with ``faultcode``
  ``soap11env:Client`` or ``soap11env:Server`` and a typed detail
  ``tns:VbiosFaultDetail {Code, Message, Attribute?, CorrelationId?}``.
- A Spyne fault (schema validation, type conversion) becomes ``InvalidRequest``
  with a fixed text: Spyne's own messages can quote request values.
- Anything else becomes ``InternalError``: a fresh correlation id goes on the
  wire, the exception and its traceback go to the log ``bios_ws.soap``.
- Envelope-level refusals are ``EnvelopeFault`` (``VersionMismatch``,
  ``MustUnderstand``), rendered without detail as SOAP 1.1 asks.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Literal

from lxml import etree
from spyne.model.fault import Fault

from bios_ws.capabilities import fault_classes
from bios_ws.errors import InternalError, InvalidRequest, VbiosError
from bios_ws.soap.types import TNS

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
CONTENT_TYPE = "text/xml; charset=utf-8"
#: WS-I R1126: a SOAP fault travels with HTTP status 500.
FAULT_STATUS = 500

logger = logging.getLogger("bios_ws.soap")
#: The errors that travel as typed faults (registered with the capabilities).
_BY_CODE = fault_classes()
_FAULTS = frozenset(_BY_CODE.values())

EnvelopeCode = Literal["VersionMismatch", "MustUnderstand"]

_NOT_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAX_TEXT = 1024
_CONTRACT_MISMATCH = (
    "the request does not match the vbios contract (element names, types or counts)"
)


class EnvelopeFault(Exception):
    """A refusal of the SOAP envelope itself, before any operation is looked at."""

    def __init__(self, code: EnvelopeCode, message: str) -> None:
        super().__init__(message)
        self.code: EnvelopeCode = code
        self.message = message


class SpyneRefusal(Fault):  # type: ignore[misc]
    """Carries a ``VbiosError`` through Spyne's pipeline, which only lets Faults pass."""

    def __init__(self, error: VbiosError) -> None:
        super().__init__(faultcode=error.fault_kind, faultstring=error.message)
        self.error = error


def error_for(exc: BaseException) -> VbiosError:
    """The contract error a caller sees for ``exc`` (logging the unexpected ones)."""
    if isinstance(exc, SpyneRefusal):
        return error_for(exc.error)
    if isinstance(exc, VbiosError) and type(exc) in _FAULTS:
        return exc
    if isinstance(exc, VbiosError) and isinstance(exc, _BY_CODE.get(exc.code, ())):
        return exc  # a kind of a fault's error that keeps its code (StoreConflict, DomainElsewhere)
    if isinstance(exc, Fault) and str(exc.faultcode).startswith("Client"):
        return InvalidRequest(_CONTRACT_MISMATCH)
    return internal_error(exc)


def internal_error(exc: BaseException) -> InternalError:
    correlation_id = uuid.uuid4().hex
    logger.error(
        "internal error, correlation id %s: %s", correlation_id, type(exc).__name__,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return InternalError(correlation_id)


def render_error(error: VbiosError) -> bytes:
    """The SOAP 1.1 fault envelope for a contract error, with its typed detail."""
    envelope, fault = _fault_skeleton(error.fault_kind, error.message)
    detail = etree.SubElement(fault, "detail")
    typed = etree.SubElement(detail, f"{{{TNS}}}VbiosFaultDetail", nsmap={"tns": TNS})
    _child(typed, "Code", error.code)
    _child(typed, "Message", error.message)
    if error.attribute is not None:
        _child(typed, "Attribute", error.attribute)
    correlation_id = getattr(error, "correlation_id", None)
    if isinstance(correlation_id, str):
        _child(typed, "CorrelationId", correlation_id)
    return _serialize(envelope)


def render_envelope_fault(fault: EnvelopeFault) -> bytes:
    envelope, _ = _fault_skeleton(fault.code, fault.message)
    return _serialize(envelope)


def _fault_skeleton(code: str, message: str) -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"soap11env": SOAP11_ENV})
    body = etree.SubElement(envelope, f"{{{SOAP11_ENV}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP11_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap11env:{code}"
    etree.SubElement(fault, "faultstring").text = _xml_text(message)
    return envelope, fault


def _child(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{TNS}}}{name}").text = _xml_text(text)


def _xml_text(text: str) -> str:
    return _NOT_XML_CHARS.sub("\ufffd", text[:_MAX_TEXT])


def _serialize(envelope: etree._Element) -> bytes:
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))
