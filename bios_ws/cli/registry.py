"""`vbios registry show|check|apply`: which attribute registry is in force, and replacing it.

    vbios registry show [--json]                    # the file, its SHA-256, the one in force
    vbios registry check FILE [--json]              # stored values FILE rejects (exit 1 if any)
    vbios registry apply FILE [--reset-invalid]     # put FILE in force (one transaction)

A registry in force is recorded in the store and reaches running servers at
their next call; the home's ``registry.json`` is rewritten with it (what a
starting server compares with the store, and what the service PCR measures: on
a TPM home, `vbios tpm reseal` before the next `vbios serve`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bios_ws.cli.options import add_home
from bios_ws.errors import AdminError, RegistryError
from bios_ws.home import Home, resolve_home_path

if TYPE_CHECKING:
    from bios_ws.domain.registry_change import RegistryDocument
    from bios_ws.service.registry import RegistryService

__all__ = ["register"]

T = TypeVar("T")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    registry = commands.add_parser("registry", help="the attribute registry in force")
    sub = registry.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")
    show = sub.add_parser("show", help="print which registry is in force (path and SHA-256)")
    add_home(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=run_show)
    check = sub.add_parser("check", help="list the stored values FILE would reject"
                                         " (exit 1 when any)")
    add_home(check)
    check.add_argument("file", metavar="FILE", type=Path, help="the new registry (JSON)")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(run=run_check)
    apply = sub.add_parser("apply", help="put FILE in force for every domain (audited)")
    add_home(apply)
    apply.add_argument("file", metavar="FILE", type=Path, help="the new registry (JSON)")
    apply.add_argument("--reset-invalid", action="store_true",
                       help="reset the values FILE rejects to its defaults (each audited)"
                            " instead of refusing")
    apply.set_defaults(run=run_apply)


def _with_registry(args: argparse.Namespace, action: Callable[[Home, RegistryService], T]
                   ) -> T:
    """Run ``action`` over the home's store; the home's own registry file is not read (a
    damaged one is what `apply` repairs)."""
    from bios_ws.service.bios import utc_now
    from bios_ws.service.registry import RegistryService
    from bios_ws.store import open_store

    home = Home.open(resolve_home_path(args.home))
    store = open_store(home.db_url)
    try:
        return action(home, RegistryService(store.unit_of_work, utc_now))
    finally:
        store.dispose()


def read_document(path: Path) -> RegistryDocument:
    from bios_ws.registry_file import load_registry_document

    return load_registry_document(path)


def run_show(args: argparse.Namespace) -> int:
    def action(home: Home, service: RegistryService) -> int:
        path = home.registry_path
        try:
            digest: str | None = hashlib.sha256(_file_bytes(path)).hexdigest()
            problem = None
        except RegistryError as exc:
            digest, problem = None, exc.message
        in_force = service.in_force()
        if args.json:
            print(json.dumps({
                "path": str(path), "sha256": digest, "problem": problem,
                "in_force": None if in_force is None else {
                    "sha256": in_force.digest, "generation": in_force.generation,
                    "registry_version": in_force.registry_version},
                "matches": in_force is not None and in_force.digest == digest}, indent=2))
            return 0
        print(f"file:     {path}")
        print(f"sha256:   {digest if digest is not None else problem}")
        if in_force is None:
            print("in force: none recorded yet (the next `vbios serve` records the file)")
        else:
            print(f"in force: registry {in_force.registry_version}, sha256 {in_force.digest},"
                  f" generation {in_force.generation}")
            if in_force.digest != digest:
                print(f"the file differs from the registry in force: `vbios registry check"
                      f" {path}`, then `vbios registry apply {path}` (or restore it)")
        return 0

    return _with_registry(args, action)


def run_check(args: argparse.Namespace) -> int:
    document = read_document(args.file)

    def action(home: Home, service: RegistryService) -> int:
        rejected = service.check(document)
        if args.json:
            print(json.dumps({"file": str(args.file), "sha256": document.digest,
                              "rejected": [r.to_json_obj() for r in rejected]}, indent=2))
        else:
            for item in rejected:
                print(item.describe())
            print(f"{args.file} (sha256 {document.digest}): {len(rejected)} stored value(s)"
                  " it rejects" + ("; `vbios registry apply --reset-invalid` resets them"
                                   if rejected else ""))
        return 1 if rejected else 0

    return _with_registry(args, action)


def run_apply(args: argparse.Namespace) -> int:
    from bios_ws.domain.principal import Principal
    from bios_ws.pki.files import PUBLIC_MODE, write_file_atomic

    document = read_document(args.file)

    def action(home: Home, service: RegistryService) -> int:
        rejected = service.check(document)
        if rejected and not args.reset_invalid:
            for item in rejected:
                print(item.describe())
        report = service.apply(Principal.admin("vbios-cli"), document,
                               reset_invalid=args.reset_invalid)
        for domain_id, conformed in sorted(report.domains.items()):
            for reset in conformed.resets:
                print(reset.describe())
            if conformed.added:
                print(f"domain {domain_id}: added {', '.join(conformed.added)} (defaults)")
            if conformed.removed:
                print(f"domain {domain_id}: removed {', '.join(conformed.removed)}")
        before = _digest_or_none(home.registry_path)
        write_file_atomic(home.registry_path, document.text.encode("utf-8"), PUBLIC_MODE)
        print(f"registry {document.registry.registry_version} (sha256 {document.digest}) in"
              f" force, generation {report.generation}; {len(report.domains)} domain(s)"
              f" changed; installed as {home.registry_path}")
        if home.uses_tpm and before != document.digest:
            print("the service measurement changed (config/registry.json): run"
                  " `vbios tpm reseal` before the next `vbios serve`")
        return 0

    return _with_registry(args, action)


def _file_bytes(path: Path) -> bytes:
    from bios_ws.registry_file import read_registry_bytes

    return read_registry_bytes(path)


def _digest_or_none(path: Path) -> str | None:
    try:
        return hashlib.sha256(_file_bytes(path)).hexdigest()
    except (RegistryError, AdminError):
        return None
