"""What the benchmark scripts share: the GetAttributes request, the CLI, a server
started on a port from the kernel, a fresh home with a guest domain, a mutual-TLS
session, a timer, and the machine and its load as the reports print them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

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


_SERVING = re.compile(rb"serving https://127\.0\.0\.1:([0-9]+)/")


def spawn_server(command: list[str], log: Path, limit: float = 60.0, *,
                 serving: re.Pattern[bytes] = _SERVING,
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server ``command`` that binds 127.0.0.1:0 (``--bind`` is appended), its
    output going to ``log``; the process and the port it says (``serving``'s group 1)
    it serves on."""
    with log.open("ab") as sink:
        start = sink.tell()
        proc = subprocess.Popen([*command, "--bind", "127.0.0.1:0"], env=env,
                                stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with log.open("rb") as output:
            output.seek(start)
            said = serving.search(output.read())
        if said is not None:
            return proc, int(said.group(1))
        if proc.poll() is not None:
            raise SystemExit(f"{command[0]} exited with {proc.returncode}; see {log}")
        time.sleep(0.005)
    stop_server(proc)
    raise SystemExit(f"{command[0]} did not say its port within {limit:.0f}s; see {log}")


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


def timed(call: Callable[[], object], n: int) -> float:
    """Seconds ``n`` calls of ``call`` take, one after the other."""
    start = time.perf_counter()
    for _ in range(n):
        call()
    return time.perf_counter() - start


def wait_ready(session: requests.Session, url: str, proc: subprocess.Popen[bytes]) -> None:
    """Post GetAttributes to ``url`` until the server answers (any answer)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            session.post(url, data=REQUEST, headers=HEADERS, timeout=5)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not answer within 30 s")


def session_for(bundle: Path) -> requests.Session:
    """A requests session presenting the client bundle ``bundle`` (cert, key, CA)."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify
    session.cert = (str(bundle / "cert.pem"), str(bundle / "key.pem"))
    session.verify = str(bundle / "ca.pem")
    return session


def machine() -> str:
    """The CPU model and count of this machine, from /proc/cpuinfo."""
    models: list[str] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            models = [line.split(":", 1)[1].strip() for line in info
                      if line.startswith("model name")]
    except OSError:
        pass
    model = models[0] if models else "unknown CPU"
    return f"{model}, {len(models) or os.cpu_count()} logical cores (os.cpu_count {os.cpu_count()})"


def load_average() -> str:
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())
