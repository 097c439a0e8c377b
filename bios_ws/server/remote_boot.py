"""The settings of a routed domain's boot, from the remote that holds them
(``domain.boot_settings``), over the host protocol (``server.host_protocol``).

Each call is one POST on the remote's pool of kept-alive mutual-TLS connections
(``RemotePools``, this host's credential there, ``X-Vbios-On-Behalf-Of: <domain>``),
bounded by ``vbios serve --remote-timeout``. Whatever goes wrong (the remote down or
slow, a refusal, an answer that is not the protocol's) is ``RemoteUnavailable``: the
machine boots with what it has, and the values stay pending on the remote. While this
host is in restricted mode it asks the remote only to read (``apply`` false): what a
host whose measurements do not match its reference boots must not change the state.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from bios_ws.blocking import may_block
from bios_ws.domain.power import ResetCause
from bios_ws.domain.principal import PLATFORM
from bios_ws.domain.routing import Remote
from bios_ws.domain.state import DomainState
from bios_ws.errors import InvalidRequest, RemoteUnavailable, ServiceRestricted
from bios_ws.server import host_protocol as wire
from bios_ws.server.forwarding import ACTING_AS, ON_BEHALF_OF, RemotePools
from bios_ws.service.bios import WriteGate

log = logging.getLogger("bios_ws.power")


class RemoteBootSettings:
    """``BootSettings`` of the domains whose settings ``remote`` holds."""

    def __init__(self, pools: RemotePools, remote: Remote, *,
                 gate: WriteGate | None = None) -> None:
        self._pools = pools
        self._remote = remote
        self._base = urlsplit(remote.url).path
        self._gate = gate

    def at_boot(self, domain_id: str, cause: ResetCause, *,
                consume_boot_next: bool) -> DomainState:
        apply = self._trusted()
        body = wire.encode_boot(wire.BootRequest(cause, apply, consume_boot_next))
        answer = self._post(domain_id, wire.BOOT, body)
        applied, state = self._decoded(domain_id, answer, boot=True)
        if not applied:
            log.warning("domain %s: its pending settings stay pending on remote %s"
                        " (restricted mode %s)", domain_id, self._remote.name,
                        "here" if not apply else "there")
        return state

    def state_of(self, domain_id: str) -> DomainState:
        answer = self._post(domain_id, wire.STATE, wire.encode_state_request())
        return self._decoded(domain_id, answer, boot=False)[1]

    def boot_next_consumed(self, domain_id: str, option_id: str) -> None:
        self._post(domain_id, wire.BOOT_NEXT_CONSUMED, wire.encode_boot_next(option_id))

    def mirror_watchdog(self, domain_id: str, enabled: bool) -> bool:
        """``OsWatchdogTimer`` set on the remote, as the domain's platform."""
        self._post(domain_id, wire.WATCHDOG_SETTING, wire.encode_watchdog_setting(enabled),
                   platform=True)
        return True

    def setting(self, domain_id: str, name: str) -> object:
        try:
            return self.state_of(domain_id).current.get(name)
        except RemoteUnavailable:
            return None

    def _trusted(self) -> bool:
        if self._gate is None:
            return True
        try:
            self._gate()
        except ServiceRestricted:
            return False
        return True

    def _post(self, domain_id: str, call: str, body: bytes, *, platform: bool = False
              ) -> bytes:
        may_block(f"{wire.OPERATIONS[call]} at remote {self._remote.name}")
        pool = self._pools.pool(self._remote)
        headers = {"Content-Type": wire.CONTENT_TYPE, "Accept": wire.CONTENT_TYPE,
                   ON_BEHALF_OF: domain_id}
        if platform:
            headers[ACTING_AS] = PLATFORM
        answer = pool.post(body, headers, path=wire.path_for(self._base, call),
                           accept=wire.CONTENT_TYPE)
        if answer.status != 200:
            raise RemoteUnavailable(f"remote {self._remote.name} refused"
                                    f" {wire.OPERATIONS[call]} for {domain_id}:"
                                    f" {_refusal(answer.body, answer.status)}")
        return answer.body

    def _decoded(self, domain_id: str, body: bytes, *, boot: bool
                 ) -> tuple[bool, DomainState]:
        try:
            return wire.decode_state(domain_id, body, boot=boot)
        except InvalidRequest as exc:
            raise RemoteUnavailable(f"remote {self._remote.name} answered no state of"
                                    f" {domain_id}: {exc.message}") from None


def _refusal(body: bytes, status: int) -> str:
    """The code a refusal's JSON error names (never its whole body), or the status."""
    try:
        code = json.loads(body[:1024].decode("utf-8")).get("error")
    except (UnicodeDecodeError, ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) and code.isalnum() and len(code) < 40 \
        else f"HTTP {status}"
