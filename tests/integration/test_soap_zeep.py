"""The contract is consumable: zeep loads the committed WSDL and calls the in-process app."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
import zeep.exceptions
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from bios_ws.soap.testing import Endpoint, build_endpoint, call_wsgi

WSDL_PATH = Path(__file__).resolve().parents[2] / "wsdl" / "vbios.wsdl"
TNS = "urn:bios-ws:vbios:v1"


class WsgiAdapter(BaseAdapter):
    """A requests adapter that hands every request to a WSGI app, as the given principal."""

    def __init__(self, ep: Endpoint) -> None:
        super().__init__()
        self.ep = ep
        self.principal = ep.guest
        self.seen_headers: list[Mapping[str, str]] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        self.seen_headers.append(dict(request.headers))
        result = call_wsgi(self.ep.app, body, principal=self.principal,
                           method=str(request.method),
                           content_type=request.headers.get("Content-Type"))
        response = requests.Response()
        response.status_code = result.status
        response.headers = CaseInsensitiveDict(result.headers)
        response._content = result.body
        response.url = str(request.url)
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint()


@pytest.fixture
def adapter(ep: Endpoint) -> WsgiAdapter:
    return WsgiAdapter(ep)


@pytest.fixture
def client(adapter: WsgiAdapter) -> Any:
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", adapter)
    transport = zeep.Transport(  # type: ignore[no-untyped-call]
        session=session, timeout=5, operation_timeout=5
    )
    return zeep.Client(str(WSDL_PATH), transport=transport)  # type: ignore[no-untyped-call]


def test_zeep_reads_and_writes_settings(client: Any) -> None:
    got = client.service.GetAttributes()
    assert got.Version == 1
    assert got.SetupPasswordSet is False
    values = {a.Name: (a.StringValue, a.IntegerValue, a.BooleanValue)
              for a in got.Attributes.AttributeValue}
    assert values["WakeTimeout"] == (None, 30, None)
    assert values["NumLock"] == (None, None, True)
    version = client.service.SetAttributes(
        Attributes={"AttributeValue": [{"Name": "WakeTimeout", "IntegerValue": 60},
                                       {"Name": "AssetTag", "StringValue": "rack-9"}]},
        ApplyTime="Immediate", ExpectedVersion=1,
    )
    assert version == 2
    got = client.service.GetAttributes(Names={"Name": ["WakeTimeout", "AssetTag"]})
    assert {a.Name: a.IntegerValue or a.StringValue for a in got.Attributes.AttributeValue} == {
        "WakeTimeout": 60, "AssetTag": "rack-9"}


def test_zeep_reads_the_registry_and_boot_order(client: Any) -> None:
    registry = client.service.GetAttributeRegistry()
    assert registry.RegistryVersion == "test-1.0"
    by_name = {d.Name: d for d in registry.Attributes.AttributeDefinition}
    assert by_name["BootMode"].AllowedValues.Value == ["Uefi", "Legacy"]
    assert by_name["WakeTimeout"].UpperBound == 600
    boot = client.service.GetBootOrder()
    order = boot.Order.OptionId
    assert len(order) == 5 and boot.BootNext is None
    assert client.service.SetBootOrder(Order={"OptionId": order[::-1]}) == 2
    assert client.service.GetBootOrder().Order.OptionId == order[::-1]


def test_zeep_sees_the_typed_fault_detail(client: Any) -> None:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.SetAttributes(
            Attributes={"AttributeValue": [{"Name": "SerialNumber", "StringValue": "X"}]},
            ApplyTime="Immediate",
        )
    fault = caught.value
    assert fault.code == "{http://schemas.xmlsoap.org/soap/envelope/}Client" or \
        fault.code.endswith("Client")
    detail = fault.detail.find(f"{{{TNS}}}VbiosFaultDetail")
    assert detail is not None
    assert detail.findtext(f"{{{TNS}}}Code") == "ReadOnlyAttribute"
    assert detail.findtext(f"{{{TNS}}}Attribute") == "SerialNumber"
    assert "read-only" in fault.message


def test_zeep_as_admin_applies_pending(client: Any, adapter: WsgiAdapter) -> None:
    client.service.SetAttributes(
        Attributes={"AttributeValue": [{"Name": "BootMode", "StringValue": "Legacy"}]},
        ApplyTime="OnReset",
    )
    adapter.principal = adapter.ep.admin
    assert client.service.ApplyPendingAttributes(Domain="vm1") == 3
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.GetAttributes()
    assert caught.value.detail.findtext(f"{{{TNS}}}VbiosFaultDetail/{{{TNS}}}Code") == \
        "AccessDenied"


def test_zeep_sends_a_quoted_soap_action_that_matches_the_wsdl(
    client: Any, adapter: WsgiAdapter
) -> None:
    client.service.GetBootOrder()
    assert adapter.seen_headers[-1]["SOAPAction"] == '"GetBootOrder"'  # R2744
    assert adapter.seen_headers[-1]["Content-Type"].startswith("text/xml")
