"""vbios_client against a real `vbios serve` over mutual TLS on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import vbios_client as vc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.support import foreign_ca_pem
from tests.ports import closed_port

ServerProcess = Any  # tests/e2e/conftest.py: .url, .create_domain(name), .admin_bundle



SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def system_bundle() -> str:
    for path in SYSTEM_BUNDLES:
        if Path(path).is_file():
            return path
    import certifi  # requests depends on it

    return str(certifi.where())


def foreign_ca(directory: Path) -> Path:
    """A self-signed CA that has nothing to do with the installation."""
    path = directory / "foreign-ca.pem"
    path.write_bytes(foreign_ca_pem())
    return path


@pytest.fixture(scope="module")
def guest(vbios_server: ServerProcess) -> Path:
    return Path(vbios_server.create_domain("client-e2e"))


@pytest.fixture
def bios(vbios_server: ServerProcess, guest: Path) -> Iterator[vc.BiosClient]:
    with vc.BiosClient.from_bundle(vbios_server.url, guest, timeout=15) as client:
        yield client


def test_every_operation_over_mutual_tls(vbios_server: ServerProcess) -> None:
    bundle = vbios_server.create_domain("client-e2e-ops")
    with vc.BiosClient.from_bundle(vbios_server.url, bundle, timeout=15) as bios:
        registry = bios.get_attribute_registry()
        assert registry.lookup("BootTimeout").type == "Integer"
        start = bios.get_attributes()
        assert start.values["BootTimeout"] == registry.lookup("BootTimeout").default
        v = bios.set_attributes({"BootTimeout": 10, "NumLock": False},
                                expected_version=start.version)
        assert v == start.version + 1
        assert bios.get_attributes(["BootTimeout", "NumLock"]).values == {
            "BootTimeout": 10, "NumLock": False}
        v = bios.set_attributes({"BootMode": "Bios"}, apply_time="OnReset", expected_version=v)
        assert bios.get_pending_attributes().values == {"BootMode": "Bios"}
        v = bios.cancel_pending_attributes(expected_version=v)
        assert bios.get_pending_attributes().values == {}
        v = bios.reset_attributes_to_defaults(expected_version=v)
        assert bios.get_pending_attributes().values["BootTimeout"] == 5
        boot = bios.get_boot_order()
        order = list(reversed(boot.order))
        v = bios.set_boot_order(order, expected_version=v)
        v = bios.set_boot_next(order[0], expected_version=v)
        after = bios.get_boot_order()
        assert (after.version, after.order, after.boot_next) == (v, tuple(order), order[0])
        v = bios.change_password("SetupPassword", None, "e2e-setup-pw", expected_version=v)
        with pytest.raises(vc.PasswordRequired):
            bios.set_boot_next(None)
        v = bios.set_boot_next(None, expected_version=v, password="e2e-setup-pw")
        v = bios.change_password("SetupPassword", "e2e-setup-pw", "e2e-other-pw",
                                 expected_version=v)
        with pytest.raises(vc.InvalidPassword):
            bios.cancel_pending_attributes(password="e2e-setup-pw")
        v = bios.cancel_pending_attributes(expected_version=v, password="e2e-other-pw")
        v = bios.change_password("SetupPassword", "e2e-other-pw", "", expected_version=v)
        assert bios.get_attributes().setup_password_set is False
        v = bios.set_attributes({"AssetTag": ""}, expected_version=v)
        assert bios.get_attributes(["AssetTag"]).values == {"AssetTag": ""}
        assert bios.get_boot_order().version == v


def test_faults_over_the_wire(bios: vc.BiosClient) -> None:
    with pytest.raises(vc.ReadOnlyAttribute) as caught:
        bios.set_attributes({"BiosVersion": "6.6.6"})
    assert caught.value.attribute == "BiosVersion"
    with pytest.raises(vc.UnknownBootOption):
        bios.set_boot_next("Floppy.0")
    with pytest.raises(vc.VersionConflict):
        bios.set_attributes({"NumLock": True}, expected_version=10_000)


def test_admin_certificate_is_not_a_guest(vbios_server: ServerProcess) -> None:
    with vc.BiosClient.from_bundle(vbios_server.url, vbios_server.admin_bundle) as admin, \
            pytest.raises(vc.AccessDenied):
        admin.get_attributes()


def test_two_clients_holding_one_version_exactly_one_wins(
    vbios_server: ServerProcess, guest: Path
) -> None:
    first = vc.BiosClient.from_bundle(vbios_server.url, guest, timeout=15)
    second = vc.BiosClient.from_bundle(vbios_server.url, guest, timeout=15)
    version = first.get_attributes().version
    assert second.get_attributes().version == version
    barrier = threading.Barrier(2, timeout=15)
    outcomes: list[object] = []

    def write(client: vc.BiosClient, value: int) -> None:
        barrier.wait()
        try:
            outcomes.append(client.set_attributes({"BootTimeout": value},
                                                  expected_version=version))
        except vc.VbiosClientError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=write, args=(c, v)) for c, v in ((first, 20), (second, 25))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    first.close()
    second.close()
    wins = [o for o in outcomes if isinstance(o, int)]
    losses = [o for o in outcomes if isinstance(o, vc.VersionConflict)]
    assert len(wins) == 1 and len(losses) == 1, outcomes
    assert wins[0] == version + 1


def test_pinning_ignores_requests_env(
    vbios_server: ServerProcess, guest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The system bundle in the env must not replace the installation's CA ...
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", system_bundle())
    monkeypatch.setenv("CURL_CA_BUNDLE", system_bundle())
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with vc.BiosClient.from_bundle(vbios_server.url, guest, timeout=15) as bios:
        assert bios.get_attributes().version >= 1
    # ... and the installation's CA in the env must not rescue a client given another CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(guest / "ca.pem"))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(guest / "ca.pem"))
    with vc.BiosClient(vbios_server.url, guest / "cert.pem", guest / "key.pem",
                       foreign_ca(tmp_path), timeout=15) as bios, \
            pytest.raises(vc.TransportError, match="TLS"):
        bios.get_attributes()


def test_wrong_port_is_a_transport_error(guest: Path) -> None:
    with closed_port() as port, \
            vc.BiosClient.from_bundle(f"https://127.0.0.1:{port}/", guest, timeout=5) as bios, \
            pytest.raises(vc.TransportError, match="cannot connect"):
        bios.get_boot_order()


def test_silent_server_times_out(guest: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/"
        started = time.monotonic()
        with vc.BiosClient.from_bundle(url, guest, timeout=1.0) as bios, \
                pytest.raises(vc.TransportError, match="no answer within 1 s"):
            bios.get_attributes()
        assert time.monotonic() - started < 10


def test_server_without_client_certificate_is_refused(
    vbios_server: ServerProcess, guest: Path, tmp_path: Path
) -> None:
    """A client whose certificate the server's CA did not issue gets no answer."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "ca.pem").write_bytes((guest / "ca.pem").read_bytes())
    with vc.BiosClient.from_bundle(vbios_server.url, tmp_path, timeout=10) as bios, \
            pytest.raises(vc.TransportError):
        bios.get_attributes()
