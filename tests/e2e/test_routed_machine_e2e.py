"""Machines of routed domains (issue 18), two installations on loopback: A runs d1's
simulated machine and routes d1's settings to B. The guest sets a value OnReset and a
BootNext through A (held on B), resets its machine through A (power is A's), and the
boot applies B's pending values on B, audited there as A's host for d1; A's own store
changes nothing of d1's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import vbios_client as vc

from tests.e2e.routed_support import audit, two_installations, vbios_ok
from tests.waiting import wait_for

FAST = ("--workers", "1", "--boot-seconds", "0.3", "--graceful-timeout", "1")


def test_a_reset_through_a_applies_the_settings_b_holds(
        tmp_path: Path, start_server: Any) -> None:
    both = two_installations(tmp_path, start_server, a_args=FAST, b_args=FAST)
    a, b, guest, a_home, b_home = both.a, both.b, both.guest, both.a_home, both.b_home
    vbios_ok("route", "set", "settings", "b", "--domain", "d1", "--home", str(a_home))

    with vc.BiosClient.from_bundle(a.url, guest, timeout=15) as bios:
        before = bios.get_attributes(["NumLock"])
        assert before.values == {"NumLock": True}
        pending_version = bios.set_attributes({"NumLock": False}, apply_time="OnReset")
        bios.set_boot_next("Shell.Uefi")
        assert bios.get_pending_attributes().values == {"NumLock": False}  # B's
        assert bios.get_power_state().pending_changes  # B's pending, seen by A's power
        outcome = bios.reset("On")  # power is A's: the boot asks B
        assert outcome.pending_changes is False, outcome.message
        assert "applied at this boot" in outcome.message
        after = bios.get_attributes(["NumLock"])
        assert after.values == {"NumLock": False}
        assert after.version > pending_version  # B's new version
        assert bios.get_boot_order().boot_next is None  # a simulated machine consumed it
        assert bios.get_pending_attributes().values == {}
        wait_for(lambda: bios.get_power_state().power_state == "On", "On")

    on_b = audit(b_home)
    applied = [e for e in on_b if e["operation"] == "ApplyPendingAttributes"]
    assert [(e["principal"], e["domain"], e["outcome"]) for e in applied] == [
        ("host:host-a for guest:d1", "d1", "ok")]
    on_a = audit(a_home)
    assert not [e for e in on_a if e["operation"] in (
        "SetAttributes", "SetBootNext", "ApplyPendingAttributes")]  # nothing of d1's here
    assert any(e["operation"] == "Reset" and e["domain"] == "d1" for e in on_a)

    # B down: the machine still resets, with what it has; nothing local stands in
    b.stop()
    with vc.BiosClient.from_bundle(a.url, guest, timeout=15) as bios:
        outcome = bios.reset("ForceRestart")
        assert outcome.pending_changes is True  # unknown: whatever was pending still is
    assert not [e for e in audit(a_home) if e["operation"] == "ApplyPendingAttributes"]
