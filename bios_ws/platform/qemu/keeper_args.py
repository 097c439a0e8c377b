"""The keeper's command line, written by ``QemuPlatform`` and read by the keeper: one
place, so both sides agree on it (every ``PlatformOptions`` field travels as
``--field-name value``)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from bios_ws.config import PlatformOptions
from bios_ws.domain.power import ResetCause

KEEPER_MODULE = "bios_ws.platform.qemu.keeper"


@dataclasses.dataclass(frozen=True)
class KeeperArgs:
    home: Path
    machines_dir: Path
    domain: str
    cause: ResetCause
    delay: float
    #: "module:function": ``factory(config, domain_id) -> MachineHooks``.
    hooks: str
    options: PlatformOptions

    def argv(self) -> list[str]:
        """The whole command (this Python, the keeper module, its arguments)."""
        argv = [sys.executable, "-P", "-m", KEEPER_MODULE, "--home", str(self.home),
                "--machines-dir", str(self.machines_dir), "--domain", self.domain,
                "--cause", self.cause.value, "--delay", repr(float(self.delay)),
                "--hooks", self.hooks]
        for field in dataclasses.fields(PlatformOptions):
            argv += [_flag(field.name), str(getattr(self.options, field.name))]
        return argv

    @classmethod
    def parse(cls, argv: list[str]) -> KeeperArgs:
        parser = argparse.ArgumentParser(prog=KEEPER_MODULE)
        parser.add_argument("--home", type=Path, required=True)
        parser.add_argument("--machines-dir", type=Path, required=True)
        parser.add_argument("--domain", required=True)
        parser.add_argument("--cause", type=ResetCause, required=True)
        parser.add_argument("--delay", type=float, default=0.0)
        parser.add_argument("--hooks", required=True)
        defaults = PlatformOptions()
        for field in dataclasses.fields(PlatformOptions):
            kind: Callable[[str], object] = type(getattr(defaults, field.name))
            if kind is bool:
                kind = _true
            parser.add_argument(_flag(field.name), dest=field.name, type=kind, required=True)
        args = parser.parse_args(argv)
        options = PlatformOptions(**{field.name: getattr(args, field.name)
                                     for field in dataclasses.fields(PlatformOptions)})
        return cls(home=args.home, machines_dir=args.machines_dir, domain=args.domain,
                   cause=args.cause, delay=args.delay, hooks=args.hooks, options=options)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _true(text: str) -> bool:
    return text == "True"
