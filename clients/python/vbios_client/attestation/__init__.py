"""Verify, in the guest, a TPM quote of the host it runs on.

    evidence = QuoteEvidence(attest, signature, "sha256", pcrs, ak_certificate, event_log)
    verdict = verify_quote(evidence, nonce=nonce, ca_pem=ca_pem,
                           previous=store.load(url, ak_certificate))
    store.remember(url, ak_certificate, verdict)  # only if verdict.authentic

Pure Python and ``cryptography``: no TPM software stack, no code of the server.
"""

from vbios_client.attestation.eventlog import EventLogError, LogEvent, parse_event_log, replay
from vbios_client.attestation.state import ClockStore, ClockStoreError, ak_fingerprint
from vbios_client.attestation.tpm_formats import (
    EcdsaSignature,
    FormatError,
    QuoteInfo,
    parse_attest,
    parse_signature,
)
from vbios_client.attestation.verify import (
    AUTHENTICITY_CHECKS,
    CHECKS,
    ClockState,
    Failure,
    QuoteEvidence,
    Verdict,
    verify_quote,
)

__all__ = [
    "AUTHENTICITY_CHECKS",
    "CHECKS",
    "ClockState",
    "ClockStore",
    "ClockStoreError",
    "EcdsaSignature",
    "EventLogError",
    "Failure",
    "FormatError",
    "LogEvent",
    "QuoteEvidence",
    "QuoteInfo",
    "Verdict",
    "ak_fingerprint",
    "parse_attest",
    "parse_event_log",
    "parse_signature",
    "replay",
    "verify_quote",
]
