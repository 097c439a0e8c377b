"""How `vbios` reads its command line: usage errors where they belong, JSON when asked.

``VbiosParser`` is the parser class of every level of the command tree:

* a mistyped option is reported by the subcommand it was given to
  (``usage: vbios domain create ...``), not by the top level, as argparse would;
* while ``json_usage_errors`` is on (the command line has ``--json``), a usage error is
  also printed on stdout as ``{"error": {"code": "UsageError", "message": ...}}``;
* every subcommand has a description (its help, as a sentence, unless it has its own);
* a mistyped subcommand is told the choices, without the hidden old names.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NoReturn

__all__ = [
    "USAGE_ERROR",
    "VbiosParser",
    "argv_or_sys",
    "deepest_parser",
    "json_usage_errors",
    "parse",
    "sentence",
    "wants_json",
]

#: The code of a usage error in JSON (exit status 2).
USAGE_ERROR = "UsageError"
_json_errors: ContextVar[bool] = ContextVar("vbios_json_usage_errors", default=False)


class _Subcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands whose description is their help, as a sentence, unless they have one."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        help_text = kwargs.get("help")
        if not kwargs.get("description") and help_text:
            kwargs["description"] = sentence(help_text)
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        return parser


class VbiosParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are JSON too while ``json_usage_errors``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """As argparse, but a mistyped subcommand's choices name no hidden alias."""
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            from bios_ws.cli.hidden import is_hidden_alias

            shown = ", ".join(repr(name) for name, parser in action.choices.items()
                              if not is_hidden_alias(parser))
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from"
                                                 f" {shown})")
        super()._check_value(action, value)

    def error(self, message: str) -> NoReturn:
        if _json_errors.get():
            from bios_ws.cli.output import print_error_json

            print_error_json(USAGE_ERROR, f"{self.prog}: {message}")
        super().error(message)


@contextmanager
def json_usage_errors(enabled: bool) -> Iterator[None]:
    """While inside, usage errors are printed as JSON on stdout too (when ``enabled``)."""
    token = _json_errors.set(enabled)
    try:
        yield
    finally:
        _json_errors.reset(token)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, but arguments no parser knows are the usage error of the
    deepest subcommand chosen (whose usage shows the options it takes)."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        deepest_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def deepest_parser(parser: argparse.ArgumentParser, args: argparse.Namespace
                   ) -> argparse.ArgumentParser:
    """The last subcommand's parser that ``args`` chose, from ``parser`` down."""
    while True:
        subcommands = [action for action in parser._actions
                       if isinstance(action, argparse._SubParsersAction)]
        if not subcommands:
            return parser
        chosen = getattr(args, subcommands[0].dest, None)
        if chosen not in subcommands[0].choices:
            return parser
        parser = subcommands[0].choices[chosen]


def sentence(text: str) -> str:
    """``text`` (a help fragment) as a sentence: a capital first and a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else f"{text}."


def wants_json(argv: Sequence[str]) -> bool:
    """Whether the command line asks for JSON (``--json`` before any ``--``)."""
    for word in argv:
        if word == "--":
            return False
        if word == "--json":
            return True
    return False


def argv_or_sys(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)
