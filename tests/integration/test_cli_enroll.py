"""`vbios domain enroll` and `vbios domain create --enroll`: the bootstrap URI the admin
hands to the guest, and the provisioning state `vbios domain show` reports."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from bios_ws.domain.enrollment import MAX_TICKET_LIFETIME, parse_bootstrap_uri
from tests.cli_support import Run, refused


def uri_of(out: str) -> str:
    lines = [line.strip() for line in out.splitlines()]
    return lines[lines.index(next(x for x in lines if x.startswith("bootstrap URI"))) + 1]


def show(run: Run, home: Path, name: str) -> dict[str, str]:
    code, out, err = run("domain", "show", name, "--json", "--home", str(home))
    assert code == 0, err
    shown: dict[str, str] = json.loads(out)
    return shown


def test_create_with_enroll_prints_a_uri_and_writes_no_bundle(home: Path, run: Run) -> None:
    code, out, err = run("domain", "create", "g1", "--enroll", "--url",
                         "https://vbios.example:9443/", "--home", str(home))
    assert (code, err) == (0, "")
    parsed = parse_bootstrap_uri(uri_of(out))
    assert parsed.server_url == "https://vbios.example:9443/"
    assert parsed.ticket.domain_id == "g1"
    ca = x509.load_pem_x509_certificate((home / "pki" / "ca.pem").read_bytes())
    assert parsed.ca_fingerprint == ca.fingerprint(hashes.SHA256()).hex()
    assert "vbios-client enroll" in out
    assert not (home / "bundles" / "g1").exists()
    shown = show(run, home, "g1")
    assert shown["provisioning_state"] == "S2"
    assert "enroll" in shown["provisioning_next"]
    assert shown["certificate_not_after"] is None


def test_enroll_makes_a_new_uri_each_time_valid_as_asked(home: Path, run: Run) -> None:
    assert run("domain", "create", "g1", "--home", str(home))[0] == 0
    assert show(run, home, "g1")["provisioning_state"] == "S3"
    first = parse_bootstrap_uri(uri_of(run("domain", "enroll", "g1", "--home", str(home))[1]))
    code, out, _ = run("domain", "enroll", "g1", "--minutes", "2", "--home", str(home))
    second = parse_bootstrap_uri(uri_of(out))
    assert code == 0 and "valid 2 minutes" in out
    assert first.ticket.nonce != second.ticket.nonce
    assert first.ticket.expires_at - second.ticket.expires_at > MAX_TICKET_LIFETIME / 2
    audit = json.loads(run("audit", "show", "--json", "--home", str(home))[1])
    assert [e["operation"] for e in audit].count("CreateEnrollmentURI") == 2


def test_refusals(home: Path, run: Run) -> None:
    refused(run("domain", "enroll", "nope", "--home", str(home)), "no domain 'nope'")
    assert run("domain", "create", "g1", "--home", str(home))[0] == 0
    refused(run("domain", "enroll", "g1", "--minutes", "11", "--home", str(home)),
            "--minutes must be between 1 and 10")
    refused(run("domain", "enroll", "g1", "--minutes", "0", "--home", str(home)),
            "--minutes must be between 1 and 10")


def test_a_domain_created_without_firmware_is_in_s1_until_assigned(home: Path, run: Run
                                                                  ) -> None:
    code, out, err = run("domain", "create", "s1", "--no-firmware", "--enroll",
                         "--home", str(home))
    assert (code, err) == (0, "")
    assert "no firmware image yet: S1" in out
    assert show(run, home, "s1")["provisioning_state"] == "S1"
    refused(run("domain", "power", "reset", "s1", "On", "--home", str(home)),
            "no firmware image yet (provisioning state S1)")
    code, out, _ = run("domain", "firmware-assign", "s1", "--home", str(home))
    assert code == 0 and "assigned the firmware image of s1" in out
    assert show(run, home, "s1")["provisioning_state"] == "S2"
    assert "already" in run("domain", "firmware-assign", "s1", "--home", str(home))[1]
    assert run("domain", "power", "reset", "s1", "On", "--home", str(home))[0] == 0
