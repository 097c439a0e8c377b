"""A daemon thread that runs one action every few seconds while a process serves."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``action`` every ``interval`` seconds (first after one interval) until
    ``stop``; a failing run is logged and the next one still happens."""

    def __init__(self, name: str, interval: float, action: Callable[[], object]) -> None:
        self._name = name
        self._interval = interval
        self._action = action
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._action()
            except Exception:  # one failed run must not end the thread
                log.exception("%s: a run failed", self._name)
