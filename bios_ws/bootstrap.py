"""Wiring: one state directory in, one object graph out.

Everything the service needs is read from the ``Home`` it is given; nothing
comes from the environment. ``initialize_home`` is what `vbios init` (and
`vbios devrun` on a fresh home) runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bios_ws.domain.registry import AttributeRegistry
from bios_ws.errors import AdminError
from bios_ws.home import Home
from bios_ws.pki import DEFAULT_SERVER_NAMES, initialize_pki
from bios_ws.pki.certs import parse_server_names
from bios_ws.pki.files import PUBLIC_MODE, write_file_atomic
from bios_ws.registry_file import load_registry, shipped_registry_text
from bios_ws.service.bios import BiosService
from bios_ws.service.domains import DomainService
from bios_ws.store import SqlStore, open_store


@dataclass
class Services:
    registry: AttributeRegistry
    store: SqlStore
    bios: BiosService
    domains: DomainService

    def close(self) -> None:
        """Release the store's connections."""
        self.store.dispose()


def build_services(home: Home) -> Services:
    """The registry of ``home``, its store, and the use cases over them."""
    registry = load_registry(home.registry_path)
    store = open_store(home.db_url)
    return Services(
        registry=registry,
        store=store,
        bios=BiosService(store.unit_of_work, registry),
        domains=DomainService(store.unit_of_work, registry),
    )


def initialize_home(
    path: Path, server_names: Sequence[str] = DEFAULT_SERVER_NAMES
) -> Home:
    """Make a new installation at ``path``: registry, store, CA, server and admin keys.

    Refuses a foreign directory and an initialized home. The CA certificate is
    written last, so a home interrupted half-way can be initialized again.
    """
    # Refuse a bad server name or a broken shipped registry before anything is written.
    parse_server_names(server_names)
    load_registry(None)
    shipped = shipped_registry_text()
    home = Home.create(path)
    if home.is_initialized:
        raise AdminError(f"{home.path} is already initialized")
    write_file_atomic(home.registry_path, shipped.encode("utf-8"), PUBLIC_MODE)
    open_store(home.db_url).dispose()
    initialize_pki(home, server_names)
    return home
