"""A host speaking for a guest against a real `vbios serve` over mutual TLS
(``docs/remote.md``): `vbios host add` on the server's home, then SOAP calls presenting
the host's certificate with and without ``X-Vbios-On-Behalf-Of``; `vbios host remove`
refuses the host from the next handshake."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Reply, envelope, init_home, run_vbios


def _call(server: Any, bundle: Path, operation: str, inner: str = "",
          domain: str | None = None) -> Reply:
    connection = server.connect(bundle)
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'}
    if domain is not None:
        headers["X-Vbios-On-Behalf-Of"] = domain
    try:
        connection.request("POST", "/", body=envelope(operation, inner), headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.read())
    finally:
        connection.close()


def _set_numlock(value: str, version: str) -> str:
    return ("<v:Attributes><v:AttributeValue><v:Name>NumLock</v:Name>"
            f"<v:BooleanValue>{value}</v:BooleanValue></v:AttributeValue></v:Attributes>"
            f"<v:ApplyTime>Immediate</v:ApplyTime><v:ExpectedVersion>{version}"
            "</v:ExpectedVersion>")


def test_a_delegate_host_speaks_for_its_granted_domain_only(tmp_path: Path,
                                                            start_server: Any) -> None:
    home = tmp_path / "b"
    init_home(home, "--no-tpm")
    server = start_server(home, "--workers", "1")
    h = str(home)
    guest1 = server.create_domain("vm1")
    server.create_domain("vm2")
    bundle = tmp_path / "rack1-a"
    done = run_vbios("host", "add", "rack1-a", "--domains", "vm1", "--out", str(bundle),
                     "--home", h)
    assert done.returncode == 0, done.stderr

    got = _call(server, bundle, "GetAttributes", domain="vm1")
    assert got.status == 200 and not got.fault_code, got.body
    version = got.text("Version")
    written = _call(server, bundle, "SetAttributes", _set_numlock("false", version), "vm1")
    assert written.status == 200 and not written.fault_code, written.body
    stale = _call(server, bundle, "SetAttributes", _set_numlock("true", version), "vm1")
    assert stale.fault_code == "VersionConflict"
    own = server.call(guest1, "GetAttributes")
    assert own.text("Version") == written.text("Version")

    for domain in ("vm2", None, "vm1,vm2"):
        refused = _call(server, bundle, "GetAttributes", domain=domain)
        assert refused.fault_code == "AccessDenied", (domain, refused.body)
    assert _call(server, guest1, "GetAttributes", domain="vm1").fault_code == "AccessDenied"

    shown = run_vbios("audit", "show", "--home", h, "--json")
    entries = json.loads(shown.stdout)
    assert any(e["principal"] == "host:rack1-a for guest:vm1" and e["operation"] ==
               "SetAttributes" and e["outcome"] == "ok" for e in entries)
    assert sum(e["principal"] == "host:rack1-a" and e["outcome"] == "refused:AccessDenied"
               for e in entries) == 3

    done = run_vbios("host", "remove", "rack1-a", "--home", h)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while True:  # the worker follows the CRL file: at once, or within its check
        try:
            reply = _call(server, bundle, "GetAttributes", domain="vm1")
        except (OSError, http.client.HTTPException):  # the handshake refused (CRL)
            break
        if reply.status == 403 or reply.fault_code == "AccessDenied":
            break
        assert time.monotonic() < deadline, "a removed host still speaks for vm1"
        time.sleep(0.2)
