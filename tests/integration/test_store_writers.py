"""SQLite writers: their turns (``store.writers``) and the durability of what they commit."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.domain.audit import verify_chain
from bios_ws.domain.principal import Principal
from bios_ws.domain.state import ApplyTime
from bios_ws.errors import StoreUnavailable
from bios_ws.store import SqlStore, open_store
from tests.integration.test_store_concurrency import DOMAIN, GUEST, services

#: Writes SetAttributes in a loop, printing each version once its commit returned.
_WRITER = """
import sys
from bios_ws.domain.state import ApplyTime
from bios_ws.store import open_store
from tests.integration.test_store_concurrency import GUEST, services

bios, _ = services(open_store(sys.argv[1]))
n = 0
while True:
    n += 1
    version = bios.set_attributes(GUEST, {"Counter": n % 1000}, ApplyTime.ON_RESET)
    print(version, flush=True)
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "vbios.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{db}", busy_timeout_ms=300)
    services(s)[1].create(Principal.admin(), DOMAIN)
    yield s
    s.dispose()


def test_the_writers_lock_file_is_private_and_hidden(store: SqlStore, db: Path) -> None:
    services(store)[0].set_attributes(GUEST, {"Counter": 1}, ApplyTime.ON_RESET)
    lock = db.with_name(f".{db.name}.lock")
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_a_writing_unit_inside_another_does_not_wait_for_its_own_turn(store: SqlStore) -> None:
    with store.unit_of_work() as outer:
        outer.domains.get(DOMAIN, for_update=True)
        with pytest.raises(StoreUnavailable), store.unit_of_work() as inner:
            inner.domains.get(DOMAIN, for_update=True)  # SQLite's busy timeout decides
    with store.unit_of_work() as after:  # both turns were given back
        after.domains.get(DOMAIN, for_update=True)


def test_writers_of_two_stores_and_many_threads_all_get_their_turn(
    store: SqlStore, db: Path,
) -> None:
    other = open_store(f"sqlite:///{db}")  # its own lock file descriptor: another "process"
    failures: list[BaseException] = []

    def write(s: SqlStore, first: int) -> None:
        bios = services(s)[0]
        try:  # every write a value no other write uses: none of them is a no-op
            for n in range(first, first + 15):
                bios.set_attributes(GUEST, {"Counter": n}, ApplyTime.ON_RESET)
        except BaseException as exc:  # reported below
            failures.append(exc)

    try:
        threads = [threading.Thread(target=write, args=(s, 1 + 15 * k))
                   for k, s in enumerate([store, other] * 4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.dispose()
    assert failures == []
    with store.unit_of_work() as uow:
        assert uow.domains.get(DOMAIN).version == 1 + 8 * 15
        assert verify_chain(uow.audit.entries()) is None


def test_every_acknowledged_write_survives_a_sigkill(store: SqlStore, db: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, f"sqlite:///{db}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=root)
    assert writer.stdout is not None
    acknowledged = 0
    try:
        while acknowledged < 300:
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else "the writer ended"
            acknowledged = int(line)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        rest, _ = writer.communicate(timeout=30)
    acknowledged = max([acknowledged, *map(int, rest.split())])
    again = open_store(f"sqlite:///{db}")
    try:
        with again.unit_of_work() as uow:
            version = uow.domains.get(DOMAIN).version
            entries = list(uow.audit.entries())
    finally:
        again.dispose()
    assert version >= acknowledged
    assert verify_chain(entries) is None
    assert sum(e.operation == "SetAttributes" for e in entries) == version - 1
