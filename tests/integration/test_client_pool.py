"""The library's own connections (``_https.HttpsSender``) against a mutual-TLS server in
this process, on loopback: one connection serves call after call; one the server closed
while idle is replaced; a request is sent again only on the rule's terms; threads
sharing a client each get their own answers; the environment's CA bundles change
nothing; failures keep their texts.

The stand-in reads each request whole and does what ``plan(connection, nth, operation)``
says: answer, drop the connection without answering, answer half, or hang.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import vbios_client as vc
from vbios_client import _https, _xml

from tests.client_pool_support import Pki, Server, make_pki
from tests.threads import run_in_threads


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pool-pki"))



@pytest.fixture
def server(pki: Pki) -> Iterator[Server]:
    stand_in = Server(pki.server)
    try:
        yield stand_in
    finally:
        stand_in.close()


@pytest.fixture
def bios(server: Server, pki: Pki) -> Iterator[vc.BiosClient]:
    with vc.BiosClient.from_bundle(server.url, pki.bundle, timeout=10,
                                   auto_renew=False) as client:
        yield client


def _race_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """As when the server's close arrives between the check of an idle connection and
    the request: the check sees nothing."""
    monkeypatch.setattr(_https, "_quiet", lambda sock: True)


# -- keep-alive -------------------------------------------------------------------------------


def test_one_connection_serves_call_after_call(bios: vc.BiosClient, server: Server) -> None:
    for name in ("A", "B", "C", "D"):
        assert bios.get_attributes([name]).values == {name: name}
    assert server.connections() == [1, 1, 1, 1]
    assert server.accepted == 1


def test_a_connection_the_server_closed_while_idle_is_replaced(
        bios: vc.BiosClient, server: Server) -> None:
    assert bios.set_attributes({"A": "x"}) == 7
    server.close_idle()
    assert bios.set_attributes({"A": "y"}) == 7  # a write: found closed before it was sent
    server.close_idle("reset")
    assert bios.get_attributes(["B"]).values == {"B": "B"}
    assert server.seen == [(1, "SetAttributes"), (2, "SetAttributes"), (3, "GetAttributes")]


def test_a_read_is_sent_again_when_the_close_races_the_request(
        bios: vc.BiosClient, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    bios.get_attributes(["A"])
    server.close_idle()
    _race_the_check(monkeypatch)
    assert bios.get_attributes(["B"]).values == {"B": "B"}
    assert server.seen == [(1, "GetAttributes"), (2, "GetAttributes")]


def test_a_read_the_server_took_then_dropped_is_sent_again(bios: vc.BiosClient,
                                                         server: Server) -> None:
    server.plan = lambda connection, nth, operation: "drop" if (connection, nth) == (1, 1) \
        else "answer"
    bios.get_attributes(["A"])
    assert bios.get_attributes(["B"]).values == {"B": "B"}
    assert server.seen == [(1, "GetAttributes"), (1, "GetAttributes"), (2, "GetAttributes")]


def test_a_write_the_server_took_then_dropped_is_not_sent_again(bios: vc.BiosClient,
                                                                server: Server) -> None:
    """The request was written whole to a connection that then ended without a word: the
    server may have run it, so the caller hears of it and nothing is repeated."""
    server.plan = lambda connection, nth, operation: "drop" if nth == 1 else "answer"
    bios.get_attributes(["A"])
    with pytest.raises(vc.TransportError, match="cannot connect: Remote end closed"):
        bios.set_attributes({"A": "x"})
    assert server.seen == [(1, "GetAttributes"), (1, "SetAttributes")]
    assert bios.set_attributes({"A": "x"}) == 7  # the next call connects anew
    assert server.seen[-1] == (2, "SetAttributes")


def test_a_write_the_connection_refused_is_sent_again(
        bios: vc.BiosClient, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reset connection fails the write of the request itself: it never left."""
    bios.get_attributes(["A"])
    server.close_idle("reset")
    _race_the_check(monkeypatch)
    assert bios.set_attributes({"A": "x"}) == 7
    assert server.seen == [(1, "GetAttributes"), (2, "SetAttributes")]


def test_no_second_request_once_the_answer_started(bios: vc.BiosClient,
                                                   server: Server) -> None:
    server.plan = lambda connection, nth, operation: "answer" if nth == 0 else "half"
    bios.get_attributes(["A"])
    with pytest.raises(vc.TransportError, match="cannot connect: IncompleteRead"):
        bios.get_attributes(["B"])
    assert server.seen == [(1, "GetAttributes"), (1, "GetAttributes")]


def test_a_new_connection_that_fails_is_not_tried_again(bios: vc.BiosClient,
                                                        server: Server) -> None:
    server.plan = lambda connection, nth, operation: "drop"
    with pytest.raises(vc.TransportError, match="cannot connect: Remote end closed"):
        bios.get_attributes(["A"])
    assert server.seen == [(1, "GetAttributes")]


def test_a_timeout_on_a_reused_connection_is_not_tried_again(
        server: Server, pki: Pki) -> None:
    server.plan = lambda connection, nth, operation: "answer" if nth == 0 else "hang"
    with vc.BiosClient.from_bundle(server.url, pki.bundle, timeout=0.5,
                                   auto_renew=False) as bios:
        bios.get_attributes(["A"])
        with pytest.raises(vc.TransportError, match=r"no answer within 0\.5 s"):
            bios.get_attributes(["B"])
    assert server.seen == [(1, "GetAttributes"), (1, "GetAttributes")]


# -- HTTP/1.1 framings ---------------------------------------------------------------------


