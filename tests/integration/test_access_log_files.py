"""The access log's files: rotation by size with a bounded number of files, a worker
following a file another rotated, several processes writing and rotating one file
without losing or tearing a line, and a write that fails never failing the call."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bios_ws.server.access_log import MAX_LINE_BYTES, AccessLog, Rotation
from tests.unit.test_access_log import a_call


def lines_of(*paths: Path) -> list[dict[str, object]]:
    return [json.loads(line) for path in paths if path.exists()
            for line in path.read_text().splitlines()]


def test_the_file_rotates_past_its_size_and_keeps_its_backups_only(tmp_path: Path) -> None:
    path = tmp_path / "log" / "access.log"
    log = AccessLog.to_file(path, Rotation(max_bytes=MAX_LINE_BYTES, backups=2),
                            check_interval=0.0)
    try:
        for number in range(400):
            log.write(a_call(request_bytes=number))
    finally:
        log.close()
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["access.log", "access.log.1", "access.log.2", "access.log.lock"]
    for kept in (path, Path(f"{path}.1"), Path(f"{path}.2")):
        assert kept.stat().st_size < 2 * MAX_LINE_BYTES
        assert kept.stat().st_mode & 0o777 == 0o600
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    numbers = [line["request_bytes"] for line in lines_of(Path(f"{path}.2"), Path(f"{path}.1"),
                                                          path)]
    assert numbers == list(range(400 - len(numbers), 400))  # the newest, in order


def test_without_backups_a_full_file_is_started_afresh(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog.to_file(path, Rotation(max_bytes=MAX_LINE_BYTES, backups=0),
                            check_interval=0.0)
    for _ in range(100):
        log.write(a_call())
    log.close()
    assert not Path(f"{path}.1").exists()
    assert 0 < path.stat().st_size < 2 * MAX_LINE_BYTES


def test_a_worker_follows_a_file_another_worker_rotated(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    rotation = Rotation(max_bytes=MAX_LINE_BYTES, backups=50)
    first = AccessLog.to_file(path, rotation, check_interval=0.0)
    second = AccessLog.to_file(path, rotation, check_interval=0.0)
    for number in range(300):
        (first if number % 2 else second).write(a_call(request_bytes=number))
    first.close()
    second.close()
    files = [path, *(Path(f"{path}.{n}") for n in range(1, 51))]
    assert Path(f"{path}.1").exists()
    assert sorted(line["request_bytes"] for line in lines_of(*files)) == list(range(300))


def test_worker_processes_writing_and_rotating_one_file_lose_no_line(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    rotation = Rotation(max_bytes=16 * MAX_LINE_BYTES, backups=1000)
    workers, each = 4, 1500
    pids = []
    for worker in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: writes its lines, rotating as it goes
            code = 1
            try:
                log = AccessLog.to_file(path, rotation, check_interval=0.0)
                for number in range(each):
                    log.write(a_call(request_bytes=worker * each + number))
                log.close()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    rotated = sorted(path.parent.glob("access.log.*[0-9]"))
    assert len(rotated) > 5  # they did rotate, many times
    lines = lines_of(path, *rotated)  # every line parses: none torn or interleaved
    assert sorted(line["request_bytes"] for line in lines) == list(range(workers * each))
    assert len({line["worker"] for line in lines}) == workers


def test_a_failing_write_drops_the_line_and_never_fails_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = AccessLog(os.open("/dev/full", os.O_WRONLY), None, None)
    try:
        log.write(a_call())
        log.write(a_call())
    finally:
        log.close()
    assert log.dropped == 2
    assert sum("cannot be written" in r.getMessage() for r in caplog.records) == 1
