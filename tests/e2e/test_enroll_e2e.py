"""A guest enrolls and renews against a real `vbios serve` (swtpm, mutual TLS): from the
bootstrap URI `vbios domain create --enroll` / `vbios domain enroll` print, through the
library and the `vbios-client` command; every refusal is audited and issues nothing.

The server allows 10 enrollment attempts a minute per source address: the library's
attempts (from 127.0.0.1) stay below that for this whole module, and the hand-made
requests come from other loopback addresses (127.0.0.2, 127.0.0.3).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import vbios_client as vc
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import (
    SOCKET_TIMEOUT,
    Reply,
    ServerProcess,
    client_context,
    envelope,
    post,
    run_vbios,
)
from tests.enroll_support import flipped, uri_fields, with_fields

VBIOS_CLIENT = Path(sys.executable).parent / "vbios-client"


# -- the admin's side --------------------------------------------------------------------


def vbios_ok(server: ServerProcess, *args: str) -> str:
    done = run_vbios(*args, "--home", str(server.home))
    assert done.returncode == 0, done.stderr
    return done.stdout


def printed_uri(stdout: str) -> str:
    lines = stdout.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("bootstrap URI for"))
    return lines[heading + 1].strip()


def create_enrollable(server: ServerProcess, name: str) -> str:
    """`vbios domain create NAME --enroll`: the bootstrap URI it prints."""
    out = vbios_ok(server, "domain", "create", name, "--enroll", "--url", server.url)
    assert f"created domain {name}" in out
    return printed_uri(out)


def new_uri(server: ServerProcess, name: str) -> str:
    """`vbios domain enroll NAME`: another one-time bootstrap URI."""
    return printed_uri(vbios_ok(server, "domain", "enroll", name, "--url", server.url))


def audit(server: ServerProcess, domain: str, operation: str = "Enroll") -> list[dict[str, Any]]:
    rows = json.loads(vbios_ok(server, "audit", "show", "--json"))
    return [r for r in rows if r["domain"] == domain and r["operation"] == operation]


def provisioning_state(server: ServerProcess, name: str) -> str:
    shown = json.loads(vbios_ok(server, "domain", "show", name, "--json"))
    return str(shown["provisioning_state"])


def serial(bundle: Path) -> int:
    return x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes()).serial_number


def refused_at_handshake(server: ServerProcess, bundle: Path) -> None:
    """A new connection presenting ``bundle`` never gets an HTTP answer."""
    with pytest.raises((ssl.SSLError, ConnectionError)) as failed:
        server.call(bundle, "GetAttributes")
    if isinstance(failed.value, ssl.SSLError):
        assert "revoked" in str(failed.value).lower(), failed.value


# -- hand-made requests ---------------------------------------------------------------------


def request_der(key: CertificateIssuerPrivateKeyTypes, cn: str, *uris: str,
                ca: bool = False) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if uris:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(u) for u in uris]), critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                        critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def raw_enroll(server: ServerProcess, uri: str, request: bytes, source: str) -> Reply:
    """Enroll with ``uri``'s ticket and a hand-made request, from loopback ``source``,
    trusting the installation's CA and presenting no certificate."""
    fields = uri_fields(uri)
    inner = (f"<v:Domain>{fields['enroll']}</v:Domain><v:Nonce>{fields['nonce']}</v:Nonce>"
             f"<v:Expires>{fields['expires']}</v:Expires><v:Token>{fields['token']}</v:Token>"
             f"<v:CertificateRequest>{base64.b64encode(request).decode()}"
             "</v:CertificateRequest>")
    connection = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=client_context(None, server.ca_cert),
        timeout=SOCKET_TIMEOUT, source_address=(source, 0))
    try:
        return post(connection, "Enroll", envelope("Enroll", inner))
    finally:
        connection.close()


def refused_reply(reply: Reply, code: str, says: str) -> None:
    assert reply.status == 500 and reply.fault_code == code, reply.body[:600]
    assert says in reply.text("Message"), reply.text("Message")


# -- enrollment -----------------------------------------------------------------------------


