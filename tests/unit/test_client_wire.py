"""Typing of values on the wire, decoding of answers, and fault mapping (no I/O)."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
from lxml import etree
from vbios_client import _wire, exceptions
from vbios_client.models import AttributeDefinition, AttributeRegistry

TNS = "urn:bios-ws:vbios:v1"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


# -- values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, {"BooleanValue": True}),
        (False, {"BooleanValue": False}),
        (0, {"IntegerValue": 0}),
        (10, {"IntegerValue": 10}),
        (-3, {"IntegerValue": -3}),
        ("Enabled", {"StringValue": "Enabled"}),
        ("", {"StringValue": ""}),
    ],
)
def test_typed_value_checks_bool_before_int(value: object, expected: dict[str, object]) -> None:
    assert _wire.typed_value(value) == expected


@pytest.mark.parametrize("value", [1.5, None, b"x", ["a"], {"a": 1}])
def test_typed_value_refuses_other_types(value: object) -> None:
    with pytest.raises(TypeError, match="str, int or bool"):
        _wire.typed_value(value)


def test_attribute_values_carry_names_and_one_value_each() -> None:
    items = _wire.attribute_values({"BootTimeout": 10, "SecureBoot": True, "BootMode": "Uefi"})
    assert items == [
        {"Name": "BootTimeout", "IntegerValue": 10},
        {"Name": "SecureBoot", "BooleanValue": True},
        {"Name": "BootMode", "StringValue": "Uefi"},
    ]


def test_attribute_values_refuse_bad_names() -> None:
    with pytest.raises(TypeError):
        _wire.attribute_values({"": 1})
    with pytest.raises(TypeError):
        _wire.attribute_values({3: 1})  # type: ignore[dict-item]


def test_value_of_reads_whichever_field_is_set() -> None:
    assert _wire.value_of(NS(BooleanValue=False, IntegerValue=None, StringValue=None)) is False
    assert _wire.value_of(NS(BooleanValue=None, IntegerValue=0, StringValue=None)) == 0
    assert _wire.value_of(NS(BooleanValue=None, IntegerValue=None, StringValue="")) == ""
    # zeep reads <StringValue/> as None: a value-holder without a value holds ""
    assert _wire.value_of(NS(BooleanValue=None, IntegerValue=None, StringValue=None)) == ""
    assert _wire.value_of(None) is None


def test_items_accepts_plain_lists_and_wrappers() -> None:
    assert _wire.items(None, "string") == []
    assert _wire.items(["a", "b"], "string") == ["a", "b"]
    assert _wire.items(NS(string=["a", "b"]), "string") == ["a", "b"]
    assert _wire.items(NS(string=None), "string") == []
    assert _wire.items(NS(string="a"), "string") == ["a"]


def test_names_list() -> None:
    assert _wire.names_list(None) is None
    assert _wire.names_list(("A", "B")) == ["A", "B"]
    with pytest.raises(TypeError, match="not one string"):
        _wire.names_list("BootTimeout")
    with pytest.raises(TypeError):
        _wire.names_list(["A", 3])  # type: ignore[list-item]


# -- answers ---------------------------------------------------------------------


def _av(name: str, **value: object) -> NS:
    fields = {"BooleanValue": None, "IntegerValue": None, "StringValue": None, **value}
    return NS(Name=name, **fields)


def test_attribute_set_decoding() -> None:
    answer = NS(
        Version=7,
        SetupPasswordSet=True,
        Attributes=NS(AttributeValue=[_av("BootTimeout", IntegerValue=5),
                                      _av("SecureBoot", BooleanValue=False)]),
    )
    result = _wire.attribute_set(answer)
    assert result.version == 7
    assert result.setup_password_set is True
    assert result.values == {"BootTimeout": 5, "SecureBoot": False}


def test_registry_decoding_keeps_bounds_and_defaults() -> None:
    definition = NS(
        Name="BootTimeout", Type="Integer", DisplayName="Boot timeout", HelpText="seconds",
        ReadOnly=False, ResetRequired=True, LowerBound=0, UpperBound=60, ScalarIncrement=None,
        AllowedValues=None, MinLength=None, MaxLength=None,
        Default=NS(BooleanValue=None, IntegerValue=5, StringValue=None),
    )
    registry = _wire.attribute_registry(
        NS(RegistryVersion="1.2", Attributes=NS(AttributeDefinition=[definition]))
    )
    found = registry.lookup("BootTimeout")
    assert registry.version == "1.2"
    assert (found.lower_bound, found.upper_bound, found.default) == (0, 60, 5)
    assert found.reset_required and not found.read_only
    assert found.allowed_values == ()


def test_boot_config_decoding() -> None:
    answer = NS(
        Version=3,
        Options=NS(BootOption=[NS(Id="Disk", DisplayName="Disk 0", Enabled=True),
                               NS(Id="Pxe", DisplayName="PXE", Enabled=False)]),
        Order=NS(OptionId=["Pxe", "Disk"]),
        BootNext=None,
    )
    config = _wire.boot_config(answer)
    assert config.order == ("Pxe", "Disk")
    assert [o.enabled for o in config.options] == [True, False]
    assert config.boot_next is None


def test_version_accepts_unwrapped_and_wrapped_answers() -> None:
    assert _wire.version(4) == 4
    assert _wire.version(NS(Version=9)) == 9


# -- models ----------------------------------------------------------------------


def _definition(kind: str) -> AttributeDefinition:
    return AttributeDefinition(name="X", type=kind, display_name="X")


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("False", False), ("1", True),
                                                 ("off", False)])
def test_boolean_text(text: str, expected: bool) -> None:
    assert _definition("Boolean").parse_value(text) is expected


def test_integer_and_string_text() -> None:
    assert _definition("Integer").parse_value("10") == 10
    assert _definition("Integer").parse_value("-2") == -2
    assert _definition("Enumeration").parse_value("10") == "10"
    assert _definition("String").parse_value("true") == "true"
    with pytest.raises(ValueError, match="Integer"):
        _definition("Integer").parse_value("ten")
    with pytest.raises(ValueError, match="Boolean"):
        _definition("Boolean").parse_value("maybe")


def test_registry_lookup() -> None:
    registry = AttributeRegistry("1", (_definition("String"),))
    assert "X" in registry and "Y" not in registry
    assert registry.lookup("X").type == "String"
    with pytest.raises(KeyError):
        registry.lookup("Y")


# -- faults ----------------------------------------------------------------------


def _detail(**fields: str) -> etree._Element:
    detail = etree.Element("detail")
    body = etree.SubElement(detail, f"{{{TNS}}}VbiosFaultDetail")
    for name, text in fields.items():
        etree.SubElement(body, f"{{{TNS}}}{name}").text = text
    return detail


@pytest.mark.parametrize("code", sorted(exceptions.FAULT_CLASSES))
def test_each_detail_code_maps_to_its_class(code: str) -> None:
    error = _wire.fault_error("soap:Client", "text", _detail(Code=code, Message="why"))
    assert type(error) is exceptions.FAULT_CLASSES[code]
    assert (error.code, error.message) == (code, "why")


def test_attribute_and_correlation_id_travel() -> None:
    error = _wire.fault_error(
        f"{{{SOAP}}}Server", "x",
        _detail(Code="InternalError", Message="internal", CorrelationId="abc123"),
    )
    assert isinstance(error, exceptions.InternalError)
    assert error.correlation_id == "abc123" and error.attribute is None
    error = _wire.fault_error("Client", "x", _detail(Code="ReadOnlyAttribute", Message="m",
                                                    Attribute="SystemUuid"))
    assert isinstance(error, exceptions.ReadOnlyAttribute)
    assert error.attribute == "SystemUuid"


def test_unknown_code_is_a_plain_fault_error() -> None:
    error = _wire.fault_error("soap:Client", "x", _detail(Code="BrandNewCode", Message="m"))
    assert type(error) is exceptions.FaultError
    assert error.code == "BrandNewCode"


@pytest.mark.parametrize("code", ["VersionMismatch", "MustUnderstand"])
def test_envelope_faults_without_detail(code: str) -> None:
    error = _wire.fault_error(f"soap11env:{code}", "envelope refused", None)
    assert type(error) is exceptions.FAULT_CLASSES[code]
    assert error.message == "envelope refused"


def test_fault_without_detail_keeps_its_faultcode() -> None:
    error = _wire.fault_error("soap:Server", None, None)
    assert type(error) is exceptions.FaultError
    assert error.code == "Server"
    assert error.message


def test_long_fault_text_is_clipped() -> None:
    error = _wire.fault_error("Client", "x", _detail(Code="InvalidRequest", Message="m" * 10000))
    assert len(error.message) < 2100
