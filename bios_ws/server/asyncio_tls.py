"""asyncio's TLS protocol, adjusted for a server that holds many connections.

asyncio builds every TLS connection from ``asyncio.sslproto.SSLProtocol``
(``loop.start_tls`` looks the class up in its module). A worker process replaces
it with ``ServerTlsProtocol``, which differs in three ways:
- its read buffer is 32 KiB, not 256 KiB zero-filled per connection (a TLS record is
  at most 16 KiB): 1,000 held connections would otherwise pin 250 MiB;
- a refused handshake sends its TLS alert and a FIN, and the connection lingers
  ``LINGER`` seconds (reading nothing) before it is dropped: a client whose
  certificate is revoked reads "certificate revoked", not an EOF. Dropped at once, the
  request the client sends after its side of the handshake (TLS 1.3) would meet a
  closed socket, and the reset that answers it makes the client lose the alert;
- the TLS shutdown at close waits ``SHUTDOWN_TIMEOUT`` seconds for the peer, not 30.
These are asyncio internals (the same in 3.11 to 3.13); tests pin each behaviour.
"""

from __future__ import annotations

import asyncio.sslproto
import contextlib
from typing import Any

TLS_READ_BUFFER = 32 * 1024
SHUTDOWN_TIMEOUT = 2.0
LINGER = 1.0


class ServerTlsProtocol(asyncio.sslproto.SSLProtocol):
    max_size = TLS_READ_BUFFER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_shutdown_timeout"] = SHUTDOWN_TIMEOUT
        super().__init__(*args, **kwargs)

    _lingering = False

    def _on_handshake_complete(self, handshake_exc: BaseException | None) -> None:
        if handshake_exc is None or self._lingering:
            super()._on_handshake_complete(handshake_exc)
            return
        self._lingering = True
        internals: Any = self  # asyncio's private attributes (not in typeshed)
        if internals._handshake_timeout_handle is not None:
            internals._handshake_timeout_handle.cancel()
            internals._handshake_timeout_handle = None
        internals._process_outgoing()  # the alert OpenSSL wrote
        with contextlib.suppress(OSError, RuntimeError):
            internals._transport.pause_reading()
            internals._transport.write_eof()
        finish = super()._on_handshake_complete
        self._loop.call_later(LINGER, finish, handshake_exc)


def install() -> None:
    """Every TLS connection this process makes or accepts from now on uses
    ``ServerTlsProtocol`` (worker processes only)."""
    asyncio.sslproto.SSLProtocol = ServerTlsProtocol  # type: ignore[misc]
