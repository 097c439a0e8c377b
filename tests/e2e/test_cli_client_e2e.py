"""The `vbios-client` command against a real `vbios serve`: outputs, JSON shapes, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import foreign_ca_pem
from tests.ports import closed_port

VBIOS_CLIENT = Path(sys.executable).parent / "vbios-client"
TIMEOUT = 60.0
ServerProcess = Any  # tests/e2e/conftest.py: .url, .create_domain(name), .admin_bundle


class Cli:
    """Runs vbios-client as one guest; nothing inherited from the caller's VBIOS_* env."""

    def __init__(self, url: str, bundle: Path) -> None:
        self.url, self.bundle = url, bundle

    def __call__(self, *argv: str, url: str | None = None, bundle: Path | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("VBIOS_")}
        environ.update({"VBIOS_URL": url or self.url, "VBIOS_BUNDLE": str(bundle or self.bundle)})
        environ.update(env or {})
        return subprocess.run([str(VBIOS_CLIENT), *argv], capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL, env=environ,
                              check=False)

    def json(self, *argv: str, **kwargs: Any) -> Any:
        done = self(*argv, "--json", **kwargs)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def cli(vbios_server: ServerProcess) -> Cli:
    return Cli(vbios_server.url, Path(vbios_server.create_domain("cli-e2e")))


