"""The library's HTTP/1.1 (``_http11``) on a socket pair: the request head it writes,
the answers it reads (Content-Length, chunked, until the connection's end; interim
answers skipped; Connection: close honoured) and every answer it refuses (a
malformed status line or field, a head too long or with too many fields, a bad
Content-Length, a body past the bound or cut short, broken chunked framing)."""

from __future__ import annotations

import socket
import threading

import pytest
from vbios_client import _http11
from vbios_client._http11 import AnswerTooLong, HttpError, IncompleteRead

OK = b"HTTP/1.1 200 OK\r\n"


def read(peer_sends: bytes, *, limit: int = 1000, ends: bool = True
         ) -> tuple[int, bytes, bool]:
    """What reading an answer gives when the peer sends ``peer_sends`` (then closes its
    side if ``ends``)."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(5)

        def send() -> None:  # in a thread: more than the socket buffer holds may wait
            try:
                theirs.sendall(peer_sends)
                if ends:
                    theirs.shutdown(socket.SHUT_WR)
            except OSError:  # the reader refused and the pair closed
                pass

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            return _http11.AnswerReader(ours).read(limit)
        finally:
            ours.shutdown(socket.SHUT_RDWR)
            sender.join(10)


def refused(peer_sends: bytes, says: str, *, limit: int = 1000,
            kind: type[Exception] = HttpError) -> None:
    with pytest.raises(kind, match=says):
        read(peer_sends, limit=limit)


# -- what is read ----------------------------------------------------------------------


def test_a_content_length_answer_keeps_its_connection() -> None:
    assert read(OK + b"Content-Type: text/xml\r\nContent-Length: 5\r\n\r\nhello",
                ends=False) == (200, b"hello", False)


def test_answers_follow_each_other_on_one_connection() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(OK + b"Content-Length: 1\r\n\r\na" + b"HTTP/1.1 500 Oops\r\n"
                       b"Content-Length: 1\r\n\r\nb")
        reader = _http11.AnswerReader(ours)
        assert reader.read(10) == (200, b"a", True)  # the second was not asked for yet
        assert reader.read(10) == (500, b"b", False)


@pytest.mark.parametrize(("head", "closing"), [
    (OK + b"Connection: close\r\n", True),
    (OK + b"connection: Upgrade, CLOSE\r\n", True),
    (OK + b"Connection: keep-alive\r\n", False),
    (b"HTTP/1.0 200 OK\r\n", True),
    (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n", False),
])
def test_connection_close_is_honoured(head: bytes, closing: bool) -> None:
    assert read(head + b"Content-Length: 2\r\n\r\nok", ends=False) == (200, b"ok", closing)


def test_interim_answers_are_skipped() -> None:
    assert read(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                + OK + b"Content-Length: 2\r\n\r\nok", ends=False) == (200, b"ok", False)


def test_a_body_is_read_until_the_end_when_nothing_frames_it() -> None:
    assert read(OK + b"\r\n" + b"x" * 70_000, limit=70_000) == (200, b"x" * 70_000, True)


def test_a_long_body_arrives_whole() -> None:
    body = bytes(range(256)) * 4000
    answer = OK + b"Content-Length: %d\r\n\r\n" % len(body) + body
    assert read(answer, limit=len(body)) == (200, body, False)


def test_a_body_of_exactly_the_bound_is_read() -> None:
    assert read(OK + b"Content-Length: 10\r\n\r\n" + b"y" * 10, limit=10)[1] == b"y" * 10


def test_no_body_after_204() -> None:
    assert read(b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", ends=False) == (
        204, b"", False)


def test_a_chunked_body() -> None:
    answer = (OK + b"Transfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n"
              b"1A\r\n" + b"z" * 26 + b"\r\n0\r\nX-Trailer: yes\r\n\r\n")
    assert read(answer, ends=False) == (200, b"hello" + b"z" * 26, False)


def test_identical_content_lengths_are_one() -> None:
    assert read(OK + b"Content-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok")[1] == b"ok"


def test_leading_zeros_of_a_content_length() -> None:
    assert read(OK + b"Content-Length: " + b"0" * 30 + b"2\r\n\r\nok")[1] == b"ok"


# -- what is refused -------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    b"HTTP/1.1 20 OK", b"HTTP/1.1 2000 OK", b"HTTP/2 200 OK", b"HTTP/1.2 200 OK",
    b"http/1.1 200 OK", b"HTTP/1.1 200OK", b"HTTP/1.1  200 OK", b"ICY 200 OK",
    b"HTTP/1.1 099 Low", b"HTTP/1.1 200 O\x00K", b"\r\nHTTP/1.1 200 OK",
])
def test_a_malformed_status_line(line: bytes) -> None:
    refused(line + b"\r\nContent-Length: 0\r\n\r\n", "malformed status line")


@pytest.mark.parametrize("field", [
    b"Content-Length : 2", b"Bad Name: x", b" folded", b"NoColon", b"X: a\rb", b"X: a\nb",
    b": empty name", b"X: \x7f",
])
def test_a_malformed_header_field(field: bytes) -> None:
    refused(OK + field + b"\r\nContent-Length: 0\r\n\r\n", "malformed header field")


def test_bare_line_feeds_are_not_line_ends() -> None:
    refused(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "ended inside the answer's head")


def test_too_many_header_fields() -> None:
    fields = b"".join(b"X-%d: y\r\n" % n for n in range(_http11.MAX_HEADER_FIELDS - 1))
    assert read(OK + fields + b"Content-Length: 0\r\n\r\n")[0] == 200
    refused(OK + fields + b"X: y\r\nContent-Length: 0\r\n\r\n",
            f"more than {_http11.MAX_HEADER_FIELDS} header fields")


def test_a_head_too_long() -> None:
    room = _http11.MAX_HEAD_BYTES - len(OK) - len(b"X: \r\n\r\n")
    assert read(OK + b"X: " + b"v" * room + b"\r\n\r\n")[0] == 200
    refused(OK + b"X: " + b"v" * (room + 1) + b"\r\n\r\n", "head longer than 16384 bytes")
    refused(OK + b"X: " + b"v" * 40_000, "head longer than 16384 bytes")


def test_a_head_cut_short() -> None:
    refused(OK + b"Content-Length: 2\r\n", "ended inside the answer's head")


@pytest.mark.parametrize("value", [b"abc", b"-1", b"+2", b"1 2", b"", b"0x10", b"\xd9\xa3"])
def test_a_malformed_content_length(value: bytes) -> None:
    refused(OK + b"Content-Length: " + value + b"\r\n\r\nok", "malformed Content-Length")


def test_content_lengths_that_differ() -> None:
    refused(OK + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nok", "differ")
    refused(OK + b"Content-Length: 2, 3\r\n\r\nok", "differ")


@pytest.mark.parametrize("head", [
    OK + b"Content-Length: 11\r\n", OK + b"Content-Length: 99999999999999999999999\r\n",
    OK + b"Transfer-Encoding: chunked\r\n", OK,
])
def test_a_body_longer_than_the_bound(head: bytes) -> None:
    body = b"b" * 11
    framed = b"B\r\n" + body + b"\r\n0\r\n\r\n" if b"chunked" in head else body
    refused(head + b"\r\n" + framed, "longer than 10 bytes", limit=10, kind=AnswerTooLong)


def test_a_chunked_body_over_the_bound_is_refused_at_its_size_line() -> None:
    refused(OK + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n",
            "longer than 10 bytes", limit=10, kind=AnswerTooLong)


def test_a_body_cut_short() -> None:
    refused(OK + b"Content-Length: 5\r\n\r\nok", r"^IncompleteRead\(2 bytes read, 3 more "
            r"expected\)$", kind=IncompleteRead)


@pytest.mark.parametrize(("body", "says"), [
    (b"zz\r\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    (b"-5\r\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    (b"\r\n", "malformed chunk-size line"),
    (b"5\r\nhelloX\r\n0\r\n\r\n", "chunk not followed by CRLF"),
    (b"5 5\r\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    (b"1" * 2000 + b"\r\n", "chunk-size line longer than 1024 bytes"),
    (b"0\r\nBad Trailer\r\n\r\n", "malformed trailer field"),
    (b"0\r\n" + b"T: x\r\n" * 101 + b"\r\n", "more than 100 trailer fields"),
    (b"5\r\nhel", r"^IncompleteRead\(3 bytes read\)$"),
    (b"5\r\nhello\r\n", r"^IncompleteRead\(5 bytes read\)$"),
    (b"5\r\nhello", r"^IncompleteRead\(5 bytes read\)$"),
    (b"0\r\nT: x\r\n", r"^IncompleteRead\(0 bytes read\)$"),
])
def test_broken_chunked_framing(body: bytes, says: str) -> None:
    refused(OK + b"Transfer-Encoding: chunked\r\n\r\n" + body, says)


@pytest.mark.parametrize(("fields", "says"), [
    (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "both Content-Length and"),
    (b"Transfer-Encoding: gzip, chunked\r\n", "transfer coding other than chunked"),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "other than chunked"),
])
def test_transfer_encodings_refused(fields: bytes, says: str) -> None:
    refused(OK + fields + b"\r\n5\r\nhello\r\n0\r\n\r\n", says)


def test_interim_answers_are_bounded_and_101_refused() -> None:
    refused(b"HTTP/1.1 100 Continue\r\n\r\n" * (_http11.MAX_INTERIM + 1) + OK
            + b"Content-Length: 0\r\n\r\n", "more than 10 interim")
    refused(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "unexpected 101")


# -- the request head ------------------------------------------------------------------


def test_the_request_head() -> None:
    head = _http11.request_head("vbios.test", 8443, "/soap", {"SOAPAction": '"Get"'})
    assert head == (b"POST /soap HTTP/1.1\r\nHost: vbios.test:8443\r\n"
                    b'Accept-Encoding: identity\r\nSOAPAction: "Get"\r\nContent-Length: ')
    assert b"Host: [::1]\r\n" in _http11.request_head("::1", 443, "/", {})


@pytest.mark.parametrize("headers", [
    {"Bad Name": "x"}, {"X": "a\r\nInjected: yes"}, {"X": "nul\x00"}, {"Host": "other"},
    {"content-length": "5"}, {"Transfer-Encoding": "chunked"}, {"Connection": "close"},
    {"X": "\u20ac"},
])
def test_headers_http_cannot_carry_or_that_the_sender_writes_are_refused(
        headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid"):
        _http11.request_head("vbios.test", 443, "/", headers)


@pytest.mark.parametrize(("path", "valid"), [
    ("/", True), ("/a/b;c?d", True), ("", False), ("/a b", False), ("/\u00e9", False),
    ("/a\r\nX: y", False),
])
def test_request_paths(path: str, valid: bool) -> None:
    assert _http11.valid_path(path) is valid


# -- the cache note --------------------------------------------------------------------


def test_the_cache_note_of_each_answer_is_kept_and_only_its_own() -> None:
    """X-Vbios-Cached (the vBIOS served a remote's answer from its cache) is kept for the
    answer that carries it; the next answer on the connection has none."""
    cached = (OK + b"Content-Length: 1\r\nAge: 12\r\nX-Vbios-Cached: remote=cloud-b; age=12"
              b"\r\n\r\na")
    fresh = OK + b"Content-Length: 1\r\n\r\nb"
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(5)
        theirs.sendall(cached)
        reader = _http11.AnswerReader(ours)
        assert reader.cached is None
        assert reader.read(100) == (200, b"a", False)
        assert reader.cached == "remote=cloud-b; age=12"
        theirs.sendall(fresh)
        assert reader.read(100) == (200, b"b", False)
        assert reader.cached is None


@pytest.mark.parametrize("value, remote, age", [
    ("remote=cloud-b; age=12", "cloud-b", 12),
    ("age=0;remote=b", "b", 0),
    ("remote=cloud-b", "cloud-b", None),
    ("remote=cloud-b; age=soon", "cloud-b", None),
    ("", "", None),
])
def test_the_cache_note_is_read_leniently_but_always_says_cached(
        value: str, remote: str, age: int | None) -> None:
    from vbios_client.models import CachedAnswer, cached_answer

    assert cached_answer(value) == CachedAnswer(remote, age)
    assert cached_answer(None) is None
