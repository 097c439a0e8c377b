"""The fast response encoder writes what Spyne's own serializer writes, for every response."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree
from spyne.context import MethodContext

from bios_ws.domain.state import DEFAULT_BOOT_OPTIONS, BootOption
from bios_ws.soap import codec
from bios_ws.soap.contract import contract
from bios_ws.soap.encoder import encode_response
from bios_ws.soap.spyne_app import Dispatcher
from bios_ws.soap.testing import sample_registry
from bios_ws.soap.types import TNS

VALUES: dict[str, str | int | bool] = {
    "BootMode": "Uefi", "NumLock": False, "WakeTimeout": -(2**62),
    "AssetTag": "a<&>\"'é\r\n]]>\U0001f600", "Empty": "",
}
OPTIONS = (*DEFAULT_BOOT_OPTIONS, BootOption("Off.0", "Disabled one", enabled=False))

RESPONSES: dict[str, tuple[Any, ...]] = {
    "GetAttributeRegistry": ("reg-1", codec.encode_registry(sample_registry())),
    "GetAttributes": (7, True, codec.encode_values(VALUES)),
    "GetPendingAttributes": (3, codec.encode_values({})),
    "GetBootOrder": (2, codec.encode_boot_options(OPTIONS),
                     codec.encode_boot_order(o.id for o in OPTIONS), "Pxe.Nic.0"),
    "SetAttributes": (2**40,),
    "ChangePassword": (1,),
    "ApplyPendingAttributes": (9,),
}


def shape(element: etree._Element) -> tuple[Any, ...]:
    return (element.tag, (element.text or "").strip() if len(element) else element.text or "",
            tuple(shape(child) for child in element))


@pytest.fixture(scope="module")
def dispatcher() -> Dispatcher:
    return contract().dispatcher


@pytest.mark.parametrize("operation", sorted(RESPONSES))
def test_encoder_matches_spyne(dispatcher: Dispatcher, operation: str) -> None:
    app = dispatcher.app
    descriptor = app.interface.service_method_map[f"{{{TNS}}}{operation}"][0]
    values = RESPONSES[operation]
    ctx = MethodContext(dispatcher, MethodContext.SERVER)
    ctx.descriptor = descriptor
    ctx.out_object = list(values)
    app.out_protocol.serialize(ctx, message=app.out_protocol.RESPONSE)
    app.out_protocol.create_out_string(ctx)
    spyne_bytes = b"".join(ctx.out_string)
    ours = encode_response(descriptor.out_message, values)
    assert shape(etree.fromstring(ours)) == shape(etree.fromstring(spyne_bytes))
    assert ours.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def test_encoder_skips_absent_optional_fields() -> None:
    dispatcher = contract().dispatcher
    descriptor = dispatcher.app.interface.service_method_map[f"{{{TNS}}}GetBootOrder"][0]
    out = encode_response(descriptor.out_message,
                          (1, codec.encode_boot_options(()), codec.encode_boot_order(()), None))
    root = etree.fromstring(out)
    assert root.find(f".//{{{TNS}}}BootNext") is None
    assert root.find(f".//{{{TNS}}}Options") is not None


def test_encoder_refuses_characters_xml_cannot_carry() -> None:
    dispatcher = contract().dispatcher
    descriptor = dispatcher.app.interface.service_method_map[f"{{{TNS}}}GetAttributes"][0]
    with pytest.raises(ValueError):
        encode_response(descriptor.out_message, (1, False, codec.encode_values({"A": "x\x01"})))
