"""gSOAP 2.8 (C++): a client generated from the committed WSDL by wsdl2h and soapcpp2,
built with OpenSSL, calls every guest operation and admin operations over mutual TLS;
what it read is compared with the Python guest library's reading of the same domain, and
the firmware update it made with the server's store.

Nothing is cached: generating and compiling the proxy (-O0, three translation units in
parallel) takes a few seconds. See tests/interop/gsoap/README.md.
"""

from __future__ import annotations

import secrets
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import vbios_client as vc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from vbios_client.attestation import QuoteEvidence, verify_quote
from vbios_client.enrollment import certificate_request

from tests.firmware_support import Signers
from tests.interop.conftest import Deployment, Guest, run_step
from tests.interop.contract import WSDL_PATH, check_coverage
from tests.interop.materials import CHUNK_SIZE, db_certificate, firmware_capsule
from tests.interop.scenario import (
    EVENTS_EXPIRES_IN,
    EVENTS_RENEW_IN,
    EVENTS_WAIT,
    WATCHDOG_SECONDS,
    EventsSeen,
    FirmwareSeen,
    SystemSeen,
    check_events,
    check_firmware,
    check_system,
)

CLIENT_DIR = Path(__file__).parent / "gsoap"
#: Our program: copied next to the generated code.
CLIENT_FILES = ("client.cpp", "support.h")
TOOLS = ("wsdl2h", "soapcpp2", "g++", "pkg-config")
SOAP11_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
#: The translation units of the program: the generated serializers and proxy, ours.
SOURCES = ("soapC.cpp", "soapVbiosServiceProxy.cpp", "client.cpp")


def build_client(work: Path, wsdl: Path) -> Path:
    """wsdl2h and soapcpp2 on the committed WSDL in ``work``, then the program."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"gSOAP toolchain missing: {', '.join(missing)} (Debian packages gsoap,"
                    " libgsoap-dev, g++, pkg-config: make interop-deps)")
    run_step(["wsdl2h", "-o", "vbios.h", str(wsdl)], cwd=work, what="wsdl2h")
    # -j C++ proxy classes sharing a soap context, -C client side only, -x no sample
    # messages, -L no soapClientLib.cpp, -w no WSDL/schema written back
    run_step(["soapcpp2", "-j", "-C", "-x", "-L", "-w", "vbios.h"], cwd=work,
             what="soapcpp2")
    for name in CLIENT_FILES:
        shutil.copy(CLIENT_DIR / name, work / name)
    # The flags libgsoapssl++ was built with (WITH_OPENSSL, WITH_GZIP, WITH_DOM,
    # WITH_IPV6): struct soap must have the library's layout.
    flags = run_step(["pkg-config", "--cflags", "--libs", "gsoapssl++"], cwd=work,
                     what="pkg-config gsoapssl++").stdout.split()
    cflags = [f for f in flags if f.startswith("-D")]
    libs = [f for f in flags if not f.startswith("-D")]

    def compile_unit(source: str) -> str:
        obj = source.replace(".cpp", ".o")
        run_step(["g++", "-O0", "-c", *cflags, "-I.", source, "-o", obj], cwd=work,
                 what=f"g++ {source}")
        return obj

    with ThreadPoolExecutor(max_workers=len(SOURCES)) as pool:
        objects = list(pool.map(compile_unit, SOURCES))
    run_step(["g++", "-o", "client", *objects, *libs, "-lssl", "-lcrypto"], cwd=work,
             what="link")
    return work / "client"




def key_and_cert(bundle: Guest, path: Path) -> Path:
    """gSOAP reads the client's key and certificate from one PEM file."""
    path.write_bytes(bundle.key.read_bytes() + bundle.cert.read_bytes())
    path.chmod(0o600)
    return path


def parse(output: str, kind: str) -> dict[str, str]:
    """``KIND key=value`` lines of the program's output."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith(f"{kind} "):
            key, _, value = line[len(kind) + 1:].partition("=")
            found[key] = value
    return found


def prefixed(values: dict[str, str], prefix: str) -> dict[str, str]:
    """The values whose key starts with ``prefix``, by the rest of the key."""
    return {key.removeprefix(prefix): value for key, value in values.items()
            if key.startswith(prefix)}


def wire_text(value: object) -> str:
    """A value as the program prints it (C++ boolalpha)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.fixture(scope="module")
