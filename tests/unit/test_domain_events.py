"""The rules of events: messages of the registry, who sees what, subscriptions (ownership,
expiry), the bounds of a GetEvents (wait, page, cursor) and where a page leaves the
cursor."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bios_ws.domain.events import (
    ADMIN_ONLY,
    DEFAULT_EXPIRES,
    DEFAULT_PAGE,
    EXPIRED_KEPT,
    HOST_WIDE,
    MAX_EXPIRES,
    MAX_PAGE,
    MAX_WAIT_SECONDS,
    MESSAGES,
    Event,
    EventFilter,
    EventMark,
    EventPage,
    EventRetention,
    EventType,
    Severity,
    Subscription,
    check_cursor,
    event_types,
    expiry,
    make_event,
    page_size,
    render,
    scope_of,
    wait_seconds,
    watched_domain,
)
from bios_ws.domain.principal import Principal
from bios_ws.errors import AccessDenied, InvalidRequest

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
GUEST = Principal.guest("vm1")
OTHER = Principal.guest("vm2")
ADMIN = Principal.admin()


def subscription(owner: Principal = GUEST, domain_id: str | None = "vm1",
                 types: frozenset[EventType] = frozenset()) -> Subscription:
    return Subscription("a" * 32, str(owner), domain_id, types, T0, T0 + DEFAULT_EXPIRES, 7)


# -- messages -------------------------------------------------------------------------------


def test_every_event_type_has_a_message_whose_placeholders_are_its_arguments() -> None:
    assert set(MESSAGES) == set(EventType)
    for definition in MESSAGES.values():
        used = {int(n) for n in re.findall(r"%([1-9])", definition.template)}
        assert used == set(range(1, definition.args + 1)), definition.template


def test_an_event_renders_its_message_and_names_its_registry_entry() -> None:
    record = make_event(EventType.POWER_STATE_CHANGED, "vm1", "On", "Off", "PowerButton",
                        domain_id="vm1", origin="/vbios/domains/vm1/Power", at=T0)
    assert record.message == "Domain vm1 is On (it was Off; cause: PowerButton)."
    assert record.message_id == "VbiosEvent.1.0.PowerStateChanged"
    assert record.message_args == ("vm1", "On", "Off", "PowerButton")
    assert record.severity is Severity.OK  # the registry's, unless given
    assert record.scope == "vm1"


def test_the_severity_given_wins_and_arguments_are_text_bounded() -> None:
    record = make_event(EventType.CREDENTIAL_REVOKED, 1234, "x" * 2000, "superseded",
                        domain_id=None, origin="/vbios/certificates/4D2", at=T0,
                        severity=Severity.CRITICAL, admin_only=True)
    assert record.severity is Severity.CRITICAL
    assert record.message_args[0] == "1234" and len(record.message_args[1]) == 512
    assert record.scope == ADMIN_ONLY


@pytest.mark.parametrize("origin", ["vbios/domains/vm1", "/" + "x" * 300])
def test_an_origin_is_a_short_path(origin: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        make_event(EventType.INTEGRITY_CHANGED, "entered", "why", domain_id=None,
                   origin=origin, at=T0)


def test_the_arguments_must_fit_the_message() -> None:
    with pytest.raises(ValueError, match="takes 2 message arguments"):
        make_event(EventType.INTEGRITY_CHANGED, "entered", domain_id=None,
                   origin="/vbios/host/Integrity", at=T0)


def test_render_replaces_each_placeholder_once_and_leaves_other_percents() -> None:
    assert render("%1 at 100%, %2 then %1", ("a", "b")) == "a at 100%, b then a"
    assert render("%1", ("%2",)) == "%2"  # an argument is not rendered again


# -- who sees what --------------------------------------------------------------------------


def test_scopes() -> None:
    assert scope_of("vm1") == "vm1"
    assert scope_of(None) == HOST_WIDE
    assert scope_of(None, admin_only=True) == scope_of("vm1", admin_only=True) == ADMIN_ONLY


def test_a_guest_sees_its_own_domain_and_the_host_never_another_nor_the_admins() -> None:
    wanted = subscription().filter
    for scope, seen in (("vm1", True), (HOST_WIDE, True), ("vm2", False),
                        (ADMIN_ONLY, False), ("~", False)):
        assert wanted.admits(scope, EventType.SETTINGS_CHANGED) is seen, scope


def test_the_admin_of_every_domain_sees_everything_of_one_domain_what_its_guest_sees() -> None:
    every = subscription(ADMIN, None).filter
    assert every.scopes is None
    assert all(every.admits(scope, EventType.SETTINGS_CHANGED)
               for scope in ("vm1", "vm2", HOST_WIDE, ADMIN_ONLY, "~"))
    one = subscription(ADMIN, "vm2").filter
    assert one.scopes == {"vm2", HOST_WIDE, ADMIN_ONLY}


def test_types_filter_and_no_type_means_every_type() -> None:
    only = EventFilter(None, frozenset({EventType.POWER_STATE_CHANGED}))
    assert only.admits("vm1", EventType.POWER_STATE_CHANGED)
    assert not only.admits("vm1", EventType.SETTINGS_CHANGED)
    assert EventFilter(frozenset({"vm1"})).wants(EventMark(3, "vm1",
                                                           EventType.INTEGRITY_CHANGED))
    assert not EventFilter(frozenset({"vm1"})).wants(EventMark(3, "vm2",
                                                               EventType.SETTINGS_CHANGED))


def test_event_type_names_are_checked() -> None:
    assert event_types(["SettingsChanged", "PowerStateChanged"]) == {
        EventType.SETTINGS_CHANGED, EventType.POWER_STATE_CHANGED}
    assert event_types([]) == frozenset()
    with pytest.raises(InvalidRequest) as refused:
        event_types(["SettingsChanged", "Nope"])
    assert refused.value.attribute == "EventTypes"


# -- subscriptions --------------------------------------------------------------------------


def test_a_guest_watches_its_own_domain_and_may_name_no_other() -> None:
    assert watched_domain(GUEST, None) == "vm1"
    assert watched_domain(GUEST, "vm1") == "vm1"
    with pytest.raises(AccessDenied):
        watched_domain(GUEST, "vm2")


def test_the_admin_watches_the_domain_it_names_or_every_one() -> None:
    assert watched_domain(ADMIN, "vm2") == "vm2"
    assert watched_domain(ADMIN, None) is None
    with pytest.raises(AccessDenied):
        watched_domain(Principal.anonymous("10.0.0.1"), None)


def test_a_subscription_is_its_domains_guests_and_the_admins() -> None:
    mine = subscription()
    assert mine.owned_by(GUEST) and mine.owned_by(Principal.guest("vm1", "other subject"))
    assert not mine.owned_by(OTHER)
    assert mine.owned_by(ADMIN)
    admins = subscription(ADMIN, None)
    assert admins.owned_by(ADMIN) and not admins.owned_by(GUEST)
    assert not mine.owned_by(Principal.anonymous("10.0.0.1"))


def test_a_subscription_a_host_made_for_a_guest_is_that_guests() -> None:
    """Routed events (issue 18): a host speaking for vm1 (``host:h1 for guest:vm1``) made
    it; the later calls of that host for vm1 may use it, and it reads what vm1's guest
    may read (never the admin's events of the domain)."""
    host = Principal.from_san_uris(["urn:vbios:host:h1"], "h1")
    via = host.on_behalf_of("vm1")
    routed = subscription(via)
    assert routed.owner == "host:h1 for guest:vm1" and routed.for_guest
    assert routed.owned_by(via) and routed.owned_by(GUEST) and routed.owned_by(ADMIN)
    assert not routed.owned_by(host.on_behalf_of("vm2")) and not routed.owned_by(host)
    assert routed.filter == subscription().filter


def test_expiry_is_asked_for_defaulted_cut_and_positive() -> None:
    assert expiry(T0, None) == T0 + DEFAULT_EXPIRES
    assert expiry(T0, 90) == T0 + timedelta(seconds=90)
    assert expiry(T0, 10**9) == T0 + MAX_EXPIRES
    for bad in (0, -5):
        with pytest.raises(InvalidRequest) as refused:
            expiry(T0, bad)
        assert refused.value.attribute == "ExpiresIn"


def test_a_subscription_expires_then_is_forgotten_a_while_later() -> None:
    mine = subscription()
    assert not mine.expired(mine.expires_at - timedelta(microseconds=1))
    assert mine.expired(mine.expires_at)
    assert not mine.forgotten(mine.expires_at + EXPIRED_KEPT - timedelta(seconds=1))
    assert mine.forgotten(mine.expires_at + EXPIRED_KEPT)


# -- the bounds of a read -------------------------------------------------------------------


def test_a_wait_is_cut_to_thirty_seconds_and_never_negative() -> None:
    assert wait_seconds(None) == 0
    assert wait_seconds(0) == 0
    assert wait_seconds(12) == 12
    assert wait_seconds(3600) == MAX_WAIT_SECONDS == 30
    with pytest.raises(InvalidRequest) as refused:
        wait_seconds(-1)
    assert refused.value.attribute == "Wait"


def test_a_page_has_a_default_and_a_ceiling() -> None:
    assert page_size(None) == DEFAULT_PAGE
    assert page_size(5) == 5
    assert page_size(10**6) == MAX_PAGE
    with pytest.raises(InvalidRequest):
        page_size(0)


def test_a_cursor_is_an_event_id() -> None:
    assert check_cursor(0) == 0
    with pytest.raises(InvalidRequest):
        check_cursor(-1)


def event(event_id: int) -> Event:
    return Event(event_id, make_event(EventType.SETTINGS_CHANGED, "vm1", "Op", 1,
                                      domain_id="vm1", origin="/vbios/domains/vm1/Bios",
                                      at=T0))


def test_a_page_that_is_not_full_moves_the_cursor_to_the_newest_event_read() -> None:
    page = EventPage.of([event(4), event(9)], cursor=3, limit=10, head=12)
    assert [e.event_id for e in page.events] == [4, 9]
    assert page.next_cursor == 12 and page.head == 12
    assert EventPage.of([], cursor=3, limit=10, head=12).next_cursor == 12


def test_a_full_page_stops_the_cursor_at_its_last_event() -> None:
    page = EventPage.of([event(4), event(9)], cursor=3, limit=2, head=12)
    assert page.next_cursor == 9


def test_the_cursor_never_goes_back() -> None:
    assert EventPage.of([], cursor=20, limit=10, head=12).next_cursor == 20


def test_retention_keeps_something() -> None:
    assert EventRetention().max_age == timedelta(days=7)
    for bad in ({"max_age": timedelta(0)}, {"max_events": 0}):
        with pytest.raises(ValueError):
            EventRetention(**bad)  # type: ignore[arg-type]
