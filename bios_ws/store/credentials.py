"""The identities and certificates tables: who was issued what, and what was revoked."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from bios_ws.domain.credentials import (
    CertificateRecord,
    RevocationReason,
    TicketRecord,
    format_serial,
)
from bios_ws.domain.ports import CredentialRepository
from bios_ws.domain.principal import Role
from bios_ws.errors import StoreUnavailable
from bios_ws.store import schema
from bios_ws.store.codec import time_from_text, time_to_text
from bios_ws.store.engine import store_errors

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_identities = schema.identities
_certificates = schema.certificates
_tickets = schema.enrollment_tickets


class SqlCredentials(CredentialRepository):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def incarnation(self, domain_id: str) -> str | None:
        conn = self._uow.connection(write=False)
        with store_errors():
            value = conn.scalar(select(_identities.c.incarnation)
                                .where(_identities.c.domain_id == domain_id))
        return None if value is None else str(value)

    def set_incarnation(self, domain_id: str, incarnation: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(delete(_identities).where(_identities.c.domain_id == domain_id))
            conn.execute(insert(_identities).values(domain_id=domain_id,
                                                    incarnation=incarnation))

    def end_incarnation(self, domain_id: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(delete(_identities).where(_identities.c.domain_id == domain_id))

    def add(self, record: CertificateRecord) -> None:
        conn = self._uow.connection(write=True)
        key = format_serial(record.serial)
        with store_errors():
            taken = conn.scalar(select(_certificates.c.serial)
                                .where(_certificates.c.serial == key))
            if taken is None:
                conn.execute(insert(_certificates).values(**_row(record)))
        if taken is not None:
            raise ValueError(f"certificate serial {key} is already recorded")

    def get(self, serial: int) -> CertificateRecord | None:
        conn = self._uow.connection(write=False)
        with store_errors():
            row = conn.execute(select(_certificates).where(
                _certificates.c.serial == format_serial(serial))).one_or_none()
        return None if row is None else _record(row)

    def issued(self, domain_id: str | None = None) -> list[CertificateRecord]:
        conn = self._uow.connection(write=False)
        query = select(_certificates)
        if domain_id is not None:
            query = query.where(_certificates.c.domain_id == domain_id)
        with store_errors():
            rows = conn.execute(query).all()
        return sorted((_record(row) for row in rows), key=lambda r: (r.issued_at, r.serial))

    def revoke(self, serials: Iterable[int], at: datetime, reason: RevocationReason
               ) -> list[CertificateRecord]:
        conn = self._uow.connection(write=True)
        done = []
        with store_errors():
            for serial in sorted(set(serials)):
                result = conn.execute(
                    update(_certificates)
                    .where(_certificates.c.serial == format_serial(serial))
                    .where(_certificates.c.revoked_at.is_(None))
                    .values(revoked_at=time_to_text(at), reason=reason.value))
                if result.rowcount == 1:
                    row = conn.execute(select(_certificates).where(
                        _certificates.c.serial == format_serial(serial))).one()
                    done.append(_record(row))
        return done

    def revoked(self) -> list[tuple[int, datetime]]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_certificates.c.serial, _certificates.c.revoked_at)
                                .where(_certificates.c.revoked_at.is_not(None))).all()
        return sorted((_serial(row.serial), time_from_text(row.revoked_at)) for row in rows)

    def add_ticket(self, ticket: TicketRecord) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            taken = conn.scalar(select(_tickets.c.nonce).where(_tickets.c.nonce == ticket.nonce))
            if taken is None:
                conn.execute(insert(_tickets).values(
                    nonce=ticket.nonce, domain_id=ticket.domain_id,
                    incarnation=ticket.incarnation,
                    expires_at=time_to_text(ticket.expires_at),
                    used_at=None if ticket.used_at is None else time_to_text(ticket.used_at)))
        if taken is not None:
            raise ValueError("this enrollment nonce is already recorded")

    def ticket(self, nonce: str, *, for_update: bool = False) -> TicketRecord | None:
        conn = self._uow.connection(write=for_update)
        query = select(_tickets).where(_tickets.c.nonce == nonce)
        with store_errors():
            row = conn.execute(query.with_for_update() if for_update else query).one_or_none()
        if row is None:
            return None
        return TicketRecord(str(row.nonce), str(row.domain_id), str(row.incarnation),
                            time_from_text(row.expires_at),
                            None if row.used_at is None else time_from_text(row.used_at))

    def use_ticket(self, nonce: str, at: datetime) -> bool:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(update(_tickets).where(_tickets.c.nonce == nonce)
                                  .where(_tickets.c.used_at.is_(None))
                                  .values(used_at=time_to_text(at)))
        return bool(result.rowcount == 1)


def _serial(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise StoreUnavailable(f"a stored certificate serial is damaged: {text[:50]!r}") \
            from None


def _row(record: CertificateRecord) -> dict[str, Any]:
    return {
        "serial": format_serial(record.serial),
        "role": record.role.value,
        "domain_id": record.domain_id,
        "incarnation": record.incarnation,
        "subject": record.subject,
        "not_before": time_to_text(record.not_before),
        "not_after": time_to_text(record.not_after),
        "issued_at": time_to_text(record.issued_at),
        "revoked_at": None if record.revoked_at is None else time_to_text(record.revoked_at),
        "reason": None if record.reason is None else record.reason.value,
        "replaces": None if record.replaces is None else format_serial(record.replaces),
    }


def _record(row: Any) -> CertificateRecord:
    try:
        return CertificateRecord(
            serial=_serial(row.serial),
            role=Role(row.role),
            domain_id=row.domain_id,
            incarnation=row.incarnation,
            subject=str(row.subject),
            not_before=time_from_text(row.not_before),
            not_after=time_from_text(row.not_after),
            issued_at=time_from_text(row.issued_at),
            revoked_at=None if row.revoked_at is None else time_from_text(row.revoked_at),
            reason=None if row.reason is None else RevocationReason(row.reason),
            replaces=None if row.replaces is None else _serial(row.replaces),
        )
    except ValueError:
        raise StoreUnavailable(f"the certificate record {row.serial!r} is damaged") from None
