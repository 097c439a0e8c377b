"""A unit of work that loses to a concurrent one (``StoreConflict``: PostgreSQL's 40001 or
40P01) runs again (``ports.retrying``): through the SOAP endpoint over the memory fake,
whose next commits can be made to lose (``MemoryStore.lose_commits``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.ports import (
    CONFLICT_ATTEMPTS,
    UnitOfWork,
    retrying,
)
from bios_ws.domain.state import DomainState
from bios_ws.errors import StoreConflict, VersionConflict
from bios_ws.soap.testing import Endpoint, build_endpoint
from bios_ws.store import retry

SET_TAG = ("<tns:Attributes><tns:AttributeValue><tns:Name>AssetTag</tns:Name>"
           "<tns:StringValue>rack-1</tns:StringValue></tns:AttributeValue></tns:Attributes>"
           "<tns:ApplyTime>Immediate</tns:ApplyTime>")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    monkeypatch.setattr("bios_ws.domain.ports._PAUSE_SECONDS", 0.0)  # no pauses
    return build_endpoint()


def _entries(store: MemoryStore, operation: str) -> list[str]:
    return [e.outcome for e in store.audit if e.operation == operation]


def _version(endpoint: Endpoint) -> int:
    return endpoint.bios.get_attributes(endpoint.guest).version


def test_a_write_that_lost_once_runs_again_and_takes_effect_once(
        endpoint: Endpoint, retries: list[int]) -> None:
    before = _version(endpoint)
    endpoint.store.lose_commits(1)
    answer = endpoint.call("SetAttributes", SET_TAG)
    assert answer.fault_code() is None
    assert answer.text(".//tns:Version") == str(before + 1)
    assert _version(endpoint) == before + 1
    assert endpoint.bios.get_attributes(endpoint.guest, ["AssetTag"]).values == {
        "AssetTag": "rack-1"}
    assert _entries(endpoint.store, "SetAttributes") == ["ok"]  # no failed attempt left
    assert retries == [2]


def test_the_write_path_of_other_capabilities_runs_again_too(
        endpoint: Endpoint, retries: list[int]) -> None:
    before = _version(endpoint)
    endpoint.store.lose_commits(2)
    answer = endpoint.call("SetBootOrder", "<tns:Order>" + "".join(
        f"<tns:OptionId>{o.id}</tns:OptionId>"
        for o in reversed(endpoint.bios.get_boot(endpoint.guest).options)
    ) + "</tns:Order>")
    assert answer.fault_code() is None, answer.body
    assert _version(endpoint) == before + 1
    assert _entries(endpoint.store, "SetBootOrder") == ["ok"]
    assert retries == [2, 3]


def test_an_event_subscription_that_lost_runs_again_and_is_made_once(
        endpoint: Endpoint, retries: list[int]) -> None:
    endpoint.store.lose_commits(1)
    answer = endpoint.call("Subscribe")
    assert answer.fault_code() is None, answer.body
    made = [s.subscription_id for s in endpoint.store.events.subscriptions.values()]
    assert made == [answer.text(".//tns:SubscriptionId")]
    assert _entries(endpoint.store, "Subscribe") == ["ok"]
    assert retries == [2]


def test_retries_are_bounded_and_the_last_conflict_is_a_store_unavailable_fault(
        endpoint: Endpoint, retries: list[int]) -> None:
    before = _version(endpoint)
    endpoint.store.lose_commits(CONFLICT_ATTEMPTS)  # every run of the write loses
    answer = endpoint.call("SetAttributes", SET_TAG)
    assert answer.status == 500
    assert answer.fault_code() == "soap11env:Server"
    assert answer.detail("Code") == "StoreUnavailable"  # not an InternalError
    assert answer.detail("CorrelationId") is None
    assert retries == list(range(2, CONFLICT_ATTEMPTS + 1))
    assert _version(endpoint) == before
    assert _entries(endpoint.store, "SetAttributes") == ["failed:StoreUnavailable"]


def test_a_refusal_audit_that_lost_runs_again(endpoint: Endpoint, retries: list[int]
                                              ) -> None:
    endpoint.store.lose_commits(CONFLICT_ATTEMPTS + 1)  # the write's runs, then the audit's
    answer = endpoint.call("SetAttributes", SET_TAG)
    assert answer.detail("Code") == "StoreUnavailable"
    assert _entries(endpoint.store, "SetAttributes") == ["failed:StoreUnavailable"]
    assert len(retries) == CONFLICT_ATTEMPTS  # the write's three, the audit's one


def test_a_refusal_inside_the_unit_is_not_run_again(endpoint: Endpoint, retries: list[int]
                                                    ) -> None:
    before = _version(endpoint)
    stale = SET_TAG + f"<tns:ExpectedVersion>{before - 1}</tns:ExpectedVersion>"
    endpoint.store.lose_commits(1)  # the refusal's audit unit loses once
    answer = endpoint.call("SetAttributes", stale)
    assert answer.detail("Code") == "VersionConflict"
    assert _entries(endpoint.store, "SetAttributes") == ["refused:VersionConflict"]
    assert retries == [2]  # the audit unit's; the write ran once


def test_retrying_runs_a_fresh_unit_each_time_and_returns_the_work_s_value() -> None:
    store = MemoryStore()
    with store.unit_of_work() as uow:
        uow.domains.add(DomainState("vm1", 1, {}), T0)
        uow.commit()
    units: list[UnitOfWork] = []

    def bump(uow: UnitOfWork) -> int:
        units.append(uow)
        state = uow.domains.get("vm1", for_update=True)
        state.version += 1
        uow.domains.save(state, expected_version=state.version - 1)
        uow.commit()
        return state.version

    store.lose_commits(2)
    assert retrying(store.unit_of_work, bump, sleep=lambda _: None) == 2
    assert len(units) == 3 and len({id(u) for u in units}) == 3
    with store.unit_of_work() as uow:
        assert uow.domains.get("vm1").version == 2


def test_retrying_lets_other_errors_through_at_once() -> None:
    runs: list[int] = []

    def refuse(uow: UnitOfWork) -> None:
        runs.append(1)
        raise VersionConflict("stale")

    with pytest.raises(VersionConflict):
        retrying(MemoryStore().unit_of_work, refuse, sleep=lambda _: None)
    assert runs == [1]


def test_retrying_stops_after_the_bound_with_the_last_conflict() -> None:
    store = MemoryStore()
    runs: list[int] = []
    pauses: list[float] = []

    def commit(uow: UnitOfWork) -> None:
        runs.append(1)
        uow.commit()

    store.lose_commits(10)
    with pytest.raises(StoreConflict):
        retrying(store.unit_of_work, commit, attempts=3, sleep=pauses.append)
    assert len(runs) == 3 and len(pauses) == 2
    assert store.losing_commits == 7


def test_the_store_module_names_the_same_loop() -> None:
    assert retry.retrying is retrying
    assert retry.CONFLICT_ATTEMPTS == CONFLICT_ATTEMPTS

