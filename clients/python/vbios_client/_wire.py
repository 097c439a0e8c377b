"""Conversions between wire objects (as ``_answers`` reads them) and vbios_client models.

Wire objects are read by attribute name only, so these functions work on the
reader's plain objects (shaped as zeep's CompoundValue was) as well as on any
plain object with the same fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from lxml import etree

from vbios_client.exceptions import FaultError, fault_from_code
from vbios_client.models import (
    AttributeDefinition,
    AttributeRegistry,
    AttributeSet,
    BootConfig,
    BootOption,
    PendingAttributes,
    PowerState,
    ProvisioningState,
    ResetOutcome,
    SecureBoot,
    SecureBootCertificate,
    Value,
)

_UTC = timezone.utc  # noqa: UP017 - the client distribution still supports Python 3.10
_ENVELOPE_CODES = ("VersionMismatch", "MustUnderstand")
#: Longest fault text this library passes on; a longer one is cut.
_MAX_TEXT = 2048


# -- values --------------------------------------------------------------------


def typed_value(value: object, *, what: str = "value") -> dict[str, Value]:
    """The TypedValue fields for ``value``: bool, then int, then str (bool is an int)."""
    if isinstance(value, bool):
        return {"BooleanValue": value}
    if isinstance(value, int):
        return {"IntegerValue": value}
    if isinstance(value, str):
        return {"StringValue": value}
    raise TypeError(f"{what} must be str, int or bool, not {type(value).__name__}")


def attribute_values(changes: Mapping[str, object]) -> list[dict[str, Value]]:
    """AttributeValue dicts for a mapping of name to value, checked at the boundary."""
    items: list[dict[str, Value]] = []
    for name, value in changes.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"attribute names must be non-empty strings, not {name!r}")
        items.append({"Name": name, **typed_value(value, what=f"value of {name}")})
    return items


def value_of(wire: Any) -> Value | None:
    """The one value a TypedValue or AttributeValue carries; None for no value at all.

    The contract puts exactly one value in each; zeep reads an empty element
    (``<StringValue/>``) as None, so a value-holder with no value holds "".
    """
    if wire is None:
        return None
    boolean = getattr(wire, "BooleanValue", None)
    if boolean is not None:
        return bool(boolean)
    integer = getattr(wire, "IntegerValue", None)
    if integer is not None:
        return int(integer)
    text = getattr(wire, "StringValue", None)
    return "" if text is None else str(text)


def items(wire: Any, item_name: str) -> list[Any]:
    """The elements of a wire list: a plain list, or a wrapper holding ``item_name``."""
    if wire is None:
        return []
    if isinstance(wire, list | tuple):
        return list(wire)
    inner = getattr(wire, item_name, None)
    if inner is None:
        return []
    return list(inner) if isinstance(inner, list | tuple) else [inner]


def _values(wire_list: Any) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for item in items(wire_list, "AttributeValue"):
        value = value_of(item)
        values[str(item.Name)] = "" if value is None else value
    return values


# -- responses -------------------------------------------------------------------


def attribute_set(response: Any) -> AttributeSet:
    return AttributeSet(
        version=int(response.Version),
        values=_values(response.Attributes),
        setup_password_set=bool(response.SetupPasswordSet),
    )


def pending_attributes(response: Any) -> PendingAttributes:
    return PendingAttributes(version=int(response.Version), values=_values(response.Attributes))


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def attribute_definition(wire: Any) -> AttributeDefinition:
    return AttributeDefinition(
        name=str(wire.Name),
        type=str(wire.Type),
        display_name=str(wire.DisplayName or wire.Name),
        help_text=str(wire.HelpText or ""),
        read_only=bool(wire.ReadOnly),
        reset_required=bool(wire.ResetRequired),
        lower_bound=_opt_int(getattr(wire, "LowerBound", None)),
        upper_bound=_opt_int(getattr(wire, "UpperBound", None)),
        scalar_increment=_opt_int(getattr(wire, "ScalarIncrement", None)),
        allowed_values=tuple(str(v) for v in items(getattr(wire, "AllowedValues", None),
                                                   "Value")),
        min_length=_opt_int(getattr(wire, "MinLength", None)),
        max_length=_opt_int(getattr(wire, "MaxLength", None)),
        default=value_of(getattr(wire, "Default", None)),
    )


def attribute_registry(response: Any) -> AttributeRegistry:
    definitions = items(response.Attributes, "AttributeDefinition")
    return AttributeRegistry(
        version=str(response.RegistryVersion),
        attributes=tuple(attribute_definition(d) for d in definitions),
    )


def boot_config(response: Any) -> BootConfig:
    options = tuple(
        BootOption(id=str(o.Id), display_name=str(o.DisplayName or o.Id), enabled=bool(o.Enabled))
        for o in items(response.Options, "BootOption")
    )
    boot_next = getattr(response, "BootNext", None)
    return BootConfig(
        version=int(response.Version),
        options=options,
        order=tuple(str(i) for i in items(response.Order, "OptionId")),
        boot_next=None if boot_next in (None, "") else str(boot_next),
    )


def power_state(response: Any) -> PowerState:
    cause = getattr(response, "LastResetCause", None)
    time = getattr(response, "LastResetTime", None)
    return PowerState(
        power_state=str(response.PowerState),
        last_reset_cause=None if cause in (None, "") else str(cause),
        last_reset_time=None if time in (None, "") else str(time),
        pending_changes=bool(response.PendingChanges),
    )


def reset_outcome(response: Any) -> ResetOutcome:
    return ResetOutcome(power_state=str(response.PowerState),
                        pending_changes=bool(response.PendingChanges),
                        message=str(response.Message or ""))


def secure_boot(response: Any) -> SecureBoot:
    pending = getattr(response, "PendingEnabled", None)
    return SecureBoot(enabled=bool(response.Enabled), current_boot=str(response.CurrentBoot),
                      mode=str(response.Mode),
                      pending_enabled=None if pending is None else bool(pending))


def secure_boot_databases(response: Any) -> dict[str, list[SecureBootCertificate]]:
    found: dict[str, list[SecureBootCertificate]] = {}
    for database in items(response, "Database"):
        found[str(database.Name)] = [
            SecureBootCertificate(subject=str(c.Subject), issuer=str(c.Issuer),
                                  not_after=str(c.NotAfter), sha256=str(c.Sha256))
            for c in items(database.Certificates, "Certificate")]
    return found


def provisioning_state(response: Any) -> ProvisioningState:
    not_after = getattr(response, "CertificateNotAfter", None)
    return ProvisioningState(
        state=str(response.State), next_step=str(response.NextStep or ""),
        certificate_not_after=None if not_after in (None, "") else utc_time(str(not_after)))


def utc_time(text: str) -> datetime:
    """An ISO 8601 time the server wrote (``...Z`` or an offset), as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"a time without its zone: {text!r}")
    return moment.astimezone(_UTC)


