"""A freshly started server answers 32 concurrent first requests, over real mutual TLS.

Each round starts a new `vbios serve` (sealed in its development TPM, 2 workers
x 16 threads) and fires 32 requests at the same moment on fresh connections,
from four guests at once: reads and writes. No answer may be an InternalError,
and the server log must hold no internal error.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Reply, ServerProcess, StartServer, init_home, stop_dev_tpm
from tests.threads import run_in_threads

ROUNDS = 3
THREADS = 32
GUESTS = 4


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("first-requests") / "home"
    try:
        init_home(path)
        yield path
    finally:
        stop_dev_tpm(path)


def fire(server: ServerProcess, bundles: list[Path]) -> list[Reply | BaseException]:
    contexts = [server.context(bundle) for bundle in bundles]
    barrier = threading.Barrier(THREADS)
    replies: list[Reply | BaseException] = []

    def one(index: int) -> None:
        context = contexts[index % len(contexts)]
        barrier.wait()
        try:
            if index % 2:
                inner = ("<v:Attributes><v:AttributeValue><v:Name>BootTimeout</v:Name>"
                         f"<v:IntegerValue>{5 * index}</v:IntegerValue></v:AttributeValue>"
                         "</v:Attributes><v:ApplyTime>Immediate</v:ApplyTime>")
                replies.append(server.call(context, "SetAttributes", inner))
            else:
                replies.append(server.call(context, "GetAttributes"))
        except BaseException as exc:
            replies.append(exc)

    run_in_threads(one, THREADS)
    return replies


def test_32_concurrent_first_requests_on_a_fresh_server(
    home: Path, start_server: StartServer
) -> None:
    bundles: list[Path] = []
    for round_ in range(ROUNDS):
        server = start_server(home, "--workers", "2", "--threads", "16")
        if not bundles:
            bundles = [server.create_domain(f"first{i}") for i in range(GUESTS)]
        replies = fire(server, bundles)
        server.stop()
        assert len(replies) == THREADS
        failures = [r for r in replies if isinstance(r, BaseException) or r.status != 200]
        assert not failures, (round_, failures[:3], server.stderr()[-2000:])
        assert "internal error" not in server.stderr(), server.stderr()[-4000:]
