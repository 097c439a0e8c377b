"""What the benchmark scripts share: the GetAttributes request, the CLI, a free port,
a fresh home with a guest domain."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from bios_ws.cli.serve import ensure_demo_domain
from bios_ws.home import Home

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


def init_home(path: Path, *extra: str) -> Path:
    """`vbios init --home path [extra...]` (the development TPM unless --no-tpm), then
    the guest domain "bench"; the directory of that guest's client bundle."""
    done = subprocess.run([str(VBIOS), "init", "--home", str(path), *extra],
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise SystemExit(f"vbios init failed: {done.stderr}")
    return ensure_demo_domain(Home.open(path), "bench")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
