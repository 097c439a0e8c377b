"""``docs/operations.md``: every operation of the published WSDL, for its users.

For each operation, in the WSDL's order: who may call it (``bios_ws.soap.callers``),
its capability, its request and response children (type, required or optional,
repeated), the fault codes it may raise (``COMMON_FAULTS`` and its capability's, from
``bios_ws.capabilities``) and its documentation when the WSDL has some; then the named
types and the enumerations. Regenerate with::

    python -m bios_ws.soap.operations_doc > docs/operations.md

``tests/integration/test_operations_doc.py`` fails when the committed file is stale.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping

from bios_ws.capabilities import CAPABILITIES, COMMON_FAULTS, Capability
from bios_ws.errors import VbiosError
from bios_ws.soap.callers import CALLERS, describe
from bios_ws.soap.contract import render_wsdl
from bios_ws.soap.wsdl_model import Field, Operation, WsdlModel, read_wsdl

COMMAND = "python -m bios_ws.soap.operations_doc > docs/operations.md"


def render(wsdl: bytes | None = None) -> str:
    """The page for ``wsdl`` (the published WSDL by default), as Markdown."""
    model = read_wsdl(render_wsdl() if wsdl is None else wsdl)
    capabilities = capability_by_operation()
    lines = [*_preamble(model), *_index(model, capabilities)]
    for operation in model.operations:
        lines += _operation(operation, capabilities.get(operation.name), model)
    lines += _types(model)
    return "\n".join(lines) + "\n"


def capability_by_operation() -> dict[str, Capability]:
    """Each operation's capability, through the capability's Spyne service classes."""
    found: dict[str, Capability] = {}
    for capability in CAPABILITIES:
        for service in capability.services():
            for name in service.public_methods:
                found[str(name)] = capability
    return found


def fault_codes(capability: Capability | None) -> list[type[VbiosError]]:
    """The error classes an operation of ``capability`` may raise, by code."""
    classes = {cls.code: cls for cls in (*COMMON_FAULTS,
                                         *(capability.faults if capability else ()))}
    return [classes[code] for code in sorted(classes)]


def _preamble(model: WsdlModel) -> list[str]:
    faults = ", ".join(f"`{name}` (detail `{detail.removeprefix('tns:')}`)"
                       for name, detail in model.faults.items())
    return [
        "# Operations of the vBIOS contract",
        "",
        f"<!-- Generated from the WSDL by `{COMMAND}`: do not edit by hand. -->",
        "",
        f"Namespace `{model.namespace}`, SOAP 1.1 document/literal wrapped:"
        " [contract.md](contract.md) explains the contract and how it may change;"
        " `wsdl/vbios.wsdl` is the authority.",
        "",
        "Callers: `guest` presents a guest certificate and acts on its own domain;"
        " `admin` presents the admin certificate and names the domain; `anonymous`"
        " presents no client certificate. A caller an operation does not list is refused"
        " with `AccessDenied`.",
        "",
        f"Faults: every operation declares {faults}; its `Code` is one of the codes"
        " listed with the operation (faultcode `Client`: the request was wrong;"
        " `Server`: the service failed).",
        "",
        "Occurs: `required` exactly once; `optional` at most once (absent means not"
        " given); `repeated` any number of times, in order.",
        "",
    ]


def _index(model: WsdlModel, capabilities: Mapping[str, Capability]) -> list[str]:
    lines = ["| operation | capability | callers |", "| --- | --- | --- |"]
    for operation in model.operations:
        capability = capabilities.get(operation.name)
        lines.append(f"| [`{operation.name}`](#{_anchor(operation.name)}) |"
                     f" {capability.name if capability else '-'} | {_callers(operation.name)} |")
    return [*lines, ""]


def _operation(operation: Operation, capability: Capability | None,
               model: WsdlModel) -> list[str]:
    lines = [f"## {operation.name}", "",
             f"Callers: {_callers(operation.name)}."
             f" Capability: {capability.name if capability else '-'}.", ""]
    if operation.documentation:
        lines += [operation.documentation, ""]
    lines += _children(f"Request `{operation.request}`", operation.request_fields, model)
    lines += _children(f"Response `{operation.response}`", operation.response_fields, model)
    codes = ", ".join(f"`{cls.code}` ({cls.fault_kind})" for cls in fault_codes(capability))
    declared = ", ".join(f"`{name}`" for name in operation.faults) or "none"
    lines += [f"Faults: {declared}, with the codes {codes}.", ""]
    return lines


def _children(title: str, fields: Iterable[Field], model: WsdlModel) -> list[str]:
    rows = [f"| `{f.name}` | {_type(f.type, model)} | {_occurs(f)} |" for f in fields]
    if not rows:
        return [f"{title}: no children.", ""]
    return [f"{title}:", "", "| child | type | occurs |", "| --- | --- | --- |", *rows, ""]


def _types(model: WsdlModel) -> list[str]:
    lines = ["## Types", "",
             "The named types the operations use, and their fields in order.", ""]
    for name, fields in model.types.items():
        lines += [f"### {name}", "", "| field | type | occurs |", "| --- | --- | --- |"]
        lines += [f"| `{f.name}` | {_type(f.type, model)} | {_occurs(f)} |" for f in fields]
        lines.append("")
    lines += ["## Enumerations", "",
              "Strings restricted to these values. Within v1 an enumeration may gain"
              " values: treat a value you do not know as unknown, not as an error.", ""]
    for name, values in model.enumerations.items():
        lines += [f"### {name}", "", ", ".join(f"`{v}`" for v in values), ""]
    return lines


def _type(name: str, model: WsdlModel) -> str:
    local = name.removeprefix("tns:")
    if local in model.types or local in model.enumerations:
        return f"[`{local}`](#{_anchor(local)})"
    return f"`{name}`"


def _occurs(field: Field) -> str:
    if field.repeated:
        return "repeated (at least one)" if field.required else "repeated"
    return "required" if field.required else "optional"


def _callers(operation: str) -> str:
    callers = CALLERS.get(operation)
    return describe(callers) if callers else "nobody (not in bios_ws/soap/callers.py)"


def _anchor(heading: str) -> str:
    """The anchor GitHub and most renderers give a heading of one word."""
    return heading.lower()


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
