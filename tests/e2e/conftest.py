"""End-to-end fixtures: a real `vbios serve` process over mutual TLS on loopback.

Homes use the development TPM by default (`vbios init` starts the home's
swtpm on free loopback ports); every swtpm a test started is stopped by its
recorded pid (``DevTpm.stop``). Every process is started with
``subprocess.Popen`` and stopped by its pid (SIGTERM, then SIGKILL after a
timeout); every wait and socket has a timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree

from bios_ws.tpm.devtpm import DevTpm
from tests.ports import closed_port
from tests.qemu_support import kill_all

VBIOS = Path(sys.executable).parent / "vbios"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
COMMAND_TIMEOUT = 120.0

NS = "urn:bios-ws:vbios:v1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOCKET_TIMEOUT = 15.0

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


def envelope(operation: str, inner: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:v="{NS}">'
        f"<soapenv:Body><v:{operation}>{inner}</v:{operation}></soapenv:Body>"
        f"</soapenv:Envelope>"
    ).encode()


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    @property
    def root(self) -> etree._Element:
        return etree.fromstring(self.body, _PARSER)

    def texts(self, local_name: str) -> list[str]:
        found = self.root.xpath(f'//*[local-name()="{local_name}"]/text()')
        assert isinstance(found, list)
        return [str(text) for text in found]

    def text(self, local_name: str) -> str:
        values = self.texts(local_name)
        assert len(values) == 1, f"expected one {local_name} in {self.body[:600]!r}"
        return values[0]

    @property
    def fault_code(self) -> str:
        """The ``Code`` of the ``VbiosFaultDetail`` (``""`` when not a fault)."""
        codes = self.root.xpath(
            '//*[local-name()="Fault"]//*[local-name()="VbiosFaultDetail"]'
            '/*[local-name()="Code"]/text()'
        )
        assert isinstance(codes, list)
        return str(codes[0]) if codes else ""


def post(
    connection: http.client.HTTPSConnection, operation: str, body: bytes
) -> Reply:
    connection.request(
        "POST",
        "/",
        body=body,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'},
    )
    response = connection.getresponse()
    return Reply(response.status, response.read())


def connect(port: int, context: ssl.SSLContext) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=SOCKET_TIMEOUT)


def call(port: int, context: ssl.SSLContext, operation: str, inner: str = "") -> Reply:
    """One SOAP call on a fresh connection."""
    connection = connect(port, context)
    try:
        return post(connection, operation, envelope(operation, inner))
    finally:
        connection.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)




def run_vbios(*args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run one `vbios` command to completion (no shell, bounded time)."""
    return subprocess.run(
        [str(VBIOS), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def client_context(bundle: Path | None, ca: Path) -> ssl.SSLContext:
    """A client context trusting ``ca``, presenting the bundle's certificate if given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    if bundle is not None:
        context.load_cert_chain(str(bundle / "cert.pem"), str(bundle / "key.pem"))
    return context


def tls_handshake_ok(port: int, context: ssl.SSLContext, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.settimeout(timeout)
            return tls.version() is not None
    except (OSError, ssl.SSLError):
        return False


def stop_process(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM the process by pid, SIGKILL it if it outlives ``timeout``; its exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    return proc.returncode


_SERVING = re.compile(r"^vbios: serving https://127\.0\.0\.1:([0-9]+)/", re.MULTILINE)
_RUNS = itertools.count(1)


@dataclass
class ServerProcess:
    """One running `vbios serve`; output goes to files so a full pipe cannot block it.

    The server binds port 0 (a port from the kernel, no window for another test to
    take it) and ``port`` is read from the line where it says what it serves.
    """

    home: Path
    work: Path
    command: str = "serve"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    stdout_path: Path = field(init=False)
    stderr_path: Path = field(init=False)

    def __post_init__(self) -> None:
        run = next(_RUNS)
        self.stdout_path = self.work / f"{self.command}-{os.getpid()}-{run}.out"
        self.stderr_path = self.work / f"{self.command}-{os.getpid()}-{run}.err"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def admin_bundle(self) -> Path:
        return self.home / "admin"

    @property
    def ca_cert(self) -> Path:
        return self.admin_bundle / "ca.pem"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def start(self, *extra: str) -> None:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(VBIOS), self.command, "--home", str(self.home),
                 "--bind", "127.0.0.1:0", *extra],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the server says its port and the port completes a mutual TLS handshake;
        fail with stderr if it dies."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"vbios {self.command} exited with {self.proc.returncode}:\n"
                            f"{self.stderr()}")
            serving = _SERVING.search(self.stdout())
            if serving is None:
                time.sleep(0.1)
                continue
            self.port = int(serving.group(1))
            try:  # devrun writes the admin bundle only once it has initialized the home
                context = client_context(self.admin_bundle, self.ca_cert)
            except (OSError, ssl.SSLError):
                context = None
            if context is not None and tls_handshake_ok(self.port, context):
                return
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"vbios serve not ready after {timeout:.0f}s:\n{self.stderr()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        return None if self.proc is None else stop_process(self.proc)

    # -- SOAP over mutual TLS ------------------------------------------------------

    envelope = staticmethod(envelope)
    post = staticmethod(post)

    def context(self, bundle: Path | None) -> ssl.SSLContext:
        """A client context trusting the installation's CA, presenting ``bundle``'s cert."""
        return client_context(bundle, self.ca_cert)

    def connect(self, who: Path | ssl.SSLContext | None) -> http.client.HTTPSConnection:
        context = who if isinstance(who, ssl.SSLContext) else self.context(who)
        return connect(self.port, context)

    def call(self, who: Path | ssl.SSLContext | None, operation: str, inner: str = "") -> Reply:
        """One SOAP call on a fresh connection, as the holder of bundle ``who``."""
        context = who if isinstance(who, ssl.SSLContext) else self.context(who)
        return call(self.port, context, operation, inner)

    def create_domain(self, name: str) -> Path:
        """`vbios domain create NAME --home H --out DIR`; the bundle directory."""
        out = self.work / "bundles" / name
        done = run_vbios("domain", "create", name, "--home", str(self.home), "--out", str(out))
        assert done.returncode == 0, done.stderr
        for part in ("cert.pem", "key.pem", "ca.pem"):
            assert (out / part).is_file(), f"bundle lacks {part}"
        return out


def init_home(home: Path, *extra: str) -> str:
    """`vbios init --home HOME` (the development TPM unless ``extra`` says otherwise);
    its stdout (with the recovery code)."""
    done = run_vbios("init", "--home", str(home), *extra)
    assert done.returncode == 0, f"vbios init failed:\n{done.stderr}"
    return done.stdout


def recovery_code(init_stdout: str) -> str:
    lines = init_stdout.splitlines()
    return lines[lines.index("RECOVERY CODE (shown once, stored nowhere; keep it offline):") + 1
                 ].strip()


def dev_tpm(home: Path) -> DevTpm:
    return DevTpm(home / "tpm")


def dev_tpm_tcti(home: Path) -> str:
    status = dev_tpm(home).status()
    assert status.running and status.tcti, f"the development TPM of {home} is not running"
    return status.tcti


def stop_dev_tpm(home: Path) -> None:
    """Stop the home's swtpm by its recorded pid (a copy of a home stops nothing)."""
    if (home / "tpm").is_dir():
        dev_tpm(home).stop()


@contextlib.contextmanager
def served_home(work: Path) -> Iterator[ServerProcess]:
    """A new home in ``work`` (the development TPM) served by `vbios serve`; the server
    and the TPM stopped after."""
    home = work / "home"
    try:
        init_home(home)
        server = ServerProcess(home=home, work=work)
        try:
            server.start()
            yield server
        finally:
            server.stop()
    finally:
        stop_dev_tpm(home)


@pytest.fixture(scope="session")
def vbios_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with served_home(tmp_path_factory.mktemp("vbios-e2e")) as server:
        yield server


@pytest.fixture
def unused_port() -> Iterator[int]:
    """A loopback port that refuses connections and nobody else can bind, while the test
    runs."""
    with closed_port() as port:
        yield port


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start more `vbios serve|devrun` processes: ``start_server(home, *extra, command=...)``.

    Each is stopped by pid when the test ends.
    """
    started: list[ServerProcess] = []

    def start(home: Path, *extra: str, command: str = "serve") -> ServerProcess:
        server = ServerProcess(home=home, work=tmp_path, command=command)
        started.append(server)
        server.start(*extra)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
        for home in {server.home for server in started}:
            kill_all(home / "machines")  # guests outlive their server by design
            stop_dev_tpm(home)
