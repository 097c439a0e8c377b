"""The stand-in server of ``tests/integration/test_client_pool.py``: a mutual-TLS server in
this process, on loopback, with its PKI. It reads each request whole and does what
``plan(connection, nth, operation)`` says: answer, drop the connection without
answering, answer half, or hang; answer with Connection: close (then close), after a
100 Continue, in chunks, or with a malformed Content-Length.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

ENVELOPE = ('<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns:t="urn:bios-ws:vbios:v1"><e:Body>{}</e:Body></e:Envelope>')
ATTRIBUTES = ("<t:GetAttributesResponse><t:Version>1</t:Version><t:SetupPasswordSet>false"
              "</t:SetupPasswordSet><t:Attributes>{}</t:Attributes></t:GetAttributesResponse>")
VALUE = ("<t:AttributeValue><t:Name>{0}</t:Name><t:StringValue>{0}</t:StringValue>"
         "</t:AttributeValue>")
SET = "<t:SetAttributesResponse><t:Version>7</t:Version></t:SetAttributesResponse>"

Plan = Callable[[int, int, str], str]


# -- a CA, the server's certificate, a guest's bundle -----------------------------------


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _issue(name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
           *, ca: bool = False, ip: str | None = None
           ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5))
               .not_valid_after(now + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address(ip))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _bundle(directory: Path, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> Path:
    cert, key = _issue("vm1", (ca[0].subject, ca[1]))
    directory.mkdir()
    (directory / "cert.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (directory / "key.pem").write_bytes(_key_pem(key))
    (directory / "ca.pem").write_bytes(ca[0].public_bytes(Encoding.PEM))
    return directory


@dataclass
class Pki:
    server: ssl.SSLContext
    bundle: Path  # the guest's: cert, key and the installation's CA
    foreign: Path  # another CA's guest: cert, key and that CA
    stranger: Path  # another CA's cert and key, and the installation's CA


def make_pki(work: Path) -> Pki:
    """A CA, the server's context, and three client bundles in ``work``."""
    ca = _issue("pool test CA", None, ca=True)
    other = _issue("another CA", None, ca=True)
    cert, key = _issue("vbios server", (ca[0].subject, ca[1]), ip="127.0.0.1")
    (work / "server.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (work / "server.key").write_bytes(_key_pem(key))
    (work / "ca.pem").write_bytes(ca[0].public_bytes(Encoding.PEM))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(work / "server.pem", work / "server.key")
    server.load_verify_locations(work / "ca.pem")
    server.verify_mode = ssl.CERT_REQUIRED
    stranger = _bundle(work / "stranger", other)
    (stranger / "ca.pem").write_bytes(ca[0].public_bytes(Encoding.PEM))
    return Pki(server, _bundle(work / "guest", ca), _bundle(work / "foreign", other), stranger)


# -- the stand-in ---------------------------------------------------------------------------


class Server:
    """Mutual TLS on loopback, a thread per connection, HTTP/1.1 keep-alive."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.plan: Plan = lambda connection, nth, operation: "answer"
        self.seen: list[tuple[int, str]] = []  # (connection, operation) of each request
        self.accepted = 0
        self.ended = 0
        self.refused = 0  # handshakes that failed
        self.release = threading.Event()  # ends the "hang" of a request
        self._end_idle: str | None = None
        self._state = threading.Condition()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.listener.close()

    def close_idle(self, how: str = "close") -> None:
        """End every connection now waiting for a request: "close" (FIN) or "reset" (RST)."""
        with self._state:
            self._end_idle = how
            assert self._state.wait_for(lambda: self.ended == self.accepted, timeout=10)
            self._end_idle = None

    def connections(self) -> list[int]:
        return [connection for connection, _ in self.seen]

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            with self._state:
                self.accepted += 1
                number = self.accepted
            threading.Thread(target=self._serve, args=(raw, number), daemon=True).start()

    def _serve(self, raw: socket.socket, number: int) -> None:
        raw.settimeout(10)
        how = "close"
        try:
            conn = self.context.wrap_socket(raw, server_side=True)
        except OSError:
            with self._state:
                self.refused += 1
                self.ended += 1
                self._state.notify_all()
            raw.close()
            return
        try:
            how = self._requests(conn, number)
        except OSError:
            pass
        finally:
            if how == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            with self._state:
                self.ended += 1
                self._state.notify_all()

    def _requests(self, conn: ssl.SSLSocket, number: int) -> str:
        buffer, nth = b"", 0
        while True:
            while b"\r\n\r\n" not in buffer:
                if not buffer and not conn.pending() and \
                        not select.select([conn], [], [], 0.02)[0]:
                    if self._end_idle:
                        return self._end_idle
                    continue
                chunk = conn.recv(65536)
                if not chunk:
                    return "close"
                buffer += chunk
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            found = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            length = int(found.group(1)) if found else 0
            while len(buffer) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return "close"
                buffer += chunk
            body, buffer = buffer[:length].decode(), buffer[length:]
            found_op = re.search(r"<(?:[\w-]+:)?Body[^>]*>\s*<(?:[\w-]+:)?(\w+)", body)
            operation = found_op.group(1) if found_op else "?"
            with self._state:
                self.seen.append((number, operation))
            action = self.plan(number, nth, operation)
            nth += 1
            answer = _answer(operation, body)
            if action == "answer":
                conn.sendall(answer)
            elif action == "close":  # says so, then closes
                conn.sendall(answer.replace(b"\r\n", b"\r\nConnection: close\r\n", 1))
                return "close"
            elif action == "continue":  # an interim 100 first
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + answer)
            elif action == "chunked":
                conn.sendall(_chunked(answer))
            elif action == "malformed":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\nok")
            elif action == "half":  # the status line, headers and part of the body
                conn.sendall(answer[: len(answer) - 40])
                return "close"
            elif action == "hang":
                self.release.wait(30)
                return "close"
            elif action == "drop":
                return "close"
            elif action == "500":
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain"
                             b"\r\nContent-Length: 4\r\n\r\noops")
            else:
                raise AssertionError(action)


def _answer(operation: str, body: str) -> bytes:
    if operation == "SetAttributes":
        inner = SET
    else:  # GetAttributes: each name asked for, with itself as its value
        names = re.findall(r"<(?:[\w-]+:)?Name>([^<]*)</", body) or ["A"]
        inner = ATTRIBUTES.format("".join(VALUE.format(n) for n in names))
    payload = ENVELOPE.format(inner).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
            b"Content-Length: %d\r\n\r\n" % len(payload)) + payload


def _chunked(answer: bytes) -> bytes:
    """``answer`` with its body sent in chunks of 100 bytes (and a trailer field)."""
    head, body = answer.split(b"\r\n\r\n", 1)
    head = re.sub(rb"Content-Length: \d+", b"Transfer-Encoding: chunked", head)
    chunks = b"".join(b"%x;n=1\r\n%s\r\n" % (len(body[at:at + 100]), body[at:at + 100])
                      for at in range(0, len(body), 100))
    return head + b"\r\n\r\n" + chunks + b"0\r\nX-Done: yes\r\n\r\n"
