"""A hostile client in its own process (loopback only): holds connections open and
reports when the server closes them.

Usage: python tests/attack_client.py PORT BUNDLE_DIR HALF_OPEN HALF_REQUESTS HOLD_SECONDS

- HALF_OPEN plain TCP connections send the first 5 bytes of a TLS ClientHello and
  nothing more;
- HALF_REQUESTS mutual-TLS connections (BUNDLE_DIR's cert.pem, key.pem, ca.pem) send
  half a request head and nothing more.
It prints ``READY half_open=N half_requests=M`` once all are made, then
``CLOSED n`` each time the count of connections the server closed changes, and
``DONE closed=n`` when all are closed or HOLD_SECONDS passed (then it closes the rest).
"""

from __future__ import annotations

import asyncio
import resource
import ssl
import sys
import time
from pathlib import Path

CLIENT_HELLO_START = b"\x16\x03\x01\x02\x00"
HALF_HEAD = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-Le"


async def hold(reader: asyncio.StreamReader, closed: list[float]) -> None:
    try:
        while await reader.read(4096):
            pass
    except (OSError, ssl.SSLError):
        pass
    closed.append(time.monotonic())


async def attack(port: int, bundle: Path, half_open: int, half_requests: int,
                 seconds: float) -> None:
    closed: list[float] = []
    writers: list[asyncio.StreamWriter] = []
    holders: list[asyncio.Task[None]] = []
    for _ in range(half_open):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(CLIENT_HELLO_START)
        writers.append(writer)
        holders.append(asyncio.create_task(hold(reader, closed)))
    context = ssl.create_default_context(cafile=str(bundle / "ca.pem"))
    context.load_cert_chain(str(bundle / "cert.pem"), str(bundle / "key.pem"))
    for _ in range(half_requests):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                       server_hostname="127.0.0.1")
        writer.write(HALF_HEAD)
        writers.append(writer)
        holders.append(asyncio.create_task(hold(reader, closed)))
    print(f"READY half_open={half_open} half_requests={half_requests}", flush=True)
    deadline = time.monotonic() + seconds
    reported = -1
    while len(closed) < len(writers) and time.monotonic() < deadline:
        if len(closed) != reported:
            reported = len(closed)
            print(f"CLOSED {reported}", flush=True)
        await asyncio.sleep(0.25)
    print(f"DONE closed={len(closed)}", flush=True)
    for writer in writers:
        writer.transport.abort()


def main() -> None:
    port, bundle, half_open, half_requests, seconds = sys.argv[1:6]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(attack(int(port), Path(bundle), int(half_open), int(half_requests),
                       float(seconds)))


if __name__ == "__main__":
    main()
