"""The signer certificates the admin trusts for firmware capsules (the trust anchors).

One record per certificate, keyed by the SHA-256 fingerprint of its DER encoding; the
store keeps them so that every server process and host on the store sees one set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class TrustedSigner:
    """A certificate the admin trusts to sign capsules (directly or as the chain's root)."""

    fingerprint: str  # SHA-256 of ``der``, lower-case hex
    der: bytes
    subject: str  # RFC 4514
    not_after: datetime
    added_at: datetime


def normalize_fingerprint(text: str) -> str | None:
    """``text`` as a fingerprint (lower-case hex, colons and case ignored), or None."""
    candidate = text.strip().replace(":", "").lower()
    return candidate if _FINGERPRINT.fullmatch(candidate) else None
