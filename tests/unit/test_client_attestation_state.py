"""ClockStore: the last trusted clock per server and AK, kept in a 0600 JSON file, locked."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
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


def test_remember_saves_only_trusted_verdicts(tmp_path: Path) -> None:
    store = ClockStore(tmp_path / "clock.json")
    assert not store.remember(URL, AK, verdict("signature"))
    assert not store.remember(URL, AK, verdict("nonce"))
    assert not store.remember(URL, AK, verdict(clock=None))
    # genuine but failed: remembering it would let the next quote pass the rollback it caught
    assert not store.remember(URL, AK, verdict("clock"))
    assert not store.remember(URL, AK, verdict("event-log"))
    assert store.load(URL, AK) is None
    assert store.remember(URL, AK, verdict())
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


def test_the_lock_makes_concurrent_updates_take_turns(tmp_path: Path) -> None:
    """Two threads each add one to the clock 15 times, pausing between load and save:
    without the lock most updates would be lost."""
    path = tmp_path / "state" / "clock.json"
    ClockStore(path).save(URL, AK, ClockState(0, 0, 0))

    def count_up() -> None:
        store = ClockStore(path)  # one store, one lock file descriptor per "process"
        for _ in range(15):
            with store.locked():
                seen = store.load(URL, AK)
                assert seen is not None
                time.sleep(0.002)
                store.save(URL, AK, ClockState(seen.clock + 1, 0, 0))

    workers = [threading.Thread(target=count_up) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert ClockStore(path).load(URL, AK) == ClockState(30, 0, 0)
    assert stat.S_IMODE((path.parent / "clock.json.lock").stat().st_mode) == 0o600


def test_the_lock_blocks_another_process_until_released(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    holder = ClockStore(path)
    probe = [sys.executable, "-c",
             "import sys, vbios_client.attestation as a\n"
             "with a.ClockStore(sys.argv[1]).locked(): print('locked', flush=True)", str(path)]
    with holder.locked():
        waiting = subprocess.Popen(probe, stdout=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                waiting.wait(timeout=1.0)
        except BaseException:
            waiting.kill()
            raise
    out, _ = waiting.communicate(timeout=30)
    assert waiting.returncode == 0 and out == "locked\n"


def test_an_unusable_lock_place_is_a_clock_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ClockStoreError, match="cannot lock"), \
            ClockStore(tmp_path / "file" / "clock.json").locked():
        pass
