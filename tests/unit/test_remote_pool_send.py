"""A request to a remote goes out in one write: head and body together."""

from __future__ import annotations

import ssl

from bios_ws.server.remote_pool import _OneWrite


class _Socket:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


def test_head_and_body_are_one_write() -> None:
    conn = _OneWrite("b.example", 8443, context=ssl.create_default_context())
    sock = _Socket()
    conn.sock = sock
    conn.request("POST", "/vbios", body=b"<Envelope/>", headers={"Content-Type": "text/xml"})
    assert len(sock.writes) == 1
    head, _, body = sock.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /vbios HTTP/1.1\r\n") and b"Content-Length: 11" in head
    assert body == b"<Envelope/>"


def test_a_body_that_is_not_bytes_goes_as_http_client_sends_it() -> None:
    conn = _OneWrite("b.example", 8443, context=ssl.create_default_context())
    sock = _Socket()
    conn.sock = sock
    conn.request("POST", "/vbios", body=[b"<Env", b"elope/>"],
                 headers={"Content-Length": "11"})
    assert b"".join(sock.writes).endswith(b"\r\n\r\n<Envelope/>") and len(sock.writes) > 1