def version(response: Any) -> int:
    """The new version a write returns (zeep unwraps a one-field response to the field)."""
    if isinstance(response, int) and not isinstance(response, bool):
        return response
    return int(response.Version)


# -- faults ----------------------------------------------------------------------


def fault_error(
    faultcode: str | None, faultstring: str | None, detail: etree._Element | None
) -> FaultError:
    """The exception for a SOAP fault: its typed detail if any, else its faultcode."""
    fields = _detail_fields(detail)
    kind = _local(faultcode or "")
    code = fields.get("Code") or (kind if kind in _ENVELOPE_CODES else "") or kind or "Fault"
    message = fields.get("Message") or faultstring or "the service refused the request"
    return fault_from_code(
        code,
        _clip(message),
        attribute=fields.get("Attribute") or None,
        correlation_id=fields.get("CorrelationId") or None,
    )


def _detail_fields(detail: etree._Element | None) -> dict[str, str]:
    """Code, Message, Attribute, CorrelationId of the VbiosFaultDetail inside ``detail``."""
    if detail is None:
        return {}
    for element in detail.iter():
        if isinstance(element.tag, str) and _local(element.tag) == "VbiosFaultDetail":
            return {
                _local(child.tag): _clip(child.text or "")
                for child in element
                if isinstance(child.tag, str)
            }
    return {}


def _local(name: str) -> str:
    """The local part of ``{ns}name`` or ``prefix:name``."""
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1].strip()


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def names_list(names: Iterable[str] | None) -> list[str] | None:
    """A checked list of attribute names, or None for all."""
    if names is None:
        return None
    if isinstance(names, str):
        raise TypeError("names must be a list of strings, not one string")
    checked = list(names)
    for name in checked:
        if not isinstance(name, str) or not name:
            raise TypeError(f"attribute names must be non-empty strings, not {name!r}")
    return checked


# -- arguments -------------------------------------------------------------------


def guard(expected_version: int | None, password: str | None) -> dict[str, Any]:
    """The ExpectedVersion and Password fields every write may carry."""
    params: dict[str, Any] = {}
    if expected_version is not None:
        if isinstance(expected_version, bool) or not isinstance(expected_version, int):
            raise TypeError("expected_version must be an int")
        if expected_version < 0:
            raise ValueError("expected_version must not be negative")
        params["ExpectedVersion"] = expected_version
    if password is not None:
        check_str("password", password)
        params["Password"] = password
    return params


def check_str(what: str, value: object, *, empty: bool = True) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not empty and not value:
        raise ValueError(f"{what} must not be empty")
