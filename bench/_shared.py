"""What the benchmark scripts share: the GetAttributes request, the CLI, a free port."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

NS = "urn:bios-ws:vbios:v1"
#: The same GetAttributes request bytes every benchmark posts.
REQUEST = (
    "<?xml version='1.0' encoding='UTF-8'?>"
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    f'xmlns:v="{NS}"><soapenv:Body><v:GetAttributes/></soapenv:Body></soapenv:Envelope>'
).encode()
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"GetAttributes"'}
#: The `vbios` command of the running interpreter's virtualenv.
VBIOS = Path(sys.executable).parent / "vbios"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
