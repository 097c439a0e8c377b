"""Verify a TPM quote of the host, in the guest, without trusting the server's word.

``verify_quote`` runs every check below and records every failure (it never
stops at the first, and a check that cannot run because an input did not parse
fails with that reason). It returns a ``Verdict``; hostile or malformed
evidence gives failures, never exceptions.

- attest-format: the attest bytes are a TPMS_ATTEST quote with TPM_GENERATED_VALUE
- signature: ECDSA P-256/SHA-256 of the attest bytes by the AK certificate's key
- ak-certificate: the AK certificate is the installation CA's, valid, for attestation
- nonce: extraData is the caller's fresh nonce (constant-time compare)
- pcr-selection: the quote selects exactly the reported bank and PCR indexes
- pcr-digest: SHA-256 of the reported PCR values in index order is pcrDigest
  (the TPM hashes with the signing scheme's hash, SHA-256 for the vBIOS AK)
- event-log: replaying the log gives every reported PCR value (a PCR without
  events must be all zero)
- counters, clock (only with ``previous``, the state remembered from the last
  trusted quote of this AK): see ``_counters`` and ``_clock``.

Remember ``Verdict.clock`` only when ``Verdict.trusted``: a forged quote must
not move the remembered clock forward, and a failed verification must not
either, or the next quote would pass a rollback this one caught.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509 import Certificate

from vbios_client.attestation.ak_certificate import (
    ak_certificate_problems,
    load_ak_certificate,
    p256_public_key,
)
from vbios_client.attestation.eventlog import LogEvent, parse_event_log, replay
from vbios_client.attestation.tpm_formats import (
    ECC_SIGNATURE_ALGORITHMS,
    MAX_ATTEST_BYTES,
    TPM_ALG_ECDSA,
    TPM_ALG_SHA256,
    TPM_GENERATED_VALUE,
    EcdsaSignature,
    QuoteInfo,
    parse_attest,
    parse_signature,
)

__all__ = [
    "AUTHENTICITY_CHECKS",
    "CHECKS",
    "ClockState",
    "Failure",
    "QuoteEvidence",
    "Verdict",
    "verify_quote",
]

CHECKS: tuple[str, ...] = ("attest-format", "signature", "ak-certificate", "nonce",
                           "pcr-selection", "pcr-digest", "event-log", "counters", "clock")
#: Checks whose failure means the quote's clock values cannot be believed either.
AUTHENTICITY_CHECKS: tuple[str, ...] = ("attest-format", "signature", "ak-certificate", "nonce")
MIN_NONCE_BYTES, MAX_NONCE_BYTES = 16, 64
_DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
_MAX_PCR = 31
_UTC = timezone.utc  # noqa: UP017 - the client distribution still supports Python 3.10


@dataclass(frozen=True)
class ClockState:
    """The TPM's clock (milliseconds) and boot counters, as one quote reported them."""

    clock: int
    reset_count: int
    restart_count: int

    def to_dict(self) -> dict[str, int]:
        return {"clock": self.clock, "reset_count": self.reset_count,
                "restart_count": self.restart_count}


@dataclass(frozen=True)
class QuoteEvidence:
    """What GetQuote returned: the quote, the AK certificate and the boot event log."""

    attest: bytes
    signature: bytes
    bank: str
    pcrs: dict[int, bytes] = field(hash=False)
    ak_certificate: bytes
    event_log: bytes


@dataclass(frozen=True)
class Failure:
    check: str
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The outcome: ``trusted`` when no check failed.

    ``clock`` is the state the quote reports (None when the attest is unreadable);
    remember it only when ``trusted``.
    """

    trusted: bool
    failures: tuple[Failure, ...]
    checks: tuple[str, ...]
    clock: ClockState | None
    bank: str
    pcrs: dict[int, bytes] = field(hash=False)
    events: int | None

    def failed(self, check: str) -> bool:
        return any(failure.check == check for failure in self.failures)

    @property
    def authentic(self) -> bool:
        """The quote is the TPM's, signed by the CA's AK over this nonce (clock believable)."""
        return self.clock is not None and not any(map(self.failed, AUTHENTICITY_CHECKS))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (PCR values in hexadecimal)."""
        return {
            "trusted": self.trusted,
            "failures": [{"check": f.check, "detail": f.detail} for f in self.failures],
            "checks": list(self.checks),
            "clock": self.clock.to_dict() if self.clock else None,
            "bank": self.bank,
            "pcrs": {str(index): value.hex() for index, value in sorted(self.pcrs.items())},
            "events": self.events,
        }


