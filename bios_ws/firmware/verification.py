"""Verifying a capsule's detached PKCS#7 signature and its signer's chain.

cryptography has no public PKCS#7 verification, so the SignedData is read with asn1crypto:
exactly one signer, found by issuer and serial number (or subject key identifier) among the
embedded certificates; its signature checked over the content, or, when it has signed
attributes, over their DER re-tagged as a SET and then its message digest attribute against
the content. The signer's chain to one of the trust anchors is built by
``cryptography.x509.verification``, with the end-entity policy relaxed: a code-signing (or
any) extended key usage instead of TLS client use, and no subject alternative name needed
(a signer is named by its subject, not by a host or address).

Every refusal is a ``CapsuleNotTrusted`` whose ``reason`` says which check failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from bios_ws.domain.capsule import (
    CapsuleSigner,
    CapsuleVerifier,
    UnverifiedCapsule,
    VerifiedCapsule,
)
from bios_ws.errors import CapsuleNotTrusted, CapsuleTrustFailure

#: Digest algorithms accepted in a signer info (asn1crypto names).
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
#: Extended key usages a capsule signer may carry (when it carries the extension at all).
_SIGNER_USAGES = {ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
_MAX_CHAIN_DEPTH = 4


class Pkcs7CapsuleVerifier(CapsuleVerifier):
    """The ``CapsuleVerifier`` for capsules signed as edk2 signs them."""

    def verify(self, capsule: UnverifiedCapsule, trust_anchors: Sequence[bytes], *,
               now: datetime) -> VerifiedCapsule:
        anchors = [x509.load_der_x509_certificate(der) for der in trust_anchors]
        signer = verify_detached(capsule.authentication.signature, capsule.signed_content(),
                                 anchors, now=now)
        return VerifiedCapsule(capsule, describe_signer(signer), now)


def describe_signer(certificate: x509.Certificate) -> CapsuleSigner:
    return CapsuleSigner(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial_number=certificate.serial_number,
        sha256_fingerprint=certificate.fingerprint(hashes.SHA256()).hex())


def verify_detached(signature: bytes, content: bytes, trust_anchors: Sequence[x509.Certificate],
                    *, now: datetime) -> x509.Certificate:
    """The signer certificate of the detached PKCS#7 ``signature`` over ``content``, once its
    signature and its chain to one of ``trust_anchors`` at ``now`` are checked."""
    if not signature:
        raise CapsuleNotTrusted("unsigned", "the capsule carries no signature")
    signed_data = _signed_data(signature)
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) == 0:
        raise CapsuleNotTrusted("unsigned", "the PKCS#7 SignedData has no signer")
    if len(signer_infos) != 1:
        raise CapsuleNotTrusted("bad-signature",
                                f"{len(signer_infos)} signers; exactly one is accepted")
    if signed_data["encap_content_info"]["content"].native is not None:
        raise CapsuleNotTrusted("bad-signature", "the PKCS#7 is not detached")
    embedded = _embedded_certificates(signed_data)
    signer_info = signer_infos[0]
    signer = _find_signer(signer_info["sid"], embedded)
    _check_signature(signer_info, signer, content)
    _check_chain(signer, [c for c in embedded if c != signer], trust_anchors, now)
    return signer


def _signed_data(signature: bytes) -> Any:
    try:
        info = cms.ContentInfo.load(signature, strict=True)
        if info["content_type"].native != "signed_data":
            raise CapsuleNotTrusted("bad-signature",
                                    f"PKCS#7 content type {info['content_type'].native},"
                                    " not signed data")
        signed = info["content"]
        signed.native  # noqa: B018 - parse every field now, so malformed DER fails here
    except CapsuleNotTrusted:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise CapsuleNotTrusted("bad-signature", f"malformed PKCS#7: {exc}") from None
    return signed


def _embedded_certificates(signed_data: Any) -> list[x509.Certificate]:
    found: list[x509.Certificate] = []
    for choice in signed_data["certificates"] or []:
        if choice.name != "certificate":
            continue
        try:
            found.append(x509.load_der_x509_certificate(choice.chosen.dump()))
        except ValueError:
            raise CapsuleNotTrusted("bad-signature",
                                    "an embedded certificate is malformed") from None
    return found


def _find_signer(sid: Any, certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"].dump()
        serial = sid.chosen["serial_number"].native
        for certificate in certificates:
            if (certificate.serial_number == serial
                    and certificate.issuer.public_bytes() == issuer):
                return certificate
    elif sid.name == "subject_key_identifier":
        wanted = sid.chosen.native
        for certificate in certificates:
            try:
                ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == wanted:
                return certificate
    raise CapsuleNotTrusted("untrusted-signer",
                            "the signer's certificate is not among the embedded certificates")


def _check_signature(signer_info: Any, signer: x509.Certificate, content: bytes) -> None:
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _DIGESTS:
        raise CapsuleNotTrusted("bad-signature", f"digest algorithm {digest_name} not accepted")
    algorithm = _DIGESTS[digest_name]()
    signed_attrs = signer_info["signed_attrs"]
    if signed_attrs.native:
        _check_signed_attributes(signed_attrs, digest_name, content)
        # the signature covers the attributes' DER with their [0] IMPLICIT tag made a SET
        to_verify = b"\x31" + signed_attrs.dump()[1:]
    else:
        to_verify = content
    signature = signer_info["signature"].native
    public = signer.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            scheme = signer_info["signature_algorithm"].signature_algo
            if scheme != "rsassa_pkcs1v15":
                raise CapsuleNotTrusted("bad-signature", f"signature scheme {scheme} not accepted")
            public.verify(signature, to_verify, padding.PKCS1v15(), algorithm)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, to_verify, ec.ECDSA(algorithm))
        else:
            raise CapsuleNotTrusted("bad-signature", "the signer's key is neither RSA nor EC")
    except InvalidSignature:
        raise CapsuleNotTrusted("bad-signature",
                                "the signature does not match the capsule's content") from None


def _check_signed_attributes(signed_attrs: Any, digest_name: str, content: bytes) -> None:
    values: dict[str, list[Any]] = {}
    for attribute in signed_attrs:
        values.setdefault(attribute["type"].native, []).extend(attribute["values"].native)
    if values.get("content_type") != ["data"]:
        raise CapsuleNotTrusted("bad-signature", "the signed content type is not data")
    digests = values.get("message_digest", [])
    if len(digests) != 1:
        raise CapsuleNotTrusted("bad-signature", "no single message digest attribute")
    if digests[0] != hashlib.new(digest_name, content).digest():
        raise CapsuleNotTrusted("wrong-digest",
                                "the message digest attribute does not match the content")


def _check_chain(signer: x509.Certificate, intermediates: list[x509.Certificate],
                 trust_anchors: Sequence[x509.Certificate], now: datetime) -> None:
    if not trust_anchors:
        raise CapsuleNotTrusted("untrusted-signer", "no trusted signer certificates are given")
    moment = now.astimezone(UTC)
    if not signer.not_valid_before_utc <= moment <= signer.not_valid_after_utc:
        raise CapsuleNotTrusted(
            "expired", f"the signer certificate is valid {signer.not_valid_before_utc:%Y-%m-%d}"
                       f" to {signer.not_valid_after_utc:%Y-%m-%d}, not at {moment:%Y-%m-%d}")
    ee_policy = (ExtensionPolicy.webpki_defaults_ee()
                 .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC,
                                 _code_signing_usage)
                 .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None))
    verifier = (PolicyBuilder().store(Store(list(trust_anchors))).time(moment)
                .max_chain_depth(_MAX_CHAIN_DEPTH)
                .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                    ee_policy=ee_policy)
                .build_client_verifier())
    try:
        verifier.verify(signer, intermediates)
    except VerificationError as exc:
        text = str(exc)
        reason: CapsuleTrustFailure = (
            "expired" if "not valid at validation time" in text else "untrusted-signer")
        raise CapsuleNotTrusted(reason, f"the signer's chain does not verify: {exc}") from None


def _code_signing_usage(policy: Policy, certificate: x509.Certificate,
                        usage: x509.ExtendedKeyUsage | None) -> None:
    if usage is not None and not _SIGNER_USAGES & set(usage):
        raise ValueError("the signer certificate is not for code signing")
