"""The CRL: what it lists and its validity, when it is re-signed, and who may sign it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from bios_ws.errors import KeyUnreadable
from bios_ws.pki import certs
from bios_ws.pki.crl import (
    CRL_REFRESH_AFTER,
    CRL_VALIDITY,
    CrlFile,
    build_crl,
    parse_crl,
    publish,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CA = certs.make_ca(NOW)


def test_a_crl_lists_its_serials_with_their_times_and_is_valid_a_week() -> None:
    pem = build_crl(CA, [(5, NOW - timedelta(hours=1)), (2**159 - 1, NOW)], NOW)
    crl = x509.load_pem_x509_crl(pem)
    assert crl.is_signature_valid(CA.key.public_key())
    assert crl.get_revoked_certificate_by_serial_number(5).revocation_date_utc == \
        NOW - timedelta(hours=1)
    assert crl.next_update_utc == NOW + CRL_VALIDITY
    assert crl.last_update_utc < NOW
    state = parse_crl(pem, CA.cert)
    assert state.serials == {5, 2**159 - 1}


def test_crl_numbers_only_grow() -> None:
    first = x509.load_pem_x509_crl(build_crl(CA, [], NOW))
    second = x509.load_pem_x509_crl(build_crl(CA, [], NOW + timedelta(microseconds=1)))
    number = x509.CRLNumber
    assert (second.extensions.get_extension_for_class(number).value.crl_number
            > first.extensions.get_extension_for_class(number).value.crl_number)


def test_a_crl_of_another_ca_is_refused() -> None:
    other = certs.make_ca(NOW)
    with pytest.raises(ValueError, match="not signed by this installation's CA"):
        parse_crl(build_crl(other, [], NOW), CA.cert)


def test_refresh_when_the_list_changes_or_a_day_passed() -> None:
    state = parse_crl(build_crl(CA, [(1, NOW)], NOW), CA.cert)
    assert not state.needs_refresh(frozenset({1}), NOW)
    assert state.needs_refresh(frozenset({1, 2}), NOW)
    assert state.needs_refresh(frozenset(), NOW)
    assert state.needs_refresh(frozenset({1}), NOW + CRL_REFRESH_AFTER)
    assert timedelta(days=5) <= CRL_VALIDITY - CRL_REFRESH_AFTER  # far before it expires


def test_publish_writes_only_what_changed(tmp_path: Path) -> None:
    crl_file = CrlFile(tmp_path / "crl.pem", CA.cert)
    assert crl_file.read() is None
    assert publish(crl_file, CA, [(1, NOW)], NOW)
    written = crl_file.path.read_bytes()
    assert not publish(crl_file, CA, [(1, NOW)], NOW + timedelta(hours=1))
    assert crl_file.path.read_bytes() == written
    assert publish(crl_file, CA, [(1, NOW)], NOW + timedelta(hours=1), force=True)
    assert publish(crl_file, CA, [(1, NOW), (2, NOW)], NOW + timedelta(hours=2))
    state = crl_file.read()
    assert state is not None and state.serials == {1, 2}
    assert oct(crl_file.path.stat().st_mode & 0o777) == "0o644"


def test_a_damaged_crl_file_is_replaced(tmp_path: Path) -> None:
    crl_file = CrlFile(tmp_path / "crl.pem", CA.cert)
    crl_file.path.write_bytes(b"-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n")
    assert crl_file.read() is None
    assert publish(crl_file, CA, [], NOW)
    assert crl_file.read() is not None


def test_only_the_ca_of_the_file_signs_it(tmp_path: Path) -> None:
    crl_file = CrlFile(tmp_path / "crl.pem", CA.cert)
    with pytest.raises(KeyUnreadable):
        publish(crl_file, certs.make_ca(NOW), [], NOW)
    assert not crl_file.path.exists()


def test_concurrent_publishers_leave_one_whole_crl(tmp_path: Path) -> None:
    crl_file = CrlFile(tmp_path / "crl.pem", CA.cert)
    revoked = [(serial, NOW) for serial in range(1, 500)]
    errors: list[BaseException] = []

    def run(offset: int) -> None:
        try:
            for step in range(5):
                publish(crl_file, CA, revoked, NOW + timedelta(seconds=offset * 10 + step),
                        force=True)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    state = crl_file.read()
    assert state is not None and len(state.serials) == 499
    assert sorted(p.name for p in tmp_path.iterdir()) == [".crl.pem.lock", "crl.pem"]
