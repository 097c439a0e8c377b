"""`vbios-client enroll`, `cert renew` and `provisioning`: parsing, output, exit status
(the library stubbed: no I/O)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest
import vbios_client as vc
from vbios_client import _output, _wire, cli, client, credential_cli, enrollment

NOT_AFTER = datetime(2026, 12, 30, 9, 0, 1, tzinfo=UTC)
ISSUED = vc.IssuedBundle("vm1", "1A2B", datetime(2026, 11, 30, tzinfo=UTC), NOT_AFTER,
                         Path("/guest/bundle"))


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err, stdin=io.StringIO())
    return code, out.getvalue(), err.getvalue()


def test_enroll_needs_the_uri_and_out_only() -> None:
    args = cli.build_parser().parse_args(["enroll", "https://h/?x", "--out", "b"])
    assert args.uri == "https://h/?x" and args.out == Path("b")
    assert args.standalone is credential_cli.run_enroll
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["enroll", "https://h/?x"])


def test_cert_renew_and_provisioning_are_client_commands() -> None:
    renew = cli.build_parser().parse_args(["cert", "renew", "--bundle", "b", "--url", "u"])
    assert renew.run is credential_cli.renew and renew.auto_renew is False
    state = cli.build_parser().parse_args(["provisioning", "--json"])
    assert state.json is True and not hasattr(state, "auto_renew")


def test_enroll_prints_serial_not_after_and_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_enroll(uri: str, out: Path, *, timeout: float) -> vc.IssuedBundle:
        seen.update(uri=uri, out=out, timeout=timeout)
        return ISSUED

    monkeypatch.setattr(enrollment, "enroll", fake_enroll)
    code, out, err = run("enroll", "https://h:1/?enroll=vm1", "--out", "/guest/bundle",
                         "--timeout", "7")
    assert (code, err) == (0, "")
    assert seen == {"uri": "https://h:1/?enroll=vm1", "out": Path("/guest/bundle"),
                    "timeout": 7.0}
    assert out.splitlines() == ["enrolled domain vm1", "serial    = 1A2B",
                                "not after = 2026-12-30T09:00:01Z",
                                "bundle    = /guest/bundle"]
    code, out, _ = run("enroll", "u", "--out", "/guest/bundle", "--json")
    assert json.loads(out) == {"domain": "vm1", "serial": "1A2B",
                               "not_after": "2026-12-30T09:00:01Z", "bundle": "/guest/bundle"}


@pytest.mark.parametrize(("error", "code", "line"), [
    (vc.CaPinMismatch("the server's CA certificate has SHA-256 aa,\n the bootstrap URI pins bb"),
     1, "vbios-client: CaPinMismatch: the server's CA certificate has SHA-256 aa, the"
        " bootstrap URI pins bb"),
    (vc.AccessDenied("this bootstrap URI was already used"), 1,
     "vbios-client: AccessDenied: this bootstrap URI was already used"),
    (vc.BundleError("bundle directory /b is not empty; choose another"), 1,
     "vbios-client: BundleError: bundle directory /b is not empty; choose another"),
    (vc.TransportError("https://h/: cannot connect"), 3,
     "vbios-client: TransportError: https://h/: cannot connect"),
])
def test_enroll_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, error: Exception,
                                    code: int, line: str) -> None:
    def failing(*_: object, **__: object) -> vc.IssuedBundle:
        raise error

    monkeypatch.setattr(enrollment, "enroll", failing)
    assert run("enroll", "u", "--out", "b") == (code, "", line + "\n")


def test_a_malformed_uri_is_a_usage_error() -> None:
    code, out, err = run("enroll", "http://h/?enroll=vm1", "--out", "b")
    assert (code, out) == (2, "")
    assert err == "vbios-client: InvalidBootstrapUri: a bootstrap URI starts with" \
                  " https://HOST:PORT/\n"


def test_enroll_refuses_url_and_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enrollment, "enroll", lambda *a, **k: pytest.fail("enrolled"))
    code, _, err = run("--bundle", "b", "enroll", "u", "--out", "o")
    assert code == 2 and err.startswith("vbios-client: error: enroll takes no --bundle")


class StubClient:
    def __init__(self, renewed: vc.IssuedBundle | None = None) -> None:
        self.renewed = renewed
        self.renewals = 0

    def __enter__(self) -> StubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def renew_certificate(self) -> vc.IssuedBundle:
        self.renewals += 1
        self.renewed = ISSUED
        return ISSUED

    def get_provisioning_state(self) -> vc.ProvisioningState:
        return vc.ProvisioningState("S3", "personalized: renew before it expires", NOT_AFTER)

    def get_power_state(self) -> vc.PowerState:
        return vc.PowerState("On", None, None, False)


def connect_to(monkeypatch: pytest.MonkeyPatch, stub: StubClient) -> list[bool]:
    asked: list[bool] = []

    def from_bundle(url: str, bundle: Path, *, timeout: float, auto_renew: bool) -> StubClient:
        asked.append(auto_renew)
        return stub

    monkeypatch.setattr(client.BiosClient, "from_bundle", from_bundle)
    return asked


def test_cert_renew_renews_once_without_automatic_renewal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stub = StubClient()
    asked = connect_to(monkeypatch, stub)
    code, out, err = run("--url", "https://h/", "--bundle", "b", "cert", "renew")
    assert (code, err, asked, stub.renewals) == (0, "", [False], 1)
    assert out.startswith("renewed domain vm1\nserial    = 1A2B\n")


def test_provisioning_text_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = connect_to(monkeypatch, StubClient())
    code, out, _ = run("--url", "https://h/", "--bundle", "b", "provisioning")
    assert code == 0 and asked == [True]
    assert out.splitlines() == ["state     = S3",
                                "next step = personalized: renew before it expires",
                                "not after = 2026-12-30T09:00:01Z"]
    _, out, _ = run("--url", "https://h/", "--bundle", "b", "provisioning", "--json")
    assert json.loads(out) == {"state": "S3",
                               "next_step": "personalized: renew before it expires",
                               "certificate_not_after": "2026-12-30T09:00:01Z"}


def test_an_automatic_renewal_is_told_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    connect_to(monkeypatch, StubClient(renewed=ISSUED))
    code, _, err = run("--url", "https://h/", "--bundle", "b", "power", "get")
    assert code == 0
    assert err == "vbios-client: renewed the certificate in /guest/bundle: serial 1A2B," \
                  " valid until 2026-12-30T09:00:01Z\n"


def test_provisioning_state_decoding() -> None:
    state = _wire.provisioning_state(NS(State="S2", NextStep="enroll", CertificateNotAfter=None))
    assert state == vc.ProvisioningState("S2", "enroll", None)
    state = _wire.provisioning_state(NS(State="S3", NextStep="renew",
                                        CertificateNotAfter="2026-12-30T09:00:01.000Z"))
    assert state.certificate_not_after == NOT_AFTER
    assert _output.utc_text(state.certificate_not_after) == "2026-12-30T09:00:01Z"
    with pytest.raises(ValueError, match="zone"):
        _wire.utc_time("2026-12-30T09:00:01")
