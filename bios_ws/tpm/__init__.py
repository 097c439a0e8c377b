"""The TPM 2.0 behind a small port: ``Tpm`` (port), ``open_tpm`` (tpm2-pytss), ``FakeTpm``.

``open_tpm`` lives in ``bios_ws.tpm.esapi`` so that importing this package does
not load the TSS libraries.
"""

from bios_ws.tpm.port import (
    BOOT_PCRS,
    PCR_BANKS,
    PERSISTENT_PRIMARY,
    SERVICE_PCR,
    SealedBlob,
    Tpm,
    policy_pcr_digest,
)

__all__ = [
    "BOOT_PCRS",
    "PCR_BANKS",
    "PERSISTENT_PRIMARY",
    "SERVICE_PCR",
    "SealedBlob",
    "Tpm",
    "policy_pcr_digest",
]
