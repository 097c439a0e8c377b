"""What lands in a domain's System Event Log, written by the use cases in the unit of work of
the change they report: power requests and the machines' own events, firmware jobs that
ended (a failure, a trial completed, a trial rolled back), restricted mode entered and
left (in every domain's log), guest certificates revoked; a full log that never
overwrites refuses entries and the changes go on."""

from __future__ import annotations

import hashlib

import pytest

from bios_ws.domain.firmware_job import JobState
from bios_ws.domain.firmware_update import LastAttemptStatus
from bios_ws.domain.power import PowerState, ResetType
from bios_ws.domain.sel import OverWritePolicy, SelEntry, SelPolicy
from bios_ws.service.credentials import CredentialService
from bios_ws.service.sel import record_thermal
from bios_ws.soap.testing import Endpoint, build_endpoint
from tests.attested_host import add_domain, build_attested_host
from tests.firmware_support import Signers, broken_image, capsule
from tests.integration.test_firmware_update import boot, ep, signers, submit, updates

__all__ = ["ep", "signers"]  # fixtures


def entries(store: object, domain_id: str = "vm1") -> list[SelEntry]:
    with store.unit_of_work() as uow:  # type: ignore[attr-defined]
        found: list[SelEntry] = uow.sel.entries(domain_id)
        return found


def keys(found: list[SelEntry]) -> list[tuple[str, tuple[str, ...]]]:
    return [(e.message_id.removeprefix("VbiosSel.1.0."), e.message_args) for e in found]


@pytest.fixture
def endpoint() -> Endpoint:
    return build_endpoint()


def test_a_new_domain_has_an_empty_log(endpoint: Endpoint) -> None:
    assert entries(endpoint.store) == []


def test_power_requests_and_the_machines_own_events(endpoint: Endpoint) -> None:
    endpoint.power.reset(endpoint.guest, ResetType.ON)
    endpoint.clock.advance(endpoint.platform.boot_seconds)
    endpoint.platform.advance_due()
    endpoint.power.reset(endpoint.guest, ResetType.FORCE_RESTART)
    endpoint.clock.advance(endpoint.platform.boot_seconds)
    endpoint.platform.advance_due()
    endpoint.power.reset_domain(endpoint.admin, "vm1", ResetType.GRACEFUL_SHUTDOWN)
    endpoint.clock.advance(endpoint.platform.graceful_timeout + 1)  # no OS: it times out
    endpoint.platform.advance_due()
    assert endpoint.platform.status("vm1") is PowerState.OFF
    assert keys(entries(endpoint.store)) == [
        ("PowerStateChanged", ("PoweringOn", "ManagementCommand")),
        ("PowerStateChanged", ("PoweringOn", "ManagementCommand")),
        ("PowerStateChanged", ("PoweringOff", "ManagementCommand")),
        ("PowerStateChanged", ("Off", "ManagementCommand")),  # the machine's own event
    ]
    assert [e.entry_id for e in entries(endpoint.store)] == [1, 2, 3, 4]


def test_a_refused_request_logs_nothing(endpoint: Endpoint) -> None:
    with pytest.raises(Exception, match="makes no sense"):
        endpoint.power.reset(endpoint.guest, ResetType.FORCE_OFF)
    assert entries(endpoint.store) == []


def test_a_full_log_that_never_overwrites_does_not_stop_power(endpoint: Endpoint) -> None:
    with endpoint.store.unit_of_work() as uow:
        uow.sel.set_policy("vm1", SelPolicy(16, OverWritePolicy.NEVER_OVERWRITES))
        for _ in range(16):
            uow.sel.append("vm1", entries_filler())
        uow.commit()
    outcome = endpoint.power.reset(endpoint.guest, ResetType.ON)
    assert outcome.state is PowerState.POWERING_ON
    with endpoint.store.unit_of_work() as uow:
        log = uow.sel.log("vm1")
    assert (log.entries, log.dropped) == (16, 1)


def entries_filler() -> object:
    from datetime import UTC, datetime

    from bios_ws.domain import sel

    return sel.log_cleared(datetime(2026, 1, 1, tzinfo=UTC), "filler", 0)


# -- firmware jobs ------------------------------------------------------------------------

def test_a_completed_update_is_logged(ep: Endpoint, signers: Signers) -> None:
    job = submit(ep, capsule(signers, 3, lowest=2, count=5))
    boot(ep)
    ended = [e for e in entries(ep.store) if "FirmwareUpdate" in e.message_id]
    assert keys(ended) == [("FirmwareUpdateCompleted", (job.job_id, "Completed", "3"))]
    assert ended[0].severity.value == "OK" and ended[0].sensor_type == "Version Change"


def test_a_rolled_back_update_is_logged(ep: Endpoint, signers: Signers) -> None:
    job = submit(ep, capsule(signers, 4, lowest=4, count=9, image=broken_image()))
    boot(ep)
    ended = [e for e in entries(ep.store) if "FirmwareUpdate" in e.message_id]
    assert keys(ended) == [("FirmwareUpdateRolledBack", (job.job_id, "RolledBack", "4"))]
    assert ended[0].severity.value == "Warning"
    assert "did not reach a boot attempt" in ended[0].message


