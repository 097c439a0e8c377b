"""The attestation key on tpm2-pytss: EK check, AK enrollment by credential activation, quotes.

Functions of an ESAPI context, called by ``EsapiTpm`` under its lock and error
mapping (a TSS2_Exception escaping here is mapped by ``EsapiTpm._run``).

Enrollment works like a registrar (Keylime-style): the EK is re-created from
the template matching its NV certificate; the EK's authorization is
PolicySecret(ENDORSEMENT) in a fresh policy session for every use (Create, Load,
ActivateCredential). The AK is a restricted ECC P-256 ECDSA-SHA256 signing key
under the EK; MakeCredential to the AK's name is done in software and the TPM
must recover the secret with ActivateCredential, which it only does when the AK
is loaded in the same TPM as the EK. swtpm holds three transient objects and
three sessions: every EK, AK and session is flushed in ``finally``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tpm2_pytss import TSS2_Exception
from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_CAP, TPM2_SE, TPMA_OBJECT
from tpm2_pytss.types import (
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPMT_SIG_SCHEME,
    TPMT_SYM_DEF,
)
from tpm2_pytss.utils import NoSuchIndex, create_ek_template, make_credential

from bios_ws.errors import TpmError
from bios_ws.tpm.attest_format import (
    check_quote,
    marshal_ak_public,
    parse_attest,
    pcr_digest,
)
from bios_ws.tpm.ekcert import MAX_CERT_BYTES, verify_ek_certificate
from bios_ws.tpm.esapi_common import best_effort, read_pcrs, selection
from bios_ws.tpm.port import (
    AK_HANDLE,
    NO_ATTESTATION_KEY,
    QUOTE_RETRIES,
    AkEnrollment,
    Quote,
)
from bios_ws.tpm.rc import TPM_RC_FMT1, TPM_RC_HANDLE, TPM_RC_NV_DEFINED, rc_of, tpm_code

AK_ATTRIBUTES = (
    TPMA_OBJECT.RESTRICTED
    | TPMA_OBJECT.SIGN_ENCRYPT
    | TPMA_OBJECT.FIXEDTPM
    | TPMA_OBJECT.FIXEDPARENT
    | TPMA_OBJECT.SENSITIVEDATAORIGIN
    | TPMA_OBJECT.USERWITHAUTH
    | TPMA_OBJECT.NODA
)
#: EK kinds tried in order (TCG EK Credential Profile low range: NV 0x01c00002, 0x01c0000a).
EK_TYPES = ("EK-RSA2048", "EK-ECC256")
CREDENTIAL_BYTES = 32
_NV_CHUNK = 512


def ak_template() -> Any:
    """Restricted ECC P-256 signing key, ECDSA-SHA256, no symmetric algorithm (":null")."""
    return TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256:null", objectAttributes=AK_ATTRIBUTES)


def transient_handles(ctx: Any) -> list[int]:
    """The transient objects the TPM holds now (a leak check for tests and diagnostics)."""
    _, data = ctx.get_capability(TPM2_CAP.HANDLES, 0x80000000, 64)
    return [int(h) for h in data.data.handles]


# -- the endorsement key -----------------------------------------------------------------


def _nv_reader(ctx: Any) -> Any:
    def read(index: int) -> bytes:
        try:
            handle = ctx.tr_from_tpmpublic(index)
        except TSS2_Exception as exc:
            if tpm_code(rc_of(exc)) == TPM_RC_HANDLE:
                raise NoSuchIndex(index) from None
            raise
        try:
            public, _ = ctx.nv_read_public(handle)
            size = int(public.nvPublic.dataSize)
            if size > MAX_CERT_BYTES:
                raise TpmError(f"NV index {index:#x} holds {size} bytes: too large for an EK"
                               " certificate or template")
            data = b""
            while len(data) < size:
                chunk = min(_NV_CHUNK, size - len(data))
                data += bytes(ctx.nv_read(handle, chunk, len(data), handle))
            return data
        finally:
            best_effort(ctx.tr_close, handle)

    return read


def ek_certificate_and_template(ctx: Any) -> tuple[bytes, Any]:
    """The EK certificate (DER) from NV and the template that re-creates its key."""
    reader = _nv_reader(ctx)
    for kind in EK_TYPES:
        cert, template = create_ek_template(kind, reader)
        if cert:
            return bytes(cert), template
    raise TpmError("the TPM holds no EK certificate in NV (RSA 0x1c00002, ECC 0x1c0000a):"
                   " its endorsement key cannot be verified")


@contextmanager
def endorsement_key(ctx: Any) -> Iterator[tuple[Any, Any, bytes]]:
    """The EK, created from its template: (transient handle, TPM2B_PUBLIC, certificate DER)."""
    cert, template = ek_certificate_and_template(ctx)
    handle, public, _, _, _ = ctx.create_primary(None, template, ESYS_TR.ENDORSEMENT)
    try:
        yield handle, public, cert
    finally:
        best_effort(ctx.flush_context, handle)


@contextmanager
def ek_session(ctx: Any) -> Iterator[Any]:
    """A policy session satisfying the EK's policy: PolicySecret(ENDORSEMENT)."""
    session = ctx.start_auth_session(ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.POLICY,
                                     TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL), TPM2_ALG.SHA256)
    try:
        ctx.policy_secret(ESYS_TR.ENDORSEMENT, session, b"", b"", b"", 0)
        yield session
    finally:
        best_effort(ctx.flush_context, session)


# -- the attestation key -------------------------------------------------------------------


