"""vbios-client's one way of writing times, JSON and untrusted text (controls and bidi
escaped), its warning about a readable key, and what it says of a server of another CA
(a real TLS server on loopback)."""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import vbios_client as vc
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from vbios_client import _cli_text, _output, cli
from vbios_client.models import AttributeSet, PendingAttributes

CLIENT_DIR = Path(cli.__file__).parent
#: The modules that print for vbios-client.
OUTPUT_MODULES = ("cli.py", "_output.py", "_firmware_output.py", "_sm_output.py",
                  "credential_cli.py", "events_cli.py", "firmware_cli.py", "sm_cli.py",
                  "thermal_cli.py", "password_cli.py", "_cli_failures.py", "_cli_context.py",
                  "attest_cli.py")


# -- times and JSON ------------------------------------------------------------------------


def test_one_time_format() -> None:
    moment = datetime(2026, 11, 30, 20, 10, 13, 987654, tzinfo=timezone(timedelta(hours=1)))
    assert _cli_text.utc_text(moment) == "2026-11-30T19:10:13Z"
    assert _cli_text.utc_text(None) is None
    assert _cli_text.utc_text_of("2026-11-30T21:10:13.120+02:00") == "2026-11-30T19:10:13Z"
    assert _cli_text.utc_text_of("2026-11-30T19:10:13Z") == "2026-11-30T19:10:13Z"
    assert _cli_text.utc_text_of("Nov 30 2026") == "Nov 30 2026"  # not a time: as it came
    assert _cli_text.utc_text_of("2026-11-30T19:10:13") == "2026-11-30T19:10:13"  # no offset


def test_no_output_module_formats_times_or_json_by_itself() -> None:
    for name in OUTPUT_MODULES:
        text = (CLIENT_DIR / name).read_text()
        for call in ("json.dumps(", ".isoformat(", ".strftime(", "\nimport json\n"):
            assert call not in text, f"{name} uses {call.strip()}: go through _cli_text"


def test_json_is_indented_sorted_and_ascii() -> None:
    text = _cli_text.json_text({"b": "\u202eevil\x1b[2J\x7f", "a": 1})
    assert text.startswith('{\n  "a": 1,\n  "b": "')
    assert "\\u202e" in text and "\\u001b" in text and "\\u007f" in text
    assert text.isascii() and not _cli_text.UNSAFE.search(text)
    assert json.loads(text) == {"a": 1, "b": "\u202eevil\x1b[2J\x7f"}
    line = _cli_text.json_line({"z": "\u2066\x9b", "a": 2})
    assert "\n" not in line and line.isascii() and not _cli_text.UNSAFE.search(line)
    assert json.loads(line) == {"z": "\u2066\x9b", "a": 2}


# -- text: controls and bidi escaped ---------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("tag\x1b[31mred", "tag\\u001b[31mred"),
    ("abc\u202edcb", "abc\\u202edcb"),
    ("\u2066\u2067\u2068\u2069\u200e\u200f\u061c", "\\u2066\\u2067\\u2068\\u2069\\u200e"
                                                    "\\u200f\\u061c"),
    ("a\rb\x00c\x7fd\x85e\x9bf", "a\\u000db\\u0000c\\u007fd\\u0085e\\u009bf"),
    ("tab\tand newline\n", "tab\tand newline\n"),
    ("caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"),  # letters stay letters
])
def test_escape_controls(raw: str, shown: str) -> None:
    assert _cli_text.escape_controls(raw) == shown


