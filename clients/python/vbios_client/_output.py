"""How the vbios-client command prints models: aligned text for people, JSON for tools
(times, JSON and escaping as ``_cli_text`` writes them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from vbios_client._cli_text import dump as _dump
from vbios_client._cli_text import utc_text, utc_text_of
from vbios_client.models import (
    AttributeDefinition,
    AttributeRegistry,
    AttributeSet,
    BootConfig,
    IssuedBundle,
    PendingAttributes,
    PowerState,
    ProvisioningState,
    ResetOutcome,
    SecureBoot,
    SecureBootCertificate,
    Value,
)

__all__ = ["utc_text"]  # re-exported: the time format of every command


def show_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _aligned(rows: Mapping[str, str]) -> list[str]:
    width = max((len(name) for name in rows), default=0)
    return [f"{name.ljust(width)} = {rows[name]}" for name in sorted(rows)]


def attributes(out: TextIO, result: AttributeSet | PendingAttributes, *, as_json: bool,
               pending: PendingAttributes | None = None) -> None:
    """Values; with ``pending`` (current values), those of them waiting for the next reset
    beside them (``BootMode = Uefi (pending: Bios)``, JSON ``"pending": {...}``)."""
    waiting = {} if pending is None else {
        name: value for name, value in pending.values.items() if name in result.values}
    if as_json:
        data: dict[str, Any] = {"version": result.version, "attributes": dict(result.values)}
        if isinstance(result, AttributeSet):
            data["setup_password_set"] = result.setup_password_set
        if pending is not None:
            data["pending"] = waiting
        _dump(out, data)
        return
    out.write(f"# version {result.version}\n")
    if isinstance(result, AttributeSet):
        out.write(f"# setup password {'set' if result.setup_password_set else 'not set'}\n")
    elif not result.values:
        out.write("# no pending values\n")
    shown = {name: show_value(value) + (
        f" (pending: {show_value(waiting[name])})" if name in waiting else "")
        for name, value in result.values.items()}
    for line in _aligned(shown):
        out.write(line + "\n")


def version(out: TextIO, new_version: int, *, as_json: bool) -> None:
    if as_json:
        _dump(out, {"version": new_version})
    else:
        out.write(f"version {new_version}\n")


def definition_dict(d: AttributeDefinition) -> dict[str, Any]:
    return {
        "name": d.name,
        "type": d.type,
        "display_name": d.display_name,
        "help_text": d.help_text,
        "read_only": d.read_only,
        "reset_required": d.reset_required,
        "default": d.default,
        "lower_bound": d.lower_bound,
        "upper_bound": d.upper_bound,
        "scalar_increment": d.scalar_increment,
        "allowed_values": list(d.allowed_values),
        "min_length": d.min_length,
        "max_length": d.max_length,
    }


def _describe(d: AttributeDefinition) -> str:
    parts = [d.type]
    if d.allowed_values:
        parts.append("{" + ", ".join(d.allowed_values) + "}")
    if d.lower_bound is not None or d.upper_bound is not None:
        low = "" if d.lower_bound is None else str(d.lower_bound)
        high = "" if d.upper_bound is None else str(d.upper_bound)
        step = "" if d.scalar_increment in (None, 0, 1) else f" step {d.scalar_increment}"
        parts.append(f"[{low}..{high}{step}]")
    if d.default is not None:
        parts.append(f"default {show_value(d.default) or chr(34) * 2}")
    if d.read_only:
        parts.append("read-only")
    if d.reset_required:
        parts.append("reset required")
    return "  ".join(parts)


def registry(out: TextIO, result: AttributeRegistry, *, as_json: bool) -> None:
    if as_json:
        _dump(out, {"version": result.version,
                    "attributes": [definition_dict(d) for d in result]})
        return
    out.write(f"# registry {result.version}\n")
    for line in _aligned({d.name: _describe(d) for d in result}):
        out.write(line + "\n")


def boot(out: TextIO, result: BootConfig, *, as_json: bool) -> None:
    if as_json:
        _dump(out, {
            "version": result.version,
            "options": [
                {"id": o.id, "display_name": o.display_name, "enabled": o.enabled}
                for o in result.options
            ],
            "order": list(result.order),
            "boot_next": result.boot_next,
        })
        return
    names = {o.id: o for o in result.options}
    width = max((len(i) for i in result.order), default=0)
    out.write(f"# version {result.version}\n")
    for position, option_id in enumerate(result.order, start=1):
        option = names.get(option_id)
        label = option.display_name if option else ""
        state = "" if option is None or option.enabled else "  (disabled)"
        out.write(f"{position}. {option_id.ljust(width)}  {label}{state}\n")
    out.write(f"boot next: {result.boot_next or 'none'}\n")


def power(out: TextIO, result: PowerState, *, as_json: bool) -> None:
    data = {"power_state": result.power_state, "last_reset_cause": result.last_reset_cause,
            "last_reset_time": utc_text_of(result.last_reset_time),
            "pending_changes": result.pending_changes}
    if as_json:
        _dump(out, data)
        return
    rows = {"power state": result.power_state,
            "last reset cause": result.last_reset_cause or "-",
            "last reset time": utc_text_of(result.last_reset_time) or "-",
            "pending changes": "yes" if result.pending_changes else "no"}
    width = max(len(name) for name in rows)
    out.write("".join(f"{name.ljust(width)} = {value}\n" for name, value in rows.items()))


def reset(out: TextIO, result: ResetOutcome, *, as_json: bool) -> None:
    if as_json:
        _dump(out, {"power_state": result.power_state,
                    "pending_changes": result.pending_changes, "message": result.message})
        return
    out.write(f"{result.message}\n")


def secure_boot(out: TextIO, result: SecureBoot, *, as_json: bool) -> None:
    data = {"enabled": result.enabled, "current_boot": result.current_boot,
            "mode": result.mode, "pending_enabled": result.pending_enabled}
    if as_json:
        _dump(out, data)
        return
    pending = "-" if result.pending_enabled is None else (
        "Enabled" if result.pending_enabled else "Disabled")
    rows = {"secure boot": "Enabled" if result.enabled else "Disabled",
            "current boot": result.current_boot, "mode": result.mode,
            "at next reset": pending}
    width = max(len(name) for name in rows)
    out.write("".join(f"{name.ljust(width)} = {value}\n" for name, value in rows.items()))


def databases(out: TextIO, result: Mapping[str, list[SecureBootCertificate]], *,
              as_json: bool) -> None:
    if as_json:
        _dump(out, {name: [{**vars(c), "not_after": utc_text_of(c.not_after)} for c in certs]
                    for name, certs in result.items()})
        return
    for name, certs in result.items():
        out.write(f"{name}: {len(certs)} certificate{'' if len(certs) == 1 else 's'}\n")
        for cert in certs:
            out.write(f"  {cert.sha256}  {cert.subject}  (until {utc_text_of(cert.not_after)})\n")


def _rows(out: TextIO, rows: Mapping[str, str]) -> None:
    width = max(len(name) for name in rows)
    out.write("".join(f"{name.ljust(width)} = {value}\n" for name, value in rows.items()))


def issued_bundle(out: TextIO, verb: str, result: IssuedBundle, *, as_json: bool) -> None:
    """What enroll or renew wrote: the serial, the end of validity, the bundle's path."""
    data = {"domain": result.domain, "serial": result.serial,
            "not_after": utc_text(result.not_after), "bundle": str(result.path)}
    if as_json:
        _dump(out, data)
        return
    out.write(f"{verb} domain {result.domain}\n")
    _rows(out, {"serial": result.serial, "not after": str(data["not_after"]),
                "bundle": str(result.path)})


def provisioning(out: TextIO, result: ProvisioningState, *, as_json: bool) -> None:
    not_after = utc_text(result.certificate_not_after)
    if as_json:
        _dump(out, {"state": result.state, "next_step": result.next_step,
                    "certificate_not_after": not_after})
        return
    _rows(out, {"state": result.state, "next step": result.next_step,
                "not after": not_after or "-"})
