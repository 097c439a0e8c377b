"""Metrics and the access log of a real `vbios serve` with two workers (sealed keys, the
development TPM): calls answered by both workers are all counted in one scrape, whichever
worker answers it (each call is counted and logged before its answer leaves); a guest is
refused the metrics; the access log has one line per call, and neither the passwords of a
password change and of a guarded SetAttributes nor a value sent is in it."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Reply, ServerProcess, served_home
from tests.e2e.test_front_workers import workers

#: Calls made before both workers are expected to have answered some.
MAX_CALLS = 200


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with served_home(tmp_path) as served:
        yield served


def access_log(server: ServerProcess) -> list[dict[str, object]]:
    path = server.home / "log" / "access.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def get(server: ServerProcess, who: Path, path: str) -> tuple[int, bytes]:
    connection = server.connect(who)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def samples(exposition: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in exposition.splitlines() if line and not line.startswith("#")}


def set_tag(value: str, password: str) -> str:
    return ("<v:Attributes><v:AttributeValue><v:Name>AssetTag</v:Name>"
            f"<v:StringValue>{value}</v:StringValue></v:AttributeValue></v:Attributes>"
            f"<v:ApplyTime>Immediate</v:ApplyTime><v:Password>{password}</v:Password>")


def change_password(old: str | None, new: str) -> str:
    former = f"<v:OldPassword>{old}</v:OldPassword>" if old else ""
    return (f"<v:PasswordName>SetupPassword</v:PasswordName>{former}"
            f"<v:NewPassword>{new}</v:NewPassword>")


def test_calls_over_both_workers_are_counted_in_one_scrape(server: ServerProcess) -> None:
    guest = server.create_domain("vm1")
    pids = workers(server)
    assert len(pids) == 2
    made = 0
    while made < MAX_CALLS and {line["worker"] for line in access_log_or_empty(server)} != pids:
        assert server.call(guest, "GetAttributes").status == 200
        made += 1
    lines = access_log(server)  # a call is logged before its answer is written
    assert len(lines) == made
    assert {line["worker"] for line in lines} == pids, "one worker took all"
    status, body = get(server, server.admin_bundle, "/metrics")
    assert status == 200
    counted = samples(body.decode())
    assert counted['vbios_calls_total{operation="GetAttributes",outcome="ok"}'] == made
    assert counted['vbios_call_duration_seconds_count{operation="GetAttributes"}'] == made
    assert counted['vbios_domains{power_state="Off"}'] == 1.0
    assert counted['vbios_integrity_state{state="Trusted"}'] == 1.0
    assert counted["vbios_restricted_mode"] == 0.0
    status, body = get(server, guest, "/metrics")
    assert (status, body) == (403, b"forbidden\n")


def access_log_or_empty(server: ServerProcess) -> list[dict[str, object]]:
    return access_log(server) if (server.home / "log" / "access.log").exists() else []


def test_the_access_log_has_a_line_per_call_and_no_password(server: ServerProcess) -> None:
    guest = server.create_domain("vm1")
    first, second = (f"pw-{secrets.token_hex(8)}" for _ in range(2))
    tag = f"tag-{secrets.token_hex(4)}"
    replies: list[tuple[str, Reply]] = [
        ("ChangePassword", server.call(guest, "ChangePassword", change_password(None, first))),
        ("SetAttributes", server.call(guest, "SetAttributes", set_tag(tag, "wrong-one"))),
        ("SetAttributes", server.call(guest, "SetAttributes", set_tag(tag, first))),
        ("ChangePassword", server.call(guest, "ChangePassword",
                                       change_password(first, second))),
        ("GetAttributes", server.call(guest, "GetAttributes")),
    ]
    outcomes = [reply.fault_code or "ok" for _, reply in replies]
    assert outcomes == ["ok", "InvalidPassword", "ok", "ok", "ok"]
    lines = access_log(server)
    assert len(lines) == len(replies)
    assert Counter((line["principal"], line["operation"], line["outcome"]) for line in lines) \
        == Counter(("guest:vm1", operation, outcome)
                   for (operation, _), outcome in zip(replies, outcomes, strict=True))
    assert all(line["peer"] == "127.0.0.1" and isinstance(line["request_bytes"], int)
               and line["request_bytes"] > 0 for line in lines)
    text = (server.home / "log" / "access.log").read_text()
    for secret in (first, second, "wrong-one", tag):
        assert secret not in text
        assert secret not in server.stderr()
