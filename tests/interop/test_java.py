"""JAX-WS RI (Debian's jaxws, wsimport 2.3) on OpenJDK: a client generated from the
committed WSDL with wsimport's default options, compiled with javac, run over mutual TLS
against the interop server; the firmware update it made is checked against the server's
store. See tests/interop/java/README.md."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import shutil
import ssl
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import vbios_client as vc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from vbios_client.attestation import QuoteEvidence, verify_quote

from tests.e2e.support import foreign_ca_pem
from tests.firmware_support import Signers
from tests.interop.conftest import Deployment, Guest, run_step
from tests.interop.contract import WSDL_PATH, check_coverage, wsdl_operations
from tests.interop.materials import (
    CHUNK_SIZE,
    db_certificate,
    firmware_capsule,
    write_pkcs12,
)
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

JAVA_DIR = Path(__file__).resolve().parent / "java"
#: The JAX-WS RI runtime; its manifest's Class-Path brings JAXB, SAAJ, streambuffer, ...
JAXWS_RT = Path("/usr/share/java/jaxws-rt.jar")
TOOLS = ("wsimport", "javac", "java")
DOMAIN = "interop-java"
QUOTE_PCRS = (0, 1, 2, 3, 4, 5, 6, 7)
SB_CN = "bios-ws jaxws interop db key"


def require_toolchain() -> dict[str, str]:
    """The toolchain's programs; fails (never skips) when one is missing."""
    found = {tool: shutil.which(tool) for tool in TOOLS}
    missing = [tool for tool, path in found.items() if path is None]
    if missing or not JAXWS_RT.is_file():
        pytest.fail(f"JAX-WS toolchain missing ({', '.join(missing) or JAXWS_RT}): "
                    "run `make interop-deps` (Debian packages jaxws, default-jdk-headless)")
    return {tool: str(path) for tool, path in found.items()}


def generate_and_compile(tools: dict[str, str], wsdl: Path, work: Path) -> Path:
    """wsimport (default options) into ``work``, then javac the client; the classes dir."""
    src, classes = work / "src", work / "classes"
    src.mkdir()
    classes.mkdir()
    done = run_step([tools["wsimport"], "-keep", "-s", str(src), "-d", str(classes),
                     str(wsdl)], cwd=work, what="wsimport")
    said = done.stdout + done.stderr
    assert "[ERROR]" not in said, said
    sei = (src / "ws" / "bios" / "vbios" / "v1" / "VbiosService.java").read_text()
    methods = set(re.findall(r"public \S+ (\w+)\(", sei))
    missing = [op for op in wsdl_operations() if op[0].lower() + op[1:] not in methods]
    assert not missing, f"wsimport generated no method for {missing}"
    sources = sorted(str(path) for path in JAVA_DIR.glob("*.java"))
    run_step([tools["javac"], "-encoding", "UTF-8", "-Xlint:all,-path", "-Werror", "-cp",
              f"{classes}:{JAXWS_RT}", "-d", str(classes), *sources], cwd=work,
             what="javac of tests/interop/java")
    return classes






@pytest.fixture(scope="module")
def jaxws_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated and compiled client, once for the local and the routed run."""
    return generate_and_compile(require_toolchain(), WSDL_PATH,
                                tmp_path_factory.mktemp("jaxws-build"))


def renewal_request(path: Path, domain: str) -> ec.EllipticCurvePrivateKey:
    """A PKCS#10 request (DER) for a fresh key, as RenewCertificate wants it; the key."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
           .sign(key, hashes.SHA256()))
    path.write_bytes(csr.public_bytes(serialization.Encoding.DER))
    return key


def parse_values(output: str) -> dict[str, str]:
    pairs = (line[len("VALUE "):].split("=", 1) for line in output.splitlines()
             if line.startswith("VALUE "))
    return {key: value for key, value in pairs}


def as_text(value: object) -> str:
    """A Python value as the Java client prints it (null: <null>)."""
    if value is None:
        return "<null>"
    return str(value).lower() if isinstance(value, bool) else str(value)


def renewed_bundle(guest: Guest, certificate_der: bytes, key: ec.EllipticCurvePrivateKey,
                   directory: Path) -> Path:
    """A bundle of the renewed certificate, the fresh key and the CA."""
    directory.mkdir()
    cert = x509.load_der_x509_certificate(certificate_der)
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (directory / "ca.pem").write_bytes(guest.ca.read_bytes())
    return directory


