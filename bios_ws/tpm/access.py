"""The running server's way to the TPM: one connection per use, closed right after.

swtpm serves one connection at a time, and admin commands (`vbios tpm reboot`,
tpm2-tools) must get their turn while the server runs; a kernel resource
manager (/dev/tpmrm0) is happy either way. Opening costs about half a
millisecond on swtpm. Uses inside one process are serialized by a lock, so a
burst of quotes never piles connections up in the TPM's listen queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bios_ws.errors import TpmUnavailable
from bios_ws.tpm.port import Tpm

TctiResolver = Callable[[], str]
Opener = Callable[[str], Tpm]


class PerUseTpm:
    """``with access() as tpm:`` opens the TPM, and closes it when the block ends."""

    def __init__(self, resolve_tcti: TctiResolver, opener: Opener) -> None:
        self._resolve = resolve_tcti
        self._opener = opener
        self._lock = threading.Lock()
        self._tcti: str | None = None

    @contextmanager
    def __call__(self) -> Iterator[Tpm]:
        with self._lock:
            if self._tcti is None:
                self._tcti = self._resolve()
            try:
                tpm = self._opener(self._tcti)
            except TpmUnavailable:
                self._tcti = None  # a development TPM may come back on other ports
                raise
            try:
                yield tpm
            except TpmUnavailable:
                self._tcti = None
                raise
            finally:
                tpm.close()
