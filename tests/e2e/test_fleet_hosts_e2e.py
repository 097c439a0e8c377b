"""Two homes on one store are two hosts of it (issue 16): each domain runs on the host
that created it, which alone serves its guest; a host takes a domain over and serves its
guest from then on, the other refusing it, with the state the guests wrote kept.

Two real servers (mutual TLS, development TPMs), on one SQLite file and on one
PostgreSQL database."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import vbios_client as vc

from tests.e2e.fleet_support import CALL_TIMEOUT, Fleet, GuestLoop
from tests.e2e.test_fleet_e2e import store_url  # noqa: F401 (fixture: the one store)
from tests.postgres_support import (  # noqa: F401 (fixtures: the session's PostgreSQL)
    empty_postgres_url,
    postgres_server,
)

#: How long a server may keep serving a guest whose domain was taken (its cache, 1 s).
TAKE_EFFECT_SECONDS = 5.0


def test_each_host_serves_its_own_domains_and_takes_over_another(
    tmp_path: Path, store_url: str  # noqa: F811 (the fixture imported above)
) -> None:
    with Fleet(tmp_path, store_url) as fleet:
        fleet.make_home("A")
        fleet.make_home("B")
        a, b = fleet.start_server("A"), fleet.start_server("B")
        a1 = fleet.create_domain("A", "a1")
        fleet.create_domain("B", "b1")
        rows = json.loads(fleet.admin("B", "domain", "list", "--json"))
        assert {row["domain"]: row["host"] for row in rows} == {"a1": "a", "b1": "b"}
        hosts = json.loads(fleet.admin("A", "host", "list", "--json"))
        assert [(h["host"], h["this_home"], h["domains"]) for h in hosts] == [
            ("a", True, 1), ("b", False, 1)]
        assert all(h["started_at"] is not None for h in hosts)  # both servers registered
        assert "domain a1 runs on host a" in fleet.refused(
            "B", "cert", "issue", "--domain", "a1", "--out", str(tmp_path / "stray"))
        assert "domain a1 runs on host a" in fleet.refused("B", "domain", "power", "get", "a1")

        writes = GuestLoop(a.url, a1)
        writes.run_for(1.0)  # a1's guest writes its settings through A
        assert writes.failures == [] and writes.rounds >= 1, writes.report()

        said = fleet.admin("B", "domain", "take", "a1")
        assert "a1 now runs on this host (b), no longer on a" in said
        refusal = refused_within(a.url, a1, TAKE_EFFECT_SECONDS)
        assert refusal.code == "AccessDenied"
        assert "domain a1 runs on host b" in refusal.message

        moved = fleet.issue_bundle("B", "a1")  # the guest's credential from its new host
        with vc.BiosClient.from_bundle(b.url, moved, timeout=CALL_TIMEOUT) as bios:
            assert bios.get_attributes().version == writes.version  # its state came along
            assert bios.set_attributes({"AssetTag": "moved"},
                                       expected_version=writes.version) == writes.version + 1
        taken = [e for e in json.loads(fleet.admin("A", "audit", "show", "--json"))
                 if e["operation"] in ("RegisterHost", "TakeDomain")]
        assert [(e["operation"], e["domain"]) for e in taken] == [
            ("RegisterHost", None), ("RegisterHost", None), ("TakeDomain", "a1")]
        assert fleet.admin("A", "audit", "verify").startswith("audit log intact:")
        for server in (a, b):
            assert server.alive(), server.stderr()[-3000:]


def refused_within(url: str, bundle: Path, seconds: float) -> vc.VbiosClientError:
    """The fault a guest gets once its server no longer serves it (within ``seconds``)."""
    deadline = time.monotonic() + seconds
    with vc.BiosClient.from_bundle(url, bundle, timeout=CALL_TIMEOUT) as bios:
        while True:
            try:
                bios.get_attributes()
            except vc.VbiosClientError as exc:
                return exc
            if time.monotonic() > deadline:
                pytest.fail(f"{url} still serves the guest of a taken domain after {seconds} s")
            time.sleep(0.2)
