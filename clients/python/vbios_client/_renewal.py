"""Renewal of the certificate of a client made from a bundle directory.

A renewal makes a fresh P-256 key here, asks ``RenewCertificate`` (over the
current mutual-TLS session) to certify it, checks the answer as enrollment does,
and replaces cert.pem and key.pem in the bundle directory (``_bundle``: each file
atomically, the pair finished by ``recover`` after a crash). The client then opens
a new session on the new files and makes one call with them: the server revokes
the old certificate at the new one's first use.

Automatic renewal happens once per client: before a call, when less than a third
of the certificate's lifetime (not before .. not after) remains. A bundle another
process renewed meanwhile is not renewed again: its new files are used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from vbios_client import _bundle
from vbios_client._channel import SoapChannel
from vbios_client.exceptions import BundleError
from vbios_client.models import IssuedBundle

_UTC = timezone.utc  # noqa: UP017 - the client distribution still supports Python 3.10
log = logging.getLogger("vbios_client")

#: Renew when less than this fraction of the certificate's lifetime remains.
RENEW_WHEN_LEFT = 1 / 3


def utc_now() -> datetime:
    return datetime.now(_UTC)


def renew_at(not_before: datetime, not_after: datetime) -> datetime:
    """When less than a third of a certificate's lifetime remains."""
    return not_after - (not_after - not_before) * RENEW_WHEN_LEFT


class BundleRenewal:
    """The renewal state of one client over the bundle directory ``bundle``."""

    def __init__(self, bundle: Path, *, automatic: bool,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.bundle = bundle
        self.clock = clock
        #: What this client's last renewal wrote (None before any).
        self.renewed: IssuedBundle | None = None
        self._pending = automatic
        self._renew_at: datetime | None = None
        if automatic:
            try:
                self._renew_at = renew_at(*_bundle.certificate_validity(bundle / "cert.pem"))
            except BundleError as exc:  # the call itself will say what is wrong
                log.debug("no automatic renewal: %s", exc)

    def due(self) -> bool:
        """Whether to renew automatically now (true at most once per client)."""
        if not self._pending or self._renew_at is None or self.clock() < self._renew_at:
            return False
        self._pending = False
        return True

    def renew(self, channel: SoapChannel, *, only_if_due: bool = False
              ) -> IssuedBundle | None:
        """Renew over ``channel`` and replace the bundle's pair; None if ``only_if_due``
        and the bundle's certificate is no longer due (another process renewed it)."""
        from vbios_client.enrollment import (  # cryptography: only to renew
            certificate_request,
            check_issued,
            domain_of,
            issued_bundle,
            new_private_key,
        )

        self._pending = False  # one renewal per client, asked for or automatic
        with _bundle.locked(self.bundle):
            current = _bundle.load_certificate(self.bundle / "cert.pem")
            if only_if_due and self.clock() < renew_at(current.not_valid_before_utc,
                                                        current.not_valid_after_utc):
                log.info("the bundle %s was renewed meanwhile: using it", self.bundle)
                return None
            domain = domain_of(current)
            ca = _bundle.load_certificate(self.bundle / "ca.pem")
            key = new_private_key()
            answer = channel.call("RenewCertificate",
                                  CertificateRequest=certificate_request(key, domain))
            cert = check_issued(answer, key, ca, domain)
            _bundle.replace_pair(self.bundle, _bundle.cert_pem(cert), _bundle.key_pem(key))
        self.renewed = issued_bundle(cert, self.bundle)
        return self.renewed
