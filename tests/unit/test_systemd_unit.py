"""packaging/systemd/vbios.service: its ExecStart is a `vbios serve` the parser accepts,
it carries the hardening and the device TPM it promises, and `systemd-analyze verify`
accepts it where systemd-analyze exists (the binary path set to this machine's).
packaging/systemd/vbios.socket holds the one listening socket the service takes, on the
service's address, with the server's backlog."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from bios_ws.cli import build_parser
from bios_ws.server.options import LISTEN_BACKLOG

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "systemd" / "vbios.service"
SOCKET_UNIT = ROOT / "packaging" / "systemd" / "vbios.socket"
INSTALLED_VBIOS = "/opt/vbios/bin/vbios"


def read_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """The unit as systemd reads it: sections of keys, each with its values in order
    (a key may repeat, as DeviceAllow= does); comments and blank lines skipped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"line {number} is outside any section: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"line {number} is not KEY=VALUE: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(section: dict[str, list[str]], key: str) -> str:
    values = section.get(key)
    assert values and len(values) == 1, f"{key}= must be set once: {values}"
    return values[0]


def test_exec_start_is_a_serve_command_the_parser_accepts() -> None:
    service = read_unit(UNIT.read_text())["Service"]
    argv = shlex.split(one(service, "ExecStart"))
    assert argv[0] == INSTALLED_VBIOS
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve"
    assert args.home == "/var/lib/vbios"
    assert args.tpm == "device:/dev/tpmrm0"
    assert args.event_log == "/run/vbios/binary_bios_measurements"
    assert args.bind is not None


def test_the_unit_runs_hardened_as_its_own_user_with_the_device_tpm() -> None:
    unit = read_unit(UNIT.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert one(service, "User") == "vbios"
    assert "tss" in one(service, "SupplementaryGroups").split()
    assert one(service, "StateDirectory") == "vbios"
    assert one(service, "StateDirectoryMode") == "0700"
    assert one(service, "ReadWritePaths") == "/var/lib/vbios"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "PrivateTmp": "yes", "ProtectHome": "yes",
                       "DevicePolicy": "closed", "Restart": "on-failure",
                       "UMask": "0077", "CapabilityBoundingSet": ""}.items():
        assert one(service, key) == value, key
    assert "/dev/tpmrm0 rw" in service["DeviceAllow"]
    assert "ExecReload" in service
    assert one(unit["Install"], "WantedBy") == "multi-user.target"
    # the unit serves the home its ExecStart names, the one it may write
    assert "--home /var/lib/vbios" in one(service, "ExecStart")


def test_the_socket_unit_holds_one_socket_on_the_service_address() -> None:
    socket_unit = read_unit(SOCKET_UNIT.read_text())
    assert set(socket_unit) == {"Unit", "Socket", "Install"}
    sockets = socket_unit["Socket"]
    service = read_unit(UNIT.read_text())
    argv = shlex.split(one(service["Service"], "ExecStart"))
    bind = build_parser().parse_args(argv[1:]).bind
    assert one(sockets, "ListenStream") == bind  # vbios serve takes exactly one socket
    assert int(one(sockets, "Backlog")) >= LISTEN_BACKLOG
    assert one(sockets, "NoDelay") == "yes"
    assert one(socket_unit["Install"], "WantedBy") == "sockets.target"
    # the service starts with its socket, after it
    assert "vbios.socket" in one(service["Unit"], "Requires").split()
    assert "vbios.socket" in one(service["Unit"], "After").split()


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """Where systemd-analyze exists, it verifies the units with ExecStart's binary set to
    this machine's vbios (it checks that the binary exists); elsewhere the checks above
    are what can be checked."""
    analyze = shutil.which("systemd-analyze")
    vbios = Path(sys.executable).parent / "vbios"
    text = UNIT.read_text()
    assert text.count(INSTALLED_VBIOS) >= 1
    local = tmp_path / "vbios.service"
    local.write_text(text.replace(INSTALLED_VBIOS, str(vbios)))
    local_socket = tmp_path / "vbios.socket"
    local_socket.write_text(SOCKET_UNIT.read_text())
    assert read_unit(local.read_text())["Service"]["ExecStart"][0].startswith(str(vbios))
    if analyze is None:
        return
    done = subprocess.run([analyze, "verify", str(local_socket), str(local)],
                          capture_output=True, text=True, timeout=60, check=False,
                          cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unknown key" not in done.stderr, done.stderr
