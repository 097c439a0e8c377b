"""The HTTP front holds slow, idle and half-open connections within their bounds, in
process on loopback (each bound small, so each test takes about a second)."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import pytest
from lxml import etree

from bios_ws.bootstrap import initialize_home
from bios_ws.home import Home
from bios_ws.server.options import LISTEN_BACKLOG, Bounds
from tests.front_support import Recorder, closed_by_server, read_response, request, running_front

FAST = Bounds(handshake_timeout=0.5, head_timeout=0.6, idle_timeout=0.5, body_min_rate=1000,
              body_grace=0.5, write_timeout=2.0, max_head_bytes=2048, max_body_bytes=4096,
              discard_limit=65536, max_connections=50)
SLACK = 0.45


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return initialize_home(tmp_path_factory.mktemp("front") / "home")


def test_a_kept_alive_connection_serves_requests_then_is_closed_when_idle(home: Home) -> None:
    app = Recorder()
    with running_front(home, app, FAST) as front, front.tls() as sock:
        for body in (b"one", b"second"):
            sock.sendall(request(body=body))
            status, _, answer = read_response(sock)
            assert (status, answer) == (200, f"{len(body)} bytes\n".encode())
        assert [call["body"] for call in app.calls] == [b"one", b"second"]
        assert all(call["peer"] for call in app.calls)  # the verified certificate, in DER
        assert closed_by_server(sock, within=3.0) == pytest.approx(FAST.idle_timeout, abs=SLACK)


def test_half_a_client_hello_is_closed_at_the_handshake_bound_and_counted(
    home: Home, caplog: pytest.LogCaptureFixture,
) -> None:
    with running_front(home, Recorder(), FAST) as front:
        held = [front.tcp() for _ in range(5)]
        for sock in held:
            sock.sendall(b"\x16\x03\x01\x02\x00")  # the first bytes of a ClientHello
        for sock in held:
            assert closed_by_server(sock, within=3.0) < FAST.handshake_timeout + SLACK
            sock.close()
        assert front.in_loop(lambda: front.worker.counts.handshakes_failed["timeout"]) == 5
        caplog.set_level(logging.WARNING, logger="bios_ws.server.worker")
    # one line of counts per interval (here: the last one, as the worker stops)
    lines = [r.getMessage() for r in caplog.records if "handshakes failed" in r.getMessage()]
    assert lines == ["TLS handshakes failed: 5 (timeout 5)"]


def test_half_a_request_head_is_closed_at_the_head_bound_without_an_answer(home: Home) -> None:
    app = Recorder()
    with running_front(home, app, FAST) as front, front.tls() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - started == pytest.approx(FAST.head_timeout, abs=SLACK)
        assert app.calls == []


def test_one_byte_of_a_next_request_gets_the_head_bound_not_a_thread(home: Home) -> None:
    app = Recorder()
    with running_front(home, app, FAST) as front, front.tls() as sock:
        sock.sendall(request(body=b"x"))
        assert read_response(sock)[0] == 200
        sock.sendall(b"P")
        assert closed_by_server(sock, within=3.0) == pytest.approx(FAST.head_timeout,
                                                                     abs=SLACK)
        assert len(app.calls) == 1


def test_a_body_slower_than_the_minimum_rate_is_closed(home: Home) -> None:
    app = Recorder()
    with running_front(home, app, FAST) as front, front.tls() as sock:
        sock.sendall(request(body=b"") .replace(b"Content-Length: 0", b"Content-Length: 4000"))
        sock.settimeout(5)
        started = time.monotonic()
        with pytest.raises((ConnectionError, BrokenPipeError, OSError)):
            for _ in range(40):  # 10 bytes every 0.1 s: 100 B/s, below 1000 B/s
                sock.sendall(b"x" * 10)
                time.sleep(0.1)
            assert sock.recv(100) == b""
            raise ConnectionError("closed")
        assert time.monotonic() - started < FAST.body_grace + 1.5
        assert app.calls == []


def test_a_head_over_its_size_bound_is_answered_431_even_in_one_piece(home: Home) -> None:
    app = Recorder()
    with running_front(home, app, FAST) as front, front.tls() as sock:
        # whole (complete) in one write: h11's own bound sees only incomplete heads
        sock.sendall(request(body=b"x", headers=[f"X-Padding: {'a' * 3000}"]))
        status, headers, _ = read_response(sock)
        assert (status, headers["connection"]) == (431, "close")
        assert app.calls == []


def fault_string(body: bytes) -> str:
    return str(etree.fromstring(body).findtext(".//faultstring"))


def test_a_body_over_its_bound_sent_whole_gets_a_readable_413_soap_fault(home: Home) -> None:
    app = Recorder()
    with running_front(home, app, FAST) as front, front.tls() as sock:
        sock.sendall(request(body=b"x" * 20_000, headers=["Content-Type: text/xml"]))
        status, headers, body = read_response(sock)
        assert (status, headers["connection"]) == (413, "close")
        assert headers["content-type"].startswith("text/xml")
        assert fault_string(body) == "the request body is larger than 4096 bytes"
        assert sock.recv(100) == b""
        assert app.calls == []


def test_expect_100_continue_is_refused_at_once_when_too_large_and_continued_otherwise(
    home: Home,
) -> None:
    app = Recorder()
    with running_front(home, app, FAST) as front:
        with front.tls() as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n"
                         b"Expect: 100-continue\r\n\r\n")
            assert read_response(sock)[0] == 413  # without a byte of the body sent
        with front.tls() as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                         b"Expect: 100-continue\r\n\r\n")
            assert read_response(sock)[0] == 100
            sock.sendall(b"hello")
            assert read_response(sock) == (200, {"content-type": "text/plain",
                                                 "content-length": "8"}, b"5 bytes\n")
    assert [call["body"] for call in app.calls] == [b"hello"]


def test_content_length_with_transfer_encoding_is_refused_as_smuggling(home: Home) -> None:
    app = Recorder()
    with running_front(home, app, FAST) as front, front.tls() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST / HTTP/1.1\r\n\r\n")
        status, headers, _ = read_response(sock)
        assert (status, headers["connection"]) == (400, "close")
        assert sock.recv(100) == b""
        assert app.calls == []


def test_chunked_bodies_head_requests_and_pipelined_requests(home: Home) -> None:
    app = Recorder()
    with running_front(home, app, FAST) as front, front.tls() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                     + request(method="HEAD") + request(body=b"last"))
        assert read_response(sock)[2] == b"5 bytes\n"
        status, headers, _ = read_response(sock, to_head=True)  # the length, not the body
        assert (status, headers["content-length"]) == (200, "8")
        assert read_response(sock)[2] == b"4 bytes\n"
    assert [call["body"] for call in app.calls] == [b"abcde", b"", b"last"]


def test_connections_over_the_bound_are_closed_at_once(home: Home) -> None:
    bounds = Bounds(max_connections=3, handshake_timeout=5.0)
    with running_front(home, Recorder(), bounds) as front:
        held = [front.tcp() for _ in range(3)]
        time.sleep(0.2)
        extra = front.tcp()
        assert closed_by_server(extra, within=2.0) < 1.0
        assert front.in_loop(lambda: front.worker.counts.refused_full) == 1
        for sock in (*held, extra):
            sock.close()


def test_a_stopping_worker_finishes_calls_in_progress_and_closes_idle_connections(
    home: Home,
) -> None:
    app = Recorder(delay=0.8)
    bounds = Bounds(idle_timeout=30.0)
    with running_front(home, app, bounds) as front, front.tls() as busy, front.tls() as idle:
        idle.sendall(request(body=b"i"))
        assert read_response(idle)[0] == 200 and len(app.calls) == 1
        busy.sendall(request(body=b"b"))
        time.sleep(0.3)  # the call is in progress
        front.stop()
        assert closed_by_server(idle, within=2.0) < 0.5
        status, headers, _ = read_response(busy)
        assert (status, headers["connection"]) == (200, "close")


def test_one_tls_context_per_worker_rebuilt_only_when_a_file_changes(
    home: Home, tmp_path: pytest.TempPathFactory,
) -> None:
    with running_front(home, Recorder(), FAST) as front:
        first = front.worker.tls.context()
        for _ in range(3):
            with front.tls() as sock:
                sock.sendall(request(body=b"x"))
                assert read_response(sock)[0] == 200
        assert front.worker.tls.context() is first
        crl = home.crl_file.read_bytes()
        home.crl_file.write_bytes(crl)  # same CRL, new file: rebuilt once
        with front.tls() as sock:
            sock.sendall(request(body=b"x"))
            assert read_response(sock)[0] == 200
        rebuilt = front.worker.tls.context()
        assert rebuilt is not first and front.worker.tls.context() is rebuilt


def test_the_listen_backlog_stays_the_one_the_service_set(home: Home) -> None:
    """asyncio listens again on a socket it is given (with a backlog of 100 unless told):
    a burst of connections must still find room in the kernel's queue."""
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    with running_front(home, Recorder(), FAST) as front:
        port = front.address[1]
        listing = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                                 text=True, check=True).stdout.split()
    assert int(listing[2]) == min(LISTEN_BACKLOG, somaxconn)  # Send-Q of a listener
