"""Bootstrap URIs: the ticket's token, expiry and binding; the URI round trip; the
provisioning states; the rate limit (no I/O)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bios_ws.domain.enrollment import (
    MAX_TICKET_LIFETIME,
    ProvisioningState,
    Ticket,
    domain_enrollment_key,
    parse_bootstrap_uri,
    provisioning_state,
)
from bios_ws.domain.limits import MAX_KEYS, RateLimiter

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
KEY = domain_enrollment_key(b"installation-secret", "g1", "0123456789abcdef")
PIN = "ab" * 32


def test_a_fresh_ticket_is_valid_until_it_expires() -> None:
    ticket = Ticket.issue("g1", KEY, NOW)
    assert ticket.expires_at == NOW + MAX_TICKET_LIFETIME
    assert len(ticket.nonce) == 32 and len(ticket.token) == 64
    assert ticket.refusal(KEY, NOW) is None
    assert ticket.refusal(KEY, ticket.expires_at - timedelta(seconds=1)) is None
    assert "expired" in str(ticket.refusal(KEY, ticket.expires_at))


@pytest.mark.parametrize("lifetime", [timedelta(0), timedelta(minutes=11), -MAX_TICKET_LIFETIME])
def test_a_ticket_lives_at_most_ten_minutes(lifetime: timedelta) -> None:
    with pytest.raises(ValueError, match="at most 10 minutes"):
        Ticket.issue("g1", KEY, NOW, lifetime)


@pytest.mark.parametrize("change", [
    {"domain_id": "g2"}, {"nonce": "0" * 32}, {"token": "f" * 64},
    {"expires_at": NOW + timedelta(minutes=5)},
], ids=["other-domain", "other-nonce", "forged-token", "moved-expiry"])
def test_a_tampered_ticket_is_refused(change: dict[str, object]) -> None:
    ticket = dataclasses.replace(Ticket.issue("g1", KEY, NOW), **change)  # type: ignore[arg-type]
    assert ticket.refusal(KEY, NOW) == "the enrollment token is not valid for this domain"


def test_another_incarnation_has_another_key() -> None:
    ticket = Ticket.issue("g1", KEY, NOW)
    other = domain_enrollment_key(b"installation-secret", "g1", "fedcba9876543210")
    assert ticket.refusal(other, NOW) is not None
    assert domain_enrollment_key(b"another-installation", "g1", "0123456789abcdef") != KEY


def test_the_uri_round_trips() -> None:
    ticket = Ticket.issue("g1", KEY, NOW)
    uri = ticket.uri("https://vbios.example:8443/", PIN)
    assert uri.startswith("https://vbios.example:8443/?enroll=g1&nonce=")
    assert uri.endswith(f"&ca=sha256:{PIN}")  # readable: the pin is not percent-encoded
    parsed = parse_bootstrap_uri(uri)
    assert parsed.ticket == ticket
    assert parsed.server_url == "https://vbios.example:8443/"
    assert parsed.ca_fingerprint == PIN


@pytest.mark.parametrize(("uri", "reason"), [
    ("http://h:1/?enroll=g1", "starts with https://"),
    ("https://h:1/?enroll=g1&nonce=n&expires=1&token=t", "lacks ca"),
    ("https://h:1/?enroll=g1&nonce=n&expires=1&token=t&ca=sha256:zz", "not a SHA-256"),
    (f"https://h:1/?enroll=g1&nonce=n&expires=soon&token=t&ca=sha256:{PIN}", "not a time"),
])
def test_malformed_uris_are_refused(uri: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_bootstrap_uri(uri)


def test_provisioning_states() -> None:
    assert provisioning_state(has_firmware=False, has_credential=False) is ProvisioningState.S1
    assert provisioning_state(has_firmware=True, has_credential=False) is ProvisioningState.S2
    assert provisioning_state(has_firmware=True, has_credential=True) is ProvisioningState.S3


def test_the_rate_limit_slides_and_is_per_key() -> None:
    limiter = RateLimiter(3, timedelta(minutes=1))
    assert [limiter.allow("a", NOW) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", NOW)
    assert not limiter.allow("a", NOW + timedelta(seconds=59))
    assert limiter.allow("a", NOW + timedelta(minutes=1))


def test_the_rate_limit_forgets_the_oldest_keys_first() -> None:
    limiter = RateLimiter(1, timedelta(minutes=1))
    assert limiter.allow("first", NOW)
    for n in range(MAX_KEYS):
        limiter.allow(f"k{n}", NOW)
    assert limiter.allow("first", NOW)  # forgotten: a flood of sources stays bounded
