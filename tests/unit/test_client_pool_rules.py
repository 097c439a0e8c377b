"""The library's connection pool without a network: when a call is sent again (fake
connections that fail where told), which connections are kept (LIFO, at most
``MAX_IDLE``), and how reading an answer tells a failure before its first byte from
one after (a socket pair)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vbios_client import _http11, _https
from vbios_client.exceptions import TransportError

URL = "https://vbios.test:8443/"
READ, WRITE = "GetAttributes", "SetAttributes"


def unanswered(cause: BaseException) -> _http11.Unanswered:
    """What ``AnswerReader.read`` raises when reading fails before the first byte."""
    exc = _http11.Unanswered()
    exc.__cause__ = cause
    return exc


class Fake:
    """A connection whose n-th call does what its script says: "ok", ("send", exc)
    (writing the request fails), ("answer", exc) (reading the answer fails before its
    first byte), ("body", exc) (the answer starts, then fails), ("send+answer", exc,
    answer) (the write fails, then the answer is ``answer``: an exception or "ok")."""

    def __init__(self, world: World, host: str, port: int, *, timeout: float,
                 context: object) -> None:
        self.number = len(world.made) + 1
        self.host, self.port, self.timeout = host, port, timeout
        self.script = world.scripts.pop(0) if world.scripts else []
        self.sock: object | None = None
        self.calls = 0
        self.closed = False
        self.world = world
        world.made.append(self)

    def _step(self) -> Any:
        return self.script[self.calls] if self.calls < len(self.script) else "ok"

    def connect(self) -> None:
        self.sock = object()

    def send(self, request: bytes) -> None:
        step = self._step()
        head, body = request.split(b"\r\n\r\n", 1)
        assert head.startswith(b"POST / HTTP/1.1\r\nHost: vbios.test:8443\r\n")
        assert head.endswith(b"\r\nContent-Length: %d" % len(body))
        self.world.sent.append((self.number, body.decode()))
        if isinstance(step, tuple) and step[0] in ("send", "send+answer"):
            raise step[1]

    def answer(self, limit: int) -> tuple[int, bytes, bool]:
        step = self._step()
        self.calls += 1
        if step == "ok":
            return 200, f"answer {self.number}".encode(), False
        kind, exc = step[0], step[1]
        if kind == "send+answer":
            if step[2] == "ok":
                return 200, b"early answer", False
            raise step[2]
        if kind in ("answer", "body"):  # "body": not wrapped, the answer had started
            raise exc
        raise AssertionError("the request could not be written: no answer is read")

    def cached(self) -> str | None:
        return None  # the answers of this world are never a vBIOS's cached ones

    def close(self) -> None:
        self.sock, self.closed = None, True


class World:
    def __init__(self) -> None:
        self.scripts: list[list[Any]] = []  # one per connection, in the order made
        self.made: list[Fake] = []
        self.sent: list[tuple[int, str]] = []  # (connection, body) of each request


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    made = World()
    monkeypatch.setattr(_https, "_Connection", lambda *args, **kwargs: Fake(made, *args, **kwargs))
    monkeypatch.setattr(_https, "_client_context", lambda cert, key, ca: None)
    monkeypatch.setattr(_https, "_quiet", lambda sock: True)
    return made


@pytest.fixture
def sender(tmp_path: Path) -> Iterator[_https.HttpsSender]:
    for name in ("cert.pem", "key.pem", "ca.pem"):
        (tmp_path / name).write_text("")
    pool = _https.HttpsSender(tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem")
    yield pool
    pool.close()


def post(sender: _https.HttpsSender, operation: str, body: str = "call") -> bytes:
    status, content = sender.post(URL, body.encode(), {}, timeout=5, operation=operation)
    assert status == 200
    return content


# -- when a call is sent again ---------------------------------------------------------------

CLOSED = _http11.RemoteDisconnected()
RESET = ConnectionResetError(104, "Connection reset by peer")


@pytest.mark.parametrize(("operation", "failure"), [
    (WRITE, ("send", ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))),
    (WRITE, ("send", ConnectionAbortedError(103, "Software caused connection abort"))),
    (WRITE, ("send+answer", BrokenPipeError(32, "Broken pipe"), CLOSED)),
    (WRITE, ("send+answer", RESET, unanswered(RESET))),
    (READ, ("answer", CLOSED)),
    (READ, ("answer", unanswered(RESET))),
    (READ, ("answer", unanswered(ssl.SSLEOFError(8, "EOF")))),
    (READ, ("answer", unanswered(BrokenPipeError(32, "Broken pipe")))),
])
def test_a_reused_connection_found_dead_before_the_request_ran_is_replaced_once(
        world: World, sender: _https.HttpsSender, operation: str, failure: Any) -> None:
    world.scripts = [["ok", failure]]
    assert post(sender, READ, "first") == b"answer 1"
    assert post(sender, operation, "second") == b"answer 2"
    assert world.sent == [(1, "first"), (1, "second"), (2, "second")]
    assert world.made[0].closed
    assert post(sender, READ, "third") == b"answer 2"  # the new connection is kept


@pytest.mark.parametrize(("operation", "failure", "says"), [
    # written whole, then the connection ended without a word: the server may have run it
    (WRITE, ("answer", CLOSED), "cannot connect: Remote end closed"),
    (WRITE, ("answer", unanswered(RESET)), "cannot connect: .*Connection reset"),
    ("Reset", ("answer", CLOSED), "cannot connect: Remote end closed"),
    ("ChangePassword", ("answer", unanswered(RESET)), "cannot connect: .*Connection reset"),
    # the answer had started: the server handled the request
    (READ, ("body", RESET), "cannot connect: .*Connection reset"),
    (WRITE, ("body", RESET), "cannot connect: .*Connection reset"),
    # no word in time: the server may still be at it
    (READ, ("answer", unanswered(TimeoutError("timed out"))), r"no answer within 5 s"),
    # not the connection's end but a refusal
    (READ, ("answer", unanswered(ssl.SSLError(1, "[SSL: SSLV3_ALERT_CERTIFICATE_REVOKED]"
                                                  " sslv3 alert certificate revoked"))),
     "TLS failure: .*certificate revoked"),
    (READ, ("body", _http11.HttpError("a malformed status line")),
     "cannot connect: a malformed status line"),
])
def test_a_reused_connection_that_fails_otherwise_is_not_tried_again(
        world: World, sender: _https.HttpsSender, operation: str, failure: Any,
        says: str) -> None:
    world.scripts = [["ok", failure]]
    post(sender, READ, "first")
    with pytest.raises(TransportError, match=says):
        post(sender, operation, "second")
    assert world.sent == [(1, "first"), (1, "second")]
    assert world.made[0].closed
    assert post(sender, READ, "third") == b"answer 2"  # a new connection next time


@pytest.mark.parametrize("failure", [
    ("answer", CLOSED), ("answer", unanswered(RESET)),
    ("send", ssl.SSLEOFError(8, "EOF occurred in violation of protocol")),
    ("send+answer", RESET, CLOSED),
])
def test_a_new_connection_that_fails_is_not_tried_again(
        world: World, sender: _https.HttpsSender, failure: Any) -> None:
    world.scripts = [[failure]]
    with pytest.raises(TransportError, match=r"cannot connect|TLS failure"):
        post(sender, READ)
    assert len(world.made) == 1 and world.made[0].closed


def test_the_second_try_is_the_last(world: World, sender: _https.HttpsSender) -> None:
    world.scripts = [["ok", ("answer", CLOSED)], [("answer", CLOSED)]]
    post(sender, READ, "first")
    with pytest.raises(TransportError, match="Remote end closed"):
        post(sender, READ, "second")
    assert world.sent == [(1, "first"), (1, "second"), (2, "second")]


def test_an_answer_given_before_the_server_closed_is_read(
        world: World, sender: _https.HttpsSender) -> None:
    """The write failed, but the server had answered (a 413 for a body too large): that
    answer is the call's, nothing is sent again, and the connection is not kept."""
    world.scripts = [["ok", ("send+answer", BrokenPipeError(32, "Broken pipe"), "ok")]]
    post(sender, READ, "first")
    assert post(sender, WRITE, "second") == b"early answer"
    assert world.sent == [(1, "first"), (1, "second")]
    assert world.made[0].closed and sender._idle == []


