"""``GET /metrics``: the Prometheus text exposition, for the admin's certificate only.

The route sits behind ``PeerIdentity`` (so the caller is authenticated as for any
call: CRL, credential registry) and before the SOAP endpoint. Only an admin
principal gets the metrics; anyone else (a guest, a certificate that names no
identity that counts, a caller without certificate) gets ``403`` and a fixed line,
whatever the method; an admin's request other than GET or HEAD gets ``405``. Every
worker answers it with every worker's counts (``ServerMetrics.exposition``) and the
gauges read from the store at that moment (``StoreGauges``): domains per power state,
unfinished firmware jobs per state, and the host's integrity (restricted mode).

A scraper is given an admin certificate (`vbios` issues them): mutual TLS is how every
client reaches the service, and Prometheus scrapes with a client certificate
(``tls_config``); a second, plain port would be a second way in to guard.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from bios_ws.blocking import may_block
from bios_ws.domain.firmware_job import TERMINAL_STATES, JobState
from bios_ws.domain.hosts import host_key, only_here
from bios_ws.domain.ports import UnitOfWorkFactory
from bios_ws.domain.power import PowerState
from bios_ws.domain.principal import Principal, Role
from bios_ws.server.calls import METRICS_ENVIRON_KEY
from bios_ws.server.identity import StartResponse, WSGIApp
from bios_ws.server.metrics import ServerMetrics
from bios_ws.service.integrity import INTEGRITY_KEY
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY
from bios_ws.soap.guard import FAULT_ENVIRON_KEY, OPERATION_ENVIRON_KEY

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

METRICS_PATH = "/metrics"
#: The operation name of a scrape in the access log and in ``vbios_calls_total``.
METRICS_OPERATION = "metrics"
#: The Prometheus text format, version 0.0.4 (what every Prometheus scrapes).
EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The integrity states ``vbios_integrity_state`` reports: ``Unmeasured`` before the
#: first check of a home with a TPM, and for a home without one.
INTEGRITY_STATES = ("Trusted", "Untrusted", "Unmeasured")
_FORBIDDEN = b"forbidden\n"
_NOT_ALLOWED = b"GET only\n"
_NOT_SERVED = b"no metrics in this process\n"


class MetricsRoute:
    """WSGI middleware: answers ``/metrics`` (see the module docstring), passes the rest
    on to ``app``."""

    def __init__(self, app: WSGIApp, gauges: StoreGauges) -> None:
        self.app = app
        self.gauges = gauges

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            return self.app(environ, start_response)
        environ[OPERATION_ENVIRON_KEY] = METRICS_OPERATION
        principal = environ.get(PRINCIPAL_ENVIRON_KEY)
        if not isinstance(principal, Principal) or principal.role is not Role.ADMIN:
            environ[FAULT_ENVIRON_KEY] = "AccessDenied"
            return _plain(start_response, HTTPStatus.FORBIDDEN, _FORBIDDEN)
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            return _plain(start_response, HTTPStatus.METHOD_NOT_ALLOWED, _NOT_ALLOWED,
                          ("Allow", "GET, HEAD"))
        metrics = environ.get(METRICS_ENVIRON_KEY)
        if not isinstance(metrics, ServerMetrics):  # an application not behind our front
            return _plain(start_response, HTTPStatus.NOT_FOUND, _NOT_SERVED)
        may_block("a metrics scrape")  # it reads files and the store: on a pool thread
        body = metrics.exposition(self.gauges)
        start_response("200 OK", [("Content-Type", EXPOSITION_CONTENT_TYPE),
                                  ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-store")])
        return [body]


def _plain(start_response: StartResponse, status: HTTPStatus, body: bytes,
           *extra: tuple[str, str]) -> list[bytes]:
    start_response(f"{status.value} {status.phrase}",
                   [("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))), ("Cache-Control", "no-store"),
                    *extra])
    return [body]


class StoreGauges:
    """A Prometheus collector of what the store says now, read in one unit of work."""

    def __init__(self, unit_of_work: UnitOfWorkFactory, host: str | None = None) -> None:
        self._unit_of_work = unit_of_work
        self._host = host  # the fleet host whose machines and integrity these are

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        with self._unit_of_work() as uow:
            machines = only_here(uow.machines.list(), self._host)
            powers = Counter(record.state for record in machines)
            here = {record.domain_id for record in machines}
            jobs = Counter(job.state for job in uow.firmware.unfinished_jobs()
                           if job.domain_id in here)
            integrity = uow.records.get(host_key(INTEGRITY_KEY, self._host))
        trusted = None if integrity is None else _trusted(integrity.value)
        state = "Unmeasured" if trusted is None else "Trusted" if trusted else "Untrusted"
        domains = GaugeMetricFamily("vbios_domains", "Domains, by the power state of their"
                                    " machine.", labels=["power_state"])
        for power in PowerState:
            domains.add_metric([power.value], powers[power])
        yield domains
        unfinished = GaugeMetricFamily("vbios_firmware_jobs", "Firmware update jobs not"
                                       " ended yet, by state.", labels=["state"])
        for job_state in JobState:
            if job_state not in TERMINAL_STATES:
                unfinished.add_metric([job_state.value], jobs[job_state])
        yield unfinished
        host = GaugeMetricFamily("vbios_integrity_state", "1 for the host's integrity"
                                 " state (Untrusted: restricted mode, writes refused).",
                                 labels=["state"])
        for name in INTEGRITY_STATES:
            host.add_metric([name], 1.0 if name == state else 0.0)
        yield host
        yield GaugeMetricFamily("vbios_restricted_mode", "1 while the host is in restricted"
                                " mode (its measurements do not match the reference).",
                                value=1.0 if trusted is False else 0.0)


def _trusted(stored: str) -> bool | None:
    """The ``trusted`` flag of the stored integrity record (``IntegrityMonitor``)."""
    try:
        trusted = json.loads(stored).get("trusted")
    except (ValueError, AttributeError):
        return None
    return trusted if isinstance(trusted, bool) else None