def test_a_guest_enrolls_from_the_printed_uri_and_its_bundle_works(
        vbios_server: ServerProcess, tmp_path: Path) -> None:
    uri = create_enrollable(vbios_server, "en-lib")
    assert provisioning_state(vbios_server, "en-lib") == "S2"
    bundle = tmp_path / "bundle"
    issued = vc.enroll(uri, bundle, timeout=15)
    assert issued.domain == "en-lib" and issued.path == bundle
    assert issued.serial == f"{serial(bundle):X}"
    assert (bundle / "ca.pem").read_bytes() == vbios_server.ca_cert.read_bytes()
    with vc.BiosClient.from_bundle(vbios_server.url, bundle, timeout=15) as bios:
        assert bios.get_attributes(["BootTimeout"]).values == {"BootTimeout": 5}
        state = bios.get_provisioning_state()
    assert state.state == "S3" and state.certificate_not_after == issued.not_after
    assert provisioning_state(vbios_server, "en-lib") == "S3"
    [entry] = audit(vbios_server, "en-lib")
    assert entry["outcome"] == "ok" and entry["principal"] == "enrollment:127.0.0.1"


def test_a_used_uri_is_refused_audited_and_writes_nothing(vbios_server: ServerProcess,
                                                          tmp_path: Path) -> None:
    uri = create_enrollable(vbios_server, "en-reuse")
    vc.enroll(uri, tmp_path / "first", timeout=15)
    with pytest.raises(vc.AccessDenied, match="already used"):
        vc.enroll(uri, tmp_path / "second", timeout=15)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first"]
    assert [e["outcome"] for e in audit(vbios_server, "en-reuse")] == [
        "ok", "refused:AccessDenied"]


@pytest.mark.parametrize("field", ["expires", "token"])
def test_a_tampered_uri_is_refused_as_a_bad_token(vbios_server: ServerProcess, tmp_path: Path,
                                                  field: str) -> None:
    name = f"en-tamper-{field}"
    uri = create_enrollable(vbios_server, name)
    fields = uri_fields(uri)
    # a later expiry (what a guest would want of an expired URI) breaks the token too
    tampered = with_fields(uri, expires=str(int(fields["expires"]) + 3600)) \
        if field == "expires" else with_fields(uri, token=flipped(fields["token"]))
    with pytest.raises(vc.AccessDenied, match="not valid for this domain"):
        vc.enroll(tampered, tmp_path / "bundle", timeout=15)
    assert not (tmp_path / "bundle").exists()
    assert [e["outcome"] for e in audit(vbios_server, name)] == ["refused:AccessDenied"]
    assert provisioning_state(vbios_server, name) == "S2"


def test_a_uri_of_another_domain_is_refused(vbios_server: ServerProcess,
                                            tmp_path: Path) -> None:
    uri = create_enrollable(vbios_server, "en-owner")
    create_enrollable(vbios_server, "en-other")
    with pytest.raises(vc.AccessDenied):
        vc.enroll(with_fields(uri, enroll="en-other"), tmp_path / "bundle", timeout=15)
    assert not (tmp_path / "bundle").exists()
    assert [e["outcome"] for e in audit(vbios_server, "en-other")] == ["refused:AccessDenied"]
    assert audit(vbios_server, "en-owner") == []
    assert provisioning_state(vbios_server, "en-other") == "S2"


def test_a_wrong_ca_pin_sends_nothing(vbios_server: ServerProcess, tmp_path: Path) -> None:
    uri = create_enrollable(vbios_server, "en-pin")
    pin = uri_fields(uri)["ca"].removeprefix("sha256:")
    with pytest.raises(vc.CaPinMismatch, match="nothing was sent"):
        vc.enroll(with_fields(uri, ca=f"sha256:{flipped(pin)}"), tmp_path / "bundle",
                  timeout=15)
    assert not (tmp_path / "bundle").exists() and list(tmp_path.iterdir()) == []
    assert audit(vbios_server, "en-pin") == []
    assert provisioning_state(vbios_server, "en-pin") == "S2"


