"""Attestation on a real swtpm with an EK certificate (the development TPM in a temporary dir).

The attestation contract, plus what only a real TPM shows: credential activation
refuses a wrong AK name, tpm2-tools' tpm2_checkquote accepts our quotes (and the
FakeTpm's), nothing is left in the TPM's three transient slots, quotes are
retried while PCRs change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tpm2_pytss import ESAPI
from tpm2_pytss.constants import ESYS_TR, TPM2_CAP

from bios_ws.errors import TpmError
from bios_ws.tpm import esapi_attest
from bios_ws.tpm.attest_format import parse_attest
from bios_ws.tpm.devtpm import DevTpm
from bios_ws.tpm.ekcert import dev_ek_anchors, verify_ek_certificate
from bios_ws.tpm.esapi import EsapiTpm, open_tpm
from bios_ws.tpm.esapi_templates import primary_template
from bios_ws.tpm.fake import FakeTpm
from bios_ws.tpm.port import AK_HANDLE, Quote
from tests.tpm_contract import FREE_PCR, AttestationContract, digests_of

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("swtpm", "swtpm_setup", "swtpm_ioctl")),
    reason="swtpm is needed")


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTpm]:
    device = DevTpm(tmp_path_factory.mktemp("attest") / "tpm")
    status = device.start()
    try:
        yield device
    finally:
        device.stop()
        if status.pid and Path(f"/proc/{status.pid}").exists():
            cmdline = Path(f"/proc/{status.pid}/cmdline").read_bytes()
            if str(device.state_dir).encode() in cmdline:
                os.kill(status.pid, 9)


@pytest.fixture
def tpm(device: DevTpm) -> Iterator[EsapiTpm]:
    tcti = device.status().tcti
    assert tcti is not None
    real = open_tpm(tcti)
    assert isinstance(real, EsapiTpm)
    real.ensure_storage_primary()
    real.pcr_reset(FREE_PCR)
    real.pcr_reset(23)
    yield real
    real.close()


@contextmanager
def raw(tpm: EsapiTpm) -> Iterator[Any]:
    """A plain ESAPI context on the same swtpm (which serves one connection at a time)."""
    tpm.close()
    ctx = ESAPI(tpm.tcti)
    try:
        yield ctx
    finally:
        ctx.close()


def _evict_ak_handle(ctx: Any) -> None:
    _, data = ctx.get_capability(TPM2_CAP.HANDLES, AK_HANDLE, 1)
    if AK_HANDLE in [int(h) for h in data.data.handles]:
        ctx.evict_control(ESYS_TR.OWNER, ctx.tr_from_tpmpublic(AK_HANDLE), AK_HANDLE)


@pytest.fixture
def ek_anchors(device: DevTpm) -> list[bytes]:
    return dev_ek_anchors(device.directory)


@pytest.fixture
def reboot(device: DevTpm, tpm: EsapiTpm) -> Callable[[], None]:
    def run() -> None:
        tpm.close()
        device.reboot()  # swtpm_ioctl -i, Startup(CLEAR), boot replayed into PCRs 0-7

    return run


@pytest.fixture
def remove_ak(tpm: EsapiTpm) -> Callable[[], None]:
    def run() -> None:
        with raw(tpm) as ctx:
            _evict_ak_handle(ctx)

    return run


@pytest.fixture
def occupy_ak_handle(tpm: EsapiTpm) -> Iterator[Callable[[], None]]:
    def run() -> None:
        with raw(tpm) as ctx:
            _evict_ak_handle(ctx)
            storage_key, _, _, _, _ = ctx.create_primary(None, primary_template(), ESYS_TR.OWNER)
            try:
                ctx.evict_control(ESYS_TR.OWNER, storage_key, AK_HANDLE)
            finally:
                ctx.flush_context(storage_key)

    yield run
    with raw(tpm) as ctx:
        _evict_ak_handle(ctx)


class TestEsapiAttestation(AttestationContract):
    pass


def test_the_dev_ek_is_certified_by_the_local_ca(tpm: EsapiTpm, ek_anchors: list[bytes],
                                                 device: DevTpm) -> None:
    assert len(ek_anchors) == 2 and all(b"PRIVATE KEY" not in a for a in ek_anchors)
    enrollment = tpm.enroll_attestation_key(ek_anchors)
    cert = x509.load_der_x509_certificate(enrollment.ek_certificate)
    assert cert.issuer.rfc4514_string() == "CN=swtpm-localca"
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    other_pem = other.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(TpmError, match="does not certify this TPM's endorsement key"):
        verify_ek_certificate(enrollment.ek_certificate, ek_anchors, other_pem)
    intermediate = [a for a in ek_anchors
                    if x509.load_pem_x509_certificate(a).subject == cert.issuer]
    assert len(intermediate) == 1
    with pytest.raises(TpmError, match="does not chain"):
        tpm.enroll_attestation_key(intermediate)  # the intermediate without its root
    assert dev_ek_anchors(device.directory / "missing") == []


def test_credential_activation_with_a_wrong_ak_name_fails(
    tpm: EsapiTpm, ek_anchors: list[bytes]
) -> None:
    enrollment = tpm.enroll_attestation_key(ek_anchors)
    with (
        raw(tpm) as ctx,
        esapi_attest.endorsement_key(ctx) as (ek, ek_public, _),
        esapi_attest.persisted_ak(ctx) as found,
    ):
        assert found is not None and found[2] == enrollment.ak_name
        esapi_attest.prove_same_tpm(ctx, ek, ek_public, found[0], enrollment.ak_name)
        wrong = enrollment.ak_name[:-1] + bytes([enrollment.ak_name[-1] ^ 1])
        with pytest.raises(TpmError, match="credential activation failed"):
            esapi_attest.prove_same_tpm(ctx, ek, ek_public, found[0], wrong)


def _checkquote(tmp_path: Path, quote: Quote, ak_pem: bytes, nonce: bytes) -> int:
    files = {"ak.pem": ak_pem, "attest.bin": quote.attest, "sig.bin": quote.signature}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = subprocess.run(
        ["tpm2_checkquote", "-u", str(tmp_path / "ak.pem"), "-m", str(tmp_path / "attest.bin"),
         "-s", str(tmp_path / "sig.bin"), "-q", nonce.hex(), "-g", "sha256"],
        capture_output=True, timeout=60, check=False)
    return result.returncode


@pytest.mark.skipif(shutil.which("tpm2_checkquote") is None, reason="tpm2-tools missing")
def test_tpm2_checkquote_accepts_real_and_fake_quotes(
    tpm: EsapiTpm, ek_anchors: list[bytes], tmp_path: Path
) -> None:
    nonce = bytes(range(32))
    enrollment = tpm.enroll_attestation_key(ek_anchors)
    quote = tpm.quote(nonce, [0, 1, 2, 3, 4, 5, 6, 7, 23])
    assert _checkquote(tmp_path, quote, enrollment.ak_public_pem, nonce) == 0
    assert _checkquote(tmp_path, quote, enrollment.ak_public_pem, bytes(32)) != 0
    fake = FakeTpm()
    fake_enrollment = fake.enroll_attestation_key([fake.ek_ca_pem])
    fake_quote = fake.quote(nonce, [0, 7, 23])
    assert _checkquote(tmp_path, fake_quote, fake_enrollment.ak_public_pem, nonce) == 0
    assert _checkquote(tmp_path, fake_quote, enrollment.ak_public_pem, nonce) != 0


def test_no_transient_object_or_session_is_left(tpm: EsapiTpm, ek_anchors: list[bytes],
                                                remove_ak: Callable[[], None]) -> None:
    remove_ak()
    names = {tpm.enroll_attestation_key(ek_anchors).ak_name for _ in range(3)}
    assert len(names) == 1
    for index in range(20):
        tpm.quote(index.to_bytes(2, "big") * 8, [0, FREE_PCR])
    with raw(tpm) as ctx:
        assert esapi_attest.transient_handles(ctx) == []
        _, sessions = ctx.get_capability(TPM2_CAP.HANDLES, 0x02000000, 64)
        assert list(sessions.data.handles) == []


def test_quote_retries_while_the_pcrs_change(
    tpm: EsapiTpm, ek_anchors: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    tpm.enroll_attestation_key(ek_anchors)
    real_read = esapi_attest.read_pcrs
    changes = {"left": 3}

    def read_then_extend(ctx: Any, bank: str, selected: tuple[int, ...]) -> dict[int, bytes]:
        values = real_read(ctx, bank, selected)
        if changes["left"]:
            changes["left"] -= 1
            tpm.pcr_extend(FREE_PCR, digests_of(b"racing extend"))  # between read and quote
        return values

    monkeypatch.setattr(esapi_attest, "read_pcrs", read_then_extend)
    quote = tpm.quote(bytes(16), [FREE_PCR])
    assert changes["left"] == 0
    assert quote.pcrs == tpm.pcr_read([FREE_PCR])
    assert parse_attest(quote.attest).extra_data == bytes(16)
    changes["left"] = 4
    with pytest.raises(TpmError, match="kept changing"):
        tpm.quote(bytes(16), [FREE_PCR])
