"""How vbios-client reads its command line: a parser whose mistakes are raised (for
``cli.main`` to print as text or JSON), reported by the deepest command given (its own
usage, not the top level's), the global options, ``--version`` and the exit codes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

PROG = "vbios-client"
DISTRIBUTION = "vbios-client"

EXIT_CODES_EPILOG = """exit status:
  0  done
  1  the service refused (a fault); attest: the host is not trusted; a firmware job
     ended Failed or RolledBack; enrollment stopped here
  2  usage: a mistake in the command line or its inputs (a malformed bootstrap URI too)
  3  the service could not be reached: connection, TLS, timeout

With --json a failure prints {"error": {"code": ..., "message": ...}} on stdout: code is
the fault code, UsageError or TransportError (or the enrollment error's name)."""


class CommandLineError(Exception):
    """A mistake argparse found, with the parser (the command) it belongs to."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser, self.message = parser, message


class Parser(argparse.ArgumentParser):
    """Raises ``CommandLineError`` instead of printing and exiting (subcommands too: they
    are made of the class of their parent): ``parse`` lets the caller print it; its
    ``parse_args`` prints it as argparse does, by the command it belongs to."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(self, message)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: None = None) -> argparse.Namespace:
        try:
            return parse(self, sys.argv[1:] if args is None else args)
        except CommandLineError as exc:
            exc.parser.print_usage(sys.stderr)
            exc.parser.exit(2, f"{exc.parser.prog}: error: {exc.message}\n")


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, read only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        sys.stdout.write(f"{PROG} {installed_version()}\n")
        parser.exit()


def installed_version() -> str:
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def top_parser(parents: Sequence[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, parents=list(parents), allow_abbrev=False,
                    description="Read and change this guest's vBIOS.",
                    epilog=EXIT_CODES_EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """The arguments; a word no command knows is the mistake of the deepest command."""
    args, unknown = parser.parse_known_args(list(argv))
    if unknown:
        deepest(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def deepest(parser: argparse.ArgumentParser, args: argparse.Namespace
            ) -> argparse.ArgumentParser:
    """The parser of the last command chosen in ``args``."""
    while True:
        group = _subcommands(parser)
        chosen = None if group is None else getattr(args, str(group.dest), None)
        if group is None or chosen not in group.choices:
            return parser
        parser = group.choices[chosen]


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
         ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command under ``parser`` (itself first) with the words that choose it."""
    yield path, parser
    group = _subcommands(parser)
    if group is not None:
        for name, sub in group.choices.items():
            yield from walk(sub, (*path, name))


def describe_from_help(parser: argparse.ArgumentParser) -> None:
    """Give each command without a description its help line (shown by its --help)."""
    for _, command in walk(parser):
        group = _subcommands(command)
        if group is None:
            continue
        for listed in group._choices_actions:
            sub = group.choices[listed.dest]
            if not sub.description and listed.help:
                sub.description = listed.help


def global_options(suppress: bool, *, call_timeout: bool = True) -> argparse.ArgumentParser:
    """Global options, accepted before or after the command (--timeout only before it
    without ``call_timeout``: a command whose own --timeout means something else)."""
    parent = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    group = parent.add_argument_group("connection")
    group.add_argument("--url", default=default, help="service URL (env VBIOS_URL)")
    group.add_argument("--bundle", default=default, metavar="DIR",
                       help="client bundle: cert.pem, key.pem, ca.pem (env VBIOS_BUNDLE)")
    if call_timeout:
        group.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                           default=argparse.SUPPRESS if suppress else 30.0,
                           help="per-call timeout (default 30)")
    group.add_argument("--json", action="store_true",
                       default=argparse.SUPPRESS if suppress else False,
                       help="print JSON (errors too)")
    group.add_argument("--password-file", default=default, metavar="FILE",
                       help="file holding the (current) setup password, for every command"
                            " (else env VBIOS_SETUP_PASSWORD)")
    return parent


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def version_number(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a version is not negative")
    return value


def if_match_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--if-match", type=version_number, metavar="VERSION",
                         help="refuse (VersionConflict) unless the domain is at VERSION")
