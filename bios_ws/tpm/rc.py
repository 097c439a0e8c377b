"""TSS2 response codes to the bios-ws error tree (standard library only).

A TSS2_RC is ``layer << 16 | code``. Layer 0 is the TPM itself (format-one codes
carry a handle, session or parameter number, stripped by ``tpm_code``); the
other layers are the TSS (ESYS, SYS, MU, TCTI, resource managers).
"""

from __future__ import annotations

from typing import Any

from bios_ws.errors import TpmError, TpmLockout, TpmPolicyMismatch, TpmUnavailable

LAYER_MASK = 0xFF0000
TPM_LAYER = 0x000000
TCTI_LAYER = 0x0A0000
RESMGR_TPM_LAYER = 0x0B0000

TPM_RC_FMT1 = 0x080
TPM_RC_INITIALIZE = 0x100
TPM_RC_NV_DEFINED = 0x14C
TPM_RC_POLICY_FAIL = 0x09D
TPM_RC_PCR_CHANGED = 0x928
TPM_RC_LOCKOUT = 0x921
TPM_RC_BAD_LOCALITY = 0x907
TPM_RC_HANDLE = 0x08B
TPM_RC_INTEGRITY = 0x09F
#: Transient warnings worth retrying: OBJECT_MEMORY, SESSION_MEMORY, MEMORY, YIELDED,
#: TESTING, RETRY, NV_RATE (other processes share the TPM's few slots).
RETRYABLE = frozenset({0x902, 0x903, 0x904, 0x908, 0x90A, 0x922, 0x920})

#: TSS base codes meaning the connection is gone or out of step:
#: BAD_SEQUENCE, NO_CONNECTION, TRY_AGAIN, IO_ERROR, MALFORMED_RESPONSE, INSUFFICIENT_RESPONSE.
_CONNECTION_BASE_CODES = frozenset({7, 8, 9, 10, 17, 19})


def rc_of(exc: Any) -> int:
    """The integer response code of a TSS2_Exception (or of anything with ``.rc``)."""
    return int(exc.rc)


def tpm_code(rc: int) -> int | None:
    """The TPM response code without handle/session/parameter numbers; None if not from the TPM."""
    if rc & LAYER_MASK not in (TPM_LAYER, RESMGR_TPM_LAYER):
        return None
    code = rc & 0xFFFF
    if code & TPM_RC_FMT1:
        return TPM_RC_FMT1 | (code & 0x3F)
    return code


def is_retryable(rc: int) -> bool:
    """True for TPM warnings that mean "busy or out of slots, try again"."""
    return tpm_code(rc) in RETRYABLE


def map_tss_error(rc: int, tcti: str, action: str) -> TpmError:
    """The bios-ws error for a TSS2 response code met while doing ``action``."""
    code = tpm_code(rc)
    if code is None:
        if rc & LAYER_MASK == TCTI_LAYER or rc & 0xFFFF in _CONNECTION_BASE_CODES:
            return TpmUnavailable(f"TPM unreachable at {tcti}")
        return TpmError(f"TPM software stack failed to {action} (rc {rc:#x})")
    if code in (TPM_RC_POLICY_FAIL, TPM_RC_PCR_CHANGED):
        return TpmPolicyMismatch(
            f"cannot {action}: PCR values differ from the policy the secret was sealed to"
        )
    if code == TPM_RC_LOCKOUT:
        return TpmLockout(f"cannot {action}: the TPM is in dictionary-attack lockout")
    if code == TPM_RC_INITIALIZE:
        return TpmUnavailable(f"TPM at {tcti} is not started (TPM2_Startup needed)")
    if code == TPM_RC_BAD_LOCALITY:
        return TpmError(f"cannot {action}: not allowed from this locality (rc {rc:#x})")
    if code in (TPM_RC_HANDLE, TPM_RC_INTEGRITY):
        return TpmError(
            f"cannot {action}: no storage primary at 0x81000101, or the object belongs to"
            f" another TPM or primary (rc {rc:#x})"
        )
    return TpmError(f"TPM refused to {action} (rc {rc:#x})")
