"""Remember the TPM clock of the last authentic quote, per server and attestation key.

The "counters" and "clock" checks need the state a previous quote reported, so
a rolled-back or replayed TPM state shows. ``ClockStore`` keeps it in a small
JSON file, one entry per (server URL, SHA-256 fingerprint of the AK certificate):
a new AK (after a TPM clear, or another host) starts afresh.

The file is written atomically (temporary file, fsync, rename) with mode 0600.
A malformed file is refused with ``ClockStoreError`` rather than silently reset,
since resetting would disable the rollback checks; a missing file means no
previous state. Only a trusted verdict is remembered: a failed verification
leaves the state as it was, so the next quote is compared with the same one.

Several ``attest`` runs at once (two processes, two threads) take turns:
``locked()`` holds an exclusive ``fcntl.flock`` on ``<file>.lock`` beside the
state file from before the quote is asked for until its state is saved, so a
run never compares its quote with a later one's state, nor loses another's save.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vbios_client.attestation.verify import ClockState, Verdict

__all__ = ["ClockStore", "ClockStoreError", "ak_fingerprint"]

FORMAT_VERSION = 1
MAX_STATE_BYTES = 1024 * 1024
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_LIMITS = {"clock": 2**64 - 1, "reset_count": 2**32 - 1, "restart_count": 2**32 - 1}
_ENTRY_KEYS = {"server", "ak_sha256", *_LIMITS}


class ClockStoreError(ValueError):
    """The state file cannot be used as it is; the message names the file and the defect."""


def ak_fingerprint(ak_certificate: bytes) -> str:
    """The lowercase hexadecimal SHA-256 of the AK certificate's DER bytes."""
    return hashlib.sha256(bytes(ak_certificate)).hexdigest()


class ClockStore:
    """The last ClockState per (server URL, AK fingerprint), in the JSON file ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's exclusive lock (blocking until other holders are done).

        Not re-entrant: one ``with`` per attestation, around quote, check and save.
        """
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise ClockStoreError(f"{self.lock_path}: cannot lock: {error.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def load(self, server_url: str, ak_certificate: bytes) -> ClockState | None:
        """The remembered state, or None when there is none for this server and AK."""
        return self._read().get(_key(server_url, ak_certificate))

    def save(self, server_url: str, ak_certificate: bytes, state: ClockState) -> None:
        """Remember ``state`` for this server and AK, replacing what was there."""
        _check_state(state, str(self.path))
        entries = self._read()
        entries[_key(server_url, ak_certificate)] = state
        self._write(entries)

    def remember(self, server_url: str, ak_certificate: bytes, verdict: Verdict) -> bool:
        """Save the verdict's clock if every check passed; True when saved."""
        if not verdict.trusted or verdict.clock is None:
            return False
        self.save(server_url, ak_certificate, verdict.clock)
        return True

    def _read(self) -> dict[tuple[str, str], ClockState]:
        try:
            with self.path.open("rb") as handle:
                raw = handle.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise ClockStoreError(f"{self.path}: cannot read: {error.strerror}") from None
        if len(raw) > MAX_STATE_BYTES:
            raise ClockStoreError(f"{self.path}: larger than {MAX_STATE_BYTES} bytes")
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as error:
            raise ClockStoreError(f"{self.path}: not JSON: {error}") from None
        return _entries(document, str(self.path))

    def _write(self, entries: dict[tuple[str, str], ClockState]) -> None:
        document = {
            "version": FORMAT_VERSION,
            "entries": [{"server": server, "ak_sha256": fingerprint, **state.to_dict()}
                        for (server, fingerprint), state in sorted(entries.items())],
        }
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _fsync_directory(directory)


def _key(server_url: str, ak_certificate: bytes) -> tuple[str, str]:
    if not isinstance(server_url, str) or not server_url:
        raise ValueError("server_url must be a non-empty string")
    return server_url.rstrip("/"), ak_fingerprint(ak_certificate)


def _check_state(state: Any, where: str) -> None:
    if not isinstance(state, ClockState):
        raise ClockStoreError(f"{where}: not a ClockState: {type(state).__name__}")
    for name, limit in _LIMITS.items():
        value = getattr(state, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise ClockStoreError(f"{where}: {name} {value!r} is not an integer 0..{limit}")


def _entries(document: Any, where: str) -> dict[tuple[str, str], ClockState]:
    if not isinstance(document, dict) or set(document) != {"version", "entries"}:
        raise ClockStoreError(f"{where}: expected an object with 'version' and 'entries'")
    if document["version"] != FORMAT_VERSION:
        raise ClockStoreError(f"{where}: unsupported version {document['version']!r}")
    if not isinstance(document["entries"], list):
        raise ClockStoreError(f"{where}: 'entries' is not a list")
    entries: dict[tuple[str, str], ClockState] = {}
    for number, entry in enumerate(document["entries"]):
        at = f"{where}: entry {number}"
        if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
            raise ClockStoreError(f"{at}: expected the keys {sorted(_ENTRY_KEYS)}")
        server, fingerprint = entry["server"], entry["ak_sha256"]
        if not isinstance(server, str) or not server:
            raise ClockStoreError(f"{at}: 'server' is not a non-empty string")
        if not isinstance(fingerprint, str) or not _FINGERPRINT.fullmatch(fingerprint):
            raise ClockStoreError(f"{at}: 'ak_sha256' is not 64 lowercase hex digits")
        state = ClockState(entry["clock"], entry["reset_count"], entry["restart_count"])
        _check_state(state, at)
        if (server, fingerprint) in entries:
            raise ClockStoreError(f"{at}: a second entry for {server} and this AK")
        entries[(server, fingerprint)] = state
    return entries


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows opening a directory."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
