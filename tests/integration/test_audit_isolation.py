"""A guest's CollectDiagnostics, through the SOAP app, on the in-memory and the SQLite store:
its own and host-wide audit entries only, numbered without the others' gaps, and never
pushed out by another guest's flood of refused calls (which the log counts instead)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bios_ws.capabilities import Wiring, build_use_cases
from bios_ws.domain.audit import AuditEntry, verify_chain
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.firmware import KeyDatabases
from bios_ws.domain.power import MachineKind
from bios_ws.domain.principal import Principal
from bios_ws.pki.issuer import MemoryIssuer
from bios_ws.platform.simulated import SimulatedPlatform, StateShelf
from bios_ws.service.bios import BiosService
from bios_ws.service.boot import MachineObserver
from bios_ws.service.domains import DomainService
from bios_ws.service.use_cases import UseCases
from bios_ws.soap.app import create_wsgi_app
from bios_ws.soap.testing import ManualClock, WsgiResult, call_wsgi, sample_registry, soap_envelope
from bios_ws.soap.types import TNS
from bios_ws.store import open_store

T = f"{{{TNS}}}"
VM1, VM2, ADMIN = Principal.guest("vm1"), Principal.guest("vm2"), Principal.admin("admin")
SET_TAG = ("<tns:Attributes><tns:AttributeValue><tns:Name>AssetTag</tns:Name>"
           "<tns:StringValue>{}</tns:StringValue></tns:AttributeValue></tns:Attributes>"
           "<tns:ApplyTime>Immediate</tns:ApplyTime>")
UNKNOWN = SET_TAG.replace("AssetTag", "NoSuchAttribute")
#: refused calls of vm2: host-wide, about its own domain, about vm1
REFUSED = [("SetReferenceMeasurements", "<tns:Manifest>{}</tns:Manifest>"),
           ("SetAttributes", UNKNOWN.format("x")),
           ("ApplyPendingAttributes", "<tns:Domain>vm1</tns:Domain>")]


@dataclass
class Host:
    app: Any
    store: Any
    clock: ManualClock

    def call(self, principal: Principal, operation: str, inner: str = "") -> WsgiResult:
        return call_wsgi(self.app, soap_envelope(operation, inner), principal=principal)

    def diagnostics(self, principal: Principal) -> list[tuple[int, str, str, str | None, str]]:
        result = self.call(principal, "CollectDiagnostics")
        assert result.status == 200 and result.fault_code() is None, result.body
        return [(int(e.findtext(f"{T}Seq") or "0"), e.findtext(f"{T}Principal") or "",
                 e.findtext(f"{T}Operation") or "", e.findtext(f"{T}Domain"),
                 e.findtext(f"{T}Outcome") or "")
                for e in result.xml().iter(f"{T}AuditEntry")]

    def log(self) -> list[AuditEntry]:
        with self.store.unit_of_work() as uow:
            return list(uow.audit.entries())


@pytest.fixture(params=["memory", "sqlite"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    sql = request.param == "sqlite"
    store: Any = open_store(f"sqlite:///{tmp_path / 'vbios.db'}") if sql else MemoryStore()
    registry = sample_registry()
    clock = ManualClock()
    observer = MachineObserver(store.unit_of_work,
                               BiosService(store.unit_of_work, registry, clock.now),
                               clock.now, KeyDatabases)
    platform = SimulatedPlatform(StateShelf(), observer.hooks(), clock=clock.seconds)
    issuer = MemoryIssuer(clock.now())
    use_cases = build_use_cases(Wiring(store.unit_of_work, registry, clock.now, None,
                                       {MachineKind.SIMULATED: platform}, KeyDatabases,
                                       UseCases(), lambda: issuer))
    for domain_id in ("vm1", "vm2"):
        use_cases.use(DomainService).create(ADMIN, domain_id)
    yield Host(create_wsgi_app(use_cases), store, clock)
    if sql:
        store.dispose()


def refuse(host: Host, times: int) -> None:
    for n in range(times):
        operation, inner = REFUSED[n % len(REFUSED)]
        assert host.call(VM2, operation, inner).fault_code() == "soap11env:Client"


def test_a_guest_sees_neither_another_guests_entries_nor_their_gaps(host: Host) -> None:
    assert host.call(VM1, "SetAttributes", SET_TAG.format("one")).fault_code() is None
    for n in range(5):
        assert host.call(VM2, "SetAttributes", SET_TAG.format(f"t{n}")).fault_code() is None
    refuse(host, 6)
    assert host.call(VM1, "SetAttributes", SET_TAG.format("two")).fault_code() is None
    mine = host.diagnostics(VM1)
    assert [entry[1:] for entry in mine] == [
        ("admin:admin", "CreateDomain", "vm1", "ok"),
        ("guest:vm1", "SetAttributes", "vm1", "ok"),
        ("guest:vm1", "SetAttributes", "vm1", "ok"),
    ]
    assert [seq for seq, *_ in mine] == [1, 2, 3]  # the log's own seqs were 1, 3 and 15
    theirs = host.diagnostics(VM2)
    assert {principal for _, principal, *_ in theirs} == {"admin:admin", "guest:vm2"}
    assert [seq for seq, *_ in theirs] == list(range(1, 13))
    everything = host.diagnostics(ADMIN)
    assert [seq for seq, *_ in everything] == list(range(1, 16))


def test_a_flood_of_refusals_neither_hides_a_guests_entries_nor_floods_the_log(
        host: Host) -> None:
    for n in range(3):
        assert host.call(VM1, "SetAttributes", SET_TAG.format(f"m{n}")).fault_code() is None
    refuse(host, 1000)
    mine = host.diagnostics(VM1)
    assert [entry[1:3] for entry in mine] == [("admin:admin", "CreateDomain")] + [
        ("guest:vm1", "SetAttributes")] * 3
    log = host.log()
    assert len(log) == 2 + 3 + 20  # two domains made, vm1's three writes, 20 refusals
    host.clock.advance(60)
    theirs = host.diagnostics(VM2)
    assert theirs[-1][1:] == ("guest:vm2", "RefusalsSummarized", None, "summarized:980")
    log = host.log()
    assert verify_chain(log) is None
    refused = sum(e.principal == "guest:vm2" and e.outcome.startswith("refused:") for e in log)
    counted = sum(int(e.outcome.split(":")[1]) for e in log
                  if e.operation == "RefusalsSummarized")
    assert (refused, counted, len(log)) == (20, 980, 26)
    assert host.diagnostics(VM1) == mine  # the count is vm2's own