def _is_ak(public: Any) -> bool:
    area = public.publicArea
    if int(area.type) != TPM2_ALG.ECC:
        return False
    x, y = bytes(area.unique.ecc.x), bytes(area.unique.ecc.y)
    try:
        return bytes(area.marshal()) == marshal_ak_public(x, y)
    except ValueError:
        return False


@contextmanager
def persisted_ak(ctx: Any) -> Iterator[tuple[Any, Any, bytes] | None]:
    """(handle, TPM2B_PUBLIC, name) of the AK at AK_HANDLE, None if the handle is free;
    TpmError if a foreign object sits there."""
    _, data = ctx.get_capability(TPM2_CAP.HANDLES, AK_HANDLE, 1)
    if AK_HANDLE not in [int(h) for h in data.data.handles]:
        yield None
        return
    handle = ctx.tr_from_tpmpublic(AK_HANDLE)
    try:
        public, name, _ = ctx.read_public(handle)
        if not _is_ak(public):
            raise TpmError(f"handle {AK_HANDLE:#x} holds a foreign object, not an attestation"
                           " key; remove it (tpm2_evictcontrol) before enrolling")
        yield handle, public, bytes(name)
    finally:
        best_effort(ctx.tr_close, handle)


@contextmanager
def new_ak(ctx: Any, ek: Any) -> Iterator[tuple[Any, Any, bytes]]:
    """A fresh AK created under and loaded beside the EK: (handle, TPM2B_PUBLIC, name)."""
    with ek_session(ctx) as session:
        private, public, _, _, _ = ctx.create(ek, TPM2B_SENSITIVE_CREATE(), ak_template(),
                                              session1=session)
    with ek_session(ctx) as session:
        handle = ctx.load(ek, private, public, session1=session)
    try:
        yield handle, public, bytes(ctx.tr_get_name(handle))
    finally:
        best_effort(ctx.flush_context, handle)


def prove_same_tpm(ctx: Any, ek: Any, ek_public: Any, ak: Any, ak_name: bytes) -> None:
    """MakeCredential (software) to ``ak_name`` under the EK, ActivateCredential in the TPM;
    TpmError unless the TPM recovers the secret, i.e. the AK named sits beside this EK."""
    secret = os.urandom(CREDENTIAL_BYTES)
    blob, encrypted = make_credential(ek_public, secret, ak_name)
    try:
        with ek_session(ctx) as session:
            recovered = bytes(ctx.activate_credential(ak, ek, blob, encrypted,
                                                      session1=ESYS_TR.PASSWORD,
                                                      session2=session))
    except TSS2_Exception as exc:
        code = tpm_code(rc_of(exc))
        if code is None or not code & TPM_RC_FMT1:
            raise  # connection trouble or a warning: mapped by the caller
        recovered = b""
    if not hmac.compare_digest(recovered, secret):
        raise TpmError("credential activation failed: the attestation key is not the one named,"
                       " or not in the same TPM as the endorsement key")


def _persist(ctx: Any, ak: Any) -> None:
    try:
        persistent = ctx.evict_control(ESYS_TR.OWNER, ak, AK_HANDLE)
    except TSS2_Exception as exc:
        if tpm_code(rc_of(exc)) != TPM_RC_NV_DEFINED:
            raise
        raise TpmError(f"another process persisted an object at {AK_HANDLE:#x} meanwhile;"
                       " enroll again") from None
    best_effort(ctx.tr_close, persistent)


def enroll(ctx: Any, anchors: Sequence[bytes]) -> AkEnrollment:
    """Verify the EK, re-use or create the AK, prove it by credential activation, persist it."""
    with endorsement_key(ctx) as (ek, ek_public, cert):
        ek_pem = bytes(ek_public.to_pem())
        verify_ek_certificate(cert, anchors, ek_pem)
        with persisted_ak(ctx) as found:
            if found is not None:
                _, ak_public, name = found
                prove_same_tpm(ctx, ek, ek_public, found[0], name)
                return AkEnrollment(bytes(ak_public.to_pem()), name, cert, ek_pem)
        with new_ak(ctx, ek) as (ak, ak_public, name):
            prove_same_tpm(ctx, ek, ek_public, ak, name)
            _persist(ctx, ak)
            return AkEnrollment(bytes(ak_public.to_pem()), name, cert, ek_pem)


def ak_public_pem(ctx: Any) -> bytes | None:
    with persisted_ak(ctx) as found:
        return None if found is None else bytes(found[1].to_pem())


def quote(ctx: Any, nonce: bytes, pcrs: tuple[int, ...], bank: str) -> Quote:
    """Read the PCRs, quote them, and try again while they changed in between."""
    with persisted_ak(ctx) as found:
        if found is None:
            raise TpmError(NO_ATTESTATION_KEY)
        handle = found[0]
        for _ in range(1 + QUOTE_RETRIES):
            values = read_pcrs(ctx, bank, pcrs)
            attest, signature = ctx.quote(handle, selection(bank, pcrs), nonce,
                                          TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL))
            data = bytes(attest)
            try:
                if parse_attest(data).pcr_digest != pcr_digest(values):
                    continue  # a PCR was extended between the read and the quote
                check_quote(data, nonce, bank, values)
            except ValueError as exc:
                raise TpmError(f"the TPM's quote is inconsistent: {exc}") from None
            return Quote(data, bytes(signature.marshal()), bank, values)
    raise TpmError(f"the PCRs kept changing during {1 + QUOTE_RETRIES} quotes; try again")
