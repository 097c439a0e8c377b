"""Events of a real QEMU + OVMF guest (TCG) through a real `vbios serve`: a guest killed
from outside is recorded by its keeper, another process than the server's workers, and
the guest's long poll learns it from the store (the worker's wake-up check)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
import vbios_client as vc

from tests.e2e.conftest import ServerProcess, init_home, stop_dev_tpm
from tests.e2e.test_qemu_power_e2e import SERVE, create, qemu_pid, state, wait_for
from tests.qemu_support import kill_all

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    work = tmp_path_factory.mktemp("qemu-events-e2e")
    home = work / "home"
    server = ServerProcess(home=home, work=work)
    try:
        init_home(home)
        server.start(*SERVE)
        yield server
    finally:
        server.stop()
        left = kill_all(home / "machines")
        stop_dev_tpm(home)
    assert left == [], f"keepers or QEMUs left running: {left}"


def test_a_crash_the_keeper_records_reaches_the_waiting_guest(server: ServerProcess) -> None:
    bundle = create(server, "watched")
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=60) as bios:
        bios.reset("On")
        wait_for(lambda: state(bios) == "On", "On")
        subscription = bios.subscribe(["PowerStateChanged"])
        answers: list[vc.EventBatch] = []
        waiting = threading.Thread(target=lambda: answers.append(bios.get_events(
            subscription.subscription_id, subscription.cursor, wait=30)), daemon=True)
        waiting.start()
        pid = qemu_pid(server, "watched")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        waiting.join(60)
        [batch] = answers
        [event] = batch.events
        assert event.message_args[:2] == ("watched", "Off")
        assert event.message_args[3] == "Crash" and event.severity == "Warning"
        bios.unsubscribe(subscription.subscription_id)
