"""`vbios tpm start|status|reboot|stop`: the CLI of the development TPM, with a real swtpm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bios_ws.home import Home
from bios_ws.tpm.devtpm import SWTPM_MISSING, DevTpm

pytestmark = pytest.mark.skipif(shutil.which("swtpm") is None, reason="swtpm is needed")

VBIOS = [sys.executable, "-c", "import sys; from bios_ws.cli import main; sys.exit(main())"]


def vbios(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VBIOS, *args], capture_output=True, text=True, timeout=120,
                          env=env, check=False)


def status_json(home: Path) -> dict[str, object]:
    result = vbios("tpm", "status", "--home", str(home), "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_start_status_reboot_stop(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "home")
    assert status_json(home.path) == {"running": False, "tcti": None, "pid": None,
                                      "server_port": None, "ctrl_port": None}
    started = vbios("tpm", "start", "--home", str(home.path))
    try:
        assert started.returncode == 0, started.stderr
        status = status_json(home.path)
        assert status["running"] is True
        assert status["tcti"] == f"swtpm:host=127.0.0.1,port={status['server_port']}"
        assert str(status["tcti"]) in started.stdout
        assert (home.path / "tpm" / "binary_bios_measurements").is_file()
        human = vbios("tpm", "status", "--home", str(home.path))
        assert "running" in human.stdout and str(status["tcti"]) in human.stdout
        rebooted = vbios("tpm", "reboot", "--home", str(home.path))
        assert rebooted.returncode == 0, rebooted.stderr
        assert status_json(home.path) == status
        stopped = vbios("tpm", "stop", "--home", str(home.path))
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert status_json(home.path)["running"] is False
    finally:
        DevTpm(home.tpm_dir).stop()


def test_home_from_the_environment(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "home")
    env = {**os.environ, "VBIOS_HOME": str(home.path)}
    result = vbios("tpm", "status", "--json", env=env)
    assert result.returncode == 0 and json.loads(result.stdout)["running"] is False


def test_missing_swtpm_is_refused_in_one_line(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "home")
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    result = vbios("tpm", "start", "--home", str(home.path), env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == f"vbios: {SWTPM_MISSING}"
    assert not (home.path / "tpm" / "state").exists()


def test_missing_home_is_refused_in_one_line(tmp_path: Path) -> None:
    result = vbios("tpm", "start", "--home", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert result.stderr.startswith("vbios: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_reboot_of_a_stopped_tpm_is_refused_in_one_line(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "home")
    result = vbios("tpm", "reboot", "--home", str(home.path))
    assert result.returncode == 1
    assert "not running" in result.stderr and len(result.stderr.strip().splitlines()) == 1
