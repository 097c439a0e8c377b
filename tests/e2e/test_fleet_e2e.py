"""Several servers on one state store (issue 16): two homes A and B, each with its own
development TPM, CA and keys, whose store is the same (one SQLite file outside both
homes, or one PostgreSQL database), served by two `vbios serve` processes at once.

B joins while A serves and A's guest writes, so B's `vbios init` finds the store holding
A's schema, registry in force, audit chain, admin certificate and domain. A creates a1
and issues its guest's bundle, B creates b1 and issues its; the guest of a1 (through A)
and the guest of b1 (through B) call in loops at the same time and every call succeeds;
each admin then sees both domains at the versions their guests' writes returned, and
the one audit chain, written by both servers, verifies. Then, on both servers at once,
two writers holding one ExpectedVersion: exactly one wins, the other gets VersionConflict.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import vbios_client as vc

from tests.e2e.fleet_support import Fleet, GuestLoop, Race, race
from tests.postgres_support import (  # noqa: F401 (fixtures: the session's PostgreSQL)
    empty_postgres_url,
    postgres_server,
)

#: How long both guests call in their loops at once.
GUEST_SECONDS = 4.0
#: Races of two writers per domain.
RACES = 5


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One store for the whole fleet: a SQLite file outside every home, or an empty
    PostgreSQL database (the first `vbios init` makes the schema)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("empty_postgres_url"))
    shared = tmp_path / "shared"
    shared.mkdir()
    return f"sqlite:///{shared / 'vbios.db'}"


def test_two_servers_on_one_store_serve_their_guests_at_once(
    tmp_path: Path, store_url: str
) -> None:
    began = time.monotonic()
    with Fleet(tmp_path, store_url) as fleet:
        guests = join_while_serving(fleet)
        joined = time.monotonic()
        try:
            time.sleep(GUEST_SECONDS)  # both guests call, each through its own server
        finally:
            for guest in guests.values():
                guest.stop()
        check_guests(fleet, guests)
        checked = time.monotonic()
        check_one_store(fleet, guests)
        check_one_writer_wins(fleet, guests)
    print(f"fleet up {joined - began:.1f} s, guests {checked - joined:.1f} s,"
          f" checks and races {time.monotonic() - checked:.1f} s")


def join_while_serving(fleet: Fleet) -> dict[str, GuestLoop]:
    """A serves and a1's guest calls; meanwhile B is made on the same store and serves,
    and b1's guest calls too. The guests, both calling."""
    fleet.make_home("A")
    a = fleet.start_server("A")
    guests = {"a1": GuestLoop(a.url, fleet.create_domain("A", "a1"))}
    guests["a1"].start()
    try:
        fleet.make_home("B")
        b = fleet.start_server("B")
        guests["b1"] = GuestLoop(b.url, fleet.create_domain("B", "b1"))
        guests["b1"].start()
    except BaseException:
        guests["a1"].stop()
        raise
    return guests


def check_guests(fleet: Fleet, guests: dict[str, GuestLoop]) -> None:
    """Every call succeeded, every write returned the version it expected plus one."""
    for guest in guests.values():
        print(guest.report())
        assert guest.failures == [], guest.report()
        assert guest.rounds >= 3, guest.report()
        assert guest.version == 1 + 3 * guest.rounds  # three writes a round, from 1
    for name, server in fleet.servers.items():
        assert server.alive(), f"the server of {name} died:\n{server.stderr()[-3000:]}"


def check_one_store(fleet: Fleet, guests: dict[str, GuestLoop]) -> None:
    """Each admin sees both domains at the versions the guests' writes returned, and the
    one audit chain both servers wrote: it verifies, each admin reads it whole. (Which
    host runs and serves which domain: test_fleet_hosts_e2e.py.)"""
    versions = {name: guest.version for name, guest in guests.items()}
    for name in fleet.homes:
        assert fleet.domains(name) == versions, f"domains as {name}'s admin lists them"
        assert fleet.admin(name, "audit", "verify").startswith("audit log intact:")
    entries = audit(fleet, "A")
    assert audit(fleet, "B")[:len(entries)] == entries  # the servers may have added since
    for domain, guest in guests.items():
        writes = [e for e in entries
                  if e["domain"] == domain and e["operation"] in ("SetAttributes", "SetBootOrder")]
        assert len(writes) == 3 * guest.rounds, domain
        assert all(e["outcome"] == "ok" for e in writes), domain


def check_one_writer_wins(fleet: Fleet, guests: dict[str, GuestLoop]) -> None:
    """On both servers at once, ``RACES`` times: two writers of a1 through A, two of b1
    through B, each pair with the version it read; one of a pair wins, the other gets
    the typed VersionConflict fault."""
    for _ in range(RACES):
        results: dict[str, Race] = {}
        threads = [threading.Thread(target=run_race, args=(guest, results, domain))
                   for domain, guest in guests.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(results) == set(guests), "a race did not finish"
        for domain, (version, outcomes) in results.items():
            wins = [o for o in outcomes if isinstance(o, int)]
            losses = [o for o in outcomes if isinstance(o, vc.VersionConflict)]
            assert len(wins) == 1 and len(losses) == 1, (domain, outcomes)
            assert wins[0] == version + 1, (domain, outcomes)
    after = {domain: guest.version + RACES for domain, guest in guests.items()}
    for name in fleet.homes:
        assert fleet.domains(name) == after
        assert fleet.admin(name, "audit", "verify").startswith("audit log intact:")


def run_race(guest: GuestLoop, results: dict[str, Race], domain: str) -> None:
    results[domain] = race(guest.url, guest.bundle)


def audit(fleet: Fleet, name: str) -> list[dict[str, object]]:
    entries = json.loads(fleet.admin(name, "audit", "show", "--json"))
    assert isinstance(entries, list)
    return entries
