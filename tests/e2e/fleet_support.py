"""Several homes on one state store: make a home, start its server, run a guest's loop.

A home is one installation (its own development TPM, CA and keys) and runs one
server at a time; a fleet is several homes whose state store is the same
(``vbios init --store URL``). ``Fleet`` makes the homes and starts their servers,
and stops every server and every development TPM it started, by pid.
``GuestLoop`` is one guest calling its server in a loop through ``vbios_client``
and checking, call by call, that the domain's version moves as its own writes say.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import vbios_client as vc

from tests.e2e.conftest import ServerProcess, init_home, run_vbios, stop_dev_tpm

CALL_TIMEOUT = 30.0
#: What ``race`` saw: the version both writers held, and what each got back.
Race = tuple[int, list[int | vc.VbiosClientError]]


@dataclass
class Fleet:
    """Homes sharing the store ``store_url``, made in ``work``; ``close`` stops them all."""

    work: Path
    store_url: str
    homes: dict[str, Path] = field(default_factory=dict)
    servers: dict[str, ServerProcess] = field(default_factory=dict)

    def make_home(self, name: str) -> Path:
        """`vbios init --home WORK/NAME --store URL --host-name name` (the development
        TPM): home ``name`` is host ``name.lower()`` of the store."""
        home = self.work / name
        self.homes[name] = home  # recorded first: a half-made home's TPM is stopped too
        init_home(home, "--store", self.store_url, "--host-name", name.lower())
        return home

    def start_server(self, name: str) -> ServerProcess:
        """`vbios serve` for home ``name``, once it completes a mutual TLS handshake."""
        server = ServerProcess(home=self.homes[name], work=self.work)
        self.servers[name] = server
        server.start()
        return server

    def create_domain(self, name: str, domain: str) -> Path:
        """`vbios domain create DOMAIN` by home ``name``'s admin; the guest's bundle."""
        return self.servers[name].create_domain(domain)

    def issue_bundle(self, name: str, domain: str) -> Path:
        """`vbios cert issue --domain DOMAIN` by home ``name``'s admin (its CA), for a
        domain another home may have created; the new bundle."""
        out = self.work / "bundles" / f"{domain}-from-{name}"
        self.admin(name, "cert", "issue", "--domain", domain, "--out", str(out))
        return out

    def admin(self, name: str, *args: str) -> str:
        """A `vbios` admin command on home ``name``; its stdout (it must succeed)."""
        done = run_vbios(*args, "--home", str(self.homes[name]))
        assert done.returncode == 0, f"vbios {' '.join(args)} on {name}:\n{done.stderr}"
        return done.stdout

    def refused(self, name: str, *args: str) -> str:
        """A `vbios` admin command on home ``name`` that must be refused; its stderr."""
        done = run_vbios(*args, "--home", str(self.homes[name]))
        assert done.returncode == 1, f"vbios {' '.join(args)} on {name}:\n{done.stdout}"
        return done.stderr

    def domains(self, name: str) -> dict[str, int]:
        """Domain -> version, as home ``name``'s admin lists them."""
        rows = json.loads(self.admin(name, "domain", "list", "--json"))
        return {row["domain"]: row["version"] for row in rows}

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        for home in self.homes.values():
            stop_dev_tpm(home)


@dataclass
class GuestLoop:
    """One guest calling ``url`` in a loop, in a thread, until ``stop``.

    Each round: GetAttributes (its version is the last one this guest's writes
    returned: no one else writes the domain), SetAttributes Immediate, SetAttributes
    OnReset (then the change is pending), GetBootOrder, SetBootOrder; every write
    passes ExpectedVersion and must return it plus one. Any fault, transport error or
    unexpected answer is a failure, kept with the round it happened in.
    """

    url: str
    bundle: Path
    rounds: int = 0
    version: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CALL_TIMEOUT * 5)
            assert not self._thread.is_alive(), f"the guest of {self.bundle} is stuck"

    def run_for(self, seconds: float) -> None:
        self.start()
        time.sleep(seconds)
        self.stop()

    def _run(self) -> None:
        with vc.BiosClient.from_bundle(self.url, self.bundle, timeout=CALL_TIMEOUT) as bios:
            self.version = bios.get_attributes().version
            while not self._stop.is_set() and len(self.failures) < 5:
                try:
                    self._round(bios, self.rounds)
                    self.rounds += 1
                except (vc.VbiosClientError, AssertionError) as exc:
                    self.failures.append(f"round {self.rounds}: {type(exc).__name__}: {exc}")
                    self.version = bios.get_attributes().version

    def _round(self, bios: vc.BiosClient, n: int) -> None:
        got = bios.get_attributes()
        assert got.version == self.version, f"version {got.version}, expected {self.version}"
        timeout = 5 * (n % 2 + 2)  # 10, 15, 10, ...: never the current value
        self._wrote(bios.set_attributes({"BootTimeout": timeout},
                                        expected_version=self.version))
        assert bios.get_attributes(["BootTimeout"]).values == {"BootTimeout": timeout}
        tag = f"{self.bundle.name}-{n}"  # never the current value: a write that changes
        self._wrote(bios.set_attributes({"AssetTag": tag}, apply_time="OnReset",
                                        expected_version=self.version))
        assert bios.get_pending_attributes().values == {"AssetTag": tag}
        boot = bios.get_boot_order()
        assert boot.version == self.version
        order = list(reversed(boot.order))
        self._wrote(bios.set_boot_order(order, expected_version=self.version))
        assert list(bios.get_boot_order().order) == order

    def _wrote(self, version: int) -> None:
        assert version == self.version + 1, f"a write returned {version} after {self.version}"
        self.version = version

    def report(self) -> str:
        return (f"{self.bundle.name}: {self.rounds} rounds, version {self.version},"
                f" {len(self.failures)} failed {self.failures[:3]}")


def race(url: str, bundle: Path, writers: int = 2) -> Race:
    """``writers`` guests of one domain write with the same ExpectedVersion at once: that
    version, and what each got (the new version or the fault)."""
    clients = [vc.BiosClient.from_bundle(url, bundle, timeout=CALL_TIMEOUT)
               for _ in range(writers)]
    try:
        version = clients[0].get_attributes().version
        for client in clients:  # each has its connection open: the writes start together
            assert client.get_attributes().version == version
        barrier = threading.Barrier(writers, timeout=CALL_TIMEOUT)
        outcomes: list[int | vc.VbiosClientError] = []

        def write(client: vc.BiosClient, value: str) -> None:
            barrier.wait()
            try:
                outcomes.append(client.set_attributes({"AssetTag": value},
                                                      expected_version=version))
            except vc.VbiosClientError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=write, args=(client, f"race-{version}-{n}"))
                   for n, client in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=CALL_TIMEOUT * 2)
        return version, outcomes
    finally:
        for client in clients:
            client.close()