class _CheckFailed(Exception):
    """Raised inside a check: its message is the failure's detail."""


@dataclass
class _Inputs:
    """The evidence once parsed; each field is the value or the reason it is missing."""

    attest: bytes | str
    quote: QuoteInfo | str
    signature: EcdsaSignature | str
    certificate: Certificate | str
    events: list[LogEvent] | str
    pcrs: dict[int, bytes] | str


def verify_quote(evidence: QuoteEvidence, *, nonce: bytes, ca_pem: bytes,
                 previous: ClockState | None = None, now: datetime | None = None) -> Verdict:
    """Run every check on ``evidence`` against the caller's ``nonce`` and CA.

    ``nonce`` must be the caller's own fresh value of 16..64 bytes and ``now`` an
    aware datetime (default: the current time); anything else is a programming
    error and raises ValueError or TypeError.
    """
    if not isinstance(nonce, bytes):
        raise TypeError("nonce must be bytes")
    if not MIN_NONCE_BYTES <= len(nonce) <= MAX_NONCE_BYTES:
        raise ValueError(f"nonce must be {MIN_NONCE_BYTES}..{MAX_NONCE_BYTES} bytes")
    if now is None:
        now = datetime.now(_UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    inputs = _parse(evidence)
    checks: list[tuple[str, Callable[[], None]]] = [
        ("attest-format", lambda: _attest_format(inputs)),
        ("signature", lambda: _signature(inputs)),
        ("ak-certificate", lambda: _ak_certificate(inputs, ca_pem, now)),
        ("nonce", lambda: _nonce(inputs, nonce)),
        ("pcr-selection", lambda: _pcr_selection(inputs, evidence.bank)),
        ("pcr-digest", lambda: _pcr_digest(inputs)),
        ("event-log", lambda: _event_log(inputs, evidence.bank)),
    ]
    if previous is not None:
        checks.append(("counters", lambda: _counters(inputs, previous)))
        checks.append(("clock", lambda: _clock(inputs, previous)))
    failures = [failure for name, run in checks if (failure := _run(name, run))]
    quote = inputs.quote
    return Verdict(
        trusted=not failures,
        failures=tuple(failures),
        checks=tuple(name for name, _ in checks),
        clock=(ClockState(quote.clock, quote.reset_count, quote.restart_count)
               if isinstance(quote, QuoteInfo) else None),
        bank=evidence.bank if isinstance(evidence.bank, str) else repr(evidence.bank),
        pcrs=dict(inputs.pcrs) if isinstance(inputs.pcrs, dict) else {},
        events=len(inputs.events) if isinstance(inputs.events, list) else None,
    )


def _run(name: str, check: Callable[[], None]) -> Failure | None:
    try:
        check()
    except _CheckFailed as failure:
        return Failure(name, str(failure))
    except Exception as error:  # a verifier fails closed on whatever hostile input causes
        return Failure(name, f"could not be checked: {type(error).__name__}: {error}")
    return None


def _attempt(parse: Callable[[], Any]) -> Any:
    try:
        return parse()
    except Exception as error:  # recorded as the reason the dependent checks fail
        return f"{error}" or type(error).__name__


def _parse(evidence: QuoteEvidence) -> _Inputs:
    return _Inputs(
        attest=_attempt(lambda: _signed_bytes(evidence.attest)),
        quote=_attempt(lambda: parse_attest(evidence.attest)),
        signature=_attempt(lambda: parse_signature(evidence.signature)),
        certificate=_attempt(lambda: load_ak_certificate(evidence.ak_certificate)),
        events=_attempt(lambda: parse_event_log(evidence.event_log)),
        pcrs=_attempt(lambda: _reported_pcrs(evidence.bank, evidence.pcrs)),
    )


def _signed_bytes(attest: object) -> bytes:
    if not isinstance(attest, bytes | bytearray | memoryview):
        raise ValueError(f"attest must be bytes, not {type(attest).__name__}")
    if len(attest) > MAX_ATTEST_BYTES:
        raise ValueError(f"attest of {len(attest)} bytes exceeds {MAX_ATTEST_BYTES}")
    return bytes(attest)


def _reported_pcrs(bank: object, pcrs: object) -> dict[int, bytes]:
    if not isinstance(bank, str) or bank not in _DIGEST_SIZES:
        raise ValueError(f"unknown PCR bank {bank!r:.40} (expected one of {sorted(_DIGEST_SIZES)})")
    if not isinstance(pcrs, dict) or not pcrs:
        raise ValueError("the reported PCR values are missing")
    size = _DIGEST_SIZES[bank]
    values: dict[int, bytes] = {}
    for index, value in pcrs.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= _MAX_PCR:
            raise ValueError(f"PCR index {index!r} is not 0..{_MAX_PCR}")
        if not isinstance(value, bytes) or len(value) != size:
            raise ValueError(f"PCR {index} value is not {size} bytes for {bank}")
        values[index] = value
    return dict(sorted(values.items()))


def _need(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise _CheckFailed(f"{what} unreadable: {value}")
    return value


def _attest_format(inputs: _Inputs) -> None:
    quote: QuoteInfo = _need(inputs.quote, QuoteInfo, "attest")
    if quote.magic != TPM_GENERATED_VALUE:
        raise _CheckFailed(f"magic 0x{quote.magic:08x} is not TPM_GENERATED_VALUE"
                           f" (0x{TPM_GENERATED_VALUE:08x}): the TPM did not produce it")


def _signature(inputs: _Inputs) -> None:
    attest: bytes = _need(inputs.attest, bytes, "attest")
    signature: EcdsaSignature = _need(inputs.signature, EcdsaSignature, "signature")
    if signature.alg != TPM_ALG_ECDSA:
        name = ECC_SIGNATURE_ALGORITHMS.get(signature.alg, "unknown")
        raise _CheckFailed(f"signature scheme {name} (0x{signature.alg:04x}) is not ECDSA")
    if signature.hash != TPM_ALG_SHA256:
        raise _CheckFailed(f"signature hash 0x{signature.hash:04x} is not SHA-256")
    certificate: Certificate = _need(inputs.certificate, Certificate, "AK certificate")
    try:
        key = p256_public_key(certificate)
    except ValueError as error:
        raise _CheckFailed(str(error)) from None
    try:
        key.verify(encode_dss_signature(signature.r, signature.s), attest,
                   ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise _CheckFailed("the AK signature over the attest bytes does not verify") from None


def _ak_certificate(inputs: _Inputs, ca_pem: bytes, now: datetime) -> None:
    certificate: Certificate = _need(inputs.certificate, Certificate, "AK certificate")
    problems = ak_certificate_problems(certificate, ca_pem, now)
    if problems:
        raise _CheckFailed("; ".join(problems))


def _nonce(inputs: _Inputs, nonce: bytes) -> None:
    quote: QuoteInfo = _need(inputs.quote, QuoteInfo, "attest")
    if not hmac.compare_digest(quote.extra_data, nonce):
        raise _CheckFailed("extraData is not the nonce sent: an old or replayed quote")


def _selection_text(selection: dict[str, tuple[int, ...]]) -> str:
    return " ".join(f"{bank}:{','.join(map(str, pcrs))}" for bank, pcrs in selection.items())


def _pcr_selection(inputs: _Inputs, bank: str) -> None:
    quote: QuoteInfo = _need(inputs.quote, QuoteInfo, "attest")
    pcrs: dict[int, bytes] = _need(inputs.pcrs, dict, "reported PCRs")
    reported = {bank: tuple(pcrs)}
    quoted = {name: indexes for name, indexes in quote.pcr_selection.items() if indexes}
    if quoted != reported:
        raise _CheckFailed(f"the quote selects {_selection_text(quoted) or 'no PCRs'}, the"
                           f" server reports {_selection_text(reported)}")


def _pcr_digest(inputs: _Inputs) -> None:
    quote: QuoteInfo = _need(inputs.quote, QuoteInfo, "attest")
    pcrs: dict[int, bytes] = _need(inputs.pcrs, dict, "reported PCRs")
    digest = hashlib.sha256(b"".join(pcrs.values())).digest()
    if not hmac.compare_digest(digest, quote.pcr_digest):
        raise _CheckFailed("pcrDigest is not the SHA-256 of the reported PCR values")


def _event_log(inputs: _Inputs, bank: str) -> None:
    events: list[LogEvent] = _need(inputs.events, list, "event log")
    pcrs: dict[int, bytes] = _need(inputs.pcrs, dict, "reported PCRs")
    replayed = replay(events).get(bank, {})
    differ = [index for index, value in pcrs.items()
              if replayed.get(index, _reset_value(index, len(value))) != value]
    if differ:
        note = "" if replayed else f" (the log has no {bank} digests)"
        raise _CheckFailed(f"replaying the event log does not give the reported {bank} value"
                           f" of PCR {', '.join(map(str, differ))}{note}")


def _reset_value(index: int, size: int) -> bytes:
    """A PCR no event extended: PCRs 17-22 (dynamic launch) start as all ones, others zero."""
    return b"\xff" * size if 17 <= index <= 22 else bytes(size)


def _counters(inputs: _Inputs, previous: ClockState) -> None:
    """resetCount never goes back; restartCount neither while resetCount is unchanged.

    A TPM Reset (reboot) adds one to resetCount and zeroes restartCount, so a
    lower restartCount with a higher resetCount is a normal reboot.
    """
    quote: QuoteInfo = _need(inputs.quote, QuoteInfo, "attest")
    if quote.reset_count < previous.reset_count:
        raise _CheckFailed(f"resetCount went back from {previous.reset_count}"
                           f" to {quote.reset_count}")
    if quote.reset_count == previous.reset_count and quote.restart_count < previous.restart_count:
        raise _CheckFailed(f"restartCount went back from {previous.restart_count}"
                           f" to {quote.restart_count} with resetCount unchanged")


def _clock(inputs: _Inputs, previous: ClockState) -> None:
    """The clock goes forward within one TPM Reset; a reboot may set it back.

    TPMS_CLOCK_INFO (TPM 2.0 Part 2): ``clock`` counts milliseconds while the
    TPM is powered and only TPM2_Clear zeroes it (which also replaces the AK, so
    the state remembered per AK does not apply); ``resetCount`` counts TPM
    Resets, ``restartCount`` Restarts and Resumes since the last Reset. The TPM
    saves the clock to NV from time to time and at an orderly TPM2_Shutdown. A
    Reset after a power loss without orderly shutdown resumes from the last
    saved value and reports safe = NO (Part 1, Clock): the clock goes back, and
    resetCount goes up. swtpm does that at ``vbios tpm reboot`` (seen: 7879 to
    402 ms, resetCount 2 to 3, safe NO, then safe YES again once libtpms saved
    the clock a few seconds later, so ``safe`` tells nothing to a later quote).

    So with a higher resetCount the clock is not compared (the counters check
    already refuses a resetCount that went back). With resetCount unchanged it
    must not go back: a Restart or Resume follows an orderly shutdown that
    saved it, and a power loss forces a Reset. With restartCount unchanged too,
    an equal clock is refused: two genuine quotes are a round trip apart, an
    identical one is a replay.
    """
    quote: QuoteInfo = _need(inputs.quote, QuoteInfo, "attest")
    if quote.reset_count > previous.reset_count:
        return  # a TPM Reset (reboot) happened since: the clock may resume from its last save
    same_boot = quote.restart_count == previous.restart_count
    if quote.clock < previous.clock or (same_boot and quote.clock == previous.clock):
        unsafe = "" if quote.safe else " (safe=NO: the TPM lost power without orderly shutdown)"
        where = (" within one boot" if same_boot
                 else f" with resetCount {quote.reset_count} unchanged (no reboot)")
        raise _CheckFailed(f"clock went from {previous.clock} to {quote.clock} ms{where}{unsafe}")
