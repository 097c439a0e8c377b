"""Where the front runs a request: on its event loop unless the application finds that
it would wait (``bios_ws.blocking``); then once more, whole, on a pool thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bios_ws.blocking import may_block
from bios_ws.bootstrap import initialize_home
from bios_ws.home import Home
from bios_ws.server.options import Bounds
from tests.front_support import read_response, request, running_front
from tests.waiting import wait_for

LOOP_THREAD = "front-under-test"  # the thread running_front runs the worker's loop on


@dataclass
class Where:
    """Answers the body; a body starting with b"wait" may wait (and then waits for
    ``release``). Records, for every run, the thread it ran on and the body it read."""

    runs: list[tuple[str, bytes]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        self.runs.append((threading.current_thread().name, body))
        if body.startswith(b"wait"):
            may_block("a test's wait")
            self.release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ran " + body]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return initialize_home(Path(tmp_path_factory.mktemp("loop")) / "home")


def test_a_request_that_does_not_wait_runs_on_the_loop(home: Home) -> None:
    app = Where()
    with running_front(home, app, Bounds()) as front, front.tls() as sock:
        sock.sendall(request(body=b"read"))
        assert read_response(sock)[2] == b"ran read"
    assert app.runs == [(LOOP_THREAD, b"read")]


def test_a_request_that_would_wait_runs_again_whole_on_a_pool_thread(home: Home) -> None:
    app = Where()
    app.release.set()
    with running_front(home, app, Bounds()) as front, front.tls() as sock:
        sock.sendall(request(body=b"wait here"))
        status, _, answer = read_response(sock)
        assert (status, answer) == (200, b"ran wait here")  # answered once
    [(first, body1), (second, body2)] = app.runs
    assert first == LOOP_THREAD and second.startswith("vbios-call")
    assert body1 == body2 == b"wait here"


def test_the_loop_answers_others_while_a_pool_thread_waits(home: Home) -> None:
    app = Where()
    with running_front(home, app, Bounds()) as front, front.tls() as slow, \
            front.tls() as quick:
        slow.sendall(request(body=b"wait long"))
        wait_for(lambda: len(app.runs) == 2, "the slow call waiting on its pool thread", 10)
        quick.sendall(request(body=b"read"))
        assert read_response(quick)[2] == b"ran read"  # the slow call still waits
        app.release.set()
        assert read_response(slow)[2] == b"ran wait long"
