"""`vbios devrun` (what `make run` runs) as a user meets it, with real processes, swtpm
and the demo's QEMU guest: the recovery code on the terminal only, how to reach the
home, one server per home, and the development TPM resealed after a service change
(a TPM given by the admin is not)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import subprocess
import termios
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bios_ws.launch.recovery import read_recovery
from tests.e2e.conftest import (
    VBIOS,
    ServerProcess,
    StartServer,
    dev_tpm_tcti,
    init_home,
    run_vbios,
    stop_dev_tpm,
)
from tests.qemu_support import kill_all

CODE = re.compile(r"RECOVERY CODE \(shown once, on this terminal only[^)]*\): "
                  r"([A-Z2-7]{4}(?:-[A-Z2-7]{4}){7})")
ANY_CODE = re.compile(r"[A-Z2-7]{4}(?:-[A-Z2-7]{4}){7}")
REFUSAL_TIMEOUT = 120.0

StartDevrun = Callable[..., tuple[ServerProcess, str]]


def _take_terminal() -> None:
    """In the child, after setsid: its stdin, the pty, becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _drain(master: int) -> str:
    chunks: list[bytes] = []
    while select.select([master], [], [], 0.5)[0]:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("ascii", "replace")


@pytest.fixture
def start_devrun(tmp_path: Path) -> Iterator[StartDevrun]:
    """Start `vbios devrun` in a session of its own, stdout and stderr to files; with
    ``terminal`` a pty is its controlling terminal (and stdin). The server, the demo's
    guest and the swtpm are stopped by pid at the end."""
    started: list[ServerProcess] = []

    def start(home: Path, *, terminal: bool) -> tuple[ServerProcess, str]:
        server = ServerProcess(home=home, work=tmp_path, command="devrun")
        started.append(server)
        master, slave = pty.openpty() if terminal else (-1, -1)
        try:
            with server.stdout_path.open("wb") as out, server.stderr_path.open("wb") as err:
                server.proc = subprocess.Popen(
                    [str(VBIOS), "devrun", "--home", str(home), "--bind", "127.0.0.1:0",
                     "--workers", "1"],
                    stdin=slave if terminal else subprocess.DEVNULL, stdout=out, stderr=err,
                    start_new_session=True, preexec_fn=_take_terminal if terminal else None)
            if terminal:
                os.close(slave)
            server.wait_ready()
            return server, _drain(master) if terminal else ""
        finally:
            if terminal:
                os.close(master)

    try:
        yield start
    finally:
        for server in started:
            server.stop()
        for home in {server.home for server in started}:
            kill_all(home / "machines")
            stop_dev_tpm(home)


def test_devrun_shows_the_code_on_its_terminal_and_says_how_to_reach_the_home(
    tmp_path: Path, start_devrun: StartDevrun, start_server: StartServer
) -> None:
    home = tmp_path / "dev-home"
    server, terminal = start_devrun(home, terminal=True)
    shown = CODE.search(terminal)
    assert shown is not None, terminal
    code = shown.group(1)
    read_recovery(home / "tpm" / "sealed" / "recovery.json", code)  # the real code
    out, err = server.stdout(), server.stderr()
    assert code not in out and code not in err  # not where stdout or the server log goes
    assert f"export VBIOS_HOME={home}" in out, out
    assert re.search(r"^  \S*vbios domain list$", out, re.MULTILINE), out
    listed = subprocess.run([str(VBIOS), "domain", "list"], capture_output=True, text=True,
                            timeout=REFUSAL_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
                            env={**os.environ, "VBIOS_HOME": str(home)})
    assert listed.returncode == 0, listed.stderr
    assert "demo" in listed.stdout

    # one server per home: a second serve or devrun, on another port, is refused
    for command in ("serve", "devrun"):
        second = run_vbios(command, "--home", str(home), "--bind", "127.0.0.1:0",
                           timeout=REFUSAL_TIMEOUT)
        assert second.returncode == 1, (command, second.stdout, second.stderr)
        assert "Traceback" not in second.stderr
        assert (f"vbios: {home} is already served by pid {server.pid}"
                f" (lock {home / 'serve.lock'})") in second.stderr, second.stderr
        assert "serving" not in second.stdout
    assert server.call(home / "bundles" / "demo", "GetAttributes").status == 200
    assert server.stop() == 0

    # an edit of the measured service: devrun reseals the development TPM by itself
    apply_changed_registry(home)
    again = start_server(home, "--workers", "1", command="devrun")
    err = again.stderr()
    assert "the service changed since its keys were sealed; resealed them to it in the" \
           " development TPM" in err, err
    assert "changed: config/registry.json" in err
    assert "resealed" not in again.stdout()
    assert "unsealed by the TPM" in again.stdout()
    assert again.call(home / "bundles" / "demo", "GetAttributes").status == 200
    assert again.stop() == 0
    served = start_server(home, "--workers", "1")  # sealed to the new service: no reseal
    assert "resealed" not in served.stderr()


def apply_changed_registry(home: Path) -> None:
    """Change a measured input of the service the way an admin does: a registry put in force
    with `vbios registry apply` (the same attributes, one more byte)."""
    changed = home.parent / "registry-changed.json"
    changed.write_text((home / "registry.json").read_text() + "\n")
    applied = run_vbios("registry", "apply", str(changed), "--home", str(home))
    assert applied.returncode == 0, (applied.stdout, applied.stderr)
    assert (home / "registry.json").read_bytes() == changed.read_bytes()


def test_devrun_without_a_terminal_shows_no_code_and_says_so(
    tmp_path: Path, start_devrun: StartDevrun
) -> None:
    home = tmp_path / "ci-home"
    server, _ = start_devrun(home, terminal=False)
    out, err = server.stdout(), server.stderr()
    assert "no terminal to show the recovery code on" in err, err
    assert ANY_CODE.search(out) is None and ANY_CODE.search(err) is None
    assert (home / "tpm" / "sealed" / "recovery.json").is_file()


def test_a_tpm_given_by_the_admin_is_not_resealed_by_devrun(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        out = init_home(home)
        assert ("the development TPM (swtpm) runs now; stop it with:"
                f" vbios tpm stop --home {home}") in out
        sealed = (home / "tpm" / "sealed" / "sealed-state.json").read_bytes()
        apply_changed_registry(home)
        done = run_vbios("devrun", "--home", str(home), "--bind", "127.0.0.1:0",
                         "--tpm", dev_tpm_tcti(home), timeout=REFUSAL_TIMEOUT)
        assert done.returncode == 1, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        for needle in ("PCR 23 (sha256) differ", "changed: config/registry.json",
                       f"vbios tpm reseal --home {home}"):
            assert needle in done.stderr, done.stderr
        assert "resealed" not in done.stderr
        assert (home / "tpm" / "sealed" / "sealed-state.json").read_bytes() == sealed
        stopped = run_vbios("tpm", "stop", "--home", str(home))
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    finally:
        kill_all(home / "machines")
        stop_dev_tpm(home)
