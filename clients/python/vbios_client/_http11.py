"""HTTP/1.1 as ``_https`` speaks it: a request head written once per target, answers
read strictly from a buffered socket, every read under a bound.

A request is its cached head (``request_head``: the request line, Host, the
caller's headers, then the Content-Length name) followed by the body's length and
the body, sent in one write. An answer (``AnswerReader.read``) is a status line
``HTTP/1.0`` or ``HTTP/1.1``, at most ``MAX_HEADER_FIELDS`` header fields, the whole
head at most ``MAX_HEAD_BYTES``; interim answers (1xx, such as 100 Continue) are
skipped, at most ``MAX_INTERIM`` of them; the body is framed by Content-Length, by
chunked transfer coding (chunk-size lines, trailers and the body all bounded), or
by the connection's end when neither is given. Anything else is refused with
``HttpError``: a line not ended by CRLF, a field without a token name, folded
lines, a malformed or ambiguous Content-Length, Content-Length together with
Transfer-Encoding, a transfer coding other than chunked, a 101. A body longer than
the caller's limit is ``AnswerTooLong`` before it is read on; a body cut short is
``IncompleteRead``. The connection must close after an answer that says
``Connection: close`` (or is HTTP/1.0 without keep-alive), ends with the
connection, or is followed by bytes nobody asked for.

A failure of the very first read of an answer is ``Unanswered`` (``__cause__`` says
how), the peer's close before any byte ``RemoteDisconnected``: ``_https`` decides
from them whether a request may be sent again.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping

#: The longest answer head (status line, fields, the blank line) read.
MAX_HEAD_BYTES = 16 * 1024
#: The most header fields in one answer head (or in a chunked body's trailers).
MAX_HEADER_FIELDS = 100
#: The most interim (1xx) answers skipped before the final one.
MAX_INTERIM = 10
#: The longest chunk-size line (with its extensions).
MAX_CHUNK_LINE = 1024
_READ_SIZE = 64 * 1024
#: Digits past which a Content-Length is longer than any bound a caller may set.
_LIMIT_DIGITS = 18

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?")
_FIELD_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):([\t\x20-\x7e\x80-\xff]*)")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?")
_PATH = re.compile(r"[\x21-\x7e]+")
_FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
#: The fields that frame an answer; the others are not looked at, but for ``_NOTED``.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})
#: The field that says the vBIOS served a remote's answer from its cache (kept as
#: ``AnswerReader.cached``).
CACHED_FIELD = b"x-vbios-cached"
_NOTED = frozenset({CACHED_FIELD})
#: Fields the sender writes itself.
_OURS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
#: Statuses whose answer has no body whatever its fields say.
_NO_BODY = frozenset({204, 304})


class HttpError(Exception):
    """An answer that breaks HTTP/1.1 or the bounds above (the text names no value)."""


class IncompleteRead(HttpError):
    """The connection ended inside a body (the text as http.client wrote it)."""

    def __init__(self, got: int, missing: int | None) -> None:
        expected = "" if missing is None else f", {missing} more expected"
        super().__init__(f"IncompleteRead({got} bytes read{expected})")
        self.got = got


class AnswerTooLong(Exception):
    """A body longer than the caller's limit (not read on)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"longer than {limit} bytes")
        self.limit = limit


class Unanswered(Exception):
    """Reading failed before the first byte of the answer; ``__cause__`` says how."""


class RemoteDisconnected(ConnectionResetError):
    """The peer closed the connection before the first byte of the answer."""

    def __init__(self) -> None:
        super().__init__("Remote end closed connection without response")


def request_head(host: str, port: int, path: str, headers: Mapping[str, str]) -> bytes:
    """The head of a POST of ``path`` (checked by ``valid_path``) up to the value of its
    Content-Length (the caller appends it, the blank line and the body); ValueError for
    a header that HTTP cannot carry or that the sender writes itself."""
    authority = f"[{host}]" if ":" in host else host
    if port != 443:
        authority = f"{authority}:{port}"
    lines = [f"POST {path} HTTP/1.1", f"Host: {authority}", "Accept-Encoding: identity"]
    for name, value in headers.items():
        if not _FIELD_NAME.fullmatch(name) or name.lower() in _OURS:
            raise ValueError(f"invalid header name {name!r}")
        if not _FIELD_VALUE.fullmatch(value):
            raise ValueError(f"invalid value of header {name}")
        lines.append(f"{name}: {value}")
    lines.append("Content-Length: ")
    return "\r\n".join(lines).encode("latin-1")


