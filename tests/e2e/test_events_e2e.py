"""Events against a real `vbios serve` (two workers, mutual TLS, simulated machines): the
guest library's iterator gets every event of its domain in order and never another
domain's, whichever worker wrote it; a long poll waits on the server and is answered by
the event it waited for; the admin watches every domain; `vbios-client events watch`
prints JSON lines; events outlive a restart of the service. One server for the module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import vbios_client as vc
from vbios_client._events import EventStream

from tests.e2e.conftest import ServerProcess, init_home, stop_dev_tpm

VBIOS_CLIENT = Path(sys.executable).parent / "vbios-client"
SERVE = ("--workers", "2", "--boot-seconds", "0.3", "--graceful-timeout", "1")
LIMIT = 60.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    work = tmp_path_factory.mktemp("events-e2e")
    home = work / "home"
    server = ServerProcess(home=home, work=work)
    try:
        init_home(home)
        server.start(*SERVE)
        yield server
    finally:
        server.stop()
        stop_dev_tpm(home)


def client(server: ServerProcess, bundle: Path) -> vc.BiosClient:
    return vc.BiosClient.from_bundle(server.url, bundle, timeout=30)


def collect(stream: EventStream, count: int, into: list[vc.Event],
            failures: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            for event in stream:
                into.append(event)
                if len(into) >= count:
                    return
        except BaseException as exc:
            failures.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_each_guest_gets_every_event_of_its_domain_in_order(server: ServerProcess) -> None:
    bundles = {name: server.create_domain(name) for name in ("ev-a", "ev-b")}
    seen: dict[str, list[vc.Event]] = {name: [] for name in bundles}
    failures: list[BaseException] = []
    clients = {name: client(server, bundle) for name, bundle in bundles.items()}
    streams = {name: clients[name].events(["SettingsChanged"], wait=10) for name in bundles}
    try:  # subscribed now, before anything is written
        threads = [collect(streams[name], 20, seen[name], failures) for name in bundles]
        writers = {name: client(server, bundle) for name, bundle in bundles.items()}
        for n in range(20):
            for writer in writers.values():
                writer.set_attributes({"AcPwrRcvryDelay": n + 1})
        for thread in threads:
            thread.join(LIMIT)
        for writer in writers.values():
            writer.close()
    finally:
        for name in bundles:
            streams[name].close()
            clients[name].close()
    assert not failures
    for name, events in seen.items():
        assert [e.domain for e in events] == [name] * 20
        assert [int(e.message_args[2]) for e in events] == list(range(2, 22))  # versions
        assert [e.event_id for e in events] == sorted({e.event_id for e in events})


def test_a_long_poll_waits_on_the_server_for_the_event(server: ServerProcess) -> None:
    bundle = server.create_domain("ev-wait")
    with client(server, bundle) as bios, client(server, bundle) as writer:
        subscription = bios.subscribe(["PowerStateChanged"])
        answers: list[vc.EventBatch] = []
        waiting = threading.Thread(target=lambda: answers.append(bios.get_events(
            subscription.subscription_id, subscription.cursor, wait=30)), daemon=True)
        waiting.start()
        time.sleep(1.0)  # parked on the server by now: nothing has happened yet
        assert not answers
        writer.set_attributes({"AcPwrRcvryDelay": 5})  # not a type it wants
        writer.reset("On")
        waiting.join(LIMIT)
        [batch] = answers
        assert [e.event_type for e in batch.events] == ["PowerStateChanged"]
        assert batch.events[0].message_args[:2] == ("ev-wait", "PoweringOn")
        bios.unsubscribe(subscription.subscription_id)


def test_the_admin_watches_every_domain(server: ServerProcess) -> None:
    one, two = server.create_domain("ev-c"), server.create_domain("ev-d")
    with client(server, server.admin_bundle) as admin:
        stream = admin.events(["SettingsChanged"], wait=10)
        seen: list[vc.Event] = []
        failures: list[BaseException] = []
        thread = collect(stream, 2, seen, failures)
        with client(server, one) as first, client(server, two) as second:
            first.set_attributes({"AcPwrRcvryDelay": 1})
            second.set_attributes({"AcPwrRcvryDelay": 1})
        thread.join(LIMIT)
        stream.close()
    assert not failures
    assert {e.domain for e in seen} == {"ev-c", "ev-d"}


def test_vbios_client_events_watch_prints_json_lines(server: ServerProcess) -> None:
    bundle = server.create_domain("ev-cli")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VBIOS_")}
    environ.update({"VBIOS_URL": server.url, "VBIOS_BUNDLE": str(bundle)})
    with client(server, bundle) as bios:
        start = bios.subscribe().cursor  # the CLI goes on from here: no race with it
        watcher = subprocess.Popen(
            [str(VBIOS_CLIENT), "events", "watch", "--json", "--count", "2", "--cursor",
             str(start), "--types", "SettingsChanged"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=environ, text=True)
        try:
            for value in (7, 8):
                bios.set_attributes({"AcPwrRcvryDelay": value})
            out, err = watcher.communicate(timeout=LIMIT)
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait(10)
    assert watcher.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["EventType"] for line in lines] == ["SettingsChanged"] * 2
    assert [line["Domain"] for line in lines] == ["ev-cli"] * 2
    assert lines[0]["EventId"] > start and lines[1]["EventId"] > lines[0]["EventId"]
    assert lines[0]["MessageId"] == "VbiosEvent.1.0.SettingsChanged"


def test_events_outlive_a_restart_of_the_service(server: ServerProcess) -> None:
    bundle = server.create_domain("ev-restart")
    with client(server, bundle) as bios:
        subscription = bios.subscribe(expires_in=3600)
        bios.set_attributes({"AcPwrRcvryDelay": 3})
    server.stop()
    server.start(*SERVE)
    with client(server, bundle) as bios:
        batch = bios.get_events(subscription.subscription_id, subscription.cursor)
        assert [e.event_type for e in batch.events] == ["SettingsChanged"]
        assert batch.events[0].domain == "ev-restart"
        again = bios.get_events(subscription.subscription_id, batch.next_cursor)
        assert again.events == ()
