"""``ServeLock``: one process serves a home; a second is refused naming the holder's pid,
and a file left by a dead process blocks nothing. The holder is a real other process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.errors import AdminError
from bios_ws.server.serve_lock import ServeLock

TIMEOUT = 30.0
HOLDER = """
import sys
from pathlib import Path
from bios_ws.server.serve_lock import ServeLock
lock = ServeLock.acquire(Path(sys.argv[1]), Path(sys.argv[2]))
print("held", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``tmp_path/serve.lock`` until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "serve.lock"),
                             str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "held\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)


def test_a_second_server_is_refused_naming_the_pid(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = tmp_path / "serve.lock"
    assert lock.read_text() == f"{holder.pid}\n"
    with pytest.raises(AdminError) as refused:
        ServeLock.acquire(lock, tmp_path)
    assert refused.value.message == (
        f"{tmp_path} is already served by pid {holder.pid} (lock {lock});"
        " stop that server first, one server per home")
    assert lock.read_text() == f"{holder.pid}\n"  # the refused one wrote nothing


def test_the_lock_of_a_killed_server_blocks_nothing(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = tmp_path / "serve.lock"
    holder.kill()
    holder.wait(timeout=TIMEOUT)
    assert lock.read_text() == f"{holder.pid}\n"  # the stale file stays
    with ServeLock.acquire(lock, tmp_path) as mine:
        assert mine.held
        assert lock.read_text() == f"{os.getpid()}\n"
    assert not mine.held


def test_a_released_lock_is_taken_again_and_a_stale_longer_pid_is_replaced(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "serve.lock"
    lock.write_text("123456789012\n")  # no process holds it
    first = ServeLock.acquire(lock, tmp_path)
    assert lock.read_text() == f"{os.getpid()}\n"
    with pytest.raises(AdminError, match=f"already served by pid {os.getpid()}"):
        ServeLock.acquire(lock, tmp_path)  # a second descriptor: refused even in-process
    first.release()
    ServeLock.acquire(lock, tmp_path).release()


def test_a_lock_path_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    (tmp_path / "serve.lock").symlink_to(target)
    with pytest.raises(AdminError, match="cannot open the serve lock"):
        ServeLock.acquire(tmp_path / "serve.lock", tmp_path)
    assert target.read_text() == "keep\n"