def test_a_request_for_another_identity_is_refused(vbios_server: ServerProcess) -> None:
    uri = create_enrollable(vbios_server, "en-ident")
    create_enrollable(vbios_server, "en-victim")
    key = ec.generate_private_key(ec.SECP256R1())
    for request, says in (
        (request_der(key, "en-victim"), "may only ask to be 'en-ident'"),
        (request_der(key, "en-ident", "urn:vbios:domain:en-victim"),
         "may only ask to be urn:vbios:domain:en-ident"),
        (request_der(key, "en-ident", "urn:vbios:role:admin"), "may only ask to be"),
        (request_der(key, "en-ident", ca=True), "asks for a CA certificate"),
    ):
        refused_reply(raw_enroll(vbios_server, uri, request, "127.0.0.2"), "InvalidRequest",
                      says)
    outcomes = audit(vbios_server, "en-ident")
    assert [e["outcome"] for e in outcomes] == ["refused:InvalidRequest"] * 4
    assert {e["principal"] for e in outcomes} == {"enrollment:127.0.0.2"}
    # nothing was issued and the URI was not spent: a proper request still enrolls
    assert provisioning_state(vbios_server, "en-ident") == "S2"
    good = raw_enroll(vbios_server, uri, request_der(key, "en-ident"), "127.0.0.2")
    assert good.status == 200, good.body[:600]
    assert provisioning_state(vbios_server, "en-victim") == "S2"


def test_a_weak_key_is_refused(vbios_server: ServerProcess) -> None:
    uri = create_enrollable(vbios_server, "en-weak")
    for key, says in (
        (rsa.generate_private_key(65537, 1024), "RSA key has 1024 bits"),
        (ec.generate_private_key(ec.SECP192R1()), "curve secp192r1"),
        (ec.generate_private_key(ec.SECP224R1()), "curve secp224r1"),
    ):
        refused_reply(raw_enroll(vbios_server, uri, request_der(key, "en-weak"), "127.0.0.3"),
                      "InvalidRequest", says)
    assert [e["outcome"] for e in audit(vbios_server, "en-weak")] == \
        ["refused:InvalidRequest"] * 3
    assert provisioning_state(vbios_server, "en-weak") == "S2"


# -- renewal ----------------------------------------------------------------------------------


def test_renewal_revokes_the_old_certificate_once_the_new_one_is_used(
        vbios_server: ServerProcess, tmp_path: Path) -> None:
    bundle = vbios_server.create_domain("en-renew")  # an admin-issued bundle renews too
    before = tmp_path / "before"
    shutil.copytree(bundle, before)
    with vc.BiosClient.from_bundle(vbios_server.url, bundle, timeout=15) as bios:
        issued = bios.renew_certificate()
        refused_at_handshake(vbios_server, before)
        assert bios.get_attributes(["BootTimeout"]).values == {"BootTimeout": 5}
    assert issued.serial == f"{serial(bundle):X}" != f"{serial(before):X}"
    with vc.BiosClient.from_bundle(vbios_server.url, bundle, timeout=15) as again:
        assert again.get_provisioning_state().state == "S3"
    [renewed] = audit(vbios_server, "en-renew", "RenewCertificate")
    [superseded] = audit(vbios_server, "en-renew", "SupersedeCertificate")
    assert renewed["outcome"] == superseded["outcome"] == "ok"


def vbios_client(*argv: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VBIOS_")}
    return subprocess.run([str(VBIOS_CLIENT), *argv], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=environ, check=False)


def test_the_cli_enrolls_renews_and_shows_the_state(vbios_server: ServerProcess,
                                                   tmp_path: Path) -> None:
    vbios_server.create_domain("en-cli")  # an admin-issued bundle first: enrolling adds one
    uri = new_uri(vbios_server, "en-cli")
    bundle = tmp_path / "bundle"
    done = vbios_client("enroll", uri, "--out", str(bundle))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.splitlines()[0] == "enrolled domain en-cli"
    assert f"serial    = {serial(bundle):X}\n" in done.stdout
    assert f"bundle    = {bundle}\n" in done.stdout and "not after = " in done.stdout

    again = vbios_client("enroll", uri, "--out", str(tmp_path / "again"))
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.startswith("vbios-client: AccessDenied: ")
    assert len(again.stderr.splitlines()) == 1

    before = tmp_path / "before"
    shutil.copytree(bundle, before)
    connection = ("--url", vbios_server.url, "--bundle", str(bundle))
    renewed = vbios_client(*connection, "cert", "renew", "--json")
    assert renewed.returncode == 0, renewed.stderr
    assert json.loads(renewed.stdout)["serial"] == f"{serial(bundle):X}"
    refused_at_handshake(vbios_server, before)
    state = vbios_client(*connection, "provisioning", "--json")
    assert state.returncode == 0, state.stderr
    assert json.loads(state.stdout)["state"] == "S3"
