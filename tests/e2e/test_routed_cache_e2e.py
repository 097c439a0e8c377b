"""Cached reads across two installations (issue 18): A routes d1's settings to B with
`--cache 300`. While B serves, the guest's answers are B's, fresh; once B is stopped, a
read the guest made before is answered by A from B's last answer, saying so (HTTP Age,
X-Vbios-Cached; the library's ``last_answer_cached``; vbios-client's note), and a write
or a read never made gives RemoteUnavailable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import vbios_client as vc

from tests.e2e.conftest import envelope
from tests.e2e.routed_support import two_installations, vbios_ok

VBIOS_CLIENT = Path(sys.executable).parent / "vbios-client"
#: The bound of a routed call (`vbios serve --remote-timeout`) in this test, seconds.
BOUND = 3.0
MAX_AGE = 300


def raw_read(server: Any, guest: Path, operation: str) -> tuple[int, dict[str, str], bytes]:
    """One call with its answer's header fields (the library keeps only the cache note)."""
    connection = server.connect(guest)
    try:
        connection.request("POST", "/", body=envelope(operation), headers={
            "Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def client_cli(url: str, guest: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VBIOS_")}
    environ.update({"VBIOS_URL": url, "VBIOS_BUNDLE": str(guest)})
    return subprocess.run([str(VBIOS_CLIENT), *argv], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=environ, check=False)


def test_a_guest_of_a_reads_b_s_cached_answer_while_b_is_down(
        tmp_path: Path, start_server: Any) -> None:
    # one worker: the cache is each worker's own
    both = two_installations(tmp_path, start_server,
                             a_args=("--workers", "1", "--remote-timeout", f"{BOUND:g}"))
    a, b, guest, a_home = both.a, both.b, both.guest, both.a_home
    vbios_ok("route", "set", "settings", "b", "--domain", "d1", "--cache", str(MAX_AGE),
             "--home", str(a_home))

    with vc.BiosClient.from_bundle(a.url, guest, timeout=30) as client:
        version = client.set_attributes({"NumLock": False})  # on B: a write, never cached
        before = client.get_attributes()
        assert before.version == version and client.last_answer_cached is None
        status, headers, body = raw_read(a, guest, "GetSecureBoot")
        assert status == 200 and "Age" not in headers and "X-Vbios-Cached" not in headers
        assert client_cli(a.url, guest, "attributes", "get").stderr == ""

        b.stop()
        after = client.get_attributes()
        assert after == before  # B's last answer
        cached = client.last_answer_cached
        assert cached is not None and cached.remote == "b"
        assert cached.age is not None and 0 <= cached.age < MAX_AGE
        status, headers, again = raw_read(a, guest, "GetSecureBoot")
        assert (status, again) == (200, body)
        age = headers["Age"]
        assert age.isdigit() and headers["X-Vbios-Cached"] == f"remote=b; age={age}"
        done = client_cli(a.url, guest, "attributes", "get")
        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith("vbios-client: note: the remote vBIOS b is unavailable:"
                                      " this is its cached answer, "), done.stderr

        try:
            client.set_attributes({"NumLock": True}, expected_version=version)
            raise AssertionError("a write was answered while its remote is down")
        except vc.RemoteUnavailable:
            pass
        assert client.last_answer_cached is None
        try:
            client.get_boot_order()  # never read before: nothing cached
            raise AssertionError("a read never made was answered while its remote is down")
        except vc.RemoteUnavailable:
            pass
    local = vbios_ok("audit", "show", "--json", "--home", str(a_home))
    assert "SetAttributes" not in local  # never a local answer
