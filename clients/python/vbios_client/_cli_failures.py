"""How vbios-client reports a failure: one line on stderr (escaped), and with --json also
``{"error": {"code": ..., "message": ...}}`` on stdout; the exit status by its kind
(1 a fault, 2 usage, 3 transport). An interruption (Ctrl-C, the way to end ``events
watch``) is no failure to report on stdout: one line on stderr, exit status 130."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from vbios_client._cli_inputs import UsageError
from vbios_client._cli_parser import PROG
from vbios_client._cli_text import dump, escape_controls
from vbios_client.exceptions import (
    EnrollmentError,
    FaultError,
    InvalidBootstrapUri,
    TransportError,
)

EXIT_FAULT, EXIT_USAGE, EXIT_TRANSPORT, EXIT_INTERRUPTED = 1, 2, 3, 130
USAGE = "UsageError"


@dataclass(frozen=True)
class Failure:
    code: str
    message: str
    status: int
    #: What stderr shows before the message ("error" for usage, else the code).
    label: str

    def report(self, out: TextIO, err: TextIO, *, as_json: bool, prog: str = PROG) -> int:
        """Write it (stdout: only with ``as_json``); the exit status."""
        err.write(f"{prog}: {self.label}: {escape_controls(self.message)}\n")
        if as_json:
            dump(out, {"error": {"code": self.code, "message": self.message}})
        return self.status


def usage(message: str) -> Failure:
    return Failure(USAGE, one_line(message), EXIT_USAGE, "error")


def failure_of(exc: BaseException) -> Failure | None:
    """The failure ``exc`` stands for; None for an exception that is a bug."""
    if isinstance(exc, UsageError):
        return usage(str(exc))
    if isinstance(exc, FaultError):
        return Failure(exc.code, one_line(exc.message), EXIT_FAULT, exc.code)
    if isinstance(exc, TransportError):
        return Failure("TransportError", one_line(str(exc)), EXIT_TRANSPORT, "TransportError")
    if isinstance(exc, EnrollmentError):
        name = type(exc).__name__
        status = EXIT_USAGE if isinstance(exc, InvalidBootstrapUri) else EXIT_FAULT
        return Failure(name, one_line(str(exc)), status, name)
    if isinstance(exc, ValueError | TypeError):
        return usage(str(exc))
    return None


def one_line(text: str) -> str:
    return " ".join(text.split())
