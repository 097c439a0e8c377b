"""Small helpers shared by the e2e tests (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from bios_ws.pki import certs


def free_port() -> int:
    """A loopback port nobody listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def foreign_ca_pem() -> bytes:
    """A CA certificate that has nothing to do with the installation."""
    return certs.cert_pem(certs.make_ca(datetime.now(UTC), "foreign CA").cert)
