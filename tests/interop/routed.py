"""The interop tier's routed run (issue 18): each stack's unchanged client calls the
interop server A for a domain whose settings (with Secure Boot) and events A routes to
a remote installation B, which holds that state and gave A a host credential for it.

Only the server differs: the guest's bundle is A's, the URL is A's, and A forwards the
routed calls to B on the guest's behalf. What stays local (power, system management,
thermal, firmware update, attestation, enrollment, the admin's operations) is A's, so
what the scenario checks against a store is read where the capability lives.

What a routed domain shows that a local one does not, all of it by design
(docs/routing.md): A runs the domain's machine, so A's Reset applies the pending settings
B holds at its boot (the Secure Boot switch, BootNext consumed), as a local domain's
Reset does; the Reset's own events are A's, while the guest's event stream is B's (its
settings events); the admin's operations on the domain's routed state
(ApplyPendingAttributes, Add/RemoveSecureBootCertificate) name the domain at A, which
forwards them to B as the domain's platform, so the admin's Secure Boot certificate lands
in the db the guest reads from B; the guest's SetWatchdog arms A's watchdog and sets
OsWatchdogTimer on B; and A audits no routed call, which B audits as ``host:A for
guest:D`` (the guest's) or ``host:A platform of D`` (the admin's and the watchdog's).
``check_routed_calls`` is how a test knows the calls went to B: B's audit holds the
stack's settings writes and event subscription for the domain, by A on the guest's
behalf, and the admin's certificate edits by A as the domain's platform; A's holds none
of them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ServerProcess, init_home, run_vbios

#: The interop server's runs: its own domains, and domains routed to B.
MODES = ("local", "routed")
#: The domains each stack's test asks for (Deployment.new_guest); a routed run's is the
#: same name with ROUTED_SUFFIX, granted to A on B when B starts.
STACK_DOMAINS = ("gsoap", "interop-java", "mono", "interop-node", "interop-php")
ROUTED_SUFFIX = "-routed"
#: The capabilities A routes to B for a routed domain.
ROUTED_CAPABILITIES = ("settings", "events")
REMOTE_NAME = "b"
#: Operations of every stack's scenario that reach B for a routed domain (at least).
ROUTED_WRITES = frozenset({"SetAttributes", "SetBootOrder", "Subscribe", "Renew",
                           "Unsubscribe"})
#: Operations of every stack's scenario that A answers itself for any domain.
LOCAL_OPERATIONS = frozenset({"Reset", "BeginFirmwareUpload", "SetWatchdog"})
#: The admin's operations of every stack's scenario that A forwards to B as the routed
#: domain's platform.
PLATFORM_WRITES = frozenset({"AddSecureBootCertificate", "RemoveSecureBootCertificate"})


def vbios_ok(*args: str) -> str:
    done = run_vbios(*args)
    assert done.returncode == 0, f"vbios {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def this_host(home: Path) -> str:
    """The host name of ``home`` (`vbios host list`: its own row)."""
    hosts = json.loads(vbios_ok("host", "list", "--json", "--home", str(home)))
    return str(next(row["host"] for row in hosts if row["this_home"]))


@dataclass(frozen=True)
class Remote:
    """B: the installation that holds the routed domains' settings and events."""

    server: ServerProcess
    host: str  # A's host name, which B names in its audit

    @property
    def home(self) -> Path:
        return self.server.home

    def audit(self) -> list[dict[str, Any]]:
        return audit_of(self.home)


def audit_of(home: Path) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(
        vbios_ok("audit", "show", "--json", "--home", str(home)))
    return entries


@contextlib.contextmanager
def remote_installation(work: Path, a: ServerProcess) -> Iterator[Remote]:
    """B served from a new home in ``work`` (no TPM: it holds settings and events only),
    holding every stack's routed domain, with A's host credential added to A as remote
    ``b``; B stopped after (the remote stays in A's store, A's home goes with the tier)."""
    home = work / "b-home"
    init_home(home, "--no-tpm", "--host-name", "interop-b")
    server = ServerProcess(home=home, work=work)
    try:
        server.start()
        domains = [name + ROUTED_SUFFIX for name in STACK_DOMAINS]
        for domain in domains:
            vbios_ok("domain", "create", domain, "--home", str(home))
        host = this_host(a.home)
        credential = work / "a-credential"
        vbios_ok("host", "add", host, "--domains", ",".join(domains), "--out",
                 str(credential), "--home", str(home))
        vbios_ok("remote", "add", REMOTE_NAME, server.url, "--bundle", str(credential),
                 "--home", str(a.home))
        yield Remote(server, host)
    finally:
        server.stop()


def route_domain(a: ServerProcess, domain: str) -> None:
    """A routes ``domain``'s settings and events to B."""
    for capability in ROUTED_CAPABILITIES:
        vbios_ok("route", "set", capability, REMOTE_NAME, "--domain", domain,
                 "--home", str(a.home))


def check_routed_calls(remote: Remote, a_home: Path, domain: str) -> None:
    """The stack's settings and events calls for ``domain`` went to B, by A on the
    guest's behalf (B's audit), and the admin's Secure Boot certificate edits by A as the
    domain's platform; A audited none of them; its local calls stayed A's."""
    entries = remote.audit()
    on_behalf = f"host:{remote.host} for guest:{domain}"
    on_b = {e["operation"] for e in entries
            if e["principal"] == on_behalf and e["outcome"] == "ok"}
    assert on_b >= ROUTED_WRITES, f"B's audit lacks {sorted(ROUTED_WRITES - on_b)} by" \
                                  f" {on_behalf}: {sorted(on_b)}"
    assert not on_b & LOCAL_OPERATIONS, sorted(on_b & LOCAL_OPERATIONS)
    as_platform = f"host:{remote.host} platform of {domain}"
    by_platform = {e["operation"] for e in entries if e["principal"] == as_platform
                   and e.get("domain") == domain and e["outcome"] == "ok"}
    assert by_platform >= PLATFORM_WRITES, \
        f"B's audit lacks {sorted(PLATFORM_WRITES - by_platform)} by {as_platform}"
    a_entries = audit_of(a_home)
    on_a = {e["operation"] for e in a_entries if e.get("domain") == domain
            and e["principal"] == f"guest:{domain}"}
    assert not on_a & ROUTED_WRITES, f"A answered {sorted(on_a & ROUTED_WRITES)} itself"
    assert on_a >= LOCAL_OPERATIONS, f"A's audit lacks {sorted(LOCAL_OPERATIONS - on_a)}"
    edited_on_a = {e["operation"] for e in a_entries if e.get("domain") == domain
                   and e["operation"] in PLATFORM_WRITES}
    assert not edited_on_a, f"A applied the admin's {sorted(edited_on_a)} itself"


def check_reset_secure_boot(before: bool, secure_boot: Any) -> None:
    """The guest turned Secure Boot (pending) before A's Reset On: the domain booted with
    it, routed or not (A applies B's pending settings at the boot of its machine)."""
    assert secure_boot.enabled is (not before)


def check_admin_certificate(added: str, listed: list[str], removed: str) -> None:
    """The admin added ``added`` to the domain's db, the guest listed the db, the admin
    removed the last one listed: the admin's, in the db the guest reads (B's, for a
    routed domain: A forwarded the admin's edits there as the domain's platform)."""
    assert added in listed and removed == added, (added, listed, removed)