def server_names(url: str) -> tuple[set[str], set[str]]:
    """The DNS names and IP addresses of the certificate the server at ``url`` presents."""
    split = urlsplit(url)
    assert split.hostname is not None and split.port is not None
    pem = ssl.get_server_certificate((split.hostname, split.port))
    san = x509.load_pem_x509_certificate(pem.encode()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    return (set(san.get_values_for_type(x509.DNSName)),
            {str(ip) for ip in san.get_values_for_type(x509.IPAddress)})


def run_client(tools: dict[str, str], classes: Path, settings: dict[str, str],
               path: Path) -> subprocess.CompletedProcess[str]:
    """The compiled Client with ``settings`` (a properties file at ``path``)."""
    path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    return run_step([tools["java"], "-cp", f"{classes}:{JAXWS_RT}", "Client", str(path)],
                    cwd=path.parent, what="the JAX-WS client")


def test_jaxws_client_over_mutual_tls(deployment: Deployment, capsule_signers: Signers,
                                      jaxws_classes: Path, tmp_path: Path) -> None:
    tools = require_toolchain()
    classes = jaxws_classes
    guest = deployment.new_guest(DOMAIN)
    password = secrets.token_hex(16)
    write_pkcs12(guest, tmp_path / "guest.p12", password.encode())
    write_pkcs12(deployment.admin, tmp_path / "admin.p12", password.encode())
    db_der = db_certificate(tmp_path / "db.pem", SB_CN).der
    renewal_key = renewal_request(tmp_path / "renewal.csr", guest.domain)
    nonce = secrets.token_bytes(32)
    capsule = firmware_capsule(tmp_path / "update.cap", capsule_signers)
    settings = {
        "url": deployment.url, "domain": guest.domain, "ca": str(guest.ca),
        "guest.p12": str(tmp_path / "guest.p12"), "admin.p12": str(tmp_path / "admin.p12"),
        "p12.password": password, "asset.tag": "jaxws-interop",
        "setup.password": "jaxws-setup-pw", "secureboot.cert": str(tmp_path / "db.pem"),
        "secureboot.cn": SB_CN, "quote.nonce": nonce.hex(),
        "quote.pcrs": ",".join(map(str, QUOTE_PCRS)),
        "renewal.csr": str(tmp_path / "renewal.csr"),
        "renewal.out": str(tmp_path / "renewed.der"),
        "firmware.capsule": str(capsule.path), "firmware.chunk.size": str(CHUNK_SIZE),
        "watchdog.seconds": str(WATCHDOG_SECONDS),
        "events.expires.in": str(EVENTS_EXPIRES_IN), "events.renew.in": str(EVENTS_RENEW_IN),
        "events.wait": str(EVENTS_WAIT),
    }
    done = run_client(tools, classes, settings, tmp_path / "settings.properties")
    check_coverage("jaxws", done.stdout)
    got = parse_values(done.stdout)

    # the JDK checked the server's name (no HostnameVerifier replaced): the URL's host is
    # an IP address of the server certificate's SubjectAlternativeName
    assert server_names(deployment.url)[1] >= {urlsplit(deployment.url).hostname}
    # the same client trusting another CA is refused at the handshake
    (tmp_path / "foreign-ca.pem").write_bytes(foreign_ca_pem())
    probe = run_client(tools, classes, {**settings, "probe": "yes",
                                        "ca": str(tmp_path / "foreign-ca.pem")},
                       tmp_path / "probe.properties")
    assert "PROBE refused" in probe.stdout, probe.stdout
    assert "unable to find valid certification path" in probe.stdout, probe.stdout

    # the typed fault: wsimport's exception class for wsdl:fault, its detail readable
    assert got["stale.fault.class"] == "ws.bios.vbios.v1.VbiosFault"
    assert got["stale.fault.code"] == "VersionConflict", got
    assert got["stale.fault.message"]
    assert int(got["set.version"]) == int(got["start.version"]) + 1
    assert got["pending.BootMode"] == "Bios"
    assert int(got["defaults.pending.count"]) > 0
    assert got["cancelled.pending.count"] == "0"
    assert got["reset.state"] in ("PoweringOn", "On")

    # the firmware update: every chunk, the job waiting for the next reset
    check_firmware(deployment, guest.domain, capsule, FirmwareSeen.of(
        {key.removeprefix("firmware."): value for key, value in got.items()
         if key.startswith("firmware.")}))
    # system management and thermal: what it read and changed, against the store; arming
    # and disarming the watchdog set OsWatchdogTimer twice (the version moved on by two)
    check_system(deployment, guest.domain, SystemSeen.of(
        {key.removeprefix("system."): value for key, value in got.items()
         if key.startswith("system.")}))
    assert got["system.attr.OsWatchdogTimer"] == "Disabled"
    # the events the Reset published, read from the Subscribe's cursor, against the store
    check_events(deployment, guest.domain, EventsSeen.of(
        {key.removeprefix("events."): value for key, value in got.items()
         if key.startswith("events.")}))
    assert int(got["system.version.after"]) == int(got["system.version.before"]) + 2

    # the quote the Java client got verifies here against the bundle's CA and our nonce
    b64 = base64.b64decode
    evidence = QuoteEvidence(
        attest=b64(got["quote.attest"]), signature=b64(got["quote.signature"]),
        bank=got["quote.bank"], ak_certificate=b64(got["quote.ak"]),
        event_log=b64(got["quote.log"]),
        pcrs={i: b64(got[f"quote.pcr.{i}"]) for i in QUOTE_PCRS})
    verdict = verify_quote(evidence, nonce=nonce, ca_pem=guest.ca.read_bytes())
    assert verdict.trusted, verdict.failures

    # the renewed certificate is for our fresh key, and works (this revokes the old one)
    renewed = x509.load_der_x509_certificate((tmp_path / "renewed.der").read_bytes())
    assert renewed.public_key() == renewal_key.public_key()
    assert format(renewed.serial_number, "X") == got["renewal.serial"].upper()
    bundle = renewed_bundle(guest, (tmp_path / "renewed.der").read_bytes(), renewal_key,
                            tmp_path / "renewed")
    with vc.BiosClient.from_bundle(deployment.url, bundle, timeout=30,
                                   auto_renew=False) as bios:
        check_against_library(bios, got, db_der)
    deployment.check_routed_calls(guest.domain)  # the routed run: B answered them


def check_against_library(bios: vc.BiosClient, got: dict[str, str], db_der: bytes) -> None:
    """What the Java client saw and wrote, as the Python guest library reads it."""
    registry = bios.get_attribute_registry()
    assert got["registry.version"] == registry.version
    assert int(got["registry.count"]) == len(registry.attributes)
    timeout = registry.lookup("BootTimeout")
    assert (got["registry.BootTimeout.type"], got["registry.BootTimeout.default"]) == (
        timeout.type, as_text(timeout.default))
    assert got["registry.BootTimeout.step"] == as_text(timeout.scalar_increment or 1)
    final_timeout = str(int(got["registry.BootTimeout.default"])
                        + 2 * int(got["registry.BootTimeout.step"]))

    current = bios.get_attributes()
    assert int(got["start.count"]) == len(current.values)
    assert int(got["final.version"]) == int(got["attr.version"]) == current.version
    assert got["attr.passwordSet"] == "true" and current.setup_password_set
    for name, expected in (("BootTimeout", final_timeout), ("NumLock", "false"),
                           ("AssetTag", "jaxws-interop")):
        assert got[f"attr.{name}"] == expected == as_text(current.values[name])

    boot = bios.get_boot_order()
    assert got["boot.order"] == ",".join(boot.order)
    assert got["boot.next"] == boot.boot_next == boot.order[-1]

    power = bios.get_power_state()
    assert (got["power.cause"], got["power.time"]) == (
        power.last_reset_cause, power.last_reset_time)
    assert (got["admin.power.cause"], got["admin.power.time"]) == (
        power.last_reset_cause, power.last_reset_time)
    assert got["power.before"] == "Off" and got["admin.machine"] == "simulated"

    secure = bios.get_secure_boot()
    assert (got["secureboot.enabled"], got["secureboot.mode"], got["secureboot.pending"]) == (
        as_text(secure.enabled), secure.mode, as_text(secure.pending_enabled))
    assert secure.pending_enabled is not secure.enabled
    switch = "Enabled" if secure.pending_enabled else "Disabled"
    assert bios.get_pending_attributes().values == {"SecureBoot": switch}
    assert got["secureboot.added.database"] == "db"
    assert got["secureboot.added.sha256"] == hashlib.sha256(db_der).hexdigest()
    for name, certificates in bios.get_secure_boot_databases().items():
        assert got[f"secureboot.db.{name}"] == ",".join(c.sha256 for c in certificates)

    measurements = bios.get_boot_measurements("sha256")
    assert got["measurements.bank"] == measurements.bank == "sha256"
    assert int(got["measurements.events"]) == len(measurements.events)
    for index, digest in measurements.pcrs.items():
        assert got[f"measurements.pcr.{index}"] == digest.hex()
    assert got["quote.bank"] == "sha256"

    status = bios.get_integrity_status()
    assert got["integrity.state"] == ("Trusted" if status.trusted else "Untrusted")
    assert (got["integrity.restricted"], got["integrity.bank"]) == (
        as_text(status.restricted), status.bank)
    reference = bios.get_reference_measurements()
    assert got["reference.digest"] == as_text(None if reference is None else reference.digest)
    diagnostics = bios.collect_diagnostics()
    assert got["diagnostics.bank"] == as_text(
        None if diagnostics.measurements is None else diagnostics.measurements.bank)

    provisioning = bios.get_provisioning_state()
    assert (got["provisioning.state"], got["provisioning.next"]) == (
        provisioning.state, provisioning.next_step)
