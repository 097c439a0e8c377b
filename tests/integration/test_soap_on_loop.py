"""The SOAP application on a worker's event loop: the loop-safe reads answer there, every
other operation raises WouldBlock before it does anything (``bios_ws.blocking``)."""

from __future__ import annotations

import pytest

from bios_ws.blocking import WouldBlock, on_event_loop
from bios_ws.capabilities import loop_safe_operations
from bios_ws.service.event_subscriptions import EventService
from bios_ws.soap.contract import contract
from bios_ws.soap.testing import Endpoint, build_endpoint, call_wsgi, soap_envelope

OPERATIONS = sorted(tag.rsplit("}", 1)[1] for tag in contract().dispatcher.operations)
LOOP_SAFE = sorted(loop_safe_operations())
OTHERS = [name for name in OPERATIONS if name not in LOOP_SAFE]


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint()


def test_the_loop_safe_operations_are_reads_of_the_contract() -> None:
    assert set(LOOP_SAFE) <= set(OPERATIONS)
    assert all(name.startswith("Get") for name in LOOP_SAFE)
    assert {"GetAttributes", "GetAttributeRegistry"} <= set(LOOP_SAFE)


def request_for(ep: Endpoint, operation: str) -> str:
    """A valid request's children (GetEvents reads a subscription made first)."""
    if operation == "GetEvents":
        subscription = ep.use_cases.use(EventService).subscribe(ep.guest)
        return f"<tns:SubscriptionId>{subscription.subscription_id}</tns:SubscriptionId>"
    return ""


@pytest.mark.parametrize("operation", LOOP_SAFE)
def test_a_loop_safe_operation_answers_on_the_loop(ep: Endpoint, operation: str) -> None:
    inner = request_for(ep, operation)
    with on_event_loop():
        result = ep.call(operation, inner)
    assert result.status == 200, result.body
    assert result.find(f"soap:Body/tns:{operation}Response") is not None


@pytest.mark.parametrize("operation", OTHERS)
def test_any_other_operation_raises_would_block_before_it_acts(
    ep: Endpoint, operation: str
) -> None:
    audit_before = list(ep.store.audit)
    version_before = ep.bios.get_attributes(ep.guest).version
    with pytest.raises(WouldBlock, match=operation), on_event_loop():
        ep.call(operation)
    assert ep.store.audit == audit_before
    assert ep.bios.get_attributes(ep.guest).version == version_before


def test_a_refused_caller_is_answered_on_the_loop(ep: Endpoint) -> None:
    """Refusing needs no thread: an unidentified caller's write is refused right there."""
    with on_event_loop():
        result = call_wsgi(ep.app, soap_envelope("SetAttributes"))
    assert result.status == 500
    assert result.detail("Code") == "AccessDenied"
