"""`vbios serve`, `vbios devrun` and `vbios wsdl` as processes: refusals and robustness."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

VBIOS = Path(sys.executable).parent / "vbios"
TIMEOUT = 60.0


def vbios(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VBIOS), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def assert_one_line_refusal(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def home_copy(vbios_server: Any, tmp_path: Path) -> Path:
    """A copy of the running server's initialized home, free to damage."""
    copy = tmp_path / "home"
    shutil.copytree(vbios_server.home, copy)
    return copy


def serve_args(home: Path, port: int) -> list[str]:
    return ["serve", "--home", str(home), "--bind", f"127.0.0.1:{port}", "--workers", "1"]


def test_serve_prints_the_passphrase_notice(vbios_server: Any) -> None:
    passphrase_file = vbios_server.home / "secrets" / "key-passphrase"
    out = vbios_server.stdout()
    assert f"kept in a 0600 file at {passphrase_file}" in out, out
    assert "TPM" in out
    assert vbios_server.url in out


def test_port_in_use(vbios_server: Any) -> None:
    done = vbios(*serve_args(vbios_server.home, vbios_server.port))
    assert_one_line_refusal(done, f"127.0.0.1:{vbios_server.port} is in use")
    assert vbios_server.alive()


def test_missing_home(tmp_path: Path, unused_port: int) -> None:
    done = vbios(*serve_args(tmp_path / "nowhere", unused_port))
    assert_one_line_refusal(done, "no such state directory", "vbios init")


def test_foreign_directory_is_not_a_home(tmp_path: Path, unused_port: int) -> None:
    (tmp_path / "notes.txt").write_text("not a vbios home\n")
    done = vbios(*serve_args(tmp_path, unused_port))
    assert_one_line_refusal(done, "is not a vbios state directory")


def test_deleted_passphrase(home_copy: Path, unused_port: int) -> None:
    (home_copy / "secrets" / "key-passphrase").unlink()
    done = vbios(*serve_args(home_copy, unused_port))
    assert_one_line_refusal(done, "passphrase")


def test_wrong_passphrase(home_copy: Path, unused_port: int) -> None:
    passphrase = home_copy / "secrets" / "key-passphrase"
    passphrase.write_bytes(b"definitely-not-the-passphrase\n")
    passphrase.chmod(0o600)
    done = vbios(*serve_args(home_copy, unused_port))
    assert_one_line_refusal(done, "server key")


def test_damaged_server_key(home_copy: Path, unused_port: int) -> None:
    (home_copy / "pki" / "server-key.pem").write_bytes(b"-----BEGIN GARBAGE-----\n")
    done = vbios(*serve_args(home_copy, unused_port))
    assert_one_line_refusal(done, "server key")


def test_bad_bind_is_a_usage_error(vbios_server: Any) -> None:
    done = vbios("serve", "--home", str(vbios_server.home), "--bind", "no-port")
    assert done.returncode == 2
    assert "HOST:PORT" in done.stderr


def test_hostile_dtd_body_leaves_the_server_healthy(vbios_server: Any) -> None:
    bundle = vbios_server.create_domain("t-hostile")
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
            for i in range(1, 10)
        )
        + ']>\n<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:v="urn:bios-ws:vbios:v1"><soapenv:Body><v:GetAttributes>'
        "<v:Names><v:string>&lol9;</v:string></v:Names>"
        "</v:GetAttributes></soapenv:Body></soapenv:Envelope>"
    ).encode()
    external = (
        b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        b' xmlns:v="urn:bios-ws:vbios:v1"><soapenv:Body><v:GetAttributes>'
        b"<v:Names><v:string>&xxe;</v:string></v:Names>"
        b"</v:GetAttributes></soapenv:Body></soapenv:Envelope>"
    )
    for body in (laughs, external):
        connection = vbios_server.connect(bundle)
        try:
            reply = vbios_server.post(connection, "GetAttributes", body)
        finally:
            connection.close()
        assert 400 <= reply.status < 600
        assert b"lollollol" not in reply.body
        assert b"root:" not in reply.body
    assert vbios_server.alive()
    assert vbios_server.call(bundle, "GetAttributes").status == 200
    log = vbios_server.stderr()
    assert "lollollol" not in log
    assert "root:x:" not in log


def test_sigterm_stops_the_server_cleanly(home_copy: Path, start_server: Any) -> None:
    server = start_server(home_copy, "--workers", "1", "--threads", "2")
    reply = server.call(server.admin_bundle, "ApplyPendingAttributes", "<v:Domain>none</v:Domain>")
    assert reply.fault_code == "DomainNotFound"
    assert server.stop() == 0
    assert not server.alive()
    assert "Traceback" not in server.stderr()


def test_devrun_initializes_once_then_reuses_its_state(
    tmp_path: Path, start_server: Any
) -> None:
    home = tmp_path / "dev-home"
    first = start_server(home, "--demo-domain", "demo", "--workers", "1", command="devrun")
    out = first.stdout()
    assert f"initialized a new state directory at {home}" in out
    bundle = home / "bundles" / "demo"
    assert f"admin bundle:  {home / 'admin'}" in out, out
    assert str(bundle) in out
    assert f"--url {first.url} --bundle {bundle} attributes get" in out
    assert "vbios-client" in out
    assert first.call(bundle, "GetAttributes").status == 200
    ca_before = (home / "pki" / "ca.pem").read_bytes()
    demo_cert_before = (bundle / "cert.pem").read_bytes()
    assert first.stop() == 0

    second = start_server(home, "--demo-domain", "demo", "--workers", "1", command="devrun")
    assert "initialized" not in second.stdout()
    assert (home / "pki" / "ca.pem").read_bytes() == ca_before
    assert (bundle / "cert.pem").read_bytes() == demo_cert_before
    assert second.call(bundle, "GetAttributes").status == 200
    listed = vbios("domain", "list", "--home", str(home))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("demo") == 1


def test_devrun_refuses_a_foreign_directory(tmp_path: Path, unused_port: int) -> None:
    (tmp_path / "keep.txt").write_text("mine\n")
    done = vbios("devrun", "--home", str(tmp_path), "--bind", f"127.0.0.1:{unused_port}")
    assert_one_line_refusal(done, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_devrun_port_in_use_changes_nothing(vbios_server: Any, tmp_path: Path) -> None:
    home = tmp_path / "never"
    done = vbios("devrun", "--home", str(home), "--bind", f"127.0.0.1:{vbios_server.port}")
    assert_one_line_refusal(done, "is in use")
    assert not home.exists()


def test_wsdl_command_prints_the_contract() -> None:
    from bios_ws.soap.wsdl import render_wsdl

    default = subprocess.run([str(VBIOS), "wsdl"], capture_output=True, timeout=TIMEOUT,
                             stdin=subprocess.DEVNULL, check=False)
    assert default.returncode == 0, default.stderr
    assert default.stdout == render_wsdl()
    assert b'location="https://127.0.0.1:8443/"' in default.stdout
    moved = subprocess.run([str(VBIOS), "wsdl", "--address", "https://vbios.test:9443/"],
                           capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                           check=False)
    assert moved.returncode == 0, moved.stderr
    assert b'location="https://vbios.test:9443/"' in moved.stdout
    assert b"127.0.0.1:8443" not in moved.stdout
