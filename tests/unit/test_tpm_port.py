"""Offline TPM arithmetic, the sealed-blob file format and the TSS error mapping."""

from __future__ import annotations

import hashlib
import json

import pytest

from bios_ws.errors import TpmError, TpmLockout, TpmPolicyMismatch, TpmUnavailable
from bios_ws.tpm.port import (
    SealedBlob,
    extended_value,
    marshal_pcr_selection,
    policy_pcr_digest,
)
from bios_ws.tpm.rc import is_retryable, map_tss_error, tpm_code

# Vectors from swtpm 0.7.1 through tpm2-pytss 3.0 (see tests/integration/test_tpm_esapi.py,
# which checks the same formula against a live trial session):
#   TPML_PCR_SELECTION.parse("sha256:0,1,23").marshal()
SELECTION_0_1_23 = bytes.fromhex("00000001000b03030080")
#   PCR16 = extend(zeros, sha256(b"x")), PCR23 = zeros; trial session PolicyPCR sha256:16,23
TRIAL_16_23 = bytes.fromhex("0d8ee1c5fe5bc3c4378ac7f2c308f299cec7c7d3ae23e02a6d89ca77743d2f4f")


def test_pcr_selection_marshals_like_the_tss() -> None:
    assert marshal_pcr_selection("sha256", [0, 1, 23]) == SELECTION_0_1_23
    assert marshal_pcr_selection("sha1", [7]) == bytes.fromhex("0000000100040380" "0000")


def test_policy_digest_matches_the_tpm_trial_session_vector() -> None:
    pcr16 = extended_value("sha256", bytes(32), hashlib.sha256(b"x").digest())
    assert pcr16.hex().startswith("7f85193790de75e4")
    assert policy_pcr_digest("sha256", [16, 23], {16: pcr16, 23: bytes(32)}) == TRIAL_16_23
    assert policy_pcr_digest("sha256", [23, 16], {16: pcr16, 23: bytes(32)}) == TRIAL_16_23
    assert policy_pcr_digest("sha256", [16, 23], {16: bytes(32), 23: pcr16}) != TRIAL_16_23


def test_policy_digest_refuses_missing_or_wrong_sized_values() -> None:
    with pytest.raises(ValueError):
        policy_pcr_digest("sha256", [16, 23], {16: bytes(32)})
    with pytest.raises(ValueError):
        policy_pcr_digest("sha256", [23], {23: bytes(20)})
    with pytest.raises(ValueError):
        policy_pcr_digest("md5", [23], {23: bytes(16)})


def blob() -> SealedBlob:
    return SealedBlob(b"\x00\x04pubx", b"\x00\x03prv", (0, 7, 23), "sha256", bytes(range(32)))


def test_sealed_blob_json_round_trip() -> None:
    original = blob()
    assert SealedBlob.from_json(original.to_json()) == original


@pytest.mark.parametrize(
    "edit",
    [
        {"format": "other"},
        {"public": "not base64!"},
        {"pcrs": [23, 0]},
        {"pcrs": [0, 0]},
        {"pcrs": [24]},
        {"pcrs": "0,7"},
        {"bank": "sha1"},
        {"policy_digest": "00"},
        {"private": ""},
    ],
)
def test_malformed_sealed_blobs_are_refused(edit: dict[str, object]) -> None:
    data = json.loads(blob().to_json())
    data.update(edit)
    with pytest.raises(ValueError):
        SealedBlob.from_json(json.dumps(data))


@pytest.mark.parametrize("text", ["", "[]", "{", "x" * 70000])
def test_non_blob_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        SealedBlob.from_json(text)


@pytest.mark.parametrize(
    ("rc", "kind"),
    [
        (0x99D, TpmPolicyMismatch),  # POLICY_FAIL, session 1
        (0x09D, TpmPolicyMismatch),
        (0x928, TpmPolicyMismatch),  # PCR_CHANGED
        (0x921, TpmLockout),
        (0x0B0921, TpmLockout),  # through tpm2-abrmd
        (0x100, TpmUnavailable),  # INITIALIZE: Startup needed
        (0x0A000A, TpmUnavailable),  # TCTI IO error
        (0x070008, TpmUnavailable),  # ESYS no connection
        (0x07000A, TpmUnavailable),  # ESYS IO error
        (0x907, TpmError),  # bad locality
        (0x98E, TpmError),  # AUTH_FAIL
        (0x07000B, TpmError),  # ESYS bad value
    ],
)
def test_tss_codes_map_to_the_error_tree(rc: int, kind: type[TpmError]) -> None:
    error = map_tss_error(rc, "swtpm:host=127.0.0.1,port=1", "unseal")
    assert type(error) is kind
    if kind is TpmUnavailable and rc != 0x100:
        assert "unreachable at swtpm:host=127.0.0.1,port=1" in str(error)


def test_format_one_codes_lose_their_handle_number() -> None:
    assert tpm_code(0x99D) == tpm_code(0x19D) == 0x09D
    assert tpm_code(0x0A000A) is None
    assert is_retryable(0x902) and is_retryable(0x903)
    assert not is_retryable(0x99D) and not is_retryable(0x0A000A)
