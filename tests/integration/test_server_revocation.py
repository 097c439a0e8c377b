"""Revocation at the TLS handshake, in-process: a certificate revoked while the server
runs fails its next handshake (no restart), others still pass, and a damaged or stale
CRL never leaves the server without one."""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from bios_ws.bootstrap import bootstrap, initialize_home
from bios_ws.config import Config
from bios_ws.domain.principal import Principal
from bios_ws.home import Home
from bios_ws.pki import Authority, crl
from bios_ws.server.tls import ServerTls
from bios_ws.service.credentials import CredentialService
from tests.credentials_support import issue_bundle
from tests.integration.test_server_tls import client, handshake

ADMIN = Principal.admin("tests")


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return initialize_home(tmp_path / "home")


def serial(bundle: Path) -> int:
    return x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes()).serial_number


def revoke(home: Home, number: int) -> None:
    with bootstrap(Config.of(home)) as app:
        app.use(CredentialService).revoke(ADMIN, serial=number)


def refused_as_revoked(tls: ServerTls, bundle: Path, ca: Path) -> None:
    with pytest.raises(ssl.SSLError, match=r"(?i)revoked"):
        handshake(tls.context(), client(bundle, ca))


def test_a_new_home_has_a_crl_and_every_handshake_is_checked(home: Home) -> None:
    state = crl.CrlFile(home.crl_file, Authority.load(home).cert).read()
    assert state is not None and state.serials == frozenset()
    tls = ServerTls.of(home, home.key_passphrase("server"))
    assert tls.context().verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
    handshake(tls.context(), client(home.admin_dir, home.ca_cert))


def test_a_revocation_applies_from_the_next_handshake_without_a_restart(
    home: Home, tmp_path: Path,
) -> None:
    kept, gone = tmp_path / "kept", tmp_path / "gone"
    issue_bundle(home, "vm1", kept)
    issue_bundle(home, "vm1", gone)
    tls = ServerTls.of(home, home.key_passphrase("server"))
    handshake(tls.context(), client(gone, home.ca_cert))
    revoke(home, serial(gone))
    assert tls.is_revoked(serial(gone)) and not tls.is_revoked(serial(kept))
    refused_as_revoked(tls, gone, home.ca_cert)
    handshake(tls.context(), client(kept, home.ca_cert))
    handshake(tls.context(), client(home.admin_dir, home.ca_cert))


def test_a_damaged_crl_keeps_the_one_in_force_until_it_is_republished(
    home: Home, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    gone = tmp_path / "gone"
    issue_bundle(home, "vm1", gone)
    revoke(home, serial(gone))
    tls = ServerTls.of(home, home.key_passphrase("server"))
    home.crl_file.write_bytes(b"-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n")
    with caplog.at_level(logging.ERROR, logger="bios_ws.server.tls"):
        refused_as_revoked(tls, gone, home.ca_cert)
    assert "the previous one stays in force" in caplog.text
    with bootstrap(Config.of(home)) as app:  # what every worker's CRL keeper runs
        assert app.use(CredentialService).publish_revocations()
    refused_as_revoked(tls, gone, home.ca_cert)
    assert tls.is_revoked(serial(gone))


def test_an_expired_crl_fails_closed_so_the_service_re_signs_it_long_before(
    home: Home,
) -> None:
    authority = Authority.load(home)
    old = datetime.now(UTC) - crl.CRL_VALIDITY - timedelta(hours=1)
    home.crl_file.write_bytes(crl.build_crl(authority.issued, [], old))
    tls = ServerTls.of(home, home.key_passphrase("server"))
    with pytest.raises(ssl.SSLError, match=r"(?i)certificate expired"):
        handshake(tls.context(), client(home.admin_dir, home.ca_cert))
    aging = datetime.now(UTC) - crl.CRL_REFRESH_AFTER - timedelta(minutes=1)
    home.crl_file.write_bytes(crl.build_crl(authority.issued, [], aging))
    with bootstrap(Config.of(home)) as app:
        assert app.use(CredentialService).publish_revocations()  # a day old: re-signed
        assert not app.use(CredentialService).publish_revocations()  # fresh: left alone
    state = crl.CrlFile(home.crl_file, authority.cert).read()
    assert state is not None and state.next_update > datetime.now(UTC) + timedelta(days=6)
    handshake(tls.context(), client(home.admin_dir, home.ca_cert))
