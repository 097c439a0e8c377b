"""What vbios-client reads from its command line and files, checked (no network)."""

from __future__ import annotations

from collections.abc import Sequence

from vbios_client.models import AttributeRegistry, Value

_MAX_SECRET_BYTES = 4096


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
    """Convert each text by its registry type; unknown names stay text (the service refuses)."""
    typed: dict[str, Value] = {}
    for name, text in texts.items():
        if name not in registry:
            typed[name] = text
            continue
        try:
            typed[name] = registry.lookup(name).parse_value(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return typed
