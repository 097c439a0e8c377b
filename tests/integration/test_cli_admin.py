"""`vbios init`, `vbios domain ...`, `vbios audit ...` run in-process on tmp_path homes."""

from __future__ import annotations

import json
import re
import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from bios_ws.cli import main
from bios_ws.home import Home
from bios_ws.pki import find_clear_private_keys
from tests.cli_support import Run, refused
from tests.ports import closed_port

RFC3339_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- init --------------------------------------------------------------------------


def test_init_makes_a_complete_home(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "home"
    code, out, err = run("init", "--home", str(path))
    assert (code, err) == (0, "")
    home = Home.open(path)
    for made in (home.ca_cert, home.server_cert, home.admin_dir, home.passphrase_file,
                 home.registry_path, home.db_path):
        assert str(made) in out
        assert made.exists()
    assert len(out.splitlines()) <= 10
    assert home.is_initialized
    assert find_clear_private_keys(home) == []
    assert home.tpm.is_none
    shipped = (Path(__file__).parents[2] / "bios_ws" / "data" / "registry.json").read_bytes()
    assert home.registry_path.read_bytes() == shipped
    assert _mode(home.admin_dir / "key.pem") == 0o600
    tables = sqlite3.connect(home.db_path).execute(
        "SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    assert {"domains", "audit"} <= {t[0] for t in tables}


def test_init_without_tpm_warns_loudly(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    assert main(["init", "--home", str(tmp_path / "h"), "--no-tpm"]) == 0
    err = capsys.readouterr().err
    assert "*** NO TPM: DEVELOPMENT ONLY ***" in err
    assert len(err.splitlines()) >= 4


def test_no_tpm_is_never_chosen_by_a_value(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused(run("init", "--home", str(tmp_path / "a"), "--tpm", "none"), "--no-tpm only")
    monkeypatch.setenv("VBIOS_TPM", "none")
    assert main(["init", "--home", str(tmp_path / "b")]) == 1  # the environment cannot either
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_init_refuses_an_unreachable_tcti_before_any_key(
    tmp_path: Path, run: Run
) -> None:
    path = tmp_path / "home"
    with closed_port() as port:
        code, _, err = run("init", "--home", str(path), "--tpm",
                           f"swtpm:host=127.0.0.1,port={port}")
    assert code == 1 and f"port={port}" in err and "unreachable" in err
    home = Home.open(path)
    assert not home.is_initialized and not home.server_key.exists()


def test_init_seals_in_the_development_tpm_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bios_ws.launch.permissions import check_home_permissions
    from bios_ws.launch.recovery import read_recovery
    from bios_ws.tpm.devtpm import DevTpm

    path = tmp_path / "home"
    try:
        assert main(["init", "--home", str(path)]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        home = Home.open(path)
        assert home.tpm.is_dev
        assert DevTpm(home.tpm_dir).status().running
        assert not home.passphrase_file.exists()
        assert find_clear_private_keys(home) == []
        for key in ("server", "ca"):
            assert home.sealed_blob(key).is_file()
        code = out.split("keep it offline):\n", 1)[1].split()[0]
        recovered = read_recovery(home.recovery_file, code)
        assert recovered.server != recovered.ca
        assert recovered.server.decode() not in out
        assert main(["domain", "create", "web1", "--home", str(path)]) == 0  # unseals the CA key
        assert (home.bundles_dir / "web1" / "cert.pem").is_file()
        check_home_permissions(home)  # the TPM's state, sealed blobs and recovery file too
        capsys.readouterr()
        assert main(["measure", "--home", str(path), "--json"]) == 0
        measured = json.loads(capsys.readouterr().out)
        assert len(measured["digest"]) == 64
        assert {"path": "config/registry.json",
                "sha256": __import__("hashlib").sha256(home.registry_path.read_bytes()
                                                       ).hexdigest()} in measured["files"]
    finally:
        DevTpm(path / "tpm").stop()


def test_init_twice_is_refused_and_changes_nothing(home: Path, run: Run) -> None:
    before = {p: p.read_bytes() for p in home.rglob("*.pem")}
    refused(run("init", "--home", str(home)), "already initialized")
    assert {p: p.read_bytes() for p in home.rglob("*.pem")} == before


def test_init_refuses_a_foreign_directory(tmp_path: Path, run: Run) -> None:
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "letter.txt").write_text("dear")
    refused(run("init", "--home", str(foreign)), "is not a vbios state directory")
    assert [p.name for p in foreign.iterdir()] == ["letter.txt"]


def test_init_with_server_names(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "home"
    code, out, _ = run("init", "--home", str(path), "--san", "vbios.lan", "--san", "10.1.2.3")
    assert code == 0
    assert "vbios.lan, 10.1.2.3" in out
    cert = x509.load_pem_x509_certificate(Home.open(path).server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["vbios.lan"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]


def test_init_with_a_bad_server_name_writes_nothing(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "home"
    refused(run("init", "--home", str(path), "--san", "not a name"), "invalid server name")
    assert not path.exists()


def test_init_uses_vbios_home_from_the_environment(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VBIOS_HOME", str(tmp_path / "env-home"))
    assert run("init")[0] == 0
    assert Home.open(tmp_path / "env-home").is_initialized
    code, out, _ = run("domain", "list")
    assert (code, out) == (0, "no domains\n")


# -- domain ------------------------------------------------------------------------


def test_commands_refuse_a_missing_or_foreign_home(tmp_path: Path, run: Run) -> None:
    missing = tmp_path / "missing"
    for argv in (("domain", "list"), ("domain", "create", "web1"), ("domain", "delete", "web1"),
                 ("audit", "show"), ("audit", "verify")):
        refused(run(*argv, "--home", str(missing)), "no such state directory; run vbios init")
        refused(run(*argv, "--home", str(tmp_path)), "is not a vbios state directory")
    assert not missing.exists()


def test_domain_create_issues_a_bundle(home: Path, run: Run) -> None:
    code, out, err = run("domain", "create", "web1", "--home", str(home))
    assert (code, err) == (0, "")
    bundle = home / "bundles" / "web1"
    assert str(bundle) in out
    assert sorted(p.name for p in bundle.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert _mode(bundle / "key.pem") == 0o600
    assert _mode(bundle) == 0o700
    cert = x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris[0] == "urn:vbios:domain:web1"
    assert re.fullmatch(r"urn:vbios:incarnation:[0-9a-f]{16}", uris[1]), uris
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate((bundle / "ca.pem").read_bytes()))
    key = load_pem_private_key((bundle / "key.pem").read_bytes(), password=None)
    assert key.public_key() == cert.public_key()


def test_domain_create_to_an_out_directory(home: Path, tmp_path: Path, run: Run) -> None:
    out_dir = tmp_path / "handed" / "web2"
    assert run("domain", "create", "web2", "--home", str(home), "--out", str(out_dir))[0] == 0
    assert _mode(out_dir / "key.pem") == 0o600
    assert not (home / "bundles" / "web2").exists()


def test_domain_create_refuses_a_used_out_directory_and_creates_nothing(
    home: Path, tmp_path: Path, run: Run
) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes").write_text("mine")
    refused(run("domain", "create", "web1", "--home", str(home), "--out", str(used)),
             "is not empty")
    assert [p.name for p in used.iterdir()] == ["notes"]
    assert run("domain", "list", "--home", str(home))[1] == "no domains\n"


def test_domain_create_refusals(home: Path, run: Run) -> None:
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    refused(run("domain", "create", "web1", "--home", str(home), "--out", str(home / "x")),
             "exists")
    assert not (home / "x").exists()
    refused(run("domain", "create", "Bad/Name", "--home", str(home)), "invalid domain id")
    refused(run("domain", "create", "../escape", "--home", str(home)), "invalid domain id")


def test_domain_create_needs_the_key_passphrase(home: Path, run: Run) -> None:
    Home.open(home).passphrase_file.unlink()
    refused(run("domain", "create", "web1", "--home", str(home)), "key passphrase")
    assert not (home / "bundles" / "web1").exists()
    assert run("domain", "list", "--home", str(home))[1] == "no domains\n"


def test_a_bad_registry_file_is_one_line(home: Path, run: Run) -> None:
    (home / "registry.json").write_text('{"attributes": 3')
    err = refused(run("domain", "list", "--home", str(home)), "registry.json")
    assert "vbios: " in err


def test_domain_list_and_delete(home: Path, run: Run) -> None:
    for name in ("web2", "db1"):
        assert run("domain", "create", name, "--home", str(home))[0] == 0
    code, out, _ = run("domain", "list", "--home", str(home))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["DOMAIN", "VERSION", "MACHINE", "CREATED", "HOST"]
    assert [line.split()[:3] for line in lines[1:]] == [["db1", "1", "simulated"],
                                                       ["web2", "1", "simulated"]]
    assert all(RFC3339_SECONDS.fullmatch(line.split()[3]) for line in lines[1:])
    code, out, _ = run("domain", "list", "--json", "--home", str(home))
    rows = json.loads(out)
    assert [(r["domain"], r["version"], r["machine"]) for r in rows] == [
        ("db1", 1, "simulated"), ("web2", 1, "simulated")]
    assert all(RFC3339_SECONDS.fullmatch(r["created_at"]) for r in rows)

    code, out, _ = run("domain", "delete", "web2", "--home", str(home))
    assert code == 0
    assert "deleted domain web2" in out
    assert not (home / "bundles" / "web2").exists()
    listed = json.loads(run("domain", "list", "--json", "--home", str(home))[1])
    assert [r["domain"] for r in listed] == ["db1"]
    refused(run("domain", "delete", "web2", "--home", str(home)), "web2")
    assert run("domain", "create", "web2", "--home", str(home))[0] == 0


def test_usage_errors_exit_2(home: Path, run: Run) -> None:
    with pytest.raises(SystemExit) as info:
        main(["domain", "--home", str(home)])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["audit", "show", "--since", "0", "--home", str(home)])
    assert info.value.code == 2


# -- audit -------------------------------------------------------------------------


def _populate(home: Path, run: Run) -> None:
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    assert run("domain", "create", "web1", "--home", str(home), "--out", str(home / "o"))[0] == 1
    assert run("domain", "create", "web2", "--home", str(home))[0] == 0
    assert run("domain", "delete", "web2", "--home", str(home))[0] == 0


def test_audit_show(home: Path, run: Run) -> None:
    _populate(home, run)
    code, out, _ = run("audit", "show", "--home", str(home))
    assert code == 0
    header, *rows = [line.split() for line in out.splitlines()]
    assert header == ["SEQ", "TIME", "PRINCIPAL", "OPERATION", "DOMAIN", "OUTCOME", "CHANGES"]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5", "6", "7"]
    assert all(RFC3339_SECONDS.fullmatch(r[1]) for r in rows)
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
        ("admin:vbios-init", "RegisterHost", "-", "ok"),  # the home joins its store
        ("admin:admin", "CreateDomain", "web1", "ok"),
        ("admin:admin", "IssueCertificate", "web1", "ok"),
        ("admin:admin", "CreateDomain", "web1", "refused:DomainExists"),
        ("admin:admin", "CreateDomain", "web2", "ok"),
        ("admin:admin", "IssueCertificate", "web2", "ok"),
        ("admin:admin", "DeleteDomain", "web2", "ok"),
    ]
    assert all(len(r[6]) == 12 for r in rows)
    code, out, _ = run("audit", "show", "--json", "--since", "6", "--home", str(home))
    entries = json.loads(out)
    assert [e["seq"] for e in entries] == [6, 7]
    assert entries[1]["prev_hash"] == entries[0]["entry_hash"]
    assert entries[0]["changes_digest"].startswith(rows[5][6])
    # the time its hash covers, to the microsecond, in UTC
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", e["time"])
               for e in entries)
    assert entries[0]["time"].startswith(rows[5][1][:-1])


def test_audit_show_of_a_new_home(home: Path, run: Run) -> None:
    rows = json.loads(run("audit", "show", "--json", "--home", str(home))[1])
    assert [(r["operation"], r["principal"]) for r in rows] == [
        ("RegisterHost", "admin:vbios-init")]
    shown = run("audit", "show", "--since", "2", "--home", str(home))[1]
    assert shown == "no audit entries\n"


def test_audit_verify_intact(home: Path, run: Run) -> None:
    assert run("audit", "verify", "--home", str(home)) == (0, "audit log intact: 1 entries\n", "")
    _populate(home, run)
    assert run("audit", "verify", "--home", str(home)) == (0, "audit log intact: 7 entries\n", "")


def _tamper(home: Path, statement: str) -> None:
    db = sqlite3.connect(home / "vbios.db")
    try:
        triggers = db.execute(
            "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit'").fetchall()
        for (name,) in triggers:
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute(statement)
        db.commit()
    finally:
        db.close()


def test_audit_log_is_append_only_in_the_database(home: Path, run: Run) -> None:
    _populate(home, run)
    db = sqlite3.connect(home / "vbios.db")
    try:
        with pytest.raises(sqlite3.DatabaseError):
            db.execute("UPDATE audit SET outcome='ok' WHERE seq=2")
        with pytest.raises(sqlite3.DatabaseError):
            db.execute("DELETE FROM audit WHERE seq=2")
    finally:
        db.close()


def test_audit_verify_names_an_altered_entry(home: Path, run: Run) -> None:
    _populate(home, run)
    _tamper(home, "UPDATE audit SET outcome='ok' WHERE seq=4")  # the refused CreateDomain
    err = refused(run("audit", "verify", "--home", str(home)), "entry 4 was altered")
    assert "not intact" in err


def test_audit_verify_names_a_removed_entry(home: Path, run: Run) -> None:
    _populate(home, run)
    _tamper(home, "DELETE FROM audit WHERE seq=3")
    refused(run("audit", "verify", "--home", str(home)), "entry 3 was removed")


def test_audit_verify_names_a_reforged_link(home: Path, run: Run) -> None:
    _populate(home, run)
    _tamper(home, "UPDATE audit SET prev_hash=(SELECT entry_hash FROM audit WHERE seq=1) "
                  "WHERE seq=3")
    refused(run("audit", "verify", "--home", str(home)), "entry 3 does not follow")
