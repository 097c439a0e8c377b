"""What vbios-client reads from its command line and files, checked (no network)."""

from __future__ import annotations

from collections.abc import Sequence

from vbios_client.models import AttributeDefinition, AttributeRegistry, Value

_MAX_SECRET_BYTES = 4096
#: The contract's integers are xs:long.
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class UsageError(Exception):
    """A mistake in the command line or its inputs: exit status 2."""


def read_secret_file(path: str) -> str:
    """A password from a file: its text without the trailing newline."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read password file {path}: {exc.strerror}") from None
    if len(data) > _MAX_SECRET_BYTES:
        raise UsageError(f"password file {path} is too long")
    try:
        return data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise UsageError(f"password file {path} is not UTF-8") from None


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """NAME=VALUE words into a dict (the value may contain '=' and be empty)."""
    result: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"expected NAME=VALUE, not {pair!r}")
        if name in result:
            raise UsageError(f"{name} is given twice")
        result[name] = value
    return result


def typed_changes(texts: dict[str, str], registry: AttributeRegistry) -> dict[str, Value]:
    """Convert each text by its registry type; unknown names stay text (the service
    refuses). A password is refused here (it has its command), and so is an integer the
    contract cannot carry (beyond 64 bits)."""
    typed: dict[str, Value] = {}
    for name, text in texts.items():
        if name not in registry:
            typed[name] = text
            continue
        definition = registry.lookup(name)
        if definition.type == "Password":
            raise UsageError(f"{name} is a password: set it with vbios-client password"
                             f" change {name}")
        try:
            typed[name] = definition.parse_value(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        _check_long(definition, typed[name])
    return typed


def _check_long(definition: AttributeDefinition, value: Value) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        return
    if LONG_MIN <= value <= LONG_MAX:
        return  # the registry's own bounds are the service's to enforce
    low = LONG_MIN if definition.lower_bound is None else definition.lower_bound
    high = LONG_MAX if definition.upper_bound is None else definition.upper_bound
    raise UsageError(f"{definition.name} = {value} is out of range: {low} to {high}")