def gsoap_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The program, built once for the local and the routed run."""
    return build_client(tmp_path_factory.mktemp("gsoap-build"), WSDL_PATH)


def test_gsoap_client_calls_every_guest_operation(deployment: Deployment,
                                                  capsule_signers: Signers,
                                                  gsoap_client: Path, tmp_path: Path) -> None:
    guest = deployment.new_guest("gsoap")
    client = gsoap_client
    sb_sha = db_certificate(tmp_path / "db.pem", "gsoap interop db key").sha256
    renewal_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "renew.csr").write_bytes(certificate_request(renewal_key, guest.domain))
    nonce = secrets.token_bytes(32)
    capsule = firmware_capsule(tmp_path / "update.cap", capsule_signers)
    out = tmp_path / "out"
    out.mkdir()
    done = run_step([str(client), f"url={deployment.url}", f"ca={guest.ca}",
                     f"guest={key_and_cert(guest, tmp_path / 'guest.pem')}",
                     f"admin={key_and_cert(deployment.admin, tmp_path / 'admin.pem')}",
                     f"domain={guest.domain}", f"sbcert={tmp_path / 'db.pem'}",
                     f"sbcert_sha256={sb_sha}", f"csr={tmp_path / 'renew.csr'}",
                     f"nonce={nonce.hex()}", f"capsule={capsule.path}",
                     f"chunk_size={CHUNK_SIZE}", f"watchdog_seconds={WATCHDOG_SECONDS}",
                     f"events_expires_in={EVENTS_EXPIRES_IN}",
                     f"events_renew_in={EVENTS_RENEW_IN}", f"events_wait={EVENTS_WAIT}",
                     f"out={out}"], cwd=tmp_path, what="gSOAP client")
    check_coverage("gsoap", done.stdout)
    got = parse(done.stdout, "VALUE")
    fault = parse(done.stdout, "FAULT")

    # SOAP 1.1 on the wire (the WSDL binds SOAP 1.1 only)
    assert got["request.envelope_ns"] == SOAP11_ENVELOPE
    assert got["request.content_type"].startswith("text/xml")
    # the typed fault: SOAP 1.1 Client fault, VbiosFaultDetail read into its struct
    assert fault["Code"] == "VersionConflict", fault
    assert fault["faultcode"] == "SOAP-ENV:Client" and fault["Message"]

    with vc.BiosClient.from_bundle(deployment.url, guest.bundle, timeout=30,
                                   auto_renew=False) as bios:
        registry = bios.get_attribute_registry()
        attributes = bios.get_attributes()
        pending = bios.get_pending_attributes()
        boot = bios.get_boot_order()
        power = bios.get_power_state()
        secure_boot = bios.get_secure_boot()
        databases = bios.get_secure_boot_databases()
        measurements = bios.get_boot_measurements()
        integrity = bios.get_integrity_status()
        reference = bios.get_reference_measurements()
        provisioning = bios.get_provisioning_state()

    timeout = registry.lookup("BootTimeout")
    assert (got["registry.version"], int(got["registry.count"])) == (
        registry.version, len(registry.attributes))
    assert (got["registry.BootTimeout.type"], got["registry.BootTimeout.default"]) == (
        timeout.type, str(timeout.default))
    # SetAttributes of an Integer, a Boolean and a String, read back through both stacks
    assert int(got["set.version"]) == int(got["start.version"]) + 1
    assert (got["after_set.NumLock"], got["after_set.AssetTag"]) == ("false", "gsoap-interop")
    assert attributes.values["BootTimeout"] == int(got["after_set.BootTimeout"])
    assert got["pending.BootMode"] in registry.lookup("BootMode").allowed_values
    assert got["pending.BootMode"] != got["after_set.BootMode"]
    assert got["defaults_pending.BootTimeout"] == str(timeout.default)
    assert got["cancelled.pending_count"] == "0"
    assert prefixed(got, "final.attr.") == {
        name: wire_text(value) for name, value in attributes.values.items()}
    # pending at the end: the Secure Boot switch the guest turned (SetSecureBoot)
    assert prefixed(got, "final.pending.") == {
        name: wire_text(value) for name, value in pending.values.items()}
    assert "SecureBoot" in pending.values
    assert int(got["final.version"]) == attributes.version == boot.version
    assert got["final.setup_password_set"] == wire_text(attributes.setup_password_set)
    assert got["final.boot.order"] == ",".join(boot.order)
    assert got["final.boot.next"] == (boot.boot_next or "none")
    # power: the guest's Reset On and the admin's GetDomainPowerState
    assert got["power.before"] == "Off"
    assert got["reset.power_state"] in ("PoweringOn", "On")
    assert (got["admin.machine"], got["admin.power_state"] in ("PoweringOn", "On")) == (
        "simulated", True)
    assert power.power_state in ("PoweringOn", "On")
    # Secure Boot: the guest's switch (pending), the admin's db certificate added, removed
    assert got["final.secureboot.enabled"] == wire_text(secure_boot.enabled)
    assert got["final.secureboot.mode"] == secure_boot.mode
    assert got["final.secureboot.pending"] == wire_text(secure_boot.pending_enabled)
    assert secure_boot.pending_enabled is (not secure_boot.enabled)
    # the admin's certificate is in the db the guest reads (B's, for a routed domain)
    assert sb_sha in got["added.db"].split(",")
    for name, certificates in databases.items():
        assert got[f"final.db.{name}"] == ",".join(c.sha256 for c in certificates)
    assert sb_sha not in got["final.db.db"]
    # attestation: PCRs, and the quote's bytes as gSOAP decoded them verify here
    assert got["measurements.bank"] == got["quote.bank"] == measurements.bank == "sha256"
    assert int(got["measurements.events"]) == len(measurements.events)
    assert int(got["measurements.event_log_bytes"]) == len(measurements.event_log)
    quoted = {int(index): bytes.fromhex(value)
              for index, value in prefixed(got, "quote.pcr.").items()}
    assert sorted(quoted) == list(range(8))
    assert all(measurements.pcrs[index] == value for index, value in quoted.items())
    evidence = QuoteEvidence(
        attest=(out / "quote.attest").read_bytes(),
        signature=(out / "quote.signature").read_bytes(), bank=got["quote.bank"],
        pcrs=quoted, ak_certificate=(out / "quote.ak.der").read_bytes(),
        event_log=(out / "quote.eventlog").read_bytes())
    verdict = verify_quote(evidence, nonce=nonce, ca_pem=guest.ca.read_bytes())
    assert verdict.trusted, verdict.failures
    assert got["integrity.state"] == ("Trusted" if integrity.trusted else "Untrusted")
    assert got["integrity.restricted"] == wire_text(integrity.restricted)
    assert got["integrity.bank"] == integrity.bank
    assert got["diagnostics.state"] == got["integrity.state"]
    assert int(got["diagnostics.audit_entries"]) > 0
    assert got["reference.digest"] == (reference.digest if reference else "none")
    # the firmware update: every chunk, the job waiting for the next reset
    check_firmware(deployment, guest.domain, capsule,
                   FirmwareSeen.of(prefixed(got, "firmware.")))
    # system management and thermal: what it read and changed, against the store
    check_system(deployment, guest.domain, SystemSeen.of(prefixed(got, "system.")))
    # the events the Reset published, from the Subscribe's cursor, against the store
    check_events(deployment, guest.domain, EventsSeen.of(prefixed(got, "events.")))
    # the credential: the state, then a renewal for the test's key that works
    assert (got["provisioning.state"], got["provisioning.next_step"]) == (
        provisioning.state, provisioning.next_step)
    check_renewal(deployment, guest, out / "renewed.der", renewal_key, got, tmp_path)
    deployment.check_routed_calls(guest.domain)  # the routed run: B answered them


def check_renewal(deployment: Deployment, guest: Guest, der: Path,
                  key: ec.EllipticCurvePrivateKey, got: dict[str, str],
                  tmp_path: Path) -> None:
    """The certificate RenewCertificate returned is for ``key``, with the serial the
    program printed, and the server accepts it (which revokes the old one)."""
    renewed = x509.load_der_x509_certificate(der.read_bytes())
    assert format(renewed.serial_number, "X") == got["renewed.serial"]
    assert renewed.public_key().public_numbers() == key.public_key().public_numbers()
    bundle = tmp_path / "renewed-bundle"
    bundle.mkdir()
    (bundle / "cert.pem").write_bytes(renewed.public_bytes(serialization.Encoding.PEM))
    (bundle / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (bundle / "ca.pem").write_bytes(guest.ca.read_bytes())
    with vc.BiosClient.from_bundle(deployment.url, bundle, timeout=30,
                                   auto_renew=False) as bios:
        assert bios.get_provisioning_state().state == got["provisioning.state"]