def test_every_write_is_outside_the_repeatable_operations() -> None:
    from vbios_client._contract import contract

    operations = set(contract().operations)
    assert operations >= _https.REPEATABLE
    reads = {name for name in operations if name.startswith("Get")} | {"CollectDiagnostics"}
    assert reads == _https.REPEATABLE


# -- which connections are kept ---------------------------------------------------------------


def _connection(world: World, number: int) -> Fake:
    fake = Fake(world, "vbios.test", 8443, timeout=5, context=None)
    fake.connect()
    return fake


def test_the_most_recent_connection_is_used_first_and_few_are_kept(
        world: World, sender: _https.HttpsSender) -> None:
    connections = [_connection(world, n) for n in range(_https.MAX_IDLE + 2)]
    for fake in connections:
        sender._give_back(fake, False, sender._generation)  # type: ignore[arg-type]
    assert sender._idle == connections[:_https.MAX_IDLE]
    assert [fake.closed for fake in connections[_https.MAX_IDLE:]] == [True, True]
    assert sender._take("vbios.test", 8443, 5) is connections[_https.MAX_IDLE - 1]
    assert sender._take("elsewhere.test", 8443, 5) is None  # another server's: closed
    assert all(fake.closed for fake in connections[:_https.MAX_IDLE - 1])


