"""Client bundles for tests, issued the way `vbios domain create` and `vbios cert issue`
issue them: recorded in the home's store, for the domain's current incarnation."""

from __future__ import annotations

from pathlib import Path

from bios_ws.bootstrap import bootstrap
from bios_ws.cli.cert import issue_guest_bundle
from bios_ws.config import Config
from bios_ws.domain.principal import Principal
from bios_ws.home import Home
from bios_ws.service.credentials import ClientBundle, CredentialService
from bios_ws.service.domains import DomainService

ADMIN = Principal.admin("tests")


def issue_bundle(home: Home, domain_id: str, out: Path) -> ClientBundle:
    """A bundle for ``domain_id`` in ``out``; the domain (a simulated machine) is created
    first if the home has none of that name."""
    with bootstrap(Config.of(home)) as app:
        domains = app.use(DomainService)
        if domain_id not in {d.domain_id for d in domains.list(ADMIN)}:
            domains.create(ADMIN, domain_id)
        return issue_guest_bundle(app.use(CredentialService), domain_id, out, ADMIN)
