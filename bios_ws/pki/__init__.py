"""The installation's PKI: CA, server certificate, client bundles (cryptography).

Private keys of the CA and the server are only ever stored encrypted; client
bundles handed out carry their key in clear, mode 0600.
"""

from bios_ws.pki.authority import (
    BUNDLE_FILES,
    Authority,
    check_bundle_dir,
    create_passphrase,
    find_clear_private_keys,
    initialize_pki,
    load_certificate,
    load_private_key,
    write_bundle_files,
    write_client_bundle,
)
from bios_ws.pki.certs import DEFAULT_SERVER_NAMES, Issued

__all__ = [
    "BUNDLE_FILES",
    "DEFAULT_SERVER_NAMES",
    "Authority",
    "Issued",
    "check_bundle_dir",
    "create_passphrase",
    "find_clear_private_keys",
    "initialize_pki",
    "load_certificate",
    "load_private_key",
    "write_bundle_files",
    "write_client_bundle",
]
