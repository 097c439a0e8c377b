"""Small helpers shared by the e2e tests (fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from bios_ws.pki import certs


def foreign_ca_pem() -> bytes:
    """A CA certificate that has nothing to do with the installation."""
    return certs.cert_pem(certs.make_ca(datetime.now(UTC), "foreign CA").cert)
