"""Two installations on loopback for the routed e2e tests (issue 18): B holds domain d1
and issued host A a credential for it; A runs d1 (its machine and its guest's bundle)
and knows B as remote "b". Each has its own home, CA and `vbios serve`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ServerProcess, StartServer, init_home, run_vbios


def vbios_ok(*args: str) -> str:
    done = run_vbios(*args)
    assert done.returncode == 0, f"vbios {' '.join(args)}:\n{done.stderr}"
    return done.stdout


def audit(home: Path) -> list[dict[str, Any]]:
    """The audit chain of ``home``, as `vbios audit show --json` prints it."""
    rows: list[dict[str, Any]] = json.loads(vbios_ok("audit", "show", "--json", "--home",
                                                     str(home)))
    return rows


@dataclass(frozen=True)
class Installations:
    a: ServerProcess
    b: ServerProcess
    #: d1's guest bundle (A's CA) and A's host credential at B.
    guest: Path
    credential: Path

    @property
    def a_home(self) -> Path:
        return self.a.home

    @property
    def b_home(self) -> Path:
        return self.b.home

    def route(self, *args: str) -> None:
        """`vbios route set ARGS` on A."""
        vbios_ok("route", "set", *args, "--home", str(self.a_home))


def two_installations(tmp_path: Path, start_server: StartServer, *,
                      a_args: Sequence[str] = ("--workers", "1"),
                      b_args: Sequence[str] = ("--workers", "1")) -> Installations:
    """A and B serving, B's d1 granted to A, A's d1 made and B added as remote "b" (no
    route yet: ``Installations.route``)."""
    a_home, b_home = tmp_path / "a", tmp_path / "b"
    init_home(a_home, "--no-tpm", "--host-name", "host-a")
    init_home(b_home, "--no-tpm", "--host-name", "host-b")
    b = start_server(b_home, *b_args)
    b.create_domain("d1")  # the routed state lives here
    credential = tmp_path / "host-a-credential"
    vbios_ok("host", "add", "host-a", "--domains", "d1", "--out", str(credential),
             "--home", str(b_home))
    a = start_server(a_home, *a_args)
    guest = tmp_path / "guest-d1"  # the machine and the guest's certificate are A's
    vbios_ok("domain", "create", "d1", "--home", str(a_home), "--out", str(guest))
    vbios_ok("remote", "add", "b", b.url, "--bundle", str(credential), "--home", str(a_home))
    return Installations(a, b, guest, credential)
