"""One typed configuration of a vBIOS process, made in one place.

The CLI parses its arguments into a ``Config`` (``bios_ws.cli.options``);
``bios_ws.bootstrap.bootstrap`` builds the whole object graph from it. Nothing
below reads the environment or the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bios_ws.home import Home, TpmChoice
from bios_ws.server.options import ServerOptions

#: Before a state change, the measurements are re-checked if older than this (seconds).
DEFAULT_INTEGRITY_INTERVAL = 10.0


@dataclass(frozen=True)
class Config:
    """Everything a vBIOS process is built from."""

    home: Home
    #: The TPM this process uses: the command's choice, else the home's own.
    tpm: TpmChoice
    #: The state store (SQLAlchemy URL): the home's SQLite file by default.
    store_url: str
    server: ServerOptions = field(default_factory=ServerOptions)
    #: The platform's boot event log, when the TPM does not tell where it is.
    event_log: Path | None = None
    integrity_interval: float = DEFAULT_INTEGRITY_INTERVAL

    @classmethod
    def of(
        cls, home: Home, *, tpm: TpmChoice | None = None, store_url: str | None = None,
        server: ServerOptions | None = None, event_log: Path | None = None,
        integrity_interval: float = DEFAULT_INTEGRITY_INTERVAL,
    ) -> Config:
        """The configuration of ``home``; ``tpm`` overrides the home's own TPM."""
        return cls(
            home=home,
            tpm=tpm if tpm is not None else home.tpm,
            store_url=store_url or home.db_url,
            server=server or ServerOptions(),
            event_log=event_log,
            integrity_interval=integrity_interval,
        )