def test_a_failed_update_is_logged(ep: Endpoint, signers: Signers) -> None:
    job = submit(ep, capsule(signers, 3, lowest=2, count=5))
    failed = updates(ep).end_failed(job.job_id, LastAttemptStatus.UNSUCCESSFUL, "gone")
    assert failed.state is JobState.FAILED
    assert keys(entries(ep.store)) == [("FirmwareUpdateFailed", (job.job_id, "Failed", "3"))]


def test_a_refused_capsule_is_in_the_history_not_the_log(ep: Endpoint,
                                                         signers: Signers) -> None:
    with pytest.raises(Exception):  # noqa: B017 - any refusal
        submit(ep, b"not a capsule")
    assert entries(ep.store) == []


# -- security -----------------------------------------------------------------------------

def test_restricted_mode_entered_and_left_in_every_domains_log() -> None:
    host = build_attested_host()
    host.set_reference_from_log()
    add_domain(host, "vm2")
    assert host.monitor.status(force=True).trusted
    host.tpm.pcr_extend(4, {bank: hashlib.new(bank, b"rootkit").digest()
                            for bank in host.tpm.active_banks()})
    assert not host.monitor.status(force=True).trusted
    assert not host.monitor.status(force=True).trusted  # no second entry: no change
    host.reboot()
    assert host.monitor.status(force=True).trusted
    for domain_id in ("vm1", "vm2"):
        found = entries(host.store, domain_id)
        assert [key for key, _ in keys(found)] == ["RestrictedModeEntered",
                                                   "RestrictedModeLeft"], domain_id
        assert [e.severity.value for e in found] == ["Critical", "OK"]
        assert "PCR 4" in found[0].message or "4" in found[0].message_args[0]


def test_a_revoked_guest_certificate_is_logged_in_its_domain(endpoint: Endpoint) -> None:
    credentials = endpoint.use_cases.use(CredentialService)
    bundle = credentials.issue_guest(endpoint.admin, "vm1")
    credentials.revoke(endpoint.admin, serial=bundle.record.serial)
    credentials.revoke(endpoint.admin, serial=bundle.record.serial)  # again: nothing new
    [entry] = entries(endpoint.store)
    assert keys([entry]) == [("CredentialRevoked", (bundle.record.serial_hex, "unspecified"))]
    assert (entry.severity.value, entry.sensor_type) == ("Warning", "Session Audit")


# -- for the thermal service --------------------------------------------------------------

def test_the_thermal_writer_appends_in_the_callers_unit(endpoint: Endpoint) -> None:
    with endpoint.store.unit_of_work() as uow:
        entry = record_thermal(uow, "vm1", sensor="CPU1 Temp", reading_celsius=96.25,
                               threshold="UpperCritical", threshold_celsius=95.0,
                               going_high=True, at=endpoint.clock.now())
        uow.commit()
    assert entry is not None and entries(endpoint.store) == [entry]
    assert (entry.severity.value, entry.entry_code, entry.message_args) == (
        "Critical", "Upper Critical - going high", ("CPU1 Temp", "96.25", "UpperCritical",
                                                    "95"))


def test_thermal_crossings_land_in_the_log_with_the_serving_wiring() -> None:
    """The wiring a server uses (``RECORDED_ALERTS``): critical, fatal and cleared crossings
    each leave one SEL entry and one ThermalThresholdCrossed event, written with the
    crossing."""
    from datetime import timedelta

    from bios_ws.service.thermal import ThermalService
    from bios_ws.service.thermal_records import RECORDED_ALERTS

    endpoint = build_endpoint(thermal_alerts=RECORDED_ALERTS)
    thermal = endpoint.use_cases.use(ThermalService)
    endpoint.power.reset(endpoint.guest, ResetType.ON)
    endpoint.clock.advance(endpoint.platform.boot_seconds)
    endpoint.platform.advance_due()
    thermal.override(endpoint.admin, "vm1", "CPU", 92.0, timedelta(minutes=1))
    endpoint.clock.advance(1)
    thermal.evaluate()
    thermal.evaluate()  # nothing new: no second entry
    thermal.override(endpoint.admin, "vm1", "CPU", None)
    endpoint.clock.advance(30)
    thermal.evaluate()
    found = [e for e in entries(endpoint.store)
             if e.message_id.endswith("TemperatureThresholdCrossed")]
    assert [(e.severity, e.entry_code) for e in found] == [
        ("Critical", "Upper Critical - going high"), ("OK", "Upper Critical - going low")]
    from bios_ws.domain.events import EventType

    with endpoint.store.unit_of_work() as uow:
        marks = [m for m in uow.events.marks_after(0, 1000)
                 if m.event_type is EventType.THERMAL_THRESHOLD_CROSSED]
    assert len(marks) == 2  # one event per crossing, with its SEL entry
