"""When a presented certificate counts, and serials as the admin types them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bios_ws.domain.credentials import (
    CertificateRecord,
    CertificateStatus,
    RevocationReason,
    format_serial,
    new_incarnation,
    parse_serial,
    refusal,
)
from bios_ws.domain.principal import Principal, Role

NOW = datetime(2026, 11, 1, tzinfo=UTC)
INC = "0123456789abcdef"
GUEST = Principal(Role.GUEST, "vm1", "vm1", serial=42, incarnation=INC)
RECORD = CertificateRecord(42, Role.GUEST, "vm1", INC, "vm1", NOW - timedelta(days=1),
                           NOW + timedelta(days=1), NOW - timedelta(days=1))


def test_a_recorded_active_certificate_of_the_current_incarnation_counts() -> None:
    assert refusal(GUEST, RECORD, INC, NOW) is None
    admin = Principal(Role.ADMIN, "vbios-admin", serial=7)
    record = dataclasses.replace(RECORD, serial=7, role=Role.ADMIN, domain_id=None,
                                 incarnation=None)
    assert refusal(admin, record, None, NOW) is None


@pytest.mark.parametrize(("principal", "record", "incarnation", "reason"), [
    (GUEST, None, INC, "not issued by this installation's registry"),
    (dataclasses.replace(GUEST, serial=None), RECORD, INC, "not issued by this installation"),
    (dataclasses.replace(GUEST, domain_id="vm2"), RECORD, INC, "does not name the identity"),
    (Principal(Role.ADMIN, "x", serial=42), RECORD, INC, "does not name the identity"),
    (GUEST, dataclasses.replace(RECORD, revoked_at=NOW, reason=RevocationReason.SUPERSEDED),
     INC, "(serial 2A) was revoked"),
    (GUEST, dataclasses.replace(RECORD, not_after=NOW), INC, "(serial 2A) has expired"),
    (GUEST, RECORD, None, "domain 'vm1' no longer exists"),
    (GUEST, RECORD, "ffffffffffffffff", "issued to an earlier domain named 'vm1'"),
    (dataclasses.replace(GUEST, incarnation="ffffffffffffffff"), RECORD, INC,
     "issued to an earlier domain"),
], ids=["unrecorded", "no-serial", "other-domain", "other-role", "revoked", "expired",
        "deleted", "recreated", "forged-incarnation"])
def test_refusals(principal: Principal, record: CertificateRecord | None,
                  incarnation: str | None, reason: str) -> None:
    found = refusal(principal, record, incarnation, NOW)
    assert found is not None and reason in found


def test_status_over_time() -> None:
    assert RECORD.status_at(NOW) is CertificateStatus.ACTIVE
    assert RECORD.status_at(RECORD.not_after) is CertificateStatus.EXPIRED
    revoked = dataclasses.replace(RECORD, revoked_at=NOW)
    assert revoked.status_at(NOW - timedelta(days=2)) is CertificateStatus.REVOKED


@pytest.mark.parametrize(("text", "value"), [
    ("2A", 42), ("2a", 42), ("0x2A", 42), ("00:2A", 42), (" 2A ", 42), ("F" * 40, 16**40 - 1),
])
def test_serials_parse_as_hex(text: str, value: int) -> None:
    assert parse_serial(text) == value
    assert parse_serial(format_serial(value)) == value


@pytest.mark.parametrize("text", ["", "XYZ", "12G", "F" * 41, "-1", "0x"])
def test_bad_serials_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a certificate serial"):
        parse_serial(text)


def test_incarnations_are_random_hex() -> None:
    first, second = new_incarnation(), new_incarnation()
    assert first != second and len(first) == 16 and int(first, 16) >= 0
