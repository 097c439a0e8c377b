"""ClockStore: the last authentic clock per server and AK, kept in a 0600 JSON file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from vbios_client.attestation import (
    ClockState,
    ClockStore,
    ClockStoreError,
    Failure,
    Verdict,
    ak_fingerprint,
)

URL = "https://vbios.local:8443/"
AK = b"\x30\x82 the AK certificate DER"
OTHER_AK = b"\x30\x82 another AK"
STATE = ClockState(5000, 3, 1)


def verdict(*failures: str, clock: ClockState | None = STATE) -> Verdict:
    return Verdict(not failures, tuple(Failure(check, "x") for check in failures),
                   ("attest-format",), clock, "sha256", {}, 1)


def test_missing_file_means_no_previous_state(tmp_path: Path) -> None:
    assert ClockStore(tmp_path / "clock.json").load(URL, AK) is None


def test_saved_state_is_loaded_per_server_and_ak(tmp_path: Path) -> None:
    path = tmp_path / "state" / "clock.json"
    store = ClockStore(path)
    store.save(URL, AK, STATE)
    store.save("https://other:8443", AK, ClockState(1, 1, 1))
    reopened = ClockStore(path)
    assert reopened.load(URL, AK) == STATE
    assert reopened.load(URL.rstrip("/"), AK) == STATE  # a trailing slash is the same server
    assert reopened.load(URL, OTHER_AK) is None
    assert reopened.load("https://other:8443", AK) == ClockState(1, 1, 1)
    store.save(URL, AK, ClockState(6000, 3, 1))
    assert ClockStore(path).load(URL, AK) == ClockState(6000, 3, 1)


def test_file_is_private_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    ClockStore(path).save(URL, AK, STATE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["clock.json"]
    document = json.loads(path.read_text())
    assert document == {"version": 1, "entries": [{
        "server": URL.rstrip("/"), "ak_sha256": ak_fingerprint(AK),
        "clock": 5000, "reset_count": 3, "restart_count": 1}]}


def test_remember_saves_only_authentic_verdicts(tmp_path: Path) -> None:
    store = ClockStore(tmp_path / "clock.json")
    assert not store.remember(URL, AK, verdict("signature"))
    assert not store.remember(URL, AK, verdict("nonce"))
    assert not store.remember(URL, AK, verdict(clock=None))
    assert store.load(URL, AK) is None
    assert store.remember(URL, AK, verdict("event-log", "clock"))  # genuine, still informative
    assert store.load(URL, AK) == STATE


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[]", "expected an object with 'version' and 'entries'"),
    (b'{"version": 2, "entries": []}', "unsupported version 2"),
    (b'{"version": 1, "entries": {}}', "'entries' is not a list"),
    (b'{"version": 1, "entries": [{"server": "u"}]}', "entry 0: expected the keys"),
    (json.dumps({"version": 1, "entries": [{
        "server": "u", "ak_sha256": "AB" * 32, "clock": 1, "reset_count": 1,
        "restart_count": 1}]}).encode(), "not 64 lowercase hex digits"),
    (json.dumps({"version": 1, "entries": [{
        "server": "", "ak_sha256": "ab" * 32, "clock": 1, "reset_count": 1,
        "restart_count": 1}]}).encode(), "'server' is not a non-empty string"),
    (json.dumps({"version": 1, "entries": [{
        "server": "u", "ak_sha256": "ab" * 32, "clock": -1, "reset_count": 1,
        "restart_count": 1}]}).encode(), "clock -1 is not an integer"),
    (json.dumps({"version": 1, "entries": [{
        "server": "u", "ak_sha256": "ab" * 32, "clock": 1, "reset_count": True,
        "restart_count": 1}]}).encode(), "reset_count True is not an integer"),
    (json.dumps({"version": 1, "entries": [{
        "server": "u", "ak_sha256": "ab" * 32, "clock": 1, "reset_count": 1,
        "restart_count": 2**32}]}).encode(), "restart_count 4294967296 is not an integer"),
    (json.dumps({"version": 1, "entries": [{
        "server": "u", "ak_sha256": "ab" * 32, "clock": 1, "reset_count": 1,
        "restart_count": 1}] * 2}).encode(), "entry 1: a second entry for u"),
])
def test_malformed_file_is_refused_not_reset(tmp_path: Path, content: bytes,
                                             message: str) -> None:
    path = tmp_path / "clock.json"
    path.write_bytes(content)
    store = ClockStore(path)
    with pytest.raises(ClockStoreError, match=message) as caught:
        store.load(URL, AK)
    assert str(path) in str(caught.value)
    with pytest.raises(ClockStoreError):
        store.save(URL, AK, STATE)
    assert path.read_bytes() == content  # left for the user to look at


def test_oversized_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vbios_client.attestation.state.MAX_STATE_BYTES", 10)
    path = tmp_path / "clock.json"
    path.write_bytes(b" " * 11)
    with pytest.raises(ClockStoreError, match="larger than 10 bytes"):
        ClockStore(path).load(URL, AK)


def test_unreadable_path_is_a_clock_store_error(tmp_path: Path) -> None:
    with pytest.raises(ClockStoreError, match="cannot read"):
        ClockStore(tmp_path).load(URL, AK)  # a directory


def test_invalid_state_or_url_is_refused(tmp_path: Path) -> None:
    store = ClockStore(tmp_path / "clock.json")
    with pytest.raises(ClockStoreError, match="clock -5 is not an integer"):
        store.save(URL, AK, ClockState(-5, 0, 0))
    with pytest.raises(ValueError, match="server_url"):
        store.save("", AK, STATE)
    assert not (tmp_path / "clock.json").exists()


def test_fingerprint_is_sha256_hex() -> None:
    assert ak_fingerprint(b"") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
