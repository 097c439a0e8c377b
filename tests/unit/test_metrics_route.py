"""``GET /metrics`` and what a call is labelled with: only the admin gets the metrics
(anyone else 403 and a fixed line, whatever the method), an admin's non-GET 405; the
principal, operation and outcome of a call come from what the application noted, each
from a bounded set; the store's gauges (power states, unfinished jobs, integrity) read
at scrape time from the in-memory store."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from bios_ws.blocking import WouldBlock, on_event_loop
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.firmware_job import ApplyTime, FirmwareJob, JobState
from bios_ws.domain.power import MachineKind, MachineRecord, PowerState
from bios_ws.domain.principal import Principal, Role
from bios_ws.server.calls import (
    CALL_NOTE_KEY,
    METRICS_ENVIRON_KEY,
    CallNote,
    NotingApp,
    outcome_of,
    principal_label,
)
from bios_ws.server.identity import SOCKET_ENVIRON_KEY
from bios_ws.server.metrics import ServerMetrics, statement_kind
from bios_ws.server.metrics_route import EXPOSITION_CONTENT_TYPE, MetricsRoute, StoreGauges
from bios_ws.server.wsgi_call import PeerCertificate
from bios_ws.service.integrity import INTEGRITY_KEY
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY, REFUSAL_ENVIRON_KEY
from bios_ws.soap.guard import FAULT_ENVIRON_KEY, OPERATION_ENVIRON_KEY

NOW = datetime(2026, 11, 5, tzinfo=UTC)
GUEST = Principal.guest("vm1")
ADMIN = Principal.admin("vbios-admin")
#: A host acting as vm1's platform (X-Vbios-Acting-As): admin operations on vm1's routed
#: state only, never /metrics.
PLATFORM = Principal(Role.HOST, "rack1-a", serial=77, host="rack1-a").on_behalf_of(
    "vm1", "platform")


class Soap:
    """Stands in for the SOAP endpoint: notes an operation and answers 200."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        environ[OPERATION_ENVIRON_KEY] = "GetAttributes"
        start_response("200 OK", [("Content-Type", "text/xml")])
        return [b"<soap/>"]


