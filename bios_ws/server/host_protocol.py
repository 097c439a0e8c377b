"""The host protocol: what a host that runs a routed domain's machine asks the remote
holding the domain's settings, beside the SOAP endpoint (no WSDL: host to host only).

    POST <remote path>/host/v1/boot                {"cause": C, "apply": B, "consume_boot_next": B}
    POST <remote path>/host/v1/state               {}
    POST <remote path>/host/v1/boot-next-consumed  {"boot_next": OPTION}
    POST <remote path>/host/v1/watchdog-setting    {"enabled": B}

Bodies are JSON (``application/json``, UTF-8, at most ``MAX_REQUEST`` bytes, one object
with exactly the keys named, no duplicate key, no NaN). ``boot`` and ``state`` answer
``200`` with the domain's state::

    {"domain": D, "version": N, "applied": B, "state": <the store's state document>}

(``applied`` in a ``boot`` answer only; the state document is the store's own layout,
``store.codec.state_document``, without the password hashes). ``boot-next-consumed``
and ``watchdog-setting`` (the platform's only: its ``SetWatchdog`` armed or disarmed the
domain's watchdog, and ``OsWatchdogTimer`` follows it here) answer ``200`` with
``{"domain": D, "version": N}``. A refusal answers a short JSON
error, ``{"error": CODE, "message": TEXT}``, with its HTTP status (``status_of``).
Who may call, and what is audited: ``server.host_route``, ``docs/remote.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from bios_ws.domain.power import ResetCause
from bios_ws.domain.state import DomainState
from bios_ws.errors import (
    AccessDenied,
    DomainNotFound,
    InvalidRequest,
    RemoteUnavailable,
    ServiceRestricted,
    StoreUnavailable,
    VbiosError,
)
from bios_ws.store.codec import state_document, state_from_document

#: Where the calls are, under the remote's URL path.
PREFIX = "/host/v1/"
BOOT = "boot"
STATE = "state"
BOOT_NEXT_CONSUMED = "boot-next-consumed"
WATCHDOG_SETTING = "watchdog-setting"
#: Each call's name in the access log, the metrics and the audit of a refused call.
OPERATIONS = {BOOT: "HostBoot", STATE: "HostBootState",
              BOOT_NEXT_CONSUMED: "HostBootNextConsumed",
              WATCHDOG_SETTING: "HostWatchdogSetting"}
CONTENT_TYPE = "application/json"
#: The largest request body the remote reads (the bodies above are a few dozen bytes).
MAX_REQUEST = 4096
#: The largest answer the host takes (a state with its Secure Boot key databases).
MAX_ANSWER = 4 * 1_048_576
MAX_OPTION_ID = 128


@dataclass(frozen=True)
class BootRequest:
    cause: ResetCause
    apply: bool
    consume_boot_next: bool


def path_for(base: str, call: str) -> str:
    """The path of ``call`` under the remote's URL path ``base``."""
    return base.rstrip("/") + PREFIX + call


def call_of(path: str) -> str | None:
    """The call a request path names (under any prefix: the remote's URL path), or None."""
    for call in OPERATIONS:
        if path.endswith(PREFIX + call):
            return call
    return None


def parse_object(body: bytes, limit: int) -> dict[str, Any]:
    """One JSON object of at most ``limit`` bytes; InvalidRequest otherwise."""
    if len(body) > limit:
        raise InvalidRequest(f"the body is larger than {limit} bytes")
    try:
        found = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates,
                           parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest(f"the body is no JSON: {str(exc)[:80]}") from None
    if not isinstance(found, dict):
        raise InvalidRequest("the body is no JSON object")
    return found


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a key is repeated")
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is no JSON number")


def _keys(body: dict[str, Any], *names: str) -> None:
    if set(body) != set(names):
        raise InvalidRequest(f"the body must hold exactly {', '.join(names) or 'nothing'}")


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body[name]
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be true or false")
    return value


# -- requests ------------------------------------------------------------------------

def encode_boot(request: BootRequest) -> bytes:
    return _dump({"cause": request.cause.value, "apply": request.apply,
                  "consume_boot_next": request.consume_boot_next})


def decode_boot(body: bytes) -> BootRequest:
    found = parse_object(body, MAX_REQUEST)
    _keys(found, "cause", "apply", "consume_boot_next")
    try:
        cause = ResetCause(found["cause"])
    except ValueError:
        raise InvalidRequest("cause is no reset cause") from None
    return BootRequest(cause, _bool(found, "apply"), _bool(found, "consume_boot_next"))


def encode_state_request() -> bytes:
    return b"{}"


def decode_state_request(body: bytes) -> None:
    _keys(parse_object(body, MAX_REQUEST))


def encode_boot_next(option_id: str) -> bytes:
    return _dump({"boot_next": option_id})


def decode_boot_next(body: bytes) -> str:
    found = parse_object(body, MAX_REQUEST)
    _keys(found, "boot_next")
    option = found["boot_next"]
    if not isinstance(option, str) or not 0 < len(option) <= MAX_OPTION_ID:
        raise InvalidRequest(f"boot_next must be a boot option id of 1 to {MAX_OPTION_ID}"
                             " characters")
    return option


def encode_watchdog_setting(enabled: bool) -> bytes:
    return _dump({"enabled": enabled})


def decode_watchdog_setting(body: bytes) -> bool:
    found = parse_object(body, MAX_REQUEST)
    _keys(found, "enabled")
    return _bool(found, "enabled")


# -- answers -------------------------------------------------------------------------

def encode_state(state: DomainState, applied: bool | None = None) -> bytes:
    body: dict[str, Any] = {"domain": state.domain_id, "version": state.version,
                            "state": state_document(state)}
    if applied is not None:
        body["applied"] = applied
    return _dump(body)


def decode_state(domain_id: str, body: bytes, *, boot: bool) -> tuple[bool, DomainState]:
    """(applied, state) of a ``boot`` or ``state`` answer for ``domain_id``;
    InvalidRequest when it is none."""
    found = parse_object(body, MAX_ANSWER)
    _keys(found, "domain", "version", "state", *(("applied",) if boot else ()))
    version = found["version"]
    if found["domain"] != domain_id:
        raise InvalidRequest("the answer is about another domain")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidRequest("the answer's version is no version")
    try:
        state = state_from_document(domain_id, version, found["state"])
    except StoreUnavailable:
        raise InvalidRequest("the answer's state is malformed") from None
    return (_bool(found, "applied") if boot else True), state


def encode_done(domain_id: str, version: int) -> bytes:
    return _dump({"domain": domain_id, "version": version})


def encode_error(error: VbiosError) -> bytes:
    return _dump({"error": error.code, "message": error.message[:300]})


def status_of(error: VbiosError) -> HTTPStatus:
    """The HTTP status of a refusal or failure."""
    if isinstance(error, AccessDenied):
        return HTTPStatus.FORBIDDEN
    if isinstance(error, DomainNotFound):
        return HTTPStatus.NOT_FOUND
    if isinstance(error, (StoreUnavailable, ServiceRestricted, RemoteUnavailable)):
        return HTTPStatus.SERVICE_UNAVAILABLE
    if error.fault_kind == "Client":
        return HTTPStatus.BAD_REQUEST
    return HTTPStatus.INTERNAL_SERVER_ERROR


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False).encode("ascii")