def test_connection_close_is_honoured(bios: vc.BiosClient, server: Server) -> None:
    server.plan = lambda connection, nth, operation: "close" if nth == 0 else "answer"
    assert bios.get_attributes(["A"]).values == {"A": "A"}
    assert bios.get_attributes(["B"]).values == {"B": "B"}
    assert server.connections() == [1, 2]  # not reused, so no retry was needed


def test_an_interim_answer_and_chunks_are_read_through(bios: vc.BiosClient,
                                                      server: Server) -> None:
    names = [f"N{n}" for n in range(20)]
    for action in ("continue", "chunked"):
        server.plan = lambda connection, nth, operation, action=action: action
        assert bios.get_attributes(names).values == {name: name for name in names}
    assert server.connections() == [1, 1]


def test_a_malformed_answer_is_refused_and_its_connection_dropped(
        bios: vc.BiosClient, server: Server) -> None:
    server.plan = lambda connection, nth, operation: "malformed" if nth == 1 else "answer"
    bios.get_attributes(["A"])
    with pytest.raises(vc.TransportError, match="cannot connect: a malformed Content-Length"):
        bios.get_attributes(["B"])
    assert bios.get_attributes(["C"]).values == {"C": "C"}
    assert server.connections() == [1, 1, 2]


# -- threads -------------------------------------------------------------------------------


def test_threads_sharing_a_client_each_get_their_own_answers(
        bios: vc.BiosClient, server: Server) -> None:
    threads, calls = 8, 15
    barrier = threading.Barrier(threads, timeout=30)
    wrong: list[object] = []

    def work(who: int) -> None:
        barrier.wait()
        for i in range(calls):
            name = f"T{who}-{i}"
            try:
                values = bios.get_attributes([name]).values
            except vc.VbiosClientError as exc:
                values = {"error": str(exc)}
            if values != {name: name}:
                wrong.append(values)

    run_in_threads(work, threads, timeout=60)
    assert wrong == []
    assert len(server.seen) == threads * calls
    assert len(_https_idle(bios)) <= _https.MAX_IDLE


def _https_idle(client: vc.BiosClient) -> list[object]:
    sender = client._current.sender
    assert isinstance(sender, _https.HttpsSender)
    return list(sender._idle)


# -- TLS and failures ------------------------------------------------------------------------


def test_the_environment_s_ca_bundles_change_nothing(
        server: Server, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(variable, str(pki.foreign / "ca.pem"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with vc.BiosClient.from_bundle(server.url, pki.bundle, auto_renew=False) as bios:
        assert bios.get_attributes(["A"]).values == {"A": "A"}
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(variable, str(pki.bundle / "ca.pem"))
    with vc.BiosClient(server.url, pki.bundle / "cert.pem", pki.bundle / "key.pem",
                       pki.foreign / "ca.pem") as stranger, \
            pytest.raises(vc.TransportError,
                          match=r"is not from this bundle's CA \(ca.pem\): TLS failure"):
        stranger.get_attributes()
    assert server.seen == [(1, "GetAttributes")]


def test_the_server_s_name_is_checked(server: Server, pki: Pki) -> None:
    url = server.url.replace("127.0.0.1", "localhost")
    with vc.BiosClient.from_bundle(url, pki.bundle, auto_renew=False) as bios, \
            pytest.raises(vc.TransportError,
                          match=r"TLS failure: .*(Hostname|IP address) mismatch"):
        bios.get_attributes()
    assert server.seen == []


def test_a_certificate_the_server_refuses_is_tried_once(server: Server, pki: Pki) -> None:
    """TLS 1.3: the refusal (an alert, then the close) reaches the client after its
    handshake, while it writes or reads the request; either way a new connection."""
    with vc.BiosClient.from_bundle(server.url, pki.stranger, auto_renew=False) as bios, \
            pytest.raises(vc.TransportError, match=r"TLS failure: |cannot connect: "):
        bios.get_attributes()
    assert server.accepted == 1 and server.seen == []


def test_an_http_error_and_an_oversized_answer(bios: vc.BiosClient, server: Server,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    server.plan = lambda connection, nth, operation: "500" if (connection, nth) == (1, 0) \
        else "answer"
    with pytest.raises(vc.TransportError, match="HTTP 500 without a SOAP answer"):
        bios.get_attributes(["A"])
    monkeypatch.setattr(_xml, "MAX_ANSWER_BYTES", 100)
    with pytest.raises(vc.TransportError, match="answer to GetAttributes is longer than 100"):
        bios.get_attributes(["A"])
    monkeypatch.undo()
    assert bios.get_attributes(["B"]).values == {"B": "B"}
    # the 500 kept its connection; the answer left half read did not
    assert server.connections() == [1, 1, 2]


def test_a_closed_client_connects_again(bios: vc.BiosClient, server: Server) -> None:
    bios.get_attributes(["A"])
    bios.close()
    assert bios.get_attributes(["B"]).values == {"B": "B"}
    assert server.connections() == [1, 2]


def test_a_call_imports_neither_requests_urllib3_nor_http_client(server: Server,
                                                                  pki: Pki) -> None:
    code = ("import sys, vbios_client\n"
            f"with vbios_client.BiosClient.from_bundle({server.url!r}, {str(pki.bundle)!r}) as b:\n"
            "    assert b.get_attributes(['A']).values == {'A': 'A'}\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    modules = set(done.stdout.split())
    assert {"ssl", "lxml"} <= modules
    assert not modules & {"requests", "urllib3", "zeep", "http"}
    assert server.seen == [(1, "GetAttributes")]
