"""BIOS in a cloud (issue 18), two installations on loopback: A serves guest d1 (its
machine and its certificate are A's) and routes d1's settings to B, which holds them
and gave A a host credential for d1. The guest calls A and gets B's answers; B's audit
names A on behalf of d1; B stopped gives RemoteUnavailable within the bound; B back,
calls work again without restarting A."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.e2e.routed_support import two_installations, vbios_ok

#: The bound of a routed call (`vbios serve --remote-timeout`) in this test, seconds.
BOUND = 3.0


def test_a_guest_of_a_reads_and_writes_settings_that_live_on_b(
        tmp_path: Path, start_server: Any) -> None:
    both = two_installations(tmp_path, start_server,
                             a_args=("--workers", "1", "--remote-timeout", f"{BOUND:g}"))
    a, b, guest, credential = both.a, both.b, both.guest, both.credential
    a_home, b_home = both.a_home, both.b_home
    both.route("settings", "b", "--domain", "d1")

    on_b = b.call(credential, "GetAttributes")  # no header: refused (a host is no guest)
    assert on_b.fault_code == "AccessDenied"
    first = a.call(guest, "GetAttributes")
    assert first.status == 200 and not first.fault_code, first.body
    version = first.text("Version")
    inner = ("<v:Attributes><v:AttributeValue><v:Name>NumLock</v:Name>"
             "<v:BooleanValue>false</v:BooleanValue></v:AttributeValue></v:Attributes>"
             f"<v:ApplyTime>Immediate</v:ApplyTime><v:ExpectedVersion>{version}"
             "</v:ExpectedVersion>")
    written = a.call(guest, "SetAttributes", inner)
    assert written.status == 200 and not written.fault_code, written.body
    assert a.call(guest, "SetAttributes", inner).fault_code == "VersionConflict"  # via the hop
    entries = json.loads(vbios_ok("audit", "show", "--json", "--home", str(b_home)))
    assert any(e["principal"] == "host:host-a for guest:d1" and e["operation"] == "SetAttributes"
               and e["outcome"] == "ok" for e in entries)
    local = json.loads(vbios_ok("audit", "show", "--json", "--home", str(a_home)))
    assert not any(e["operation"] == "SetAttributes" for e in local)  # never a local answer

    # a domain B did not grant A: A routes it there all the same, and B refuses A for it
    other = tmp_path / "guest-d2"
    b.create_domain("d2")
    vbios_ok("domain", "create", "d2", "--home", str(a_home), "--out", str(other))
    vbios_ok("route", "set", "settings", "b", "--domain", "d2", "--home", str(a_home))
    refused = a.call(other, "GetAttributes")
    assert refused.fault_code == "AccessDenied", refused.body  # B's answer, relayed
    entries = json.loads(vbios_ok("audit", "show", "--json", "--home", str(b_home)))
    assert any(e["principal"] == "host:host-a" and e["domain"] == "d2"
               and e["outcome"] == "refused:AccessDenied" for e in entries), entries[-3:]
    assert not any(e["principal"] == "host:host-a for guest:d2" for e in entries)

    port = b.port
    b.stop()
    began = time.monotonic()
    down = a.call(guest, "GetAttributes")
    assert down.fault_code == "RemoteUnavailable", down.body
    assert time.monotonic() - began < BOUND + 2.0
    b.start("--workers", "1", "--bind", f"127.0.0.1:{port}")  # B back where A knows it
    back = a.call(guest, "GetAttributes")
    assert back.status == 200 and not back.fault_code, back.body
    assert int(back.text("Version") or 0) == int(version) + 1