def valid_path(path: str) -> bool:
    """Whether ``path`` can be a request's target as it is (printable ASCII, no space)."""
    return path.startswith("/") and _PATH.fullmatch(path) is not None


class AnswerReader:
    """Reads the answers that arrive on one connection, one after the other."""

    __slots__ = ("_data", "_pos", "_sock", "cached")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._data = b""  # received, not yet read from ``_pos`` on
        self._pos = 0
        #: The last answer's X-Vbios-Cached value (Latin-1), or None.
        self.cached: str | None = None

    def read(self, limit: int) -> tuple[int, bytes, bool]:
        """The next answer's status, its body (at most ``limit`` bytes) and whether the
        connection must close after it."""
        self.cached = None
        self._first_byte()
        for _ in range(MAX_INTERIM + 1):
            minor, status, framing = self._head()
            if status >= 200:
                break
            if status == 101:
                raise HttpError("an unexpected 101 Switching Protocols")
        else:
            raise HttpError(f"more than {MAX_INTERIM} interim (1xx) answers")
        noted = framing.get(CACHED_FIELD)
        self.cached = None if noted is None else noted[-1].decode("latin-1")
        tokens = {token.strip(b" \t").lower() for value in framing.get(b"connection", ())
                  for token in value.split(b",")}
        closing = b"close" in tokens or (minor == 0 and b"keep-alive" not in tokens)
        lengths = framing.get(b"content-length")
        codings = framing.get(b"transfer-encoding")
        if status in _NO_BODY:
            body = b""
        elif codings is not None:
            if lengths is not None:
                raise HttpError("an answer with both Content-Length and Transfer-Encoding")
            if len(codings) != 1 or codings[0].lower() != b"chunked":
                raise HttpError("a transfer coding other than chunked")
            body = self._chunked(limit)
        elif lengths is not None:
            length = _content_length(lengths, limit)
            body = self._exact(length)
        else:  # delimited by the connection's end
            body = self._until_closed(limit)
            closing = True
        if self._pos < len(self._data):  # more than the answer: nobody asked for it
            closing = True
        return status, body, closing

    # -- the head ---------------------------------------------------------------------

    def _first_byte(self) -> None:
        if self._pos < len(self._data):
            return
        try:
            chunk = self._sock.recv(_READ_SIZE)
        except OSError as exc:
            raise Unanswered() from exc
        if not chunk:
            raise RemoteDisconnected()
        self._data, self._pos = chunk, 0

    def _head(self) -> tuple[int, int, dict[bytes, list[bytes]]]:
        """HTTP/1.x's x, the status and the framing fields of the next head."""
        end = self._data.find(b"\r\n\r\n", self._pos, self._pos + MAX_HEAD_BYTES)
        while end < 0:
            if len(self._data) - self._pos >= MAX_HEAD_BYTES:
                raise HttpError(f"an answer head longer than {MAX_HEAD_BYTES} bytes")
            if not self._fill():
                raise HttpError("the connection ended inside the answer's head")
            end = self._data.find(b"\r\n\r\n", self._pos, self._pos + MAX_HEAD_BYTES)
        lines = self._data[self._pos:end].split(b"\r\n")
        self._pos = end + 4
        status_line = _STATUS_LINE.fullmatch(lines[0])
        if status_line is None:
            raise HttpError("a malformed status line")
        if len(lines) > MAX_HEADER_FIELDS + 1:
            raise HttpError(f"more than {MAX_HEADER_FIELDS} header fields")
        framing: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            field = _FIELD_LINE.fullmatch(line)
            if field is None:
                raise HttpError("a malformed header field")
            name = field[1].lower()
            if name in _FRAMING or name in _NOTED:
                framing.setdefault(name, []).append(field[2].strip(b" \t"))
        return int(status_line[1]), int(status_line[2]), framing

    # -- bodies -----------------------------------------------------------------------

    def _exact(self, length: int) -> bytes:
        """The next ``length`` bytes; IncompleteRead if the connection ends before."""
        data, pos = self._data, self._pos
        have = len(data) - pos
        if have >= length:
            self._pos = pos + length
            return data[pos:pos + length]
        body = bytearray(length)
        body[:have] = memoryview(data)[pos:]
        self._data, self._pos = b"", 0
        view, got = memoryview(body), have
        while got < length:
            count = self._sock.recv_into(view[got:], length - got)
            if not count:
                raise IncompleteRead(got, length - got)
            got += count
        return bytes(body)

    def _until_closed(self, limit: int) -> bytes:
        parts, size = [self._data[self._pos:]], len(self._data) - self._pos
        self._data, self._pos = b"", 0
        while size <= limit:
            chunk = self._sock.recv(_READ_SIZE)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            size += len(chunk)
        raise AnswerTooLong(limit)

    def _chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self._line(MAX_CHUNK_LINE, "chunk-size line", size)
            found = _CHUNK_SIZE.fullmatch(line)
            if found is None:
                raise HttpError("a malformed chunk-size line")
            length = int(found[1], 16)
            if not length:
                break
            if length > limit - size:
                raise AnswerTooLong(limit)
            try:
                parts.append(self._exact(length))
            except IncompleteRead as exc:
                raise IncompleteRead(size + exc.got, None) from None
            size += length
            self._chunk_end(size)
        self._trailers(size)
        return b"".join(parts)

    def _chunk_end(self, size: int) -> None:
        """Reads the CRLF that ends a chunk's data."""
        while len(self._data) - self._pos < 2:
            if not self._fill():
                raise IncompleteRead(size, None)
        if self._data[self._pos:self._pos + 2] != b"\r\n":
            raise HttpError("a chunk not followed by CRLF")
        self._pos += 2

    def _trailers(self, size: int) -> None:
        """Reads the trailer fields after the last chunk (bounded as a head; unused)."""
        budget = MAX_HEAD_BYTES
        for _ in range(MAX_HEADER_FIELDS + 1):
            line = self._line(budget, "trailer section", size)
            if not line:
                return
            if _FIELD_LINE.fullmatch(line) is None:
                raise HttpError("a malformed trailer field")
            budget -= len(line) + 2
        raise HttpError(f"more than {MAX_HEADER_FIELDS} trailer fields")

    def _line(self, limit: int, what: str, size: int) -> bytes:
        """The next line (without its CRLF) of at most ``limit`` bytes with the CRLF."""
        while True:
            end = self._data.find(b"\r\n", self._pos, self._pos + limit)
            if end >= 0:
                line = self._data[self._pos:end]
                self._pos = end + 2
                return line
            if len(self._data) - self._pos >= limit:
                raise HttpError(f"a {what} longer than {limit} bytes")
            if not self._fill():
                raise IncompleteRead(size, None)

    def _fill(self) -> bool:
        """Receives more; False when the connection ended."""
        chunk = self._sock.recv(_READ_SIZE)
        if not chunk:
            return False
        self._data = self._data[self._pos:] + chunk
        self._pos = 0
        return True


def _content_length(values: list[bytes], limit: int) -> int:
    """The one length ``values`` (each possibly a list) say; AnswerTooLong past ``limit``."""
    if len(values) == 1 and values[0].isdigit():  # the usual single value
        text = values[0]
    else:
        said = {text.strip(b" \t") for value in values for text in value.split(b",")}
        if len(said) != 1:
            raise HttpError("Content-Length values that differ")
        text = said.pop()
        if not text.isdigit():
            raise HttpError("a malformed Content-Length")
    if len(text) > _LIMIT_DIGITS:
        text = text.lstrip(b"0")
        if len(text) > _LIMIT_DIGITS:  # more than any bound (and int() would be slow)
            raise AnswerTooLong(limit)
    length = int(text)
    if length > limit:
        raise AnswerTooLong(limit)
    return length
