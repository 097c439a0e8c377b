"""The TPM object templates of the service: its storage primary and its sealed objects."""

from __future__ import annotations

from typing import Any

from tpm2_pytss.constants import TPM2_ALG, TPMA_OBJECT
from tpm2_pytss.types import (
    TPM2B_PUBLIC,
    TPMT_PUBLIC,
    TPMT_SYM_DEF,
    TPMU_SYM_KEY_BITS,
    TPMU_SYM_MODE,
)

PRIMARY_ATTRIBUTES = (
    TPMA_OBJECT.RESTRICTED
    | TPMA_OBJECT.DECRYPT
    | TPMA_OBJECT.FIXEDTPM
    | TPMA_OBJECT.FIXEDPARENT
    | TPMA_OBJECT.SENSITIVEDATAORIGIN
    | TPMA_OBJECT.USERWITHAUTH
    | TPMA_OBJECT.NODA
)
SEALED_ATTRIBUTES = TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.NODA


def aes128_cfb() -> Any:
    return TPMT_SYM_DEF(
        algorithm=TPM2_ALG.AES,
        keyBits=TPMU_SYM_KEY_BITS(aes=128),
        mode=TPMU_SYM_MODE(aes=TPM2_ALG.CFB),
    )


def primary_template() -> Any:
    """ECC P-256 restricted decrypt storage key, AES-128-CFB, NODA: deterministic per seed."""
    return TPM2B_PUBLIC.parse("ecc256:aes128cfb", objectAttributes=PRIMARY_ATTRIBUTES)


def sealed_template(policy: bytes) -> Any:
    """KEYEDHASH sealed data object: SHA-256 name, PolicyPCR auth only, NODA, scheme NULL."""
    public = TPM2B_PUBLIC(
        TPMT_PUBLIC(
            type=TPM2_ALG.KEYEDHASH,
            nameAlg=TPM2_ALG.SHA256,
            objectAttributes=SEALED_ATTRIBUTES,
            authPolicy=policy,
        )
    )
    public.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG.NULL
    return public
