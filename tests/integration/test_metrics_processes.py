"""Metrics across worker processes (prometheus_client's multiprocess mode, real files):
whichever process scrapes sees the sum of every worker's counts, those of workers that
exited included; the serving process makes its directory fresh at start and refuses to
start when it cannot write its access log or its metrics."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import values

from bios_ws.errors import AdminError
from bios_ws.server.metrics import MULTIPROC_ENV, ServerMetrics
from bios_ws.server.options import ServerOptions
from bios_ws.server.telemetry import ServingTelemetry, fresh_metrics_dir


@pytest.fixture(autouse=True)
def process_metrics_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """ServerMetrics chooses the value class of the whole process: put it back after."""
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    yield


def in_worker(directory: Path, calls: list[tuple[str, str]], handshakes: int = 0) -> int:
    """A forked process that counts ``calls`` into ``directory`` and exits; its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            metrics = ServerMetrics(directory)
            for operation, outcome in calls:
                metrics.observe_call(operation, outcome, 0.003)
            for _ in range(handshakes):
                metrics.handshake_failed("certificate verify failed")
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    return pid


def test_a_scrape_sums_every_worker_those_that_exited_included(tmp_path: Path) -> None:
    telemetry = ServingTelemetry(ServerOptions(metrics_dir=tmp_path / "run" / "metrics"))
    telemetry.start()
    directory = telemetry.metrics_dir
    assert directory is not None and directory.parent == tmp_path / "run" / "metrics"
    first = in_worker(directory, [("GetAttributes", "ok")] * 3, handshakes=1)
    second = in_worker(directory, [("GetAttributes", "ok"), ("SetAttributes", "AccessDenied")],
                       handshakes=2)
    telemetry.worker_exited(first)
    telemetry.worker_exited(second)
    text = ServerMetrics(directory).exposition().decode()
    assert 'vbios_calls_total{operation="GetAttributes",outcome="ok"} 4.0' in text
    assert 'vbios_calls_total{operation="SetAttributes",outcome="AccessDenied"} 1.0' in text
    assert 'vbios_call_duration_seconds_count{operation="GetAttributes"} 4.0' in text
    assert 'vbios_tls_handshake_failures_total{reason="certificate verify failed"} 3.0' in text


def test_the_directory_is_fresh_at_start_and_a_running_server_keeps_its_own(
    tmp_path: Path,
) -> None:
    base = tmp_path / "metrics"
    gone, running = base / "999999999", base / str(os.getppid())
    for directory in (gone, running, base / str(os.getpid())):
        directory.mkdir(parents=True)
        (directory / "counter_1.db").write_bytes(b"old")
    (base / "stray.db").write_bytes(b"")
    mine = fresh_metrics_dir(base, os.getpid())
    assert list(mine.iterdir()) == []
    assert sorted(p.name for p in base.iterdir()) == sorted([running.name, mine.name])
    assert (running / "counter_1.db").exists()  # another serving process still runs
    assert mine.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("option", ["access_log", "metrics_dir"])
def test_a_service_that_cannot_write_its_telemetry_does_not_start(tmp_path: Path,
                                                                  option: str) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    options = ServerOptions(**{option: not_a_directory / "below"})  # type: ignore[arg-type]
    with pytest.raises(AdminError, match="cannot"):
        ServingTelemetry(options).start()
