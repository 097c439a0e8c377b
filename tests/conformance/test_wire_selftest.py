"""The wire assertions can fail: ``assert_fault`` over fabricated non-conformant replies
must name the requirement each breaks (no server needed)."""

from __future__ import annotations

import pytest

from tests.conformance.test_wire_profile import assert_fault
from tests.conformance.wire import SOAP_ENV, Reply

XML = {"content-type": "text/xml; charset=utf-8"}


def fault(children: str, *, status: int = 500, headers: dict[str, str] = XML) -> Reply:
    body = (f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><s:Fault>{children}</s:Fault>'
            "</s:Body></s:Envelope>").encode()
    return Reply(status, headers, body)


GOOD = "<faultcode>s:Client</faultcode><faultstring>no</faultstring>"


def test_a_conformant_fault_passes() -> None:
    assert_fault(fault(GOOD), "Client")


@pytest.mark.parametrize(("reply", "rule"), [
    (fault(GOOD, status=200), "R1126"),
    (fault("<s:faultcode>s:Client</s:faultcode><faultstring>no</faultstring>"), "R1001"),
    (fault(GOOD + "<extra/>"), "R1000"),
    (fault("<faultcode>s:Client.Auth</faultcode><faultstring>no</faultstring>"), "R1031"),
    (fault('<faultcode xmlns:o="urn:o">o:Client</faultcode><faultstring>n</faultstring>'),
     "R1004"),
], ids=["R1126", "R1001", "R1000", "R1031", "R1004"])
def test_a_non_conformant_fault_is_reported(reply: Reply, rule: str) -> None:
    with pytest.raises(AssertionError, match=rule):
        assert_fault(reply, "Client")
