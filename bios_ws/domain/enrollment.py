"""Enrollment from a one-time bootstrap URI, and a domain's provisioning state.

The admin asks for a bootstrap URI for a domain (`vbios domain enroll NAME`).
It carries the server's address, the domain, a random nonce, an expiry (at
most ``MAX_TICKET_LIFETIME`` ahead), a token and the SHA-256 fingerprint of the
installation's CA (the guest pins it on first contact). The token is an
HMAC-SHA256, under a key only this domain incarnation shares with the
installation, over the domain, the nonce and the expiry: it cannot be made or
altered without that key, and it is bound to the domain. The ticket is
recorded when it is made and marked used by the enrollment it allows: single
use. Provisioning states follow the secure-element model: S1 (no firmware
image assigned yet), S2 (an image, not personalized: no credential), S3
(personalized: an active credential).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MAX_TICKET_LIFETIME = timedelta(minutes=10)
URI_KEYS = ("enroll", "nonce", "expires", "token", "ca")
_HEX = frozenset("0123456789abcdef")


class ProvisioningState(StrEnum):
    S1 = "S1"
    S2 = "S2"
    S3 = "S3"


NEXT_STEP = {
    ProvisioningState.S1: "no firmware image is assigned yet: the image is prepared at the"
                          " first contact, then the guest enrolls",
    ProvisioningState.S2: "enroll with the bootstrap URI the admin gives"
                          " (vbios-client enroll URI --out BUNDLE)",
    ProvisioningState.S3: "personalized: renew the certificate before it expires"
                          " (vbios-client cert renew)",
}


def provisioning_state(*, has_firmware: bool, has_credential: bool) -> ProvisioningState:
    if not has_firmware:
        return ProvisioningState.S1
    return ProvisioningState.S3 if has_credential else ProvisioningState.S2


@dataclass(frozen=True)
class Ticket:
    """One bootstrap URI's content (what the guest brings back)."""

    domain_id: str
    nonce: str
    expires_at: datetime
    token: str

    @classmethod
    def issue(cls, domain_id: str, key: bytes, now: datetime,
              lifetime: timedelta = MAX_TICKET_LIFETIME) -> Ticket:
        if not timedelta(0) < lifetime <= MAX_TICKET_LIFETIME:
            raise ValueError(f"a bootstrap URI is valid for at most"
                             f" {MAX_TICKET_LIFETIME.seconds // 60} minutes")
        expires = (now + lifetime).replace(microsecond=0)
        nonce = secrets.token_hex(16)
        return cls(domain_id, nonce, expires, token_for(key, domain_id, nonce, expires))

    def refusal(self, key: bytes, now: datetime) -> str | None:
        """Why this ticket does not allow an enrollment now (its record aside)."""
        expected = token_for(key, self.domain_id, self.nonce, self.expires_at)
        if not hmac.compare_digest(expected, self.token):
            return "the enrollment token is not valid for this domain"
        if now >= self.expires_at:
            return "the bootstrap URI has expired: ask the admin for a new one"
        if self.expires_at - now > MAX_TICKET_LIFETIME + timedelta(seconds=5):
            return "the bootstrap URI claims a validity longer than allowed"
        return None

    def uri(self, server_url: str, ca_fingerprint: str) -> str:
        """The bootstrap URI: the server's address with the ticket and the CA pin."""
        parts = urlsplit(server_url)
        query = urlencode({"enroll": self.domain_id, "nonce": self.nonce,
                           "expires": str(int(self.expires_at.timestamp())),
                           "token": self.token, "ca": f"sha256:{ca_fingerprint}"},
                          safe=":")
        return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def token_for(key: bytes, domain_id: str, nonce: str, expires_at: datetime) -> str:
    message = f"vbios-enroll-v1|{domain_id}|{nonce}|{int(expires_at.timestamp())}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def domain_enrollment_key(installation_key: bytes, domain_id: str, incarnation: str) -> bytes:
    """The key one domain incarnation shares with the installation."""
    message = f"vbios-enroll-domain-v1|{domain_id}|{incarnation}".encode()
    return hmac.new(installation_key, message, hashlib.sha256).digest()


@dataclass(frozen=True)
class BootstrapUri:
    """A parsed bootstrap URI: where to enroll, the ticket, and the CA pin."""

    server_url: str
    ticket: Ticket
    ca_fingerprint: str


def parse_bootstrap_uri(uri: str) -> BootstrapUri:
    """ValueError naming what is wrong with ``uri``."""
    parts = urlsplit(uri.strip())
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError("a bootstrap URI starts with https://HOST:PORT/")
    fields = dict(parse_qsl(parts.query, keep_blank_values=True))
    missing = [key for key in URI_KEYS if not fields.get(key)]
    if missing:
        raise ValueError(f"the bootstrap URI lacks {', '.join(missing)}")
    fingerprint = fields["ca"].removeprefix("sha256:").lower()
    if len(fingerprint) != 64 or not set(fingerprint) <= _HEX:
        raise ValueError("the bootstrap URI's CA fingerprint is not a SHA-256 in hex")
    if not fields["expires"].isdigit() or len(fields["expires"]) > 12:
        raise ValueError("the bootstrap URI's expiry is not a time")
    expires = datetime.fromtimestamp(int(fields["expires"]), UTC)
    ticket = Ticket(fields["enroll"], fields["nonce"], expires, fields["token"])
    server = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))
    return BootstrapUri(server, ticket, fingerprint)
