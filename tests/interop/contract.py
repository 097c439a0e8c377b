"""What every SOAP stack of the interop tier must call, read from the committed WSDL.

A stack's client program prints one line ``CALLED <Operation>`` for each operation it
called and got an answer to (a response or the fault the test expects); the stack's
test compares them with ``required_calls()``: every operation a guest may call and at
least one admin operation. An operation added to the WSDL fails every stack's test
until its client calls it.
"""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from bios_ws.domain.principal import Role
from bios_ws.soap.callers import CALLERS

ROOT = Path(__file__).resolve().parents[2]
WSDL_PATH = ROOT / "wsdl" / "vbios.wsdl"
_WSDL_NS = {"wsdl": "http://schemas.xmlsoap.org/wsdl/"}

#: Operations only the host's admin may call (bios_ws.soap.callers: a guest is refused).
ADMIN_ONLY = frozenset(name for name, who in CALLERS.items() if Role.GUEST not in who)
#: Operations a caller without a certificate may call (with a one-time ticket), before
#: a guest has one: not a guest's call, though a guest may make it too.
ANONYMOUS_ONLY = frozenset(name for name, who in CALLERS.items() if Role.ANONYMOUS in who)

_CALLED = re.compile(r"^CALLED ([A-Za-z]+)$", re.MULTILINE)


def wsdl_operations() -> list[str]:
    doc = etree.parse(str(WSDL_PATH), etree.XMLParser(resolve_entities=False,
                                                      no_network=True))
    return [str(op.get("name")) for op in doc.iterfind("wsdl:portType/wsdl:operation",
                                                        _WSDL_NS)]


def guest_operations() -> set[str]:
    """Every operation of the WSDL a guest calls with its certificate (one the table does
    not know is counted: a stack must call it until the table says otherwise)."""
    return set(wsdl_operations()) - ADMIN_ONLY - ANONYMOUS_ONLY


def called(output: str) -> set[str]:
    """The operations a client program says it called."""
    return set(_CALLED.findall(output))


def check_coverage(stack: str, output: str) -> None:
    """AssertionError naming what ``stack``'s client did not call."""
    done = called(output)
    missing = sorted(guest_operations() - done)
    assert not missing, f"{stack} did not call these guest operations: {missing}"
    assert done & ADMIN_ONLY, f"{stack} called no admin operation"
