"""The Tpm port's contract, run against FakeTpm (unit) and a real swtpm (integration).

Subclass ``TpmContract`` in a ``Test...`` class and provide a ``tpm`` fixture whose
Tpm has a storage primary and PCRs 16 and 23 at zero (both resettable from locality 0).
``AttestationContract`` (EK check, AK enrollment, quotes) needs a TPM with an EK
certificate and more fixtures: see its docstring.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from bios_ws.errors import TpmError, TpmLockout, TpmPolicyMismatch, TpmUnavailable
from bios_ws.tpm.attest_format import (
    TPM_GENERATED_VALUE,
    TPM_ST_ATTEST_QUOTE,
    check_quote,
    marshal_ak_public,
    object_name,
    parse_attest,
    parse_ecdsa_signature,
)
from bios_ws.tpm.ekcert import verify_ek_certificate
from bios_ws.tpm.port import Quote, SealedBlob, Tpm, extended_value, policy_pcr_digest

FREE_PCR = 16  # resettable from locality 0, like the service PCR 23
SEALED_PCRS = (0, 1, 7, FREE_PCR, 23)


def digests_of(data: bytes) -> dict[str, bytes]:
    return {"sha1": hashlib.sha1(data).digest(), "sha256": hashlib.sha256(data).digest()}


class TpmContract:
    """Behaviour every Tpm implementation must show."""

    def test_banks_are_sha1_and_sha256(self, tpm: Tpm) -> None:
        assert tpm.active_banks() == ("sha1", "sha256")

    def test_reads_all_24_pcrs_in_both_banks(self, tpm: Tpm) -> None:
        for bank, size in (("sha1", 20), ("sha256", 32)):
            values = tpm.pcr_read(range(24), bank)
            assert sorted(values) == list(range(24))
            assert all(len(v) == size for v in values.values())
            assert values[17] == b"\xff" * size  # DRTM PCRs start as all ones
            assert values[23] == bytes(size)

    def test_extend_updates_both_banks_as_hashlib_predicts(self, tpm: Tpm) -> None:
        before = {bank: tpm.pcr_read([FREE_PCR], bank)[FREE_PCR] for bank in ("sha1", "sha256")}
        digests = digests_of(b"event one")
        tpm.pcr_extend(FREE_PCR, digests)
        for bank in ("sha1", "sha256"):
            expected = hashlib.new(bank, before[bank] + digests[bank]).digest()
            assert tpm.pcr_read([FREE_PCR], bank)[FREE_PCR] == expected

    def test_extend_needs_one_digest_per_active_bank(self, tpm: Tpm) -> None:
        with pytest.raises(ValueError, match="bank"):
            tpm.pcr_extend(FREE_PCR, {"sha256": hashlib.sha256(b"x").digest()})
        with pytest.raises(ValueError):
            tpm.pcr_extend(FREE_PCR, {"sha1": b"short", "sha256": hashlib.sha256(b"x").digest()})
        with pytest.raises(ValueError):
            tpm.pcr_extend(24, digests_of(b"x"))

    def test_reset_of_23_returns_it_to_zero(self, tpm: Tpm) -> None:
        tpm.pcr_extend(23, digests_of(b"service"))
        assert tpm.pcr_read([23])[23] != bytes(32)
        tpm.pcr_reset(23)
        assert tpm.pcr_read([23])[23] == bytes(32)
        assert tpm.pcr_read([23], "sha1")[23] == bytes(20)

    def test_reset_of_a_boot_pcr_is_refused(self, tpm: Tpm) -> None:
        before = tpm.pcr_read([0])
        with pytest.raises(TpmError) as caught:
            tpm.pcr_reset(0)
        assert type(caught.value) is TpmError
        assert tpm.pcr_read([0]) == before

    def test_storage_primary_is_idempotent(self, tpm: Tpm) -> None:
        blob = tpm.seal(b"before", [23])
        tpm.ensure_storage_primary()
        tpm.ensure_storage_primary()
        assert tpm.unseal(blob) == b"before"

    def test_seal_unseal_round_trip_through_json(self, tpm: Tpm) -> None:
        secret = b"\x00passphrase\xff" * 9  # binary, 117 bytes
        blob = tpm.seal(secret, SEALED_PCRS)
        assert secret not in blob.to_json().encode()
        assert blob.pcrs == SEALED_PCRS and blob.bank == "sha256"
        current = tpm.pcr_read(SEALED_PCRS)
        assert blob.policy_digest == policy_pcr_digest("sha256", SEALED_PCRS, current)
        assert tpm.unseal(SealedBlob.from_json(blob.to_json())) == secret

    def test_seal_to_expected_values_unseals_only_once_they_are_reached(self, tpm: Tpm) -> None:
        event = digests_of(b"the service")
        expected = extended_value("sha256", tpm.pcr_read([FREE_PCR])[FREE_PCR], event["sha256"])
        blob = tpm.seal(b"later", [FREE_PCR, 23], expected={FREE_PCR: expected})
        with pytest.raises(TpmPolicyMismatch):
            tpm.unseal(blob)
        tpm.pcr_extend(FREE_PCR, event)
        assert tpm.unseal(blob) == b"later"

    def test_extending_a_sealed_pcr_breaks_the_policy(self, tpm: Tpm) -> None:
        blob = tpm.seal(b"bound", [FREE_PCR, 23])
        tpm.pcr_extend(23, digests_of(b"modified service"))
        with pytest.raises(TpmPolicyMismatch):
            tpm.unseal(blob)
        tpm.pcr_reset(23)
        assert tpm.unseal(blob) == b"bound"

    def test_a_blob_whose_policy_was_edited_is_refused(self, tpm: Tpm) -> None:
        blob = tpm.seal(b"guarded", [23])
        for edited in (
            SealedBlob(blob.public, blob.private, blob.pcrs, blob.bank, bytes(32)),
            SealedBlob(blob.public, blob.private[:-1] + bytes([blob.private[-1] ^ 1]),
                       blob.pcrs, blob.bank, blob.policy_digest),
        ):
            with pytest.raises(TpmError) as caught:
                tpm.unseal(edited)
            assert not isinstance(caught.value, (TpmUnavailable, TpmLockout))
        assert tpm.unseal(blob) == b"guarded"

    def test_invalid_seal_arguments_are_refused(self, tpm: Tpm) -> None:
        for secret in (b"", b"x" * 129):
            with pytest.raises(ValueError):
                tpm.seal(secret, [23])
        for pcrs in ([], [24], [-1], [23, 23]):
            with pytest.raises(ValueError):
                tpm.seal(b"s", pcrs)
        with pytest.raises(ValueError):
            tpm.seal(b"s", [23], expected={7: bytes(32)})
        with pytest.raises(ValueError):
            tpm.seal(b"s", [23], expected={23: bytes(20)})

    def test_random_bytes(self, tpm: Tpm) -> None:
        first, second = tpm.get_random(100), tpm.get_random(100)
        assert len(first) == len(second) == 100 and first != second
        with pytest.raises(ValueError):
            tpm.get_random(0)

    def test_startup_clear_on_a_running_tpm_changes_nothing(self, tpm: Tpm) -> None:
        tpm.pcr_extend(23, digests_of(b"kept"))
        before = tpm.pcr_read([23])
        tpm.startup_clear()
        assert tpm.pcr_read([23]) == before

    def test_close_then_use_reconnects(self, tpm: Tpm) -> None:
        blob = tpm.seal(b"again", [23])
        tpm.close()
        assert tpm.unseal(blob) == b"again"


# -- attestation ------------------------------------------------------------------------

QUOTED_PCRS = (0, 1, 7, FREE_PCR, 23)


def fresh_ca_pem(subject: x509.Name | None = None) -> bytes:
    """A self-signed CA certificate nobody's EK chains to (``subject`` may imitate a real CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = subject or x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "untrusted CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def impostor_anchors(anchors: list[bytes]) -> list[bytes]:
    """Self-signed CAs with the very subjects of ``anchors`` but other keys."""
    return [fresh_ca_pem(cert.subject) for pem in anchors
            for cert in x509.load_pem_x509_certificates(pem)]


