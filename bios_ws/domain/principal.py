"""Who is calling: the admin, or the guest of exactly one domain (itself, or a host
speaking for it).

A host certificate (``urn:vbios:host:H``, issued by ``vbios host add``) names no role of
its own: it counts only with the ``X-Vbios-On-Behalf-Of: D`` header of a request, and
then the caller is D's guest via host H (``on_behalf_of``), with D's guest's rights and
nothing more. The credential registry says whether H may speak for D
(``docs/remote.md``).

With ``X-Vbios-Acting-As: platform`` beside it, the host is D's platform: the host that
runs D's machine, calling on its admin's behalf one of the admin operations that act on
D's routed state (``capabilities.platform_operations``), for D only
(``require_admin_of``); otherwise it is D's guest via H, as without the marker."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bios_ws.domain.hosts import is_host_name
from bios_ws.errors import AccessDenied, InvalidRequest

#: Domain ids: what `vbios domain create NAME` accepts, and what a SAN URI carries.
_DOMAIN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")

GUEST_URI_PREFIX = "urn:vbios:domain:"
INCARNATION_URI_PREFIX = "urn:vbios:incarnation:"
ADMIN_URI = "urn:vbios:role:admin"
HOST_URI_PREFIX = "urn:vbios:host:"
_INCARNATION = re.compile(r"^[0-9a-f]{16}$")

#: How a guest principal is written (``str(principal)``, the audit log's principal column).
GUEST_PREFIX = "guest:"
#: How a host is written: alone (``host:H``, a refused call) or speaking for a guest
#: (``host:H for guest:D``, whose entries are D's as if D's guest had called).
HOST_PREFIX = "host:"
_FOR_GUEST = f" for {GUEST_PREFIX}"
#: The HTTP header naming the domain a host speaks for (WSGI: ``HTTP_X_VBIOS_ON_BEHALF_OF``).
ON_BEHALF_OF_HEADER = "X-Vbios-On-Behalf-Of"
#: The HTTP header by which a host speaking for D says it calls as D's platform (its
#: admin's call of an admin operation on D's routed state); its one value is ``PLATFORM``.
ACTING_AS_HEADER = "X-Vbios-Acting-As"
PLATFORM = "platform"
#: How D's platform is written: ``host:H platform of D``.
_PLATFORM_OF = f" {PLATFORM} of "


class Role(StrEnum):
    ADMIN = "admin"
    GUEST = "guest"
    #: Another installation's host (``vbios host add``): a certificate role only. Its
    #: calls are its guests' (``Principal.on_behalf_of``), never its own.
    HOST = "host"
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
    (None for callers inside the host: the CLI, the machines). ``host`` names the host
    whose certificate it was: a ``HOST`` principal, or a guest that host speaks for;
    ``platform``: that guest is the domain's platform (``on_behalf_of``)."""

    role: Role
    subject: str
    domain_id: str | None = None
    serial: int | None = None
    incarnation: str | None = None
    host: str | None = None
    platform: bool = False

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
        roles = [u for u in uris if u == ADMIN_URI or u.startswith(GUEST_URI_PREFIX)
                 or u.startswith(HOST_URI_PREFIX)]
        if len(roles) != 1:
            raise AccessDenied("client certificate names no single vBIOS identity")
        incarnations = [u[len(INCARNATION_URI_PREFIX):] for u in uris
                        if u.startswith(INCARNATION_URI_PREFIX)]
        if roles[0] == ADMIN_URI:
            if incarnations:
                raise AccessDenied("an admin certificate names no domain incarnation")
            return cls(Role.ADMIN, subject, serial=serial)
        if roles[0].startswith(HOST_URI_PREFIX):
            host = roles[0][len(HOST_URI_PREFIX):]
            if not is_host_name(host):
                raise AccessDenied("client certificate names an invalid host")
            if incarnations:
                raise AccessDenied("a host certificate names no domain incarnation")
            return cls(Role.HOST, subject or host, serial=serial, host=host)
        try:
            domain_id = check_domain_id(roles[0][len(GUEST_URI_PREFIX):])
        except InvalidRequest:
            raise AccessDenied("client certificate names an invalid domain") from None
        if len(incarnations) != 1 or not _INCARNATION.fullmatch(incarnations[0]):
            raise AccessDenied("client certificate names no single domain incarnation")
        return cls(Role.GUEST, subject or domain_id, domain_id, serial, incarnations[0])

    def on_behalf_of(self, header: str | None, acting_as: str | None = None) -> Principal:
        """The caller a request makes of this certificate's principal, its
        ``X-Vbios-On-Behalf-Of`` header (``header``: its value, None when absent; a
        repeated header arrives joined by commas) and its ``X-Vbios-Acting-As`` header
        (``acting_as``): a host certificate with a header naming domain D is D's guest via
        that host, and D's platform with ``acting_as`` ``platform``; without the header
        it is nothing. Any other certificate must come without either header.
        AccessDenied otherwise (whether the host may speak for D is the credential
        registry's to say)."""
        if self.role is not Role.HOST:
            if header is not None:
                raise AccessDenied(f"only a host certificate may speak on behalf of a"
                                   f" domain ({ON_BEHALF_OF_HEADER})")
            if acting_as is not None:
                raise AccessDenied(f"only a host certificate may act as a domain's"
                                   f" platform ({ACTING_AS_HEADER})")
            return self
        if header is None:
            raise AccessDenied(f"a host certificate speaks only on behalf of a domain: the"
                               f" request names none ({ON_BEHALF_OF_HEADER})")
        if "," in header:
            raise AccessDenied(f"the request names more than one domain"
                               f" ({ON_BEHALF_OF_HEADER} repeated)")
        if not is_domain_id(header):
            raise AccessDenied(f"the request's {ON_BEHALF_OF_HEADER} is no domain id")
        if acting_as is not None and acting_as != PLATFORM:
            raise AccessDenied(f"the request's {ACTING_AS_HEADER} is not {PLATFORM!r}")
        return Principal(Role.GUEST, self.subject, header, self.serial, None, self.host,
                         platform=acting_as is not None)

    @property
    def via_host(self) -> bool:
        """Whether this is a guest a host speaks for (its certificate is the host's)."""
        return self.role is Role.GUEST and self.host is not None

    def own_domain(self) -> str:
        """The domain a guest acts on; the admin has none and must name one."""
        if self.role is not Role.GUEST or self.domain_id is None:
            raise AccessDenied("this operation is for guest domains; admins use admin operations")
        return self.domain_id

    def require_admin(self) -> None:
        if self.role is not Role.ADMIN:
            raise AccessDenied("this operation is for the host admin")

    def require_admin_of(self, domain_id: str) -> None:
        """For the admin operations a domain's platform may call too
        (``capabilities.platform_operations``): the admin, or the platform of exactly
        ``domain_id`` (a host speaking for it as its platform); AccessDenied otherwise."""
        if self.role is Role.ADMIN:
            return
        if self.platform and self.via_host:
            if self.domain_id == domain_id:
                return
            raise AccessDenied(f"the platform of domain {self.domain_id} acts on that"
                               " domain only")
        raise AccessDenied("this operation is for the host admin")

    def __str__(self) -> str:
        if self.role is Role.GUEST:
            if self.host is not None and self.platform:
                return f"{HOST_PREFIX}{self.host}{_PLATFORM_OF}{self.domain_id}"
            if self.host is not None:
                return f"{HOST_PREFIX}{self.host}{_FOR_GUEST}{self.domain_id}"
            return f"{GUEST_PREFIX}{self.domain_id}"
        if self.role is Role.HOST:
            return f"{HOST_PREFIX}{self.host}"
        return f"admin:{self.subject}"


def guest_of(principal: str) -> str | None:
    """The domain id of a guest principal as ``str(Principal)`` writes it (``guest:D``,
    or ``host:H for guest:D``: a host speaking for D acts as D's guest, and so does D's
    platform, ``host:H platform of D``); None for others."""
    if principal.startswith(GUEST_PREFIX):
        return principal[len(GUEST_PREFIX):]
    if principal.startswith(HOST_PREFIX):
        for link in (_FOR_GUEST, _PLATFORM_OF):
            _, found, domain_id = principal.partition(link)
            if found:
                return domain_id
    return None


def host_of(principal: str) -> str | None:
    """The host of a host principal as ``str(Principal)`` writes it (``host:H``,
    ``host:H for guest:D`` or ``host:H platform of D``); None for others."""
    if principal.startswith(HOST_PREFIX):
        return principal[len(HOST_PREFIX):].partition(_FOR_GUEST)[0].partition(
            _PLATFORM_OF)[0]
    return None
