"""The thermal model of a real QEMU + OVMF guest (TCG) through a real `vbios serve`: its
temperature follows the CPU its QEMU process really uses.

The guest boots OVMF's built-in EFI Shell (Secure Boot off) from a FAT disk whose
startup.nsh runs ``stall`` for ``SPIN`` seconds, a busy wait that keeps its vCPU (one host
core under TCG) busy, then leaves the shell at its prompt, where it idles. The guest's
readings (GetThermal) show a high CPU load and a rising temperature while it spins, a low
load and a falling temperature once it idles. Run one at a time (marker ``qemu``).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import vbios_client as vc

from tests import waiting
from tests.e2e.conftest import ServerProcess, init_home, run_vbios, stop_dev_tpm
from tests.qemu_support import kill_all, shell_disk

pytestmark = pytest.mark.qemu

SERVE = ("--workers", "2", "--graceful-timeout", "3", "--integrity-interval", "0")
BOOT_LIMIT = 120.0
#: Seconds the guest keeps its vCPU busy, and how long it is watched idling after.
SPIN = 30
IDLE = 40
#: A spinning guest given (nearly) a whole core: its reading never falls.
FULL_SPEED = 90.0


@dataclass(frozen=True)
class Sample:
    seconds: float  # since the spin began
    reading: float
    load: float
    spinning: bool


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    work = tmp_path_factory.mktemp("qemu-thermal")
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


def console(server: ServerProcess, name: str) -> str:
    done = run_vbios("domain", "console", name, "--home", str(server.home), "--bytes",
                     str(1 << 20))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_busy_guest_heats_and_an_idle_one_cools(server: ServerProcess) -> None:
    disk = shell_disk(server.work / "spin", "echo VBIOS-SPIN-START",
                      f"stall {SPIN * 1_000_000}", "echo VBIOS-SPIN-END")
    out = server.work / "bundles" / "spin"
    done = run_vbios("domain", "create", "spin", "--machine", "qemu", "--disk", str(disk),
                     "--home", str(server.home), "--out", str(out))
    assert done.returncode == 0, done.stderr
    with vc.BiosClient.from_bundle(server.url, out, timeout=60) as bios:
        bios.set_secure_boot(False)  # OVMF refuses its own shell under Secure Boot
        assert bios.thermal().power_state == "Off"
        bios.reset("On")
        waiting.wait_for(lambda: "VBIOS-SPIN-START" in console(server, "spin"),
                         "the shell spinning", BOOT_LIMIT, 0.5)
        samples = watch(bios, server)
        bios.reset("ForceOff")
    end = next(s.seconds for s in samples if not s.spinning)  # seen ended (up to 3 s late)
    # the policy measures the load over its last period (5 s): the middle of each phase
    spin = [s for s in samples if s.spinning and 6 <= s.seconds <= end - 4]
    idle = [s for s in samples if not s.spinning and s.seconds >= end + 6]
    report = "\n".join(f"{s.seconds:5.1f}s {s.reading:6.2f} degC {s.load:5.1f} %"
                       f"{' spinning' if s.spinning else ''}" for s in samples)
    assert len(spin) >= 5 and len(idle) >= 20, report
    assert sum(s.load for s in spin) / len(spin) >= 35.0, report  # a core, shared
    assert min(s.load for s in spin) >= 20.0, report
    assert max(s.load for s in idle) <= 15.0, report  # the shell waits for a key
    peak = max(samples, key=lambda s: s.reading)
    assert peak.reading > samples[0].reading + 5.0, report  # it heats while it spins ...
    # it never cools while it spins at full speed: a reading falls only after the host gave
    # the guest less of a core (on a host busy with other work the spinning guest's measured
    # load drops, and the model rightly cools towards that lower load's temperature)
    assert all(b.reading >= a.reading - 0.05 or b.load < FULL_SPEED
               for a, b in itertools.pairwise(spin)), report
    assert peak.seconds <= end + 3, report  # ... and no longer once it idles
    assert idle[-1].reading < peak.reading - 8.0, report  # it cools while it idles
    assert all(b.reading <= a.reading + 0.05 for a, b in itertools.pairwise(idle)), report


def watch(bios: vc.BiosClient, server: ServerProcess) -> list[Sample]:
    """The guest's readings every second while it spins and for ``IDLE`` seconds after."""
    samples: list[Sample] = []
    start = time.monotonic()
    ended: float | None = None
    last_look = 0.0
    while ended is None or time.monotonic() - ended < IDLE:
        now = time.monotonic()
        if ended is None and now - last_look >= 2.0:
            last_look = now
            if "VBIOS-SPIN-END" in console(server, "spin"):
                ended = time.monotonic()
        if ended is None and now - start > SPIN + BOOT_LIMIT:
            raise AssertionError("the shell never ended its stall")
        thermal = bios.thermal()
        samples.append(Sample(now - start, thermal.sensor("CPU").reading,
                              thermal.load_percent, ended is None))
        time.sleep(1.0)
    return samples


def sel(server: ServerProcess, name: str) -> list[dict[str, object]]:
    done = run_vbios("domain", "sm", name, "sel", "--json", "--home", str(server.home))
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, object]] = json.loads(done.stdout)["entries"]
    return entries


def test_a_crossing_is_logged_and_a_fatal_override_shuts_a_real_guest_down(
        server: ServerProcess) -> None:
    """A running QEMU guest (its firmware idles in the boot manager): an override to
    UpperCritical leaves a Critical SEL entry and a ThermalThresholdCrossed event the guest
    receives; one to UpperFatal shuts it down (the ACPI
    power button, which no OS obeys here, then off after the graceful timeout), cause
    ThermalEvent."""
    out = server.work / "bundles" / "hot"
    done = run_vbios("domain", "create", "hot", "--machine", "qemu", "--home",
                     str(server.home), "--out", str(out))
    assert done.returncode == 0, done.stderr
    home = ("--home", str(server.home))
    with vc.BiosClient.from_bundle(server.url, out, timeout=60) as bios:
        bios.reset("On")
        waiting.wait_for(lambda: bios.get_power_state().power_state == "On", "On",
                         BOOT_LIMIT, 0.5)
        done = run_vbios("domain", "thermal", "override", "hot", "CPU", "92", "--minutes",
                         "5", *home)
        assert done.returncode == 0, done.stderr

        def crossed() -> bool:
            return any(e["entry_code"] == "Upper Critical - going high" for e in sel(server,
                                                                                     "hot"))

        waiting.wait_for(crossed, "the critical crossing in the SEL", 30.0, 0.5)
        with bios.events(["ThermalThresholdCrossed"], wait=5, cursor=0) as stream:
            event = next(stream)  # the guest hears it too
        assert (event.event_type, event.severity, event.domain) == (
            "ThermalThresholdCrossed", "Critical", "hot")
        assert "UpperCritical" in event.message_args
        done = run_vbios("domain", "thermal", "override", "hot", "CPU", "101", "--minutes",
                         "5", *home)
        assert done.returncode == 0, done.stderr
        waiting.wait_for(lambda: bios.get_power_state().power_state == "Off",
                         "the thermal shutdown", 60.0, 0.5)
        assert bios.get_power_state().last_reset_cause == "ThermalEvent"
    codes = [e["entry_code"] for e in sel(server, "hot")]
    assert "Upper Non-recoverable - going high" in codes, codes  # Redfish: UpperFatal
