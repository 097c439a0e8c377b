"""Renewal by the guest library, asked for and automatic, against the real application
in-process (``tests.enroll_support``): the pair replaced in place, the old certificate
revoked once the new one is used, a short-lived certificate renewed once by itself,
and a renewal a crash interrupted finished at the next start."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from datetime import timedelta
from pathlib import Path

import pytest
import vbios_client as vc
from cryptography import x509
from vbios_client import _bundle

from bios_ws.errors import AccessDenied as ServerAccessDenied
from bios_ws.service.enrollment import EnrollmentService
from tests.enroll_support import URL, InProcessServer, server

__all__ = ["server"]

#: Guest certificates are backdated 5 minutes: one valid for a minute more has less
#: than a third of its lifetime left from the start.
SHORT = timedelta(minutes=1)


def serial(bundle: Path) -> int:
    return x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes()).serial_number


def enrolled(server: InProcessServer, out: Path) -> Path:
    vc.enroll(server.bootstrap_uri("vm1"), out)
    server.seen.clear()
    return out


def old_copy(bundle: Path, where: Path) -> Path:
    shutil.copytree(bundle, where)
    return where


def test_renewal_replaces_the_pair_and_revokes_the_old_certificate_at_the_first_use(
        server: InProcessServer, tmp_path: Path) -> None:
    bundle = enrolled(server, tmp_path / "bundle")
    before = old_copy(bundle, tmp_path / "before")
    with vc.BiosClient.from_bundle(URL, bundle) as bios:
        issued = bios.renew_certificate()
        assert bios.renewed == issued
        assert bios.get_power_state().power_state  # the client works on, with the new pair
    assert issued.path == bundle and issued.serial == f"{serial(bundle):X}" != \
        f"{serial(before):X}"
    assert (bundle / "ca.pem").read_bytes() == (before / "ca.pem").read_bytes()
    assert (bundle / "key.pem").read_bytes() != (before / "key.pem").read_bytes()
    assert stat.S_IMODE((bundle / "key.pem").stat().st_mode) == 0o600
    assert sorted(p.name for p in bundle.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    old, new = serial(before), serial(bundle)
    assert [(s.action, s.serial) for s in server.seen] == [
        ("RenewCertificate", old), ("GetProvisioningState", new), ("GetPowerState", new)]
    with vc.BiosClient.from_bundle(URL, before, auto_renew=False) as stale, \
            pytest.raises(vc.AccessDenied, match="revoked"):
        stale.get_attributes()


def test_only_a_client_made_from_a_bundle_renews(server: InProcessServer,
                                                 tmp_path: Path) -> None:
    bundle = enrolled(server, tmp_path / "bundle")
    with vc.BiosClient(URL, bundle / "cert.pem", bundle / "key.pem", bundle / "ca.pem") as bios, \
            pytest.raises(ValueError, match="from_bundle"):
        bios.renew_certificate()


def test_a_short_lived_certificate_is_renewed_by_itself_once(server: InProcessServer,
                                                              tmp_path: Path) -> None:
    server.set_guest_validity(SHORT)
    bundle = enrolled(server, tmp_path / "bundle")
    old = serial(bundle)
    with vc.BiosClient.from_bundle(URL, bundle) as bios:
        assert server.seen == []  # nothing happens before the first call
        bios.get_attributes()
        renewed = bios.renewed
        assert renewed is not None and renewed.serial == f"{serial(bundle):X}"
        # the new certificate is short-lived too: still renewed once only
        bios.get_attributes()
        bios.get_boot_order()
    new = serial(bundle)
    assert [(s.action, s.serial) for s in server.seen] == [
        ("RenewCertificate", old), ("GetProvisioningState", new), ("GetAttributes", new),
        ("GetAttributes", new), ("GetBootOrder", new)]


def test_automatic_renewal_can_be_turned_off(server: InProcessServer, tmp_path: Path) -> None:
    server.set_guest_validity(SHORT)
    bundle = enrolled(server, tmp_path / "bundle")
    old = serial(bundle)
    with vc.BiosClient.from_bundle(URL, bundle, auto_renew=False) as bios:
        bios.get_attributes()
        assert bios.renewed is None
    assert serial(bundle) == old and server.actions() == ["GetAttributes"]


def test_a_long_lived_client_renews_before_the_call_that_finds_it_due(
        server: InProcessServer, tmp_path: Path) -> None:
    bundle = enrolled(server, tmp_path / "bundle")
    cert = x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes())
    with vc.BiosClient.from_bundle(URL, bundle) as bios:
        bios.get_attributes()
        assert bios.renewed is None
        later = cert.not_valid_after_utc - timedelta(days=9)
        bios._renewal.clock = lambda: later  # type: ignore[union-attr]
        bios.get_attributes()
        assert bios.renewed is not None
    assert server.actions() == ["GetAttributes", "RenewCertificate", "GetProvisioningState",
                                "GetAttributes"]


def test_a_failed_automatic_renewal_keeps_the_current_certificate(
        server: InProcessServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    server.set_guest_validity(SHORT)
    bundle = enrolled(server, tmp_path / "bundle")
    before = old_copy(bundle, tmp_path / "before")

    def refuse(*_: object, **__: object) -> None:
        raise ServerAccessDenied("renewals are closed today")

    monkeypatch.setattr(EnrollmentService, "renew", refuse)
    with caplog.at_level(logging.WARNING, logger="vbios_client"), \
            vc.BiosClient.from_bundle(URL, bundle) as bios:
        assert bios.get_attributes().version == 1
        assert bios.renewed is None
        bios.get_attributes()
    assert "automatic renewal" in caplog.text and "renewals are closed today" in caplog.text
    assert server.actions() == ["RenewCertificate", "GetAttributes", "GetAttributes"]
    for name in _bundle.BUNDLE_FILES:
        assert (bundle / name).read_bytes() == (before / name).read_bytes()


def test_a_bundle_another_process_renewed_meanwhile_is_used_not_renewed_again(
        server: InProcessServer, tmp_path: Path) -> None:
    server.set_guest_validity(SHORT)
    bundle = enrolled(server, tmp_path / "bundle")
    with vc.BiosClient.from_bundle(URL, bundle) as first, \
            vc.BiosClient.from_bundle(URL, bundle) as second:
        server.set_guest_validity(timedelta(days=30))
        first.get_attributes()  # renews: the new certificate is not due
        renewed = serial(bundle)
        second.get_attributes()  # due by what it read at start, but the files say no
        assert second.renewed is None
    assert serial(bundle) == renewed
    assert server.actions() == ["RenewCertificate", "GetProvisioningState", "GetAttributes",
                                "GetAttributes"]
    assert {s.serial for s in server.seen[1:]} == {renewed}


def test_a_crash_between_the_two_renames_is_finished_at_the_next_start(
        server: InProcessServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = enrolled(server, tmp_path / "bundle")
    old_key = (bundle / "key.pem").read_bytes()
    replace = os.replace

    def crash_at_the_certificate(source: os.PathLike[str] | str,
                                 target: os.PathLike[str] | str) -> None:
        if Path(target).name == "cert.pem":
            raise OSError(5, "Input/output error")
        replace(source, target)

    monkeypatch.setattr(_bundle.os, "replace", crash_at_the_certificate)
    with vc.BiosClient.from_bundle(URL, bundle) as bios, \
            pytest.raises(vc.BundleError, match="cannot replace"):
        bios.renew_certificate()
    monkeypatch.setattr(_bundle.os, "replace", replace)
    assert (bundle / "key.pem").read_bytes() != old_key and (bundle / "cert.pem.new").exists()

    with vc.BiosClient.from_bundle(URL, bundle) as bios:
        assert sorted(p.name for p in bundle.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
        assert bios.get_provisioning_state().state == "S3"
    assert server.seen[-1].serial == serial(bundle)


def test_a_renewal_that_never_reached_its_renames_is_dropped(
        server: InProcessServer, tmp_path: Path) -> None:
    bundle = enrolled(server, tmp_path / "bundle")
    before = old_copy(bundle, tmp_path / "before")
    (bundle / "key.pem.new").write_bytes(b"half a key")
    with vc.BiosClient.from_bundle(URL, bundle, auto_renew=False) as bios:
        bios.get_attributes()
    assert sorted(p.name for p in bundle.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    for name in _bundle.BUNDLE_FILES:
        assert (bundle / name).read_bytes() == (before / name).read_bytes()


def test_an_admin_issued_bundle_renews_too(server: InProcessServer, tmp_path: Path) -> None:
    from tests.credentials_support import issue_bundle

    bundle = tmp_path / "issued"
    issue_bundle(server.home, "vm1", bundle)
    with vc.BiosClient.from_bundle(URL, bundle) as bios:
        issued = bios.renew_certificate()
    assert issued.domain == "vm1" and issued.serial == f"{serial(bundle):X}"