def test_a_connection_with_something_to_read_is_not_reused(
        world: World, sender: _https.HttpsSender, monkeypatch: pytest.MonkeyPatch) -> None:
    post(sender, READ, "first")
    monkeypatch.setattr(_https, "_quiet", lambda sock: False)  # EOF, a close_notify: closed
    assert post(sender, READ, "second") == b"answer 2"
    assert world.sent == [(1, "first"), (2, "second")]


def test_an_answer_that_closes_gives_its_connection_up(
        world: World, sender: _https.HttpsSender) -> None:
    fake = _connection(world, 1)
    sender._give_back(fake, True, sender._generation)  # type: ignore[arg-type]
    assert fake.closed and sender._idle == []


def test_a_failure_after_the_first_byte_closes_the_connection(
        world: World, sender: _https.HttpsSender) -> None:
    """An answer not read whole (too long, cut, malformed) leaves its connection unusable."""
    world.scripts = [["ok", ("body", _http11.AnswerTooLong(100))]]
    post(sender, READ, "first")
    with pytest.raises(TransportError, match="answer to GetAttributes is longer than 100"):
        post(sender, READ, "second")
    assert world.made[0].closed and sender._idle == []


def test_close_closes_the_idle_and_the_busy_when_they_come_back(
        world: World, sender: _https.HttpsSender) -> None:
    idle, busy = _connection(world, 1), _connection(world, 2)
    generation = sender._generation
    sender._give_back(idle, False, generation)  # type: ignore[arg-type]
    sender.close()
    assert idle.closed and sender._idle == []
    sender._give_back(busy, False, generation)  # type: ignore[arg-type]
    assert busy.closed and sender._idle == []


# -- before or after the first byte ----------------------------------------------------------


def _read(peer_sends: bytes | None, *, timeout: float = 5) -> BaseException:
    """What reading an answer raises when the peer sends ``peer_sends`` and closes (None:
    sends nothing and keeps the connection open)."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(timeout)
        if peer_sends is not None:
            theirs.sendall(peer_sends)
            theirs.shutdown(socket.SHUT_WR)
        with pytest.raises(Exception) as caught:  # the kind is the test
            _http11.AnswerReader(ours).read(1000)
        return caught.value


def test_a_close_before_the_first_byte_is_remote_disconnected() -> None:
    failure = _read(b"")
    assert isinstance(failure, _http11.RemoteDisconnected)
    assert isinstance(failure, ConnectionResetError)  # one of the connection's ends
    assert str(failure) == "Remote end closed connection without response"


def test_a_failure_before_the_first_byte_is_unanswered() -> None:
    failure = _read(None, timeout=0.05)
    assert isinstance(failure, _http11.Unanswered)
    assert isinstance(failure.__cause__, TimeoutError)


def test_a_failure_after_the_first_byte_is_not() -> None:
    failure = _read(b"HTTP/1.1 2")  # cut inside the status line
    assert not isinstance(failure, _http11.Unanswered | _http11.RemoteDisconnected)
    assert isinstance(failure, _http11.HttpError)


def test_an_answer_is_read_from_a_socket() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        assert _http11.AnswerReader(ours).read(10) == (200, b"ok", False)