class FakeClient:
    """Stands in for BiosClient: hostile values, or a fault."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def get_attributes(self, names: list[str] | None) -> AttributeSet:
        if self.error:
            raise self.error
        return AttributeSet(3, {"AssetTag": "rack\x1b]0;owned\x07\u202e42"}, False)

    def get_pending_attributes(self) -> PendingAttributes:
        return PendingAttributes(3, {"AssetTag": "\u2067x"})


def run(monkeypatch: pytest.MonkeyPatch, fake: FakeClient, *argv: str,
        bundle: Path | None = None) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "_connect", lambda args: fake)
    monkeypatch.delenv("VBIOS_BUNDLE", raising=False)
    out, err = io.StringIO(), io.StringIO()
    extra = ["--bundle", str(bundle)] if bundle else []
    code = cli.main([*argv, *extra], stdout=out, stderr=err, stdin=io.StringIO())
    return code, out.getvalue(), err.getvalue()


def test_text_output_escapes_what_the_server_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(monkeypatch, FakeClient(), "attributes", "get")
    assert code == 0 and not _cli_text.UNSAFE.search(out)
    assert "AssetTag = rack\\u001b]0;owned\\u0007\\u202e42 (pending: \\u2067x)" in out
    code, out, _ = run(monkeypatch, FakeClient(), "attributes", "get", "--json")
    assert json.loads(out)["attributes"]["AssetTag"] == "rack\x1b]0;owned\x07\u202e42"
    assert not _cli_text.UNSAFE.search(out)


def test_a_fault_message_is_escaped_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    fault = vc.InvalidAttributeValue("bad \x1b[2J value \u202e")
    code, out, err = run(monkeypatch, FakeClient(fault), "attributes", "get", "--json")
    assert code == 1 and not _cli_text.UNSAFE.search(err + out)
    assert err == "vbios-client: InvalidAttributeValue: bad \\u001b[2J value \\u202e\n"
    assert json.loads(out)["error"]["message"] == "bad \x1b[2J value \u202e"


def test_databases_and_power_times_in_the_one_format() -> None:
    out = io.StringIO()
    _output.databases(out, {"db": [vc.models.SecureBootCertificate(
        "CN=db", "CN=kek", "2036-01-01T01:00:00+01:00", "ab" * 32)]}, as_json=True)
    assert json.loads(out.getvalue())["db"][0]["not_after"] == "2036-01-01T00:00:00Z"
    out = io.StringIO()
    _output.power(out, vc.models.PowerState("On", "PowerOn", "2026-11-30T19:10:13.500Z",
                                            False), as_json=False)
    assert "last reset time  = 2026-11-30T19:10:13Z" in out.getvalue()


# -- the bundle's key ------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o400, False), (0o640, True),
                                              (0o604, True)])
def test_a_key_readable_by_others_is_warned_about_once(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: int, warned: bool) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not read by this test")
    key.chmod(mode)
    code, _, err = run(monkeypatch, FakeClient(), "attributes", "get", bundle=tmp_path)
    assert code == 0
    warnings = [line for line in err.splitlines() if "warning" in line]
    if warned:
        assert warnings == [f"vbios-client: warning: {key} can be read by others (mode"
                            f" {mode:03o}): the key lets anyone act as this guest; run"
                            f" chmod 600 {key}"]
    else:
        assert warnings == []


# -- a server of another CA ------------------------------------------------------------------


def _certificate(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                 signer: ec.EllipticCurvePrivateKey, *, ca: bool, san: x509.GeneralName | None
                 ) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True))
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), False)
    return builder.sign(signer, hashes.SHA256())


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return _certificate(name, key, subject, key, ca=True, san=None), key


def _write(directory: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey,
           ca: x509.Certificate) -> Path:
    directory.mkdir()
    (directory / "cert.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    (directory / "key.pem").chmod(0o600)
    (directory / "ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    return directory


@pytest.fixture
def server_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    return _ca("the server's installation")


def _tls_server(tmp_path: Path, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
                san: x509.GeneralName) -> Iterator[str]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("vbios server", key, ca[0].subject, ca[1], ca=False, san=san)
    files = _write(tmp_path / "server", cert, key, ca[0])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files / "cert.pem", files / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            listener.settimeout(20)
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            # The client refuses the handshake: what the tests want.
            with raw, contextlib.suppress(OSError, ssl.SSLError):
                context.wrap_socket(raw, server_side=True).close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{port}/vbios"
    thread.join(30)


def _guest_bundle(tmp_path: Path, ca: x509.Certificate) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("vm1", key, ca.subject, key, ca=False, san=None)
    return _write(tmp_path / "bundle", cert, key, ca)


def _call(url: str, bundle: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--url", url, "--bundle", str(bundle), "--timeout", "10", "power", "get",
                     "--json"], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_a_server_of_another_ca_is_said_to_be_so(
        tmp_path: Path, server_ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> None:
    other_ca, _ = _ca("this guest's installation")
    bundle = _guest_bundle(tmp_path, other_ca)
    for url in _tls_server(tmp_path, server_ca, x509.IPAddress(ipaddress.ip_address(
            "127.0.0.1"))):
        code, out, err = _call(url, bundle)
        assert code == 3
        assert err.startswith(f"vbios-client: TransportError: the server at {url} is not"
                              " from this bundle's CA (ca.pem): TLS failure: ")
        assert json.loads(out)["error"]["code"] == "TransportError"


def test_a_server_of_this_ca_under_another_name_is_not_called_foreign(
        tmp_path: Path, server_ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> None:
    bundle = _guest_bundle(tmp_path, server_ca[0])
    for url in _tls_server(tmp_path, server_ca, x509.DNSName("elsewhere.example")):
        code, _, err = _call(url, bundle)
        assert code == 3 and "TLS failure" in err
        assert "not from this bundle's CA" not in err
