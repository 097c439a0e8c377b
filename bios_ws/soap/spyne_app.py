"""The Spyne application and the slim pipeline that runs one already-checked request.

The guard parses and checks the envelope once; ``Dispatcher.dispatch`` decodes
the parsed request element with ``decoder`` (or, for what that does not cover,
hands it straight to Spyne: no second parse, no Spyne HTTP layer), calls the
operation, and encodes the response with ``encoder`` (Spyne's serializer is the
slowest part of a call). Every error leaves as an exception for
``faults.error_for``.

Spyne logs request bodies and request values in several places (DEBUG dumps
of whole documents, "Invalid value %r" at ERROR, failed documents on
validation errors). ``silence_spyne_logging`` drops every record of the
``spyne`` loggers, whatever level someone sets on them later.
"""

from __future__ import annotations

import logging
from typing import Any

from spyne import BODY_STYLE_WRAPPED, Application
from spyne.context import MethodContext
from spyne.interface.wsdl import Wsdl11
from spyne.protocol.soap import Soap11
from spyne.server import ServerBase

from bios_ws.capabilities import CAPABILITIES
from bios_ws.soap.context import Call
from bios_ws.soap.decoder import Decoder, NotPlain, decoder_for
from bios_ws.soap.encoder import encode_response, prepare
from bios_ws.soap.envelope import Envelope
from bios_ws.soap.faults import SpyneRefusal, error_for
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.types import TNS

SOAP_HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"


class _DropRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


_DROP = _DropRecords()


def silence_spyne_logging() -> None:
    """No record of any ``spyne`` logger is ever emitted (they can quote request bodies)."""
    manager = logging.Logger.manager
    names = ["spyne"] + [n for n in list(manager.loggerDict) if n.startswith("spyne.")]
    for name in names:
        spyne_logger = logging.getLogger(name)
        if _DROP not in spyne_logger.filters:
            spyne_logger.addFilter(_DROP)
    logging.getLogger("spyne").setLevel(logging.CRITICAL + 1)


class VbiosApplication(Application):  # type: ignore[misc]
    """Maps whatever an operation raises to a contract error, in Spyne's own hook.

    (For Spyne's own pipeline; ``Dispatcher.dispatch`` maps errors the same way.)
    """

    def call_wrapper(self, ctx: Any) -> Any:
        try:
            return super().call_wrapper(ctx)
        except Exception as exc:
            raise SpyneRefusal(error_for(exc)) from None


def build_application() -> VbiosApplication:
    silence_spyne_logging()
    services = [service for capability in CAPABILITIES for service in capability.services()]
    app = VbiosApplication(
        services,
        tns=TNS,
        name=SERVICE_NAME,
        in_protocol=Soap11(),
        out_protocol=Soap11(),
    )
    silence_spyne_logging()
    return app


class _CallContext(MethodContext):  # type: ignore[misc]
    """Spyne's method context without its per-attribute ``__setattr__`` check.

    That check (no new attributes once ``frozen``) only guards against typos in
    user code, and costs more than half of building a context (~50 sets).
    """

    __setattr__ = object.__setattr__


class _PlainContext:
    """What an operation reads of its method context (``context.call_of``), when the
    request was decoded without Spyne."""

    __slots__ = ("udc",)

    def __init__(self, call: Call) -> None:
        self.udc = call


class Dispatcher(ServerBase):  # type: ignore[misc]
    """Runs one checked request through Spyne; returns the response bytes or raises."""

    transport = SOAP_HTTP_TRANSPORT

    def __init__(self, app: VbiosApplication) -> None:
        super().__init__(app)
        self._descriptors: dict[str, Any] = {
            tag: handles[0] for tag, handles in app.interface.service_method_map.items()
        }
        self.operations: frozenset[str] = frozenset(self._descriptors)
        for descriptor in self._descriptors.values():
            plain = descriptor.no_self and descriptor.function is not None
            if not plain or descriptor.body_style is not BODY_STYLE_WRAPPED:
                raise TypeError(f"{descriptor.name} is not a wrapped service operation")
        # As in Spyne's process_request: several return values come as a sequence.
        self._wrapped: dict[Any, bool] = {
            d: len(d.out_message._type_info) > 1 for d in self._descriptors.values()
        }
        for descriptor in self._descriptors.values():
            prepare(descriptor.out_message)
        self._decoders: dict[Any, Decoder | None] = {
            d: decoder_for(d.in_message) for d in self._descriptors.values()
        }

    def dispatch(self, envelope: Envelope, call: Call) -> bytes:
        """Decode, call and encode one request the guard checked (and the contract's
        schema validated).

        The operation is called directly rather than through Spyne's
        ``process_request`` (events nobody listens to, logging we silence). The
        error mapping is the same as ``VbiosApplication.call_wrapper``'s.
        """
        descriptor = self._descriptors[envelope.body.tag]
        decode = self._decoders[descriptor]
        try:
            args = None if decode is None else decode(envelope.body)
        except NotPlain:
            args = None
        spyne_ctx = None if args is not None else self._decoded_by_spyne(envelope, call)
        try:
            if args is not None:
                result = descriptor.function(_PlainContext(call), *args)
            else:
                result = descriptor.service_class.call_wrapper(spyne_ctx)
        except Exception as exc:
            raise SpyneRefusal(error_for(exc)) from None
        values = result if self._wrapped[descriptor] else (result,)
        return encode_response(descriptor.out_message, values)

    def _decoded_by_spyne(self, envelope: Envelope, call: Call) -> Any:
        """Spyne's method context with the request decoded by Spyne (from the guard's
        envelope, in place of its own parse); raises what Spyne found wrong.

        The context is not ``close()``d (it only fires an unheard event and runs
        a full ``gc.collect()`` once a second).
        """
        ctx = _CallContext(self, MethodContext.SERVER)
        ctx.udc = call
        ctx.in_document = envelope.root
        ctx.in_header_doc = None
        ctx.in_body_doc = envelope.body
        ctx.method_request_string = envelope.body.tag
        ctx.descriptor = self._descriptors[envelope.body.tag]
        self.app.in_protocol.deserialize(ctx, message=self.app.in_protocol.REQUEST)
        if ctx.in_error is not None:
            raise ctx.in_error
        return ctx

    def wsdl(self, address: str) -> bytes:
        """Spyne's WSDL for this application at ``address`` (raw: see ``soap.wsdl``)."""
        document = Wsdl11(self.app.interface)
        document.build_interface_document(address)
        return bytes(document.get_interface_document())
