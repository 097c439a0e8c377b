"""The attestation and integrity calls of ``BiosClient``: the host's measurements, a TPM
quote verified here (``attest``), and what the host says about its own integrity."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vbios_client import integrity

if TYPE_CHECKING:  # attestation brings cryptography: imported when used
    from vbios_client._channel import SoapChannel
    from vbios_client.attestation import ClockState, ClockStore, QuoteEvidence, Verdict


class AttestationCalls:
    """The attestation operations of ``BiosClient``."""

    _ca_path: Path | None  # BiosClient's: the bundle's CA
    _clocks: dict[str, ClockState]  # BiosClient's: the last trusted quote's counters, by AK

    @property
    def _channel(self) -> SoapChannel:  # BiosClient's
        raise NotImplementedError

    @property
    def url(self) -> str:  # BiosClient's
        raise NotImplementedError

    def get_boot_measurements(self, bank: str = "sha256") -> integrity.BootMeasurements:
        """The host's PCR values, raw event log and parsed events (the server's word)."""
        return integrity.boot_measurements(self._channel.call("GetBootMeasurements", Bank=bank))

    def get_quote(
        self, nonce: bytes, pcrs: Sequence[int] | None = None, bank: str = "sha256"
    ) -> QuoteEvidence:
        """A TPM quote over ``pcrs`` (default 0-7) with ``nonce`` (16 to 64 bytes), unchecked."""
        if not isinstance(nonce, bytes):
            raise TypeError("nonce must be bytes")
        params: dict[str, Any] = {"Nonce": nonce, "Bank": bank}
        if pcrs:
            params["PcrSelection"] = {"Index": [int(i) for i in pcrs]}
        wire = self._channel.call("GetQuote", **params)
        from vbios_client.attestation import QuoteEvidence

        return QuoteEvidence(
            attest=bytes(wire.Attest), signature=bytes(wire.Signature), bank=str(wire.Bank),
            pcrs=integrity.pcr_values(wire.Pcrs), ak_certificate=bytes(wire.AkCertificate),
            event_log=bytes(wire.EventLog),
        )

    def attest(
        self, pcrs: Sequence[int] | None = None, bank: str = "sha256", *,
        ca_pem: bytes | None = None, clock_store: ClockStore | None = None,
    ) -> Verdict:
        """Ask for a quote with a fresh nonce and verify it here; never trusts the server.

        ``ca_pem`` (default: the bundle's CA) must have issued the attestation key's
        certificate. The TPM's reset and restart counters and clock are compared with
        the last authentic quote of the same attestation key: the one this client saw,
        or the one ``clock_store`` remembers (kept across processes, locked from the
        quote to the save). Only a trusted verdict's state is remembered.
        """
        from vbios_client.attestation import ak_fingerprint, verify_quote

        with clock_store.locked() if clock_store is not None else contextlib.nullcontext():
            nonce = secrets.token_bytes(32)
            evidence = self.get_quote(nonce, pcrs, bank)
            if ca_pem is None:
                if self._ca_path is None:
                    raise ValueError("no CA certificate to verify the attestation key with")
                ca_pem = self._ca_path.read_bytes()
            key = ak_fingerprint(evidence.ak_certificate)
            previous = (clock_store.load(self.url, evidence.ak_certificate)
                        if clock_store is not None else self._clocks.get(key))
            verdict = verify_quote(evidence, nonce=nonce, ca_pem=ca_pem, previous=previous)
            if verdict.trusted and verdict.clock is not None:
                self._clocks[key] = verdict.clock
                if clock_store is not None:
                    clock_store.remember(self.url, evidence.ak_certificate, verdict)
        return verdict

    def get_integrity_status(self) -> integrity.IntegrityStatus:
        """The host's own verdict, measured now (the server's word)."""
        return integrity.integrity_status(self._channel.call("GetIntegrityStatus"))

    def get_reference_measurements(self) -> integrity.ReferenceMeasurements | None:
        return integrity.reference(self._channel.call("GetReferenceMeasurements"))

    def collect_diagnostics(self) -> integrity.Diagnostics:
        """Event log, PCRs, verdict and recent audit entries (works in restricted mode)."""
        return integrity.diagnostics(self._channel.call("CollectDiagnostics"))

