"""Loopback ports for tests, taken from the kernel with no window for anyone else.

A server under test binds port 0 itself and says which port it got. A test
that needs a port where nobody answers holds one with ``closed_port``: bound
(without SO_REUSEADDR, so no other socket can bind it) and not listening, so a
connection is refused for as long as the test holds it.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections, held until the block ends."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port: int = holder.getsockname()[1]
        yield port
