"""The firmware_trust table: the signer certificates the admin trusts for capsules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from bios_ws.domain.firmware_trust import TrustedSigner
from bios_ws.domain.ports import FirmwareTrustRepository
from bios_ws.errors import StoreUnavailable
from bios_ws.store import schema
from bios_ws.store.codec import time_from_text, time_to_text
from bios_ws.store.engine import store_errors

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_trust = schema.firmware_trust


class SqlFirmwareTrust(FirmwareTrustRepository):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def add(self, signer: TrustedSigner) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            taken = conn.scalar(select(_trust.c.fingerprint)
                                .where(_trust.c.fingerprint == signer.fingerprint))
            if taken is None:
                conn.execute(insert(_trust).values(
                    fingerprint=signer.fingerprint, der=signer.der, subject=signer.subject,
                    not_after=time_to_text(signer.not_after),
                    added_at=time_to_text(signer.added_at)))
        if taken is not None:
            raise ValueError(f"signer {signer.fingerprint} is already trusted")

    def get(self, fingerprint: str) -> TrustedSigner | None:
        conn = self._uow.connection(write=False)
        with store_errors():
            row = conn.execute(select(_trust).where(_trust.c.fingerprint == fingerprint)
                               ).one_or_none()
        return None if row is None else _signer(row)

    def remove(self, fingerprint: str) -> bool:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(delete(_trust).where(_trust.c.fingerprint == fingerprint))
        return bool(result.rowcount == 1)

    def list(self) -> list[TrustedSigner]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_trust)).all()
        return sorted((_signer(row) for row in rows), key=lambda s: (s.added_at, s.fingerprint))


def _signer(row: Any) -> TrustedSigner:
    try:
        return TrustedSigner(fingerprint=str(row.fingerprint), der=bytes(row.der),
                             subject=str(row.subject),
                             not_after=time_from_text(row.not_after),
                             added_at=time_from_text(row.added_at))
    except ValueError:
        raise StoreUnavailable(f"the trusted signer record {row.fingerprint!r} is damaged"
                               ) from None
