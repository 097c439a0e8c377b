"""The contract, built once per process: one Spyne application, its WSDL, its request schema.

Spyne builds an application by mutating its service and model classes, and
rendering the WSDL walks the same classes; neither is safe to run in two
threads at once, nor while another thread decodes a request with them. So the
application is built exactly once per process, under a lock, before the first
request is served (``create_wsgi_app`` asks for it), and everything the
request path uses afterwards is immutable: the WSDL and the request schema as
bytes, and schema validators that each thread builds for itself from those
bytes (an lxml validator keeps per-run state in its error log).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from bios_ws.errors import InvalidRequest
from bios_ws.soap.spyne_app import Dispatcher, build_application
from bios_ws.soap.wsdl import DEFAULT_ADDRESS, moved_wsdl, request_schema, tidy_wsdl
from bios_ws.soap.xmlparser import hardened_parser


@dataclass(frozen=True)
class Contract:
    """The process's one Spyne application (behind its dispatcher) and its documents."""

    dispatcher: Dispatcher
    #: The published WSDL, with ``DEFAULT_ADDRESS`` as its soap:address.
    wsdl: bytes
    #: The schema the WSDL embeds, as a standalone document.
    schema: bytes
    _validators: threading.local = field(default_factory=threading.local, repr=False)

    def wsdl_at(self, address: str) -> bytes:
        """The WSDL with ``address`` (an https URL) as its soap:address."""
        return moved_wsdl(self.wsdl, address)

    def validate_request(self, element: etree._Element) -> None:
        """Refuse a request element that is not valid against the contract's schema (R2712).

        The refusal names the offending element's path, never its value.
        """
        validator: etree.XMLSchema | None = getattr(self._validators, "schema", None)
        if validator is None:
            validator = self._validators.schema = self.validator()
        if not validator.validate(element):
            error: Any = getattr(validator.error_log, "last_error", None)
            path = getattr(error, "path", None)
            where = f" at {path}" if path else ""
            raise InvalidRequest(f"the request does not match the vbios contract{where}")

    def validator(self) -> etree.XMLSchema:
        """A new validator for requests, built from the schema's bytes (for one thread)."""
        return etree.XMLSchema(etree.fromstring(self.schema, hardened_parser()))


_lock = threading.Lock()
_built: list[Contract] = []


def contract() -> Contract:
    """This process's contract, built on first use (once, whatever the threads)."""
    if _built:
        return _built[0]
    with _lock:
        if not _built:
            _built.append(_build())
    return _built[0]


def _build() -> Contract:
    dispatcher = Dispatcher(build_application())
    wsdl = tidy_wsdl(dispatcher.wsdl(DEFAULT_ADDRESS))
    built = Contract(dispatcher=dispatcher, wsdl=wsdl, schema=request_schema(wsdl))
    built.validator()  # a schema lxml refuses fails here, at start, not in a request
    return built


def render_wsdl(address: str = DEFAULT_ADDRESS) -> bytes:
    """The published WSDL with ``address`` (an https URL) as its soap:address."""
    return contract().wsdl_at(address)
