"""Who is calling: the admin, or the guest of exactly one domain."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bios_ws.errors import AccessDenied, InvalidRequest

#: Domain ids: what `vbios domain create NAME` accepts, and what a SAN URI carries.
_DOMAIN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")

GUEST_URI_PREFIX = "urn:vbios:domain:"
INCARNATION_URI_PREFIX = "urn:vbios:incarnation:"
ADMIN_URI = "urn:vbios:role:admin"
_INCARNATION = re.compile(r"^[0-9a-f]{16}$")

#: How a guest principal is written (``str(principal)``, the audit log's principal column).
GUEST_PREFIX = "guest:"


class Role(StrEnum):
    ADMIN = "admin"
    GUEST = "guest"
    #: A caller without a client certificate (only enrollment lets one in).
    ANONYMOUS = "anonymous"


def is_domain_id(text: str) -> bool:
    """Whether ``text`` is a valid domain id (``check_domain_id`` would accept it)."""
    return isinstance(text, str) and _DOMAIN_ID.fullmatch(text) is not None


def check_domain_id(domain_id: str) -> str:
    if not _DOMAIN_ID.fullmatch(domain_id):
        raise InvalidRequest(
            f"invalid domain id {domain_id[:80]!r}: use 1-63 of a-z, 0-9, '.', '_', '-',"
            " starting with a letter or digit"
        )
    return domain_id


@dataclass(frozen=True)
class Principal:
    """A caller. ``serial`` and ``incarnation`` say which certificate it presented
    (None for callers inside the host: the CLI, the machines)."""

    role: Role
    subject: str
    domain_id: str | None = None
    serial: int | None = None
    incarnation: str | None = None

    @classmethod
    def admin(cls, subject: str = "admin") -> Principal:
        return cls(Role.ADMIN, subject)

    @classmethod
    def anonymous(cls, source: str) -> Principal:
        """A caller that presented no certificate, known by its address only."""
        return cls(Role.ANONYMOUS, source[:64] or "unknown")

    @classmethod
    def guest(cls, domain_id: str, subject: str | None = None) -> Principal:
        check_domain_id(domain_id)
        return cls(Role.GUEST, subject or domain_id, domain_id)

    @classmethod
    def from_san_uris(cls, uris: list[str], subject: str, serial: int | None = None
                      ) -> Principal:
        """The one rule that turns a certificate's SAN URIs into a principal: one role
        URI; a guest's also one incarnation URI, an admin's none."""
        roles = [u for u in uris if u == ADMIN_URI or u.startswith(GUEST_URI_PREFIX)]
        if len(roles) != 1:
            raise AccessDenied("client certificate names no single vBIOS identity")
        incarnations = [u[len(INCARNATION_URI_PREFIX):] for u in uris
                        if u.startswith(INCARNATION_URI_PREFIX)]
        if roles[0] == ADMIN_URI:
            if incarnations:
                raise AccessDenied("an admin certificate names no domain incarnation")
            return cls(Role.ADMIN, subject, serial=serial)
        try:
            domain_id = check_domain_id(roles[0][len(GUEST_URI_PREFIX):])
        except InvalidRequest:
            raise AccessDenied("client certificate names an invalid domain") from None
        if len(incarnations) != 1 or not _INCARNATION.fullmatch(incarnations[0]):
            raise AccessDenied("client certificate names no single domain incarnation")
        return cls(Role.GUEST, subject or domain_id, domain_id, serial, incarnations[0])

    def own_domain(self) -> str:
        """The domain a guest acts on; the admin has none and must name one."""
        if self.role is not Role.GUEST or self.domain_id is None:
            raise AccessDenied("this operation is for guest domains; admins use admin operations")
        return self.domain_id

    def require_admin(self) -> None:
        if self.role is not Role.ADMIN:
            raise AccessDenied("this operation is for the host admin")

    def __str__(self) -> str:
        if self.role is Role.GUEST:
            return f"{GUEST_PREFIX}{self.domain_id}"
        return f"admin:{self.subject}"


def guest_of(principal: str) -> str | None:
    """The domain id of a guest principal as ``str(Principal)`` writes it; None for others."""
    if principal.startswith(GUEST_PREFIX):
        return principal[len(GUEST_PREFIX):]
    return None
