"""Where events come from: every use case that changes what an event reports publishes it
in the unit of work of the change (a refused change publishes nothing). In-process, over
the memory store and simulated machines on a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from bios_ws.domain.events import (
    ADMIN_ONLY,
    RETIRED,
    Event,
    EventFilter,
    EventType,
    Severity,
    Subscription,
)
from bios_ws.domain.firmware_job import JobState
from bios_ws.domain.power import PowerState, ResetCause, ResetType
from bios_ws.domain.principal import Role
from bios_ws.domain.state import ApplyTime
from bios_ws.errors import FirmwareUpdateRefused, InvalidAttributeValue
from bios_ws.platform.port import MachineEvent
from bios_ws.service.credentials import CredentialService
from bios_ws.service.events import thermal_threshold_crossed
from bios_ws.service.firmware_trust import FirmwareTrustService
from bios_ws.service.firmware_update import FirmwareUpdateService, Submission
from bios_ws.service.integrity import IntegrityMonitor, untrusted
from bios_ws.soap.testing import Endpoint, build_endpoint
from tests.firmware_support import capsule, make_signers

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def ep() -> Endpoint:
    endpoint = build_endpoint()
    endpoint.clock.moment = NOW
    return endpoint


def events(ep: Endpoint, after: int = 0, wanted: EventFilter | None = None) -> list[Event]:
    with ep.store.unit_of_work() as uow:
        return list(uow.events.after(after, wanted or EventFilter(None), 1000).events)


def kinds(found: list[Event]) -> list[tuple[str, tuple[str, ...]]]:
    return [(e.record.event_type.value, e.record.message_args) for e in found]


def head(ep: Endpoint) -> int:
    with ep.store.unit_of_work() as uow:
        return uow.events.head()


def boot(ep: Endpoint) -> None:
    for _ in range(4):
        ep.clock.advance(ep.platform.boot_seconds)
        ep.platform.advance_due()


def test_a_settings_write_publishes_settings_changed_with_its_new_version(
        ep: Endpoint) -> None:
    start = head(ep)
    version = ep.bios.set_attributes(ep.guest, {"AssetTag": "rack-7"})
    [event] = events(ep, start)
    record = event.record
    assert kinds([event]) == [("SettingsChanged", ("vm1", "SetAttributes", str(version)))]
    assert (record.domain_id, record.origin, record.severity, record.timestamp) == (
        "vm1", "/vbios/domains/vm1/Bios", Severity.OK, NOW)


def test_a_refused_write_publishes_nothing(ep: Endpoint) -> None:
    start = head(ep)
    with pytest.raises(InvalidAttributeValue):
        ep.bios.set_attributes(ep.guest, {"WakeTimeout": 7})
    assert events(ep, start) == []


def test_a_boot_publishes_power_changes_and_the_pending_values_it_applied(
        ep: Endpoint) -> None:
    ep.bios.set_attributes(ep.guest, {"BootMode": "Legacy"}, ApplyTime.ON_RESET)
    start = head(ep)
    ep.power.reset(ep.guest, ResetType.ON)
    boot(ep)
    # the machine's record keeps what a request left (PoweringOn); the boot applied the
    # pending value in the request's course, before that was recorded
    assert kinds(events(ep, start)) == [
        ("PendingChangesApplied", ("vm1", "ApplyPendingAttributes", "3")),
        ("PowerStateChanged", ("vm1", "PoweringOn", "Off", "ManagementCommand"))]


def test_a_machine_event_publishes_power_state_changed_a_crash_as_a_warning(
        ep: Endpoint) -> None:
    ep.power.reset(ep.guest, ResetType.ON)
    boot(ep)
    start = head(ep)
    ep.observer.on_event("vm1", MachineEvent(PowerState.OFF, ResetCause.CRASH, NOW))
    [event] = events(ep, start)
    assert event.record.message_args == ("vm1", "Off", "PoweringOn", "Crash")
    assert event.record.severity is Severity.WARNING


def test_recording_the_same_power_without_a_reset_publishes_nothing(ep: Endpoint) -> None:
    start = head(ep)
    ep.observer.on_event("vm1", MachineEvent(PowerState.OFF, ResetCause.CRASH, NOW))
    assert kinds(events(ep, start)) == [("PowerStateChanged", ("vm1", "Off", "Off", "Crash"))]
    ep.power.get_power(ep.guest)  # reads the live state: off, as recorded
    assert len(events(ep, start)) == 1


def test_entering_and_leaving_restricted_mode_is_a_host_wide_event(ep: Endpoint) -> None:
    monitor = IntegrityMonitor(ep.store.unit_of_work, lambda: None,  # type: ignore[arg-type]
                               lambda: None, ep.clock.now)
    trusted = untrusted("x", "y").__class__(trusted=True, findings=(), checked_pcrs=(0,),
                                             bank="sha256", reference_digest=None)
    start = head(ep)
    monitor._record(trusted, NOW)  # the first verdict, trusted: nothing to tell
    monitor._record(untrusted("pcr-mismatch", "PCR 0 differs"), NOW)
    monitor._record(untrusted("pcr-mismatch", "PCR 0 differs"), NOW)  # no change
    monitor._record(trusted, NOW)
    found = events(ep, start)
    assert [(e.record.message_args[0], e.record.severity) for e in found] == [
        ("entered", Severity.CRITICAL), ("left", Severity.OK)]
    assert all(e.record.domain_id is None and e.record.origin == "/vbios/host/Integrity"
               for e in found)
    guest_view = EventFilter(frozenset({"vm1", ""}))
    assert len(events(ep, start, guest_view)) == 2


def test_a_firmware_update_publishes_each_state_of_its_job(ep: Endpoint) -> None:
    signers = make_signers(NOW)
    ep.use_cases.use(FirmwareTrustService).add(
        ep.admin, signers.root.certificate.public_bytes(serialization.Encoding.PEM))
    updates = ep.use_cases.use(FirmwareUpdateService)
    start = head(ep)
    job = updates.submit(Submission(ep.guest, "vm1", capsule(signers, 3)))
    ep.power.reset(ep.guest, ResetType.ON)
    boot(ep)
    states = [e.record.message_args[2] for e in events(ep, start)
              if e.record.event_type is EventType.FIRMWARE_JOB_CHANGED]
    assert states == ["Pending", "Staged", "NeedsReset", "Running", "Completed"]
    with pytest.raises(FirmwareUpdateRefused):  # older: refused, kept as a Failed job
        updates.submit(Submission(ep.guest, "vm1", capsule(signers, 2, count=9)))
    last = events(ep, start)[-1].record
    assert last.event_type is EventType.FIRMWARE_JOB_CHANGED
    assert (last.message_args[2], last.severity) == (JobState.FAILED.value, Severity.WARNING)
    assert last.origin.startswith("/vbios/domains/vm1/FirmwareJobs/")
    assert job.job_id not in last.origin


def test_revoked_certificates_are_their_domains_events_and_the_admins_its_own(
        ep: Endpoint) -> None:
    credentials = ep.use_cases.use(CredentialService)
    bundle = credentials.issue_guest(ep.admin, "vm1")
    start = head(ep)
    credentials.revoke(ep.admin, serial=bundle.record.serial)
    credentials.rotate_admin(ep.admin)  # the first admin certificate recorded here
    credentials.rotate_admin(ep.admin)  # revokes it
    found = events(ep, start)
    guest = [e for e in found if e.record.domain_id == "vm1"]
    assert [e.record.message_args[0] for e in guest] == [bundle.record.serial_hex]
    assert guest[0].record.message_args[1:] == ("guest vm1", "unspecified")
    admins = [e for e in found if e.record.admin_only]
    assert len(admins) == 1 and admins[0].record.scope == ADMIN_ONLY
    assert admins[0].record.message_args[1:] == ("admin", "superseded")
    assert all(e.record.event_type is EventType.CREDENTIAL_REVOKED for e in found)
    assert not any(e.record.admin_only for e in events(ep, start, EventFilter(
        frozenset({"vm1", ""}))))
    assert sorted(r.role for r in credentials.list(ep.admin) if r.revoked) == [
        Role.ADMIN, Role.GUEST]


def test_deleting_a_domain_retires_its_events_and_ends_its_subscriptions(
        ep: Endpoint) -> None:
    with ep.store.unit_of_work() as uow:
        uow.events.add_subscription(Subscription("a" * 32, "guest:vm1", "vm1", frozenset(),
                                                 NOW, NOW + timedelta(hours=1), 0))
        uow.commit()
    ep.bios.set_attributes(ep.guest, {"AssetTag": "gone"})
    ep.domains.delete(ep.admin, "vm1")
    with ep.store.unit_of_work() as uow:
        assert uow.events.subscriptions() == []
        marks = uow.events.marks_after(0, 100)
    assert marks and {m.scope for m in marks} <= {RETIRED, ""}
    ep.domains.create(ep.admin, "vm1")  # a new vm1 sees none of the former one's events
    assert events(ep, 0, EventFilter(frozenset({"vm1"}))) == []


def test_the_thermal_helper_publishes_a_threshold_crossed(ep: Endpoint) -> None:
    with ep.store.unit_of_work() as uow:
        event = thermal_threshold_crossed(uow, "vm1", "CPU", "UpperCritical", 91.5, NOW,
                                          Severity.CRITICAL)
        uow.commit()
    assert event.record.message == "Sensor CPU of domain vm1 crossed its UpperCritical" \
                                   " threshold: 91.5 Cel."
    assert event.record.origin == "/vbios/domains/vm1/Thermal/CPU"
    assert events(ep, event.event_id - 1)[0].record == event.record