def answer(app: Any, environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    started: list[Any] = []
    body = b"".join(app(environ, lambda status, headers: started.append((status, headers))))
    status, headers = started[0]
    return int(status.split()[0]), dict(headers), body


def environ_of(path: str = "/metrics", method: str = "GET", principal: Principal | None = None,
               metrics: ServerMetrics | None = None, **extra: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method,
                               "QUERY_STRING": "", **extra}
    if principal is not None:
        environ[PRINCIPAL_ENVIRON_KEY] = principal
    if metrics is not None:
        environ[METRICS_ENVIRON_KEY] = metrics
    return environ


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def route(store: MemoryStore) -> MetricsRoute:
    return MetricsRoute(Soap(), StoreGauges(store.unit_of_work))


@pytest.fixture
def metrics() -> ServerMetrics:
    return ServerMetrics()


@pytest.mark.parametrize("who", [
    {"principal": GUEST},
    {"principal": PLATFORM},
    {},  # no certificate
    {REFUSAL_ENVIRON_KEY: "the client certificate is revoked"},
    {SOCKET_ENVIRON_KEY: PeerCertificate(b"0\x03")},  # a certificate that names nobody
])
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE"])
def test_anyone_but_the_admin_gets_403_and_nothing_else(
    route: MetricsRoute, metrics: ServerMetrics, who: dict[str, Any], method: str,
) -> None:
    metrics.observe_call("GetAttributes", "ok", 0.001)
    environ = environ_of(method=method, metrics=metrics, **who)
    status, headers, body = answer(route, environ)
    assert (status, body) == (403, b"forbidden\n")
    assert headers["Content-Type"].startswith("text/plain")
    assert route.app.calls == 0  # type: ignore[attr-defined]
    assert environ[FAULT_ENVIRON_KEY] == "AccessDenied"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_an_admin_request_other_than_get_is_405(route: MetricsRoute, metrics: ServerMetrics,
                                                method: str) -> None:
    status, headers, body = answer(route, environ_of(method=method, principal=ADMIN,
                                                     metrics=metrics))
    assert (status, headers["Allow"]) == (405, "GET, HEAD")
    assert b"vbios" not in body


def test_an_application_not_behind_a_worker_has_no_metrics(route: MetricsRoute) -> None:
    assert answer(route, environ_of(principal=ADMIN))[0] == 404


def test_the_admin_gets_the_counts_and_the_store_gauges(
    route: MetricsRoute, metrics: ServerMetrics, store: MemoryStore,
) -> None:
    with store.unit_of_work() as uow:
        uow.machines.add(MachineRecord("vm1", MachineKind.SIMULATED, PowerState.ON))
        uow.machines.add(MachineRecord("vm2", MachineKind.SIMULATED, PowerState.ON))
        uow.machines.add(MachineRecord("vm3", MachineKind.SIMULATED))
        uow.firmware.add_job(FirmwareJob("j1", "vm1", None, None, None, ApplyTime.ON_RESET,
                                         NOW, NOW, JobState.STAGED))
        uow.records.put(INTEGRITY_KEY, json.dumps({"trusted": False}), NOW)
        uow.commit()
    metrics.observe_call("GetAttributes", "ok", 0.002)
    metrics.observe_call("SetAttributes", "PasswordRequired", 0.004)
    metrics.handshake_failed("certificate verify failed")
    status, headers, body = answer(route, environ_of(principal=ADMIN, metrics=metrics))
    assert (status, headers["Content-Type"]) == (200, EXPOSITION_CONTENT_TYPE)
    text = body.decode()
    for sample in ('vbios_calls_total{operation="GetAttributes",outcome="ok"} 1.0',
                   'vbios_calls_total{operation="SetAttributes",outcome="PasswordRequired"} 1.0',
                   'vbios_call_duration_seconds_bucket{le="0.005",operation="SetAttributes"}'
                   ' 1.0',
                   'vbios_tls_handshake_failures_total{reason="certificate verify failed"} 1.0',
                   'vbios_domains{power_state="On"} 2.0', 'vbios_domains{power_state="Off"} 1.0',
                   'vbios_domains{power_state="Paused"} 0.0',
                   'vbios_firmware_jobs{state="Staged"} 1.0',
                   'vbios_firmware_jobs{state="Running"} 0.0',
                   'vbios_integrity_state{state="Untrusted"} 1.0',
                   'vbios_integrity_state{state="Trusted"} 0.0', "vbios_restricted_mode 1.0"):
        assert sample in text.splitlines() or sample in text, sample
    assert 'state="Completed"' not in text  # finished jobs are history, not a gauge


def test_a_home_never_measured_is_neither_trusted_nor_restricted(
    route: MetricsRoute, metrics: ServerMetrics,
) -> None:
    text = answer(route, environ_of(principal=ADMIN, metrics=metrics))[2].decode()
    assert 'vbios_integrity_state{state="Unmeasured"} 1.0' in text
    assert "vbios_restricted_mode 0.0" in text


def test_a_scrape_on_the_event_loop_asks_for_a_pool_thread(route: MetricsRoute,
                                                           metrics: ServerMetrics) -> None:
    with on_event_loop(), pytest.raises(WouldBlock):
        answer(route, environ_of(principal=ADMIN, metrics=metrics))


def test_other_paths_go_to_the_soap_endpoint(route: MetricsRoute) -> None:
    assert answer(route, environ_of(path="/", method="POST", principal=GUEST))[0] == 200
    assert answer(route, environ_of(path="/metrics/", principal=GUEST))[0] == 200


def test_the_front_reads_back_the_note_of_the_call(store: MemoryStore) -> None:
    note = CallNote()
    app = NotingApp(MetricsRoute(Soap(), StoreGauges(store.unit_of_work)))
    answer(app, environ_of(path="/", method="POST", principal=GUEST, **{CALL_NOTE_KEY: note}))
    assert (note.principal, note.operation, note.fault) == ("guest:vm1", "GetAttributes", None)
    answer(app, environ_of(principal=GUEST, **{CALL_NOTE_KEY: note}))
    assert (note.principal, note.operation, note.fault) == ("guest:vm1", "metrics",
                                                            "AccessDenied")


@pytest.mark.parametrize(("environ", "label"), [
    ({PRINCIPAL_ENVIRON_KEY: GUEST}, "guest:vm1"),
    ({PRINCIPAL_ENVIRON_KEY: Principal.admin("a" * 100)}, "admin:" + "a" * 64),
    ({}, "anonymous"),
    ({SOCKET_ENVIRON_KEY: PeerCertificate(None)}, "anonymous"),
    ({REFUSAL_ENVIRON_KEY: "no single identity"}, "refused"),
    ({SOCKET_ENVIRON_KEY: PeerCertificate(b"0\x03")}, "refused"),  # e.g. revoked since
])
def test_the_principal_of_a_call(environ: dict[str, Any], label: str) -> None:
    assert principal_label(environ) == label


@pytest.mark.parametrize(("query", "path", "operation"), [
    ("wsdl", "/", "wsdl"), ("WSDL", "/", "wsdl"), ("", "/ca.pem", "ca.pem"),
    ("", "/anything/else", "-"), ("x=1", "/", "-"),
])
def test_a_request_that_names_no_operation_gets_a_fixed_name(query: str, path: str,
                                                             operation: str) -> None:
    note = CallNote()
    note.read({"QUERY_STRING": query, "PATH_INFO": path})
    assert note.operation == operation


@pytest.mark.parametrize(("status", "fault", "outcome"), [
    (200, None, "ok"), (500, "InvalidPassword", "InvalidPassword"),
    (413, None, "http_413"), (403, None, "http_403"), (415, "InvalidRequest", "InvalidRequest"),
])
def test_the_outcome_of_a_call(status: int, fault: str | None, outcome: str) -> None:
    assert outcome_of(status, fault) == outcome


@pytest.mark.parametrize(("statement", "kind"), [
    ("SELECT x FROM t", "select"), ("\n  insert into t", "insert"), ("UPDATE t", "update"),
    ("DELETE FROM t", "delete"), ("BEGIN IMMEDIATE", "other"), ("PRAGMA x", "other"),
    ("", "other"),
])
def test_a_statement_is_labelled_by_its_kind_only(statement: str, kind: str) -> None:
    assert statement_kind(statement) == kind
