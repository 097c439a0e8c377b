"""The TPM port on tpm2-pytss ESAPI: a real TPM, swtpm, or a resource manager.

One ESAPI context per ``EsapiTpm``, created lazily and re-created after a
connection failure; every call holds one RLock (an ESAPI context is not
thread-safe). Every transient object and session is flushed in ``finally``
(swtpm holds three of each). TSS errors never escape: ``bios_ws.tpm.rc`` maps them.
The attestation key (enrollment, quotes) lives in ``bios_ws.tpm.esapi_attest``;
the methods here only delegate to it under the lock and the error mapping.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from tpm2_pytss import ESAPI, TSS2_Exception
from tpm2_pytss.constants import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_CAP,
    TPM2_SE,
    TPM2_SU,
    TPMA_OBJECT,
    TPMA_SESSION,
)
from tpm2_pytss.types import (
    TPM2B_PRIVATE,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPM2B_SENSITIVE_DATA,
    TPML_DIGEST_VALUES,
    TPMS_SENSITIVE_CREATE,
    TPMT_HA,
    TPMU_HA,
)

from bios_ws.errors import TpmError, TpmUnavailable
from bios_ws.tpm import esapi_attest
from bios_ws.tpm.esapi_common import best_effort as _best_effort
from bios_ws.tpm.esapi_common import read_pcrs as _read_pcrs
from bios_ws.tpm.esapi_common import selection as _selection
from bios_ws.tpm.esapi_templates import (
    PRIMARY_ATTRIBUTES,
    aes128_cfb,
    primary_template,
    sealed_template,
)
from bios_ws.tpm.port import (
    BANK_ALGORITHMS,
    PERSISTENT_PRIMARY,
    QUOTE_BANK,
    SEAL_BANK,
    AkEnrollment,
    Quote,
    SealedBlob,
    Tpm,
    check_extend_digests,
    check_nonce,
    check_pcr_indexes,
    check_secret,
    digest_size,
    policy_pcr_digest,
    seal_values,
)
from bios_ws.tpm.rc import (
    TPM_RC_INITIALIZE,
    TPM_RC_NV_DEFINED,
    is_retryable,
    map_tss_error,
    rc_of,
    tpm_code,
)

T = TypeVar("T")

#: How long a TPM busy or out-of-slots warning is retried: other processes sharing a TPM
#: without a resource manager (swtpm has 3 object slots) hold slots for milliseconds each.
_RETRY_SECONDS = 10.0
_RETRY_MAX_SLEEP = 0.1
_TCTI_KINDS = ("swtpm", "mssim", "device", "tabrmd")


def check_tcti(tcti: str) -> str:
    """The TCTI string if explicit enough that no default search can happen; else ValueError."""
    kind, colon, config = tcti.partition(":") if isinstance(tcti, str) else ("", "", "")
    if kind not in _TCTI_KINDS or not colon:
        raise ValueError(f"TPM TCTI must start with one of {', '.join(_TCTI_KINDS)}: {tcti!r}")
    if kind in ("swtpm", "mssim") and "port=" not in config:
        raise ValueError(f"{kind} TCTI needs an explicit port=: {tcti!r}")
    if kind == "device" and not config.startswith("/dev/"):
        raise ValueError(f"device TCTI needs a /dev path: {tcti!r}")
    return tcti


def open_tpm(tcti: str) -> Tpm:
    """Connect to the TPM at ``tcti``; TpmUnavailable if unreachable. Never a default search."""
    os.environ.setdefault("TSS2_LOG", "all+NONE")  # TSS C logs would duplicate our mapped errors
    tpm = EsapiTpm(check_tcti(tcti))
    tpm.active_banks()  # connect now, so an unreachable TPM is reported at open time
    return tpm


class EsapiTpm(Tpm):
    """A TPM reached through one ESAPI context; see the module docstring."""

    def __init__(self, tcti: str) -> None:
        self.tcti = check_tcti(tcti)
        self._lock = threading.RLock()
        self._ctx: Any = None
        self._banks: tuple[str, ...] | None = None

    # connection and error handling
    def _context(self) -> Any:
        if self._ctx is None:
            try:
                self._ctx = ESAPI(self.tcti)
            except TSS2_Exception:
                self._ctx = None
            if self._ctx is None:
                raise TpmUnavailable(f"TPM unreachable at {self.tcti}")
        return self._ctx

    def _drop(self) -> None:
        ctx, self._ctx, self._banks = self._ctx, None, None
        if ctx is not None:
            with contextlib.suppress(Exception):  # closing a broken context: best effort
                ctx.close()

    def _run(self, action: str, operation: Callable[[Any], T]) -> T:
        """Run ``operation(ctx)`` under the lock; retry TPM resource warnings; map errors."""
        with self._lock:
            attempt = 0
            deadline = time.monotonic() + _RETRY_SECONDS
            while True:
                ctx = self._context()
                try:
                    return operation(ctx)
                except TSS2_Exception as exc:
                    rc = rc_of(exc)
                attempt += 1
                if is_retryable(rc) and time.monotonic() < deadline:
                    # jittered, so that processes contending for slots fall out of step
                    ceiling = min(0.002 * 2**attempt, _RETRY_MAX_SLEEP)
                    time.sleep(random.uniform(ceiling / 2, ceiling))  # noqa: S311
                    continue
                # raised outside the except block: no TSS2_Exception rides along as context
                mapped = map_tss_error(rc, self.tcti, action)
                if isinstance(mapped, TpmUnavailable):
                    self._drop()
                raise mapped

    @contextmanager
    def _primary(self, ctx: Any) -> Iterator[Any]:
        handle = ctx.tr_from_tpmpublic(PERSISTENT_PRIMARY)
        try:
            yield handle
        finally:
            _best_effort(ctx.tr_close, handle)

    @contextmanager
    def _session(self, ctx: Any, tpm_key: Any, kind: Any, attributes: Any) -> Iterator[Any]:
        session = ctx.start_auth_session(
            tpm_key, ESYS_TR.NONE, kind, aes128_cfb(), TPM2_ALG.SHA256
        )
        try:
            ctx.trsess_set_attributes(session, attributes)
            yield session
        finally:
            _best_effort(ctx.flush_context, session)

    # the port
    def active_banks(self) -> tuple[str, ...]:
        with self._lock:
            if self._banks is None:
                self._banks = self._run("read PCR banks", _read_banks)
            return self._banks

    def pcr_read(self, indexes: Sequence[int], bank: str = SEAL_BANK) -> dict[int, bytes]:
        selected = check_pcr_indexes(indexes)
        digest_size(bank)
        return self._run("read PCRs", lambda ctx: _read_pcrs(ctx, bank, selected))

    def pcr_extend(self, index: int, digests: Mapping[str, bytes]) -> None:
        check_pcr_indexes([index])
        with self._lock:
            check_extend_digests(digests, self.active_banks())
            values = TPML_DIGEST_VALUES(
                [
                    TPMT_HA(
                        hashAlg=BANK_ALGORITHMS[bank][0],
                        digest=TPMU_HA(**{bank: digest}),
                    )
                    for bank, digest in sorted(digests.items())
                ]
            )
            self._run(
                f"extend PCR {index}",
                lambda ctx: ctx.pcr_extend(getattr(ESYS_TR, f"PCR{index}"), values),
            )

    def pcr_reset(self, index: int) -> None:
        check_pcr_indexes([index])
        self._run(f"reset PCR {index}", lambda ctx: ctx.pcr_reset(getattr(ESYS_TR, f"PCR{index}")))

    def ensure_storage_primary(self) -> None:
        self._run("create the storage primary", _ensure_primary)

    def seal(
        self, secret: bytes, pcrs: Sequence[int], expected: Mapping[int, bytes] | None = None
    ) -> SealedBlob:
        check_secret(secret)
        selected = check_pcr_indexes(pcrs)

        def operation(ctx: Any) -> SealedBlob:
            values = seal_values(selected, _read_pcrs(ctx, SEAL_BANK, selected), expected)
            policy = policy_pcr_digest(SEAL_BANK, selected, values)
            sensitive = TPM2B_SENSITIVE_CREATE(
                TPMS_SENSITIVE_CREATE(data=TPM2B_SENSITIVE_DATA(secret))
            )
            attributes = TPMA_SESSION.CONTINUESESSION | TPMA_SESSION.DECRYPT
            with (
                self._primary(ctx) as parent,
                self._session(ctx, parent, TPM2_SE.HMAC, attributes) as session,
            ):
                private, public, _, _, _ = ctx.create(
                    parent, sensitive, sealed_template(policy), session1=session
                )
            return SealedBlob(
                bytes(public.marshal()), bytes(private.marshal()), selected, SEAL_BANK, policy
            )

        return self._run("seal", operation)

    def unseal(self, blob: SealedBlob) -> bytes:
        public, private = _parse_blob(blob)

        def operation(ctx: Any) -> bytes:
            attributes = TPMA_SESSION.CONTINUESESSION | TPMA_SESSION.ENCRYPT
            with self._primary(ctx) as parent:
                loaded = ctx.load(parent, private, public)
                try:
                    with self._session(ctx, parent, TPM2_SE.POLICY, attributes) as session:
                        ctx.policy_pcr(session, None, _selection(SEAL_BANK, blob.pcrs))
                        return bytes(ctx.unseal(loaded, session1=session))
                finally:
                    _best_effort(ctx.flush_context, loaded)

        return self._run("unseal", operation)

    def trial_policy_digest(self, pcrs: Sequence[int]) -> bytes:
        """PolicyPCR digest of the current sha256 PCRs from a TPM trial session (for checks)."""
        selected = check_pcr_indexes(pcrs)

        def operation(ctx: Any) -> bytes:
            with self._session(ctx, ESYS_TR.NONE, TPM2_SE.TRIAL, TPMA_SESSION.CONTINUESESSION) as s:
                ctx.policy_pcr(s, None, _selection(SEAL_BANK, selected))
                return bytes(ctx.policy_get_digest(s))

        return self._run("compute a trial policy", operation)

    def get_random(self, n: int) -> bytes:
        if not 0 < n <= 1024:
            raise ValueError("random byte count must be 1..1024")

        def operation(ctx: Any) -> bytes:
            out = b""
            while len(out) < n:
                out += bytes(ctx.get_random(min(32, n - len(out))))
            return out

        return self._run("get random bytes", operation)

    def enroll_attestation_key(self, ek_anchors: Sequence[bytes]) -> AkEnrollment:
        anchors = list(ek_anchors)
        return self._run("enroll the attestation key",
                         lambda ctx: esapi_attest.enroll(ctx, anchors))

    def attestation_key_public(self) -> bytes | None:
        return self._run("read the attestation key", esapi_attest.ak_public_pem)

    def quote(self, nonce: bytes, pcrs: Sequence[int], bank: str = QUOTE_BANK) -> Quote:
        check_nonce(nonce)
        selected = check_pcr_indexes(pcrs)
        digest_size(bank)
        return self._run("quote", lambda ctx: esapi_attest.quote(ctx, nonce, selected, bank))

    def startup_clear(self) -> None:
        with self._lock:
            self._run("start up", _startup_clear)
            self._banks = None

    def close(self) -> None:
        with self._lock:
            self._drop()


def _read_banks(ctx: Any) -> tuple[str, ...]:
    _, data = ctx.get_capability(TPM2_CAP.PCRS, 0, 16)
    names = {algorithm: name for name, (algorithm, _) in BANK_ALGORITHMS.items()}
    banks = []
    for selection in data.data.assignedPCR:
        bitmap = [selection.pcrSelect[i] for i in range(selection.sizeofSelect)]
        if any(bitmap) and int(selection.hash) in names:
            banks.append(names[int(selection.hash)])
    return tuple(banks)


def _ensure_primary(ctx: Any) -> None:
    _, data = ctx.get_capability(TPM2_CAP.HANDLES, PERSISTENT_PRIMARY, 1)
    if PERSISTENT_PRIMARY in [int(h) for h in data.data.handles]:
        handle = ctx.tr_from_tpmpublic(PERSISTENT_PRIMARY)
        try:
            public, _, _ = ctx.read_public(handle)
        finally:
            _best_effort(ctx.tr_close, handle)
        area = public.publicArea
        if int(area.type) != TPM2_ALG.ECC or int(area.objectAttributes) != PRIMARY_ATTRIBUTES:
            raise TpmError(f"handle {PERSISTENT_PRIMARY:#x} holds a foreign object")
        return
    transient, _, _, _, _ = ctx.create_primary(None, primary_template(), ESYS_TR.OWNER)
    try:
        persistent = ctx.evict_control(ESYS_TR.OWNER, transient, PERSISTENT_PRIMARY)
        _best_effort(ctx.tr_close, persistent)
    except TSS2_Exception as exc:
        if tpm_code(rc_of(exc)) != TPM_RC_NV_DEFINED:
            raise
        # another process made it persistent between our check and ours: same template, fine
    finally:
        _best_effort(ctx.flush_context, transient)


def _startup_clear(ctx: Any) -> None:
    try:
        ctx.startup(TPM2_SU.CLEAR)
    except TSS2_Exception as exc:
        if tpm_code(rc_of(exc)) != TPM_RC_INITIALIZE:  # already started: nothing to do
            raise


def _parse_blob(blob: SealedBlob) -> tuple[Any, Any]:
    if blob.bank != SEAL_BANK:
        raise TpmError(f"sealed blob uses bank {blob.bank}, not {SEAL_BANK}")
    try:
        public, used_public = TPM2B_PUBLIC.unmarshal(blob.public)
        private, used_private = TPM2B_PRIVATE.unmarshal(blob.private)
    except (TSS2_Exception, ValueError, TypeError):
        raise TpmError("sealed blob is malformed") from None
    if used_public != len(blob.public) or used_private != len(blob.private):
        raise TpmError("sealed blob is malformed: trailing bytes")
    area = public.publicArea
    if (
        int(area.type) != TPM2_ALG.KEYEDHASH
        or bytes(area.authPolicy) != blob.policy_digest
        or int(area.objectAttributes) & TPMA_OBJECT.USERWITHAUTH
    ):
        raise TpmError("sealed blob is inconsistent: not a PolicyPCR sealed object")
    return public, private


__all__ = ["EsapiTpm", "check_tcti", "open_tpm"]
