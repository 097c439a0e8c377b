"""The committed baseline of the v1 contract (``wsdl/v1-baseline.json``), and the command
that checks the WSDL against it or updates it on purpose.

The baseline is the contract's surface as data (``bios_ws.soap.wsdl_model``): every
operation with its request and response elements and their children (name, type,
required, repeated), the declared faults and their detail types, every named type with
its fields, every enumeration with its values. Documentation is not part of it.
``bios_ws.soap.compatibility`` says which differences break clients of the baseline;
``docs/contract.md`` gives the policy. Usage::

    python -m bios_ws.soap.baseline check     # exit 1 and name what broke
    python -m bios_ws.soap.baseline update    # refuses while something breaks ...
    python -m bios_ws.soap.baseline update --allow-breaking   # ... unless told

``--wsdl FILE`` reads another WSDL than the code's (the published one, by default);
``--baseline FILE`` another baseline than ``wsdl/v1-baseline.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bios_ws.soap.compatibility import Break, breaking_changes
from bios_ws.soap.wsdl_model import Field, Operation, WsdlModel, read_wsdl

FORMAT = "bios-ws-contract-baseline/1"
DEFAULT_BASELINE = Path("wsdl") / "v1-baseline.json"
UPDATE_COMMAND = "python -m bios_ws.soap.baseline update"
_FIELD_KEYS = ("name", "type", "required", "repeated")


class BaselineError(ValueError):
    """The baseline file is not one this module wrote."""


def to_json(model: WsdlModel) -> str:
    """``model``'s surface as the baseline file's text (deterministic)."""
    document = {
        "format": FORMAT,
        "namespace": model.namespace,
        "operations": {o.name: {
            "request": {"element": o.request, "fields": _fields_out(o.request_fields)},
            "response": {"element": o.response, "fields": _fields_out(o.response_fields)},
            "faults": list(o.faults),
        } for o in model.operations},
        "faults": dict(sorted(model.faults.items())),
        "types": {name: _fields_out(fields) for name, fields in sorted(model.types.items())},
        "enumerations": {name: list(values)
                         for name, values in sorted(model.enumerations.items())},
    }
    return _dump(document, 0) + "\n"


def from_json(text: str) -> WsdlModel:
    """The surface a baseline file records (``BaselineError``: not a baseline)."""
    try:
        document = json.loads(text)
        if document.get("format") != FORMAT:
            raise BaselineError(f"not a contract baseline (format is not {FORMAT!r})")
        return WsdlModel(
            namespace=str(document["namespace"]),
            operations=tuple(_operation_in(name, entry)
                             for name, entry in document["operations"].items()),
            faults={str(k): str(v) for k, v in document["faults"].items()},
            types={str(name): _fields_in(fields)
                   for name, fields in document["types"].items()},
            enumerations={str(name): tuple(str(v) for v in values)
                          for name, values in document["enumerations"].items()},
        )
    except (AttributeError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"not a contract baseline: {exc!r}") from None


def check(baseline: WsdlModel, wsdl: bytes) -> list[Break]:
    """What in ``wsdl`` breaks clients of ``baseline``."""
    return breaking_changes(baseline, read_wsdl(wsdl))


def report(breaks: Sequence[Break], baseline_path: Path | str) -> str:
    """The message that names what broke and what to do about it."""
    lines = [f"the WSDL breaks clients of the baseline {baseline_path}:"]
    lines += [f"  - {b}" for b in breaks]
    lines += ["Within v1 the contract only grows (docs/contract.md): restore what broke, or",
              "make the change in a v2 namespace. Before the first release a break may be",
              f"accepted on purpose: list it in CHANGELOG.md and run `{UPDATE_COMMAND}"
              " --allow-breaking`."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    out = sys.stdout if stdout is None else stdout
    parser = argparse.ArgumentParser(prog="python -m bios_ws.soap.baseline",
                                     description="Check the WSDL against the committed"
                                     " v1 baseline, or update the baseline on purpose.")
    parser.add_argument("action", choices=("check", "update"))
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
    parser.add_argument("--wsdl", type=Path, help="a WSDL file (default: the code's)")
    parser.add_argument("--allow-breaking", action="store_true",
                        help="update even though the WSDL breaks the baseline")
    args = parser.parse_args(argv)
    wsdl = args.wsdl.read_bytes() if args.wsdl else _published_wsdl()
    current = read_wsdl(wsdl)
    if not args.baseline.exists() and args.action == "check":
        print(f"{args.baseline}: no baseline; create it with `{UPDATE_COMMAND}`", file=out)
        return 1
    breaks = breaking_changes(from_json(args.baseline.read_text(encoding="utf-8")), current) \
        if args.baseline.exists() else []
    if breaks and not (args.action == "update" and args.allow_breaking):
        print(report(breaks, args.baseline), file=out)
        return 1
    if args.action == "check":
        print(f"{args.baseline}: the WSDL keeps every part of it", file=out)
        return 0
    args.baseline.write_text(to_json(current), encoding="utf-8")
    print(f"{args.baseline}: updated" + (f" ({len(breaks)} breaking changes accepted)"
                                         if breaks else ""), file=out)
    return 0


def _published_wsdl() -> bytes:
    from bios_ws.soap.contract import render_wsdl  # builds the Spyne application

    return render_wsdl()


def _fields_out(fields: Sequence[Field]) -> list[dict[str, Any]]:
    return [{"name": f.name, "type": f.type, "required": f.required, "repeated": f.repeated}
            for f in fields]


def _fields_in(entries: Sequence[Any]) -> tuple[Field, ...]:
    fields = []
    for entry in entries:
        if set(entry) != set(_FIELD_KEYS) or not isinstance(entry["required"], bool) \
                or not isinstance(entry["repeated"], bool):
            raise TypeError(f"a field is {_FIELD_KEYS}, not {entry!r}")
        fields.append(Field(str(entry["name"]), str(entry["type"]), entry["required"],
                            entry["repeated"]))
    return tuple(fields)


def _operation_in(name: str, entry: Any) -> Operation:
    return Operation(
        name=str(name),
        request=str(entry["request"]["element"]),
        request_fields=_fields_in(entry["request"]["fields"]),
        response=str(entry["response"]["element"]),
        response_fields=_fields_in(entry["response"]["fields"]),
        faults=tuple(str(f) for f in entry["faults"]),
    )


def _dump(value: Any, depth: int) -> str:
    """JSON, one field or value list per line (reviewable diffs)."""
    if isinstance(value, dict) and tuple(value) == _FIELD_KEYS:
        return json.dumps(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return json.dumps(value)
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_dump(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(f"{inner}{_dump(v, depth + 1)}" for v in value) + f"\n{pad}]"
    return json.dumps(value)


if __name__ == "__main__":
    raise SystemExit(main())
