"""The PostgreSQL connection pool follows the threads that use the store
(``store.engine.build_engine``): every thread holding its connections at once gets them
without waiting for a free one, and the pool stays bounded (``max_connections``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from bios_ws.server.options import ServerOptions
from bios_ws.store.engine import (
    BACKGROUND_LOOPS,
    CONNECTIONS_PER_THREAD,
    DEFAULT_STORE_THREADS,
    build_engine,
    parse_url,
    pool_limits,
)

#: Seconds every thread gets to hold its connections: far below the pool's timeout (30 s),
#: far above what opening a few connections on the unix socket takes.
ALL_AT_ONCE = 10.0


@pytest.fixture
def engines(postgres_url: str) -> Iterator[list[Engine]]:
    """The engines a test builds (its ``append``), disposed of at its end."""
    built: list[Engine] = []
    yield built
    for engine in built:
        engine.dispose()


def hold_all_at_once(engine: Engine, threads: int, each: int) -> None:
    """``threads`` threads each open ``each`` connections and hold them until every thread
    holds its own; fails when one waits for the pool (the barrier breaks)."""
    everyone = threading.Barrier(threads, timeout=ALL_AT_ONCE)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            with ExitStack() as held:
                conns: list[Connection] = [held.enter_context(engine.connect())
                                           for _ in range(each)]
                for conn in conns:
                    conn.execute(text("SELECT 1"))
                everyone.wait()
        except BaseException as exc:  # reported by the test's thread
            failures.append(exc)
            everyone.abort()

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=ALL_AT_ONCE * 3)
    assert not any(worker.is_alive() for worker in workers), "a thread still waits"
    assert not failures, f"{threads} threads did not hold {each} connections each: " \
                         f"{failures[0]!r}"


def test_the_default_fits_a_server_worker() -> None:
    assert ServerOptions().threads + BACKGROUND_LOOPS == DEFAULT_STORE_THREADS


def test_the_pool_keeps_a_connection_per_thread_and_opens_one_more_each() -> None:
    assert pool_limits(13) == (13, 13)
    assert pool_limits(1) == (1, 1)
    with pytest.raises(ValueError):
        pool_limits(0)


def test_every_default_thread_holds_its_connections_at_once(
        postgres_url: str, engines: list[Engine]) -> None:
    """A server worker's threads each with a unit of work and a domain's turn (26 with the
    defaults; SQLAlchemy's own pool, 5 + 10, would keep the last ones waiting 30 s)."""
    engines.append(engine := build_engine(parse_url(postgres_url)))
    hold_all_at_once(engine, DEFAULT_STORE_THREADS, CONNECTIONS_PER_THREAD)


def test_the_pool_follows_the_threads_it_is_given(
        postgres_url: str, engines: list[Engine]) -> None:
    engines.append(engine := build_engine(parse_url(postgres_url), threads=20))
    hold_all_at_once(engine, 20, CONNECTIONS_PER_THREAD)


def test_the_pool_is_bounded(postgres_url: str, engines: list[Engine]) -> None:
    """One connection beyond the limit waits until another is returned."""
    engines.append(engine := build_engine(parse_url(postgres_url), threads=2))
    limit = 2 * CONNECTIONS_PER_THREAD
    got = threading.Event()

    def one_more() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            got.set()

    with ExitStack() as held:
        first = held.enter_context(engine.connect())
        for _ in range(limit - 1):
            held.enter_context(engine.connect())
        waiter = threading.Thread(target=one_more, daemon=True)
        waiter.start()
        assert not got.wait(1.0), "a connection beyond the pool's limit was opened"
        first.close()
        assert got.wait(ALL_AT_ONCE), "the returned connection did not reach the waiter"
    waiter.join(timeout=ALL_AT_ONCE)


def test_a_serving_process_sizes_its_pool_to_its_threads(tmp_path: Path,
                                                          postgres_url: str) -> None:
    """`vbios serve --threads N`: the worker's object graph opens its store for N request
    threads and the background loops."""
    import dataclasses

    from bios_ws.bootstrap import bootstrap, initialize_home
    from bios_ws.config import Config

    home = initialize_home(tmp_path / "home")
    config = dataclasses.replace(Config.of(home, store_url=postgres_url),
                                 server=ServerOptions(threads=3))
    with bootstrap(config) as app:
        pool = app.store.engine.pool
        assert pool.size() == 3 + BACKGROUND_LOOPS  # type: ignore[attr-defined]
