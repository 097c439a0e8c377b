"""`vbios tpm reseal`: seal the passphrases again, to the present boot and service.

Run by the admin after an intended change. It needs the passphrases, which
the TPM releases only under the old policy; so, in this order:

1. Nothing changed: the measured launch satisfies the policy; reseal anyway
   (refreshes the record).
2. Only the service changed (an upgrade, a new registry, a renewed server
   certificate) and the boot PCRs 0-7 still hold their sealed values: PCR 23 is
   reset and extended with the *sealed* service digest (taken from the record),
   which satisfies the old policy. This is what any local root on a correctly
   booted host could do too: PCR 23 is resettable from locality 0, so the
   service PCR detects an accidental or unnoticed change of the service, it
   does not stop a local root (only the boot PCRs bind the host).
3. The boot changed: the TPM cannot unseal, by design; the admin's recovery
   code (printed once by `vbios init`) decrypts the recovery copy.

Then the service PCR is set to the present measurement and both passphrases are
sealed to the present values. The report says what changed.

``reseal_after_service_change`` is what `vbios devrun` runs on the home's own
development TPM: nothing if the launch unseals, else step 2 only (never the
recovery code). A real TPM is never resealed without the admin asking.
"""

from __future__ import annotations

from dataclasses import dataclass

from bios_ws.errors import KeyUnreadable, TpmPolicyMismatch
from bios_ws.launch.diagnosis import describe_changes
from bios_ws.launch.measure import Measurement
from bios_ws.launch.record import SealedState, read_record
from bios_ws.launch.recovery import KeyPassphrases, read_recovery
from bios_ws.launch.sealing import (
    KEYS,
    LaunchContext,
    check_sealed_home,
    extend_service_pcr,
    load_blob,
    read_bounded,
    seal_passphrases,
)
from bios_ws.pki.authority import load_private_key
from bios_ws.tpm.port import BOOT_PCRS, Tpm


@dataclass(frozen=True)
class ResealReport:
    """How the passphrases were recovered and what changed since the last sealing."""

    method: str                    # "unchanged", "service-update" or "recovery-code"
    changes: tuple[str, ...]
    state: SealedState


def reseal(context: LaunchContext, recovery_code: str | None = None) -> ResealReport:
    """Recover the passphrases (see the module docstring) and seal them to the present."""
    report = _reseal(context, recovery_code, unless_it_unseals=False)
    assert report is not None  # only a reseal "unless it unseals" may do nothing
    return report


def reseal_after_service_change(context: LaunchContext) -> ResealReport | None:
    """None if the present launch unseals; else reseal if only the service changed
    (the sealed service digest replayed into PCR 23, boot PCRs as sealed).
    TpmPolicyMismatch naming the command if the boot changed: that needs the code."""
    return _reseal(context, None, unless_it_unseals=True)


def _reseal(context: LaunchContext, recovery_code: str | None, *,
            unless_it_unseals: bool) -> ResealReport | None:
    home = context.home
    check_sealed_home(home)
    old = read_record(home.sealed_state)
    tpm = context.open()
    try:
        measurement = context.measure()
        if unless_it_unseals:
            extend_service_pcr(tpm, measurement.digest)
            if _try_unseal(context, tpm) is not None:
                return None
        changes = _changes(context, tpm, old, measurement)
        passphrases, method = _recover(context, tpm, old, measurement, recovery_code, changes)
        # Never seal something that does not open the keys.
        load_private_key(home.server_key, passphrases.server)
        load_private_key(home.ca_key, passphrases.ca)
        extend_service_pcr(tpm, measurement.digest)
        state = seal_passphrases(context, tpm, passphrases, measurement)
        return ResealReport(method, tuple(changes), state)
    finally:
        tpm.close()


def _changes(context: LaunchContext, tpm: Tpm, old: SealedState | None,
             measurement: Measurement) -> list[str]:
    if old is None:
        return [f"(no sealed-state record at {context.home.sealed_state})"]
    extend_service_pcr(tpm, measurement.digest)
    current = tpm.pcr_read(sorted(old.pcrs))
    return describe_changes(old, current, measurement.files,
                            read_bounded(context.home.sealed_event_log), context.event_log())


def _recover(context: LaunchContext, tpm: Tpm, old: SealedState | None,
             measurement: Measurement, recovery_code: str | None,
             changes: list[str]) -> tuple[KeyPassphrases, str]:
    # 1. the present launch (PCR 23 already extended by _changes)
    unsealed = _try_unseal(context, tpm)
    if unsealed is not None:
        return unsealed, "unchanged"
    # 2. only the service changed: replay the sealed service digest
    if old is not None and tpm.pcr_read(BOOT_PCRS) == {i: old.pcrs[i] for i in BOOT_PCRS}:
        extend_service_pcr(tpm, old.service_digest)
        unsealed = _try_unseal(context, tpm)
        if unsealed is not None:
            return unsealed, "service-update"
    # 3. the boot changed: the admin's recovery code
    if recovery_code is None:
        raise TpmPolicyMismatch("\n".join([
            "the boot PCRs differ from the sealed ones, so the TPM cannot release the"
            " passphrases:",
            *(f"  {line}" for line in changes),
            "Give the recovery code printed by vbios init:"
            f" vbios tpm reseal --home {context.home.path} --recovery-code-stdin",
        ]))
    return read_recovery(context.home.recovery_file, recovery_code), "recovery-code"


def _try_unseal(context: LaunchContext, tpm: Tpm) -> KeyPassphrases | None:
    try:
        values = [tpm.unseal(load_blob(context.home, key)) for key in KEYS]
    except TpmPolicyMismatch:
        return None
    except KeyUnreadable:
        raise
    return KeyPassphrases(server=values[0], ca=values[1])

