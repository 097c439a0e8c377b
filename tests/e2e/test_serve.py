"""`vbios serve`, `vbios devrun` and `vbios wsdl` as processes: refusals and robustness."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import dev_tpm, dev_tpm_tcti, init_home

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
    """A copy of the running server's initialized home, free to damage (its sealed
    passphrases unseal in the original's development TPM: serve it with ``tpm_of``)."""
    copy = tmp_path / "home"
    shutil.copytree(vbios_server.home, copy)
    return copy


@pytest.fixture(scope="module")
def no_tpm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("no-tpm") / "home"
    init_home(home, "--no-tpm")
    return home


@pytest.fixture
def no_tpm_copy(no_tpm_home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "plain"
    shutil.copytree(no_tpm_home, copy)
    return copy


def tpm_of(vbios_server: Any) -> list[str]:
    """--tpm with the TCTI of the running server's development TPM, and its event log."""
    return ["--tpm", dev_tpm_tcti(vbios_server.home),
            "--event-log", str(dev_tpm(vbios_server.home).event_log_path)]


def serve_args(home: Path, port: int = 0) -> list[str]:
    return ["serve", "--home", str(home), "--bind", f"127.0.0.1:{port}", "--workers", "1"]


def test_serve_says_the_key_was_unsealed_by_the_tpm(vbios_server: Any) -> None:
    out = vbios_server.stdout()
    assert "server and CA keys unsealed by the TPM (dev) under PCRs 0-7 and 23" in out, out
    assert vbios_server.url in out
    assert not (vbios_server.home / "secrets" / "key-passphrase").exists()
    assert "NO TPM" not in vbios_server.stderr()


def test_no_tpm_home_warns_loudly_at_every_start(no_tpm_copy: Path, start_server: Any) -> None:
    server = start_server(no_tpm_copy, "--workers", "1")
    assert "WARNING: *** NO TPM: DEVELOPMENT ONLY ***" in server.stderr()
    assert "NO TPM" in server.stdout()
    assert server.call(server.admin_bundle, "ApplyPendingAttributes",
                       "<v:Domain>none</v:Domain>").fault_code == "DomainNotFound"


def test_a_tpm_home_never_falls_back_to_no_tpm(home_copy: Path) -> None:
    done = vbios(*serve_args(home_copy), "--no-tpm")
    assert_one_line_refusal(done, "sealed in its TPM", "--no-tpm cannot serve it")


def test_a_no_tpm_home_refuses_a_tpm(no_tpm_copy: Path) -> None:
    done = vbios(*serve_args(no_tpm_copy), "--tpm", "swtpm:host=127.0.0.1,port=9")
    assert_one_line_refusal(done, "initialized with --no-tpm")


def test_stopped_dev_tpm_is_named_with_the_command_to_start_it(
    home_copy: Path
) -> None:
    done = vbios(*serve_args(home_copy))  # the copy's own swtpm never ran
    assert_one_line_refusal(done, "development TPM", f"vbios tpm start --home {home_copy}")


def test_unreachable_tpm_is_named(home_copy: Path, unused_port: int) -> None:
    tcti = f"swtpm:host=127.0.0.1,port={unused_port}"
    done = vbios(*serve_args(home_copy), "--tpm", tcti)
    assert done.returncode == 1, done.stderr
    assert tcti in done.stderr and "unreachable" in done.stderr
    assert "Traceback" not in done.stderr


def test_port_in_use(vbios_server: Any, home_copy: Path) -> None:
    # a copy of the served home: its serve.lock (copied, with the server's pid) is stale
    assert (home_copy / "serve.lock").read_text() == f"{vbios_server.pid}\n"
    done = vbios(*serve_args(home_copy, vbios_server.port))
    assert_one_line_refusal(done, f"127.0.0.1:{vbios_server.port} is in use")
    assert vbios_server.alive()


def test_a_served_home_is_refused_on_another_port(vbios_server: Any) -> None:
    done = vbios(*serve_args(vbios_server.home))
    assert_one_line_refusal(done, f"{vbios_server.home} is already served by pid"
                                  f" {vbios_server.pid}")
    assert vbios_server.alive()


def test_missing_home(tmp_path: Path) -> None:
    done = vbios(*serve_args(tmp_path / "nowhere"))
    assert_one_line_refusal(done, "no such state directory", "vbios init")


def test_foreign_directory_is_not_a_home(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a vbios home\n")
    done = vbios(*serve_args(tmp_path))
    assert_one_line_refusal(done, "is not a vbios state directory")


def test_deleted_passphrase(no_tpm_copy: Path) -> None:
    (no_tpm_copy / "secrets" / "key-passphrase").unlink()
    done = vbios(*serve_args(no_tpm_copy))
    assert "passphrase" in done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_wrong_passphrase(no_tpm_copy: Path) -> None:
    passphrase = no_tpm_copy / "secrets" / "key-passphrase"
    passphrase.write_bytes(b"definitely-not-the-passphrase\n")
    passphrase.chmod(0o600)
    done = vbios(*serve_args(no_tpm_copy))
    refusal = done.stderr.strip().splitlines()[-1]
    assert "cannot decrypt key" in refusal and "wrong passphrase" in refusal, refusal
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_deleted_sealed_passphrase(home_copy: Path) -> None:
    (home_copy / "tpm" / "sealed" / "server-key.json").unlink()
    done = vbios(*serve_args(home_copy))
    assert_one_line_refusal(done, "sealed passphrases are missing")


def test_a_passphrase_file_beside_a_tpm_is_refused(home_copy: Path) -> None:
    (home_copy / "secrets").mkdir(mode=0o700)
    (home_copy / "secrets" / "key-passphrase").write_bytes(b"x\n")
    (home_copy / "secrets" / "key-passphrase").chmod(0o600)  # not refused for its mode
    done = vbios(*serve_args(home_copy))
    assert_one_line_refusal(done, "key-passphrase exists although")


def test_damaged_server_key(home_copy: Path, vbios_server: Any) -> None:
    (home_copy / "pki" / "server-key.pem").write_bytes(b"-----BEGIN GARBAGE-----\n")
    done = vbios(*serve_args(home_copy), *tpm_of(vbios_server))
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


def test_sigterm_stops_the_server_cleanly(
    home_copy: Path, start_server: Any, vbios_server: Any
) -> None:
    server = start_server(home_copy, "--workers", "1", "--threads", "2", *tpm_of(vbios_server))
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
    assert "powered on the demo domain, a QEMU + OVMF guest: its firmware boots now" in out
    assert f"domain console demo --follow --home {home}" in out
    assert first.call(bundle, "GetAttributes").status == 200
    assert first.call(bundle, "GetPowerState").text("PowerState") == "On"
    ca_before = (home / "pki" / "ca.pem").read_bytes()
    demo_cert_before = (bundle / "cert.pem").read_bytes()
    assert first.stop() == 0

    second = start_server(home, "--demo-domain", "demo", "--workers", "1", command="devrun")
    assert "initialized" not in second.stdout()
    assert "the demo domain's qemu machine is On" in second.stdout()  # it kept running
    assert (home / "pki" / "ca.pem").read_bytes() == ca_before
    assert (bundle / "cert.pem").read_bytes() == demo_cert_before
    assert second.call(bundle, "GetAttributes").status == 200
    listed = vbios("domain", "list", "--home", str(home))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("demo") == 1


def test_devrun_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine\n")
    done = vbios("devrun", "--home", str(tmp_path), "--bind", "127.0.0.1:0")
    assert_one_line_refusal(done, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_devrun_port_in_use_changes_nothing(vbios_server: Any, tmp_path: Path) -> None:
    home = tmp_path / "never"
    done = vbios("devrun", "--home", str(home), "--bind", f"127.0.0.1:{vbios_server.port}")
    assert_one_line_refusal(done, "is in use")
    assert not home.exists()


def test_wsdl_command_prints_the_contract() -> None:
    from bios_ws.soap.contract import render_wsdl

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
