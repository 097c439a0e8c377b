"""A home as a host of its store (``domain.hosts``): its name checked free at `vbios
init`, registered once its CA exists, and its start recorded by `vbios serve`."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bios_ws.domain.principal import Principal
from bios_ws.errors import AdminError
from bios_ws.home import Home
from bios_ws.service.bios import utc_now
from bios_ws.service.delegates import is_delegate
from bios_ws.service.hosts import HostService, delegate_message
from bios_ws.store import open_store


def ca_fingerprint(home: Home) -> str:
    """The lower-case hex SHA-256 of the home's CA certificate (DER): its host identity."""
    try:
        cert = x509.load_pem_x509_certificate(home.ca_cert.read_bytes())
    except (OSError, ValueError):
        raise AdminError(f"{home.ca_cert}: the CA certificate is missing or damaged") from None
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def check_host_free(home: Home) -> None:
    """AdminError if the home's host name is already registered in its store (a new home
    has a new CA: it can never be that host), or is a delegate host's."""
    name = home.host_name
    store = open_store(home.db_url)
    try:
        with store.unit_of_work() as uow:
            known = uow.hosts.get(name)
            delegate = is_delegate(uow, name)
    finally:
        store.dispose()
    if delegate:
        raise AdminError(delegate_message(name))
    if known is not None:
        raise AdminError(f"host name {name} is already registered in this store by another"
                         " installation: give this home its own name (--host-name NAME)")


def register_home(home: Home, store_url: str | None = None, *, starting: bool) -> str | None:
    """Register ``home`` as its host (or record its server ``starting``); a line saying
    what was done, or None."""
    store = open_store(store_url or home.db_url)
    try:
        hosts = HostService(store.unit_of_work, utc_now)
        who = Principal.admin("vbios-serve" if starting else "vbios-init")
        return hosts.register(who, home.host_name, ca_fingerprint(home), home.tpm.setting,
                              starting=starting)
    finally:
        store.dispose()
