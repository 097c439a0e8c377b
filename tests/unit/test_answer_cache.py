"""The answers kept for routes with a cache (``server.answer_cache``): their age, their
key (the exact request body), the bounds in entries and bytes (least recently used
first), and what forgets them. The clock is the test's."""

from __future__ import annotations

import pytest

from bios_ws.capabilities import CAPABILITIES, operation_capabilities, read_operations
from bios_ws.server.answer_cache import ENTRY_OVERHEAD, AnswerCache, CacheKey

XML = "text/xml; charset=utf-8"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(body: bytes = b"<GetAttributes/>", domain: str = "vm1",
        operation: str = "GetAttributes", remote: str = "cloud-b") -> CacheKey:
    return CacheKey.of(remote, domain, operation, body)


def test_an_answer_is_served_while_younger_than_the_maximum_age_with_its_age() -> None:
    clock = Clock()
    cache = AnswerCache(clock=clock)
    assert cache.get(key(), 60) is None
    assert cache.put(key(), XML, b"answer")
    clock.now += 59.9
    hit = cache.get(key(), 60)
    assert hit is not None
    assert (hit.answer.body, hit.answer.content_type, hit.answer.remote) == (
        b"answer", XML, "cloud-b")
    assert hit.age == 59  # whole seconds, as HTTP's Age
    assert cache.get(key(), 30) is None  # another route's maximum: too old for it
    assert cache.get(key(), 60) is None  # and dropped once found too old
    assert len(cache) == 0


def test_an_answer_as_old_as_the_maximum_is_not_served() -> None:
    clock = Clock()
    cache = AnswerCache(clock=clock)
    cache.put(key(), XML, b"answer")
    clock.now += 10
    assert cache.get(key(), 10) is None


def test_a_newer_answer_replaces_the_older_and_its_age_starts_again() -> None:
    clock = Clock()
    cache = AnswerCache(clock=clock)
    cache.put(key(), XML, b"old")
    clock.now += 50
    cache.put(key(), XML, b"new")
    clock.now += 20
    hit = cache.get(key(), 60)
    assert hit is not None and (hit.answer.body, hit.age) == (b"new", 20)
    assert len(cache) == 1 and cache.size == len(b"new") + len(XML) + ENTRY_OVERHEAD


def test_the_key_is_the_exact_body_the_domain_the_operation_and_the_remote() -> None:
    cache = AnswerCache(clock=Clock())
    cache.put(key(), XML, b"answer")
    assert cache.get(key(), 60) is not None
    assert cache.get(key(b"<GetAttributes> </GetAttributes>"), 60) is None  # one byte off
    assert cache.get(key(domain="vm2"), 60) is None
    assert cache.get(key(operation="GetBootOrder"), 60) is None
    assert cache.get(key(remote="cloud-c"), 60) is None  # the route moved: not its answer


def test_the_entry_bound_drops_the_least_recently_used() -> None:
    cache = AnswerCache(max_entries=3, clock=Clock())
    for n in range(3):
        cache.put(key(b"%d" % n), XML, b"a%d" % n)
    assert cache.get(key(b"0"), 60) is not None  # used: now the most recent
    cache.put(key(b"3"), XML, b"a3")
    assert len(cache) == 3
    assert cache.get(key(b"1"), 60) is None  # the least recently used went
    assert all(cache.get(key(b"%d" % n), 60) is not None for n in (0, 2, 3))


def test_the_byte_bound_drops_the_least_recently_used_and_refuses_what_cannot_fit() -> None:
    entry = 100 + len(XML) + ENTRY_OVERHEAD
    cache = AnswerCache(max_bytes=2 * entry, clock=Clock())
    cache.put(key(b"a"), XML, b"x" * 100)
    cache.put(key(b"b"), XML, b"x" * 100)
    assert cache.size == 2 * entry
    cache.put(key(b"c"), XML, b"x" * 100)
    assert cache.get(key(b"a"), 60) is None and len(cache) == 2
    assert cache.size <= 2 * entry
    assert not cache.put(key(b"big"), XML, b"x" * (2 * entry))
    assert cache.get(key(b"big"), 60) is None
    assert len(cache) == 2  # what was kept stays
    cache.put(key(b"b"), XML, b"x" * (2 * entry))  # too large: the older answer goes too
    assert cache.get(key(b"b"), 60) is None and cache.size == entry


def test_a_domain_s_answers_are_forgotten_together_and_one_answer_alone() -> None:
    cache = AnswerCache(clock=Clock())
    cache.put(key(b"1"), XML, b"a")
    cache.put(key(b"2", operation="GetBootOrder"), XML, b"b")
    cache.put(key(b"1", domain="vm2"), XML, b"c")
    assert cache.forget_domain("vm1") == 2
    assert cache.get(key(b"1"), 60) is None
    assert cache.get(key(b"2", operation="GetBootOrder"), 60) is None
    assert cache.get(key(b"1", domain="vm2"), 60) is not None
    cache.forget(key(b"1", domain="vm2"))
    assert len(cache) == 0 and cache.size == 0
    assert cache.forget_domain("vm9") == 0


def test_bounds_must_hold_something() -> None:
    with pytest.raises(ValueError):
        AnswerCache(max_entries=0)
    with pytest.raises(ValueError):
        AnswerCache(max_bytes=0)


def test_the_reads_come_from_the_registry_and_are_the_routable_capabilities_gets() -> None:
    """Only an operation that changes nothing is sent twice or answered from a cache:
    each read is an operation of the contract, and every Get of a routable capability
    is one (a new one not declared would fail here)."""
    operations = operation_capabilities()
    reads = read_operations()
    assert reads <= set(operations)
    routable = {c.name for c in CAPABILITIES if c.routable}
    gets = {name for name, capability in operations.items()
            if capability in routable and name.startswith("Get")}
    assert gets <= reads
    assert {"GetAttributes", "GetBootOrder", "GetSecureBoot", "GetEvents"} <= reads
    writes = {"SetAttributes", "SetBootOrder", "SetSecureBoot", "Subscribe", "Renew",
              "Unsubscribe", "ChangePassword", "CancelPendingAttributes",
              "ResetSecureBootKeys", "ApplyPendingAttributes"}
    assert not reads & writes
    assert all(name.startswith("Get") for name in reads)