def verify_quote_signature(quote: Quote, ak_public_pem: bytes) -> None:
    """ECDSA-SHA256 over the TPMS_ATTEST bytes, as any verifier checks it (raises if bad)."""
    key = load_pem_public_key(ak_public_pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    r, s = parse_ecdsa_signature(quote.signature)
    key.verify(encode_dss_signature(r, s), quote.attest, ec.ECDSA(hashes.SHA256()))


def ak_name_from_pem(ak_public_pem: bytes) -> bytes:
    key = load_pem_public_key(ak_public_pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    numbers = key.public_numbers()
    return object_name(marshal_ak_public(numbers.x.to_bytes(32, "big"),
                                         numbers.y.to_bytes(32, "big")))


class AttestationContract:
    """Attestation behaviour every Tpm implementation must show.

    Fixtures to provide: ``tpm`` (PCRs 16 and 23 resettable, as above), ``ek_anchors``
    (the PEM anchors its EK certificate chains to), ``reboot`` (platform reset, Startup,
    the Tpm usable again), ``remove_ak`` (AK_HANDLE emptied) and ``occupy_ak_handle``
    (a foreign object put at AK_HANDLE; the fixture removes it afterwards).
    """

    def test_enrollment_is_idempotent_and_names_the_key(
        self, tpm: Tpm, ek_anchors: list[bytes]
    ) -> None:
        first = tpm.enroll_attestation_key(ek_anchors)
        second = tpm.enroll_attestation_key(ek_anchors)
        assert second == first
        assert tpm.attestation_key_public() == first.ak_public_pem
        assert first.ak_name == ak_name_from_pem(first.ak_public_pem)
        verify_ek_certificate(first.ek_certificate, ek_anchors, first.ek_public_pem)

    def test_enrollment_after_removal_makes_a_new_key(
        self, tpm: Tpm, ek_anchors: list[bytes], remove_ak: Callable[[], None]
    ) -> None:
        first = tpm.enroll_attestation_key(ek_anchors)
        remove_ak()
        assert tpm.attestation_key_public() is None
        second = tpm.enroll_attestation_key(ek_anchors)
        assert second.ak_name != first.ak_name
        assert second.ek_certificate == first.ek_certificate

    def test_an_untrusted_ek_ca_is_refused(self, tpm: Tpm, ek_anchors: list[bytes],
                                           remove_ak: Callable[[], None]) -> None:
        remove_ak()
        for anchors in ([fresh_ca_pem()], impostor_anchors(ek_anchors)):
            with pytest.raises(TpmError, match="does not chain to a trusted EK CA"):
                tpm.enroll_attestation_key(anchors)
        with pytest.raises(TpmError, match="no EK trust anchor"):
            tpm.enroll_attestation_key([])
        with pytest.raises(TpmError, match="no readable PEM"):
            tpm.enroll_attestation_key([b"not a certificate"])
        assert tpm.attestation_key_public() is None  # nothing created for an untrusted EK

    def test_quote_without_an_attestation_key_is_refused(
        self, tpm: Tpm, remove_ak: Callable[[], None]
    ) -> None:
        remove_ak()
        with pytest.raises(TpmError, match="no attestation key: run vbios ak enroll"):
            tpm.quote(bytes(16), QUOTED_PCRS)

    def test_quote_is_signed_by_the_ak_over_the_pcrs_and_nonce(
        self, tpm: Tpm, ek_anchors: list[bytes]
    ) -> None:
        enrollment = tpm.enroll_attestation_key(ek_anchors)
        tpm.pcr_extend(FREE_PCR, digests_of(b"quoted event"))
        nonce = tpm.get_random(32)
        quote = tpm.quote(nonce, QUOTED_PCRS)
        assert quote.bank == "sha256" and quote.pcrs == tpm.pcr_read(QUOTED_PCRS)
        parsed = check_quote(quote.attest, nonce, "sha256", quote.pcrs)
        assert parsed.magic == TPM_GENERATED_VALUE and parsed.type == TPM_ST_ATTEST_QUOTE
        assert parsed.extra_data == nonce
        assert parsed.pcr_selection == (("sha256", QUOTED_PCRS),)
        values = b"".join(quote.pcrs[i] for i in QUOTED_PCRS)
        assert parsed.pcr_digest == hashlib.sha256(values).digest()
        assert len(parsed.qualified_signer) == 34 and parsed.safe
        verify_quote_signature(quote, enrollment.ak_public_pem)
        tampered = Quote(quote.attest[:-1] + bytes([quote.attest[-1] ^ 1]), quote.signature,
                         quote.bank, quote.pcrs)
        with pytest.raises(InvalidSignature):
            verify_quote_signature(tampered, enrollment.ak_public_pem)

    def test_quote_follows_the_pcrs_and_the_bank(self, tpm: Tpm, ek_anchors: list[bytes]) -> None:
        tpm.enroll_attestation_key(ek_anchors)
        before = tpm.quote(bytes(16), [FREE_PCR])
        tpm.pcr_extend(FREE_PCR, digests_of(b"changed"))
        after = tpm.quote(bytes(16), [FREE_PCR])
        assert parse_attest(after.attest).pcr_digest != parse_attest(before.attest).pcr_digest
        sha1 = tpm.quote(b"\x01" * 64, range(24), "sha1")
        assert check_quote(sha1.attest, b"\x01" * 64, "sha1", tpm.pcr_read(range(24), "sha1"))
        assert parse_attest(after.attest).clock >= parse_attest(before.attest).clock

    def test_quote_arguments_are_checked(self, tpm: Tpm, ek_anchors: list[bytes]) -> None:
        tpm.enroll_attestation_key(ek_anchors)
        for nonce in (b"", bytes(15), bytes(65), "x" * 32):
            with pytest.raises(ValueError, match="nonce"):
                tpm.quote(nonce, QUOTED_PCRS)  # type: ignore[arg-type]
        for pcrs in ([], [24], [-1], [1, 1]):
            with pytest.raises(ValueError):
                tpm.quote(bytes(16), pcrs)
        with pytest.raises(ValueError):
            tpm.quote(bytes(16), QUOTED_PCRS, "md5")

    def test_reset_counts_in_quotes_and_the_ak_survives_a_reboot(
        self, tpm: Tpm, ek_anchors: list[bytes], reboot: Callable[[], None]
    ) -> None:
        enrollment = tpm.enroll_attestation_key(ek_anchors)
        before = parse_attest(tpm.quote(bytes(16), QUOTED_PCRS).attest)
        reboot()
        after = parse_attest(tpm.quote(bytes(16), QUOTED_PCRS).attest)
        assert after.reset_count == before.reset_count + 1
        assert after.restart_count == 0
        assert tpm.attestation_key_public() == enrollment.ak_public_pem
        assert tpm.enroll_attestation_key(ek_anchors).ak_name == enrollment.ak_name

    def test_a_foreign_object_at_the_ak_handle_is_refused(
        self, tpm: Tpm, ek_anchors: list[bytes], occupy_ak_handle: Callable[[], None]
    ) -> None:
        occupy_ak_handle()
        for call in (lambda: tpm.enroll_attestation_key(ek_anchors),
                     tpm.attestation_key_public, lambda: tpm.quote(bytes(16), [0])):
            with pytest.raises(TpmError, match="foreign object"):
                call()
