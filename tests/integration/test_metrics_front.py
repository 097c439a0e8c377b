"""Metrics and the access log through the real front (``Worker`` on loopback, mutual TLS,
the whole application of a home): each call is counted by operation and outcome and
timed, a failed handshake is counted by its reason, the store's statements are timed
and its gauges read; a guest asking for the metrics gets 403 and nothing else; the
access log has one line per call, without a body."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bios_ws.bootstrap import bootstrap, initialize_home
from bios_ws.config import Config
from bios_ws.server.access_log import AccessLog
from bios_ws.server.metrics import ServerMetrics
from bios_ws.server.options import Bounds
from bios_ws.server.telemetry import WorkerTelemetry
from bios_ws.server.tls import ServerTls
from bios_ws.soap.testing import soap_envelope
from tests.credentials_support import issue_bundle
from tests.front_support import TIMEOUT, RunningFront, running_front

SET_TAG = ("<tns:Attributes><tns:AttributeValue><tns:Name>AssetTag</tns:Name>"
           "<tns:StringValue>{}</tns:StringValue></tns:AttributeValue></tns:Attributes>"
           "<tns:ApplyTime>Immediate</tns:ApplyTime>")


@dataclass
class Served:
    front: RunningFront
    guest: Path
    access_log: Path

    def call(self, operation: str, inner: str = "", *, bundle: Path | None = None
             ) -> tuple[int, bytes]:
        body = soap_envelope(operation, inner)
        return self.request("POST", "/", body, bundle or self.guest,
                            {"Content-Type": "text/xml; charset=utf-8"})

    def request(self, method: str, path: str, body: bytes | None = None,
                bundle: Path | None = None, headers: dict[str, str] | None = None
                ) -> tuple[int, bytes]:
        """One request on a fresh connection (``bundle``: the admin's when None)."""
        host, port = self.front.address
        connection = http.client.HTTPSConnection(
            host, port, context=self.front.client_context(bundle), timeout=TIMEOUT)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def scrape(self) -> str:
        status, body = self.request("GET", "/metrics")
        assert status == 200, body
        return body.decode()

    def log_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.access_log.read_text().splitlines()]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    home = initialize_home(tmp_path / "home")
    guest = tmp_path / "guest"
    issue_bundle(home, "vm1", guest)
    app = bootstrap(Config.of(home))
    metrics = ServerMetrics()
    metrics.time_store_statements()
    access_log = tmp_path / "log" / "access.log"
    telemetry = WorkerTelemetry(metrics, AccessLog.to_file(access_log))
    try:
        tls = ServerTls.of(home, home.key_passphrase("server"))
        with running_front(home, app.wsgi(tls), Bounds(), telemetry=telemetry) as front:
            yield Served(front, guest, access_log)
    finally:
        telemetry.close()
        app.close()


def test_calls_are_counted_by_operation_and_outcome_and_timed(served: Served) -> None:
    assert served.call("GetAttributes")[0] == 200
    assert served.call("GetAttributes")[0] == 200
    assert served.call("SetAttributes", SET_TAG.format("x" * 500))[0] == 500  # too long
    assert served.call("ApplyPendingAttributes", "<tns:Domain>vm1</tns:Domain>")[0] == 500
    assert served.call("NoSuchOperation")[0] == 500
    text = served.scrape()
    for sample in ('vbios_calls_total{operation="GetAttributes",outcome="ok"} 2.0',
                   'vbios_calls_total{operation="SetAttributes",'
                   'outcome="InvalidAttributeValue"} 1.0',
                   'vbios_calls_total{operation="ApplyPendingAttributes",'
                   'outcome="AccessDenied"} 1.0',
                   'vbios_calls_total{operation="-",outcome="InvalidRequest"} 1.0',
                   'vbios_call_duration_seconds_count{operation="GetAttributes"} 2.0',
                   'vbios_domains{power_state="Off"} 1.0',
                   'vbios_integrity_state{state="Unmeasured"} 1.0'):
        assert sample in text, sample
    selects = [line for line in text.splitlines()
               if line.startswith('vbios_store_statement_duration_seconds_count{statement='
                                  '"select"}')]
    assert selects and float(selects[0].split()[-1]) > 0
    # the scrape itself is counted once it is answered
    assert 'vbios_calls_total{operation="metrics",outcome="ok"} 1.0' in served.scrape()


def test_a_guest_asking_for_the_metrics_gets_403_and_nothing_else(served: Served) -> None:
    served.call("GetAttributes")
    for method in ("GET", "HEAD", "POST"):
        status, body = served.request(method, "/metrics", bundle=served.guest)
        assert status == 403
        assert body in (b"forbidden\n", b"")  # HEAD: no body
    assert 'operation="metrics",outcome="AccessDenied"} 3.0' in served.scrape()


def test_a_failed_handshake_is_counted_by_its_reason(served: Served) -> None:
    with socket.create_connection(served.front.address, timeout=TIMEOUT) as plain:
        plain.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")  # not TLS at all
        plain.recv(100)
    unverified = ssl.create_default_context()  # no client certificate, wrong CA
    with pytest.raises(ssl.SSLError), socket.create_connection(
            served.front.address, timeout=TIMEOUT) as tcp, \
            unverified.wrap_socket(tcp, server_hostname="127.0.0.1"):
        pass
    failures = {line.split("{")[1].split("}")[0]: float(line.split()[-1])
                for line in served.scrape().splitlines()
                if line.startswith("vbios_tls_handshake_failures_total{")}
    assert sum(failures.values()) == 2.0, failures
    assert all(label.startswith('reason="') for label in failures)


def test_the_access_log_has_a_line_per_call_and_no_body(served: Served) -> None:
    secret_value = "tag-7f3a9"
    assert served.call("SetAttributes", SET_TAG.format(secret_value))[0] == 200
    assert served.call("GetAttributes", bundle=served.front.home.admin_dir)[0] == 500
    assert served.request("GET", "/?wsdl", bundle=served.guest)[0] == 200
    assert served.request("GET", "/metrics", bundle=served.guest)[0] == 403
    lines = served.log_lines()
    assert [(line["principal"], line["operation"], line["outcome"], line["status"])
            for line in lines] == [
        ("guest:vm1", "SetAttributes", "ok", 200),
        ("admin:vbios-admin", "GetAttributes", "AccessDenied", 500),
        ("guest:vm1", "wsdl", "ok", 200),
        ("guest:vm1", "metrics", "AccessDenied", 403)]
    first = lines[0]
    assert first["peer"] == "127.0.0.1" and first["request_bytes"] == len(
        soap_envelope("SetAttributes", SET_TAG.format(secret_value)))
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] > 0
    assert isinstance(first["time"], str) and first["time"].endswith("Z")
    assert secret_value not in served.access_log.read_text()