def refused(done: subprocess.CompletedProcess[str], code: str) -> None:
    """Exit 1 and exactly one line on stderr naming the fault code."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vbios-client: {code}: "), done.stderr


def test_attributes_get_json_and_text(cli: Cli) -> None:
    data = cli.json("attributes", "get")
    assert set(data) == {"version", "attributes", "setup_password_set", "pending"}
    assert isinstance(data["version"], int)
    assert data["attributes"]["BootTimeout"] == 5 and data["attributes"]["NumLock"] is True
    some = cli.json("attributes", "get", "BootTimeout", "BootMode")
    assert set(some["attributes"]) == {"BootTimeout", "BootMode"}
    text = cli("attributes", "get", "BootTimeout", "BootMode")
    assert text.returncode == 0
    assert "BootMode    = Uefi" in text.stdout.splitlines()


def test_set_types_values_by_the_registry(cli: Cli) -> None:
    before = cli.json("attributes", "get")["version"]
    data = cli.json("attributes", "set", "BootTimeout=10", "NumLock=false", "AssetTag=10",
                    "--if-match", str(before))
    assert data == {"version": before + 1}
    values = cli.json("attributes", "get", "BootTimeout", "NumLock", "AssetTag")["attributes"]
    assert values == {"BootTimeout": 10, "NumLock": False, "AssetTag": "10"}


def test_pending_cancel_reset_and_registry(cli: Cli) -> None:
    cli.json("attributes", "set", "BootMode=Bios", "--apply-time", "OnReset")
    pending = cli.json("attributes", "pending")
    assert pending["attributes"] == {"BootMode": "Bios"}
    version = cli.json("attributes", "cancel")["version"]
    assert cli.json("attributes", "pending") == {"version": version, "attributes": {}}
    cli.json("attributes", "reset-defaults")
    assert cli.json("attributes", "pending")["attributes"]["BootTimeout"] == 5
    registry = cli.json("attributes", "registry")
    names = {a["name"]: a for a in registry["attributes"]}
    assert names["BootTimeout"]["type"] == "Integer" and names["BootTimeout"]["upper_bound"] == 300
    assert isinstance(registry["version"], str)


def test_boot_commands(cli: Cli) -> None:
    boot = cli.json("boot", "get")
    assert set(boot) == {"version", "options", "order", "boot_next"}
    order = list(reversed(boot["order"]))
    cli.json("boot", "set", *order)
    cli.json("boot", "next", order[-1])
    after = cli.json("boot", "get")
    assert after["order"] == order and after["boot_next"] == order[-1]
    cli.json("boot", "next", "--clear")
    assert cli.json("boot", "get")["boot_next"] is None
    text = cli("boot", "get")
    assert text.returncode == 0 and text.stdout.splitlines()[1].startswith(f"1. {order[0]}")


def test_faults_exit_1_with_one_line(cli: Cli) -> None:
    refused(cli("attributes", "set", "BiosVersion=9"), "ReadOnlyAttribute")
    refused(cli("attributes", "set", "BootMode=Bios"), "ResetRequired")
    refused(cli("attributes", "set", "NoSuch=1"), "UnknownAttribute")
    refused(cli("attributes", "set", "BootTimeout=7"), "InvalidAttributeValue")
    refused(cli("attributes", "get", "NoSuch"), "UnknownAttribute")
    refused(cli("boot", "next", "Floppy.0"), "UnknownBootOption")
    refused(cli("boot", "set", "Disk.Virtio.0"), "InvalidBootOrder")
    refused(cli("attributes", "cancel", "--if-match", "100000"), "VersionConflict")


def test_usage_errors_exit_2(cli: Cli) -> None:
    for argv in (["attributes"], ["attributes", "set", "BootTimeout"],
                 ["attributes", "set", "BootTimeout=ten"], ["boot", "next"],
                 ["boot", "next", "Pxe.Nic.0", "--clear"], ["frobnicate"]):
        done = cli(*argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr.strip()
    unset = cli("boot", "get", env={"VBIOS_URL": "", "VBIOS_BUNDLE": ""})
    assert unset.returncode == 2 and "VBIOS_URL" in unset.stderr


def test_unreachable_or_untrusted_server_exit_3(cli: Cli, tmp_path: Path) -> None:
    with closed_port() as port:
        done = cli("boot", "get", url=f"https://127.0.0.1:{port}/")
    assert done.returncode == 3 and done.stderr.startswith("vbios-client: TransportError: ")
    wrong_ca = tmp_path / "bundle"
    shutil.copytree(cli.bundle, wrong_ca)
    (wrong_ca / "ca.pem").write_bytes(foreign_ca_pem())
    done = cli("boot", "get", bundle=wrong_ca)
    assert done.returncode == 3, done.stderr
    assert "TLS" in done.stderr and len(done.stderr.splitlines()) == 1
    assert f"the server at {cli.url} is not from this bundle's CA (ca.pem)" in done.stderr
    as_json = cli("boot", "get", "--json", bundle=wrong_ca)
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout)["error"]["code"] == "TransportError"


def test_setup_password_from_file_or_env(vbios_server: ServerProcess, tmp_path: Path) -> None:
    cli = Cli(vbios_server.url, Path(vbios_server.create_domain("cli-e2e-pw")))
    secret = tmp_path / "setup"
    secret.write_text("cli-setup-pw\n")
    secret.chmod(0o600)
    done = cli("password", "change", "SetupPassword", "--new-password-file", str(secret))
    assert (done.returncode, done.stderr) == (0, "")
    assert cli.json("attributes", "get")["setup_password_set"] is True
    refused(cli("attributes", "set", "BootTimeout=20"), "PasswordRequired")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-pw\n")
    refused(cli("attributes", "set", "BootTimeout=20", "--password-file", str(wrong)),
            "InvalidPassword")
    assert cli.json("attributes", "set", "BootTimeout=20", "--password-file", str(secret))
    assert cli.json("boot", "next", "Pxe.Nic.0", env={"VBIOS_SETUP_PASSWORD": "cli-setup-pw"})
    for done in (cli("attributes", "get"), cli("boot", "get")):
        assert "cli-setup-pw" not in done.stdout + done.stderr
    refused(cli("password", "change", "SetupPassword", "--clear", "--password-file",
                str(wrong)), "InvalidPassword")
    cleared = cli("password", "change", "SetupPassword", "--clear", "--password-file",
                  str(secret))
    assert (cleared.returncode, cleared.stderr) == (0, "")
    assert cli.json("attributes", "get")["setup_password_set"] is False
    # The former name of the current password's file still works, with a note.
    again = cli("password", "change", "SetupPassword", "--new-password-file", str(secret))
    assert again.returncode == 0, again.stderr
    former = cli("password", "change", "SetupPassword", "--clear", "--old-file", str(secret))
    assert former.returncode == 0 and "--old-file is a former name" in former.stderr
    assert cli.json("attributes", "get")["setup_password_set"] is False


def test_pending_values_beside_current_ones_and_the_step(cli: Cli) -> None:
    cli.json("attributes", "cancel")
    cli.json("attributes", "set", "BootMode=Bios", "--apply-time", "OnReset")
    text = cli("attributes", "get", "BootMode", "BootTimeout")
    assert text.returncode == 0
    assert "BootMode    = Uefi (pending: Bios)" in text.stdout.splitlines()
    data = cli.json("attributes", "get", "BootMode")
    assert (data["attributes"], data["pending"]) == ({"BootMode": "Uefi"}, {"BootMode": "Bios"})
    cli.json("attributes", "cancel")
    registry = cli("attributes", "registry")
    line = next(x for x in registry.stdout.splitlines() if x.startswith("BootTimeout "))
    assert "[0..300 step 5]" in line


def test_refused_before_sending_exit_2(cli: Cli) -> None:
    before = cli.json("attributes", "get")["version"]
    done = cli("attributes", "set", "SetupPassword=not-this-way")
    assert done.returncode == 2
    assert "vbios-client password change SetupPassword" in done.stderr
    assert "not-this-way" not in done.stderr + done.stdout
    done = cli("attributes", "set", f"BootTimeout={2**64}", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout) == {"error": {
        "code": "UsageError",
        "message": f"BootTimeout = {2**64} is out of range: 0 to 300"}}
    assert cli.json("attributes", "get")["version"] == before  # nothing was sent


def test_json_errors_and_a_mistyped_option(cli: Cli) -> None:
    done = cli("attributes", "set", "BiosVersion=9", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "ReadOnlyAttribute"
    done = cli("attributes", "set", "--bogus", "AssetTag=x")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("usage: vbios-client attributes set ")
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("vbios-client ")


def test_a_key_readable_by_others_is_warned_about(cli: Cli, tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    shutil.copytree(cli.bundle, loose)
    (loose / "key.pem").chmod(0o644)
    done = cli("power", "get", bundle=loose)
    assert done.returncode == 0, done.stderr
    assert done.stderr == (f"vbios-client: warning: {loose / 'key.pem'} can be read by others"
                           " (mode 644): the key lets anyone act as this guest; run chmod 600"
                           f" {loose / 'key.pem'}\n")
    assert cli("power", "get").stderr == ""

