"""Client credentials: the certificates an installation issued, and whether one still counts.

Every client certificate the CA issues is recorded (``CertificateRecord``). A
guest's certificate also names the *incarnation* of its domain: a random token
drawn when the domain is created, so a domain deleted and created again under
the same name is a new identity that nothing issued before can reach. A
certificate counts when it is recorded, not revoked, not expired, and (for a
guest) names its domain's current incarnation: ``refusal`` says why not.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bios_ws.domain.principal import Principal, Role


class CertificateStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"  # never stored: the status of an active certificate past not-after


class RevocationReason(StrEnum):
    """Why a certificate was revoked (the CRL reason codes we use, by RFC 5280 name)."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"


def new_incarnation() -> str:
    """A fresh incarnation token of a domain (64 random bits, hex)."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class CertificateRecord:
    serial: int
    role: Role
    domain_id: str | None
    incarnation: str | None
    subject: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    revoked_at: datetime | None = None
    reason: RevocationReason | None = None
    #: The certificate this one renews (revoked when this one is first used).
    replaces: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def status_at(self, now: datetime) -> CertificateStatus:
        if self.revoked:
            return CertificateStatus.REVOKED
        if now >= self.not_after:
            return CertificateStatus.EXPIRED
        return CertificateStatus.ACTIVE

    @property
    def serial_hex(self) -> str:
        return format_serial(self.serial)


@dataclass(frozen=True)
class HostGrant:
    """Host ``host`` (another installation, holding a certificate of role ``HOST``) may
    speak for domain ``domain_id`` (``vbios host add H --domains D``)."""

    host: str
    domain_id: str
    granted_at: datetime


@dataclass(frozen=True)
class TicketRecord:
    """A bootstrap URI made for a domain incarnation, and when it was used (if)."""

    nonce: str
    domain_id: str
    incarnation: str
    expires_at: datetime
    used_at: datetime | None = None


def format_serial(serial: int) -> str:
    """A serial as the CLI prints it and accepts it: upper-case hex, no separators."""
    return format(serial, "X")


def parse_serial(text: str) -> int:
    """A serial given as hex (``0x`` and ``:`` separators allowed); ValueError if not."""
    cleaned = text.strip().replace(":", "").removeprefix("0x").removeprefix("0X")
    if not cleaned or len(cleaned) > 40 or cleaned.strip("0123456789abcdefABCDEF"):
        raise ValueError(f"not a certificate serial: {text[:60]!r}")
    return int(cleaned, 16)


def refusal(principal: Principal, record: CertificateRecord | None,
            incarnation: str | None, now: datetime) -> str | None:
    """Why the certificate ``principal`` presented does not count, or None if it does.

    ``record`` is what the store holds for its serial and ``incarnation`` the
    current incarnation of the guest's domain (None when the domain is gone). A host's
    certificate (``Role.HOST``) is recorded with the host's name as its subject and no
    domain; whether the host may speak for the guest it names is the grants' to say
    (``host_refusal``).
    """
    if principal.serial is None or record is None:
        return "this certificate was not issued by this installation's registry"
    if principal.host is not None:  # a host's certificate, speaking for a guest or not
        if record.role is not Role.HOST or record.subject != principal.host:
            return "this certificate does not name the identity it was issued for"
    elif record.role is not principal.role or record.domain_id != principal.domain_id:
        return "this certificate does not name the identity it was issued for"
    status = record.status_at(now)
    if status is CertificateStatus.REVOKED:
        return f"this certificate (serial {record.serial_hex}) was revoked"
    if status is CertificateStatus.EXPIRED:
        return f"this certificate (serial {record.serial_hex}) has expired"
    if principal.role is Role.GUEST and principal.host is None:
        if incarnation is None:
            return f"domain {principal.domain_id!r} no longer exists"
        if principal.incarnation != incarnation or record.incarnation != incarnation:
            return (f"this certificate was issued to an earlier domain named"
                    f" {principal.domain_id!r}")
    return None


def host_refusal(principal: Principal, granted: bool) -> str | None:
    """Why a host may not speak for the guest ``principal`` names (``granted``: whether
    the store grants it that domain), or None (and None for any other principal)."""
    if not principal.via_host or granted:
        return None
    return (f"host {principal.host} may not speak for domain {principal.domain_id}: the"
            " domain was not granted to it (vbios host add)")
