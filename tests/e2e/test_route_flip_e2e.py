"""BIOS in a cloud (issue 18): a route changed while guests call gives no failed call.

Two installations on loopback, as tests/e2e/test_routed_e2e.py: A serves guest d1 (its
machine and certificate are A's), B holds d1's settings for A too and gave A a host
credential for d1. Guest threads of d1 call A without a pause, each on one kept-alive
connection (reads: GetAttributes, GetBootOrder; writes: SetAttributes of a new
HttpDev1Uri OnReset, without ExpectedVersion, the two sides' versions being their own),
while the admin of A flips the settings route of d1 and the route for every domain
between B and local, again and again. Both servers run two workers, so each flip is
seen by more than one process.

Every call must answer (HTTP 200, no fault). Each side's state holds a mark of its own
(its AssetTag), so every GetAttributes answer says which side answered it: a call sent
after `vbios route set` returned must be answered by the side the route names, and each
phase must have answers of its own. Every write landed exactly once: the versions both
sides' states moved add up to the writes the guests made, and A's audit (guest:d1) and
B's (host:host-a for guest:d1) hold an entry for each of their own.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Reply, ServerProcess, connect, envelope, post
from tests.e2e.routed_support import audit, two_installations, vbios_ok

#: Guest threads calling A at once, and the answers of GetAttributes each phase must have.
GUESTS = 4
PER_PHASE = 12
#: A phase that gets fewer answers within this many seconds fails the test (a hang).
PHASE_DEADLINE = 20.0
#: The flips, in order: (the route set's target, --domain or every domain), then the side
#: that answers d1's settings once it returned.
FLIPS = (("b", "d1", "b"), ("local", "d1", "a"), ("b", None, "b"), ("local", None, "a"),
         ("b", "d1", "b"), ("b", None, "b"), ("local", "d1", "b"), ("local", None, "a"))


def set_inner(name: str, value: str, apply_time: str = "Immediate") -> str:
    return (f"<v:Attributes><v:AttributeValue><v:Name>{name}</v:Name><v:StringValue>{value}"
            f"</v:StringValue></v:AttributeValue></v:Attributes><v:ApplyTime>{apply_time}"
            "</v:ApplyTime>")


def asset_tag(reply: Reply) -> str:
    found = reply.root.xpath('//*[local-name()="AttributeValue"][*[local-name()="Name"]'
                             '="AssetTag"]/*[local-name()="StringValue"]/text()')
    assert isinstance(found, list) and len(found) == 1, reply.body[:600]
    return str(found[0])


@dataclass
class Tally:
    """What the guests saw, by phase (the index of the flip that last returned).

    ``epoch`` moves when a flip starts and when it returned (odd while one runs): a call
    whose epoch was the same even one when it was sent and when it was answered is
    evidence of that phase's route; every call must succeed.
    """

    epoch: int = 0
    answered_by: dict[int, list[str]] = field(default_factory=dict)  # AssetTags read
    calls: int = 0
    writes: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def answers(self, phase: int) -> list[str]:
        with self.lock:
            return list(self.answered_by.get(phase, []))


def guest_loop(port: int, context: ssl.SSLContext, tally: Tally, n: int) -> None:
    """Call A on one kept-alive connection until told to stop; a failure is kept (and a
    new connection made only after one)."""
    conn: http.client.HTTPSConnection | None = None
    round_ = 0
    while not tally.stop.is_set():
        operation, inner = (("GetAttributes", ""), ("GetBootOrder", ""),
                            ("SetAttributes", set_inner(  # a value no write set before
                                "HttpDev1Uri", f"http://guest-{n}.example/{round_}", "OnReset"))
                            )[round_ % 3]
        round_ += 1
        with tally.lock:
            sent = tally.epoch
        phase = sent // 2
        try:
            if conn is None:
                conn = connect(port, context)
            reply = post(conn, operation, envelope(operation, inner))
            fault = reply.fault_code if reply.status != 200 else ""
            if reply.status != 200 or fault:
                raise AssertionError(f"HTTP {reply.status} {fault}: {reply.body[:300]!r}")
            tag = asset_tag(reply) if operation == "GetAttributes" else None
        except Exception as exc:  # every failure is counted, none hidden
            with tally.lock:
                tally.failures.append(f"guest {n} phase {phase} {operation}: "
                                      f"{type(exc).__name__}: {exc}")
            if conn is not None:
                conn.close()
            conn = None
            continue
        with tally.changed:
            tally.calls += 1
            tally.writes += operation == "SetAttributes"
            if tag is not None and sent % 2 == 0 and tally.epoch == sent:
                tally.answered_by.setdefault(phase, []).append(tag)
            tally.changed.notify_all()
    if conn is not None:
        conn.close()


def version_of(server: ServerProcess, who: Path | ssl.SSLContext) -> int:
    reply = server.call(who, "GetAttributes")
    assert reply.status == 200 and not reply.fault_code, reply.body
    return int(reply.text("Version"))


def test_route_flips_while_guests_call_fail_no_call(tmp_path: Path, start_server: Any
                                                    ) -> None:
    both = two_installations(tmp_path, start_server, a_args=("--workers", "2"),
                             b_args=("--workers", "2"))
    a, guest = both.a, both.guest
    a_home, b_home = both.a_home, both.b_home

    def route(target: str, domain: str | None) -> None:
        vbios_ok("route", "set", "settings", target, *(("--domain", domain) if domain else ()),
                 "--home", str(a_home))

    context = a.context(guest)
    route("b", "d1")  # each side's mark, written through A as the guest
    assert a.call(context, "SetAttributes", set_inner("AssetTag", "on-b")).status == 200
    b_first = version_of(a, context)
    route("local", "d1")
    assert a.call(context, "SetAttributes", set_inner("AssetTag", "on-a")).status == 200
    a_first = version_of(a, context)

    tally = Tally()
    threads = [threading.Thread(target=guest_loop, args=(a.port, context, tally, n),
                                daemon=True) for n in range(GUESTS)]
    for thread in threads:
        thread.start()
    try:
        wait_for_answers(tally, 0)
        for phase, (target, domain, _) in enumerate(FLIPS, start=1):
            with tally.lock:
                tally.epoch += 1
            route(target, domain)
            with tally.lock:
                tally.epoch += 1
            assert tally.epoch == 2 * phase
            wait_for_answers(tally, phase)
    finally:
        tally.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a guest thread is stuck"

    assert not tally.failures, f"{len(tally.failures)} of {tally.calls + len(tally.failures)}" \
                               f" calls failed:\n" + "\n".join(tally.failures[:20])
    sides = ["a"] + [side for _, _, side in FLIPS]
    for phase, side in enumerate(sides):
        tags = tally.answers(phase)
        assert len(tags) >= PER_PHASE, (phase, tags)
        assert set(tags) == {f"on-{side}"}, f"phase {phase} (route to {side}): {set(tags)}"

    route("b", "d1")  # the last phase is A's; B's version read through A once more
    b_writes = version_of(a, context) - b_first
    route("local", "d1")
    a_writes = version_of(a, context) - a_first
    assert a_writes > 0 and b_writes > 0, (a_writes, b_writes)  # both states changed
    assert a_writes + b_writes == tally.writes, (a_writes, b_writes, tally.writes)
    # every write audited once, by the side that made it (and A's mark and B's)
    on_b = [e for e in audit(b_home) if e["operation"] == "SetAttributes"
            and e["principal"] == "host:host-a for guest:d1" and e["outcome"] == "ok"]
    on_a = [e for e in audit(a_home) if e["operation"] == "SetAttributes"
            and e["principal"] == "guest:d1" and e["outcome"] == "ok"]
    assert (len(on_a), len(on_b)) == (a_writes + 1, b_writes + 1), (len(on_a), len(on_b))


def wait_for_answers(tally: Tally, phase: int) -> None:
    """Until ``phase`` has PER_PHASE GetAttributes answers (or a failure); fails after
    PHASE_DEADLINE (the guests hang)."""
    with tally.changed:
        got = tally.changed.wait_for(
            lambda: len(tally.answered_by.get(phase, [])) >= PER_PHASE or bool(tally.failures),
            timeout=PHASE_DEADLINE)
    assert got, f"phase {phase}: {len(tally.answers(phase))} answers in {PHASE_DEADLINE}s"
