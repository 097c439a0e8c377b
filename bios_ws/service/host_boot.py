"""The remote's side of a routed domain's machine: the host that runs the machine asks,
at each boot, for the settings this installation holds (``docs/remote.md``).

The caller is the host speaking for the domain (``Principal.via_host``: ``host:H for
guest:D``, H granted D); nobody else (a guest's own certificate, the admin) may. At a
boot, D's pending values become current here, as the platform's apply at boot does on a
host that holds its own settings (``BiosService.apply_at_boot``): the same operation
(``ApplyPendingAttributes``), audited as ``host:H for guest:D`` with ``at`` naming the
boot (``boot on host H (ColdReset)``), one new version, kept pending in restricted mode
(this installation's: the write is refused, audited, and the state is answered as it
is). After a run of a machine with firmware of its own, the BootNext it consumed goes
(``FirmwareConsumedBootNext``, as the same principal).

When the guest arms or disarms its watchdog (``SetWatchdog``, on the host that runs the
machine), ``OsWatchdogTimer`` follows it here, as it does in the settings of a domain
whose settings are the host's own (``service.system_management``): set by the platform
(``host:H platform of D``, ``X-Vbios-Acting-As: platform``; nobody else), audited as its
``SetWatchdog``, one new version when it changed, nothing when it did not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from bios_ws.domain.power import ResetCause
from bios_ws.domain.principal import Principal
from bios_ws.domain.state import ApplyTime, DomainState
from bios_ws.domain.timers import WATCHDOG_ATTRIBUTE
from bios_ws.errors import AccessDenied, ServiceRestricted
from bios_ws.service.bios import BiosService


@dataclass(frozen=True)
class HostBootAnswer:
    """Whether the pending values were applied (False: restricted mode kept them), and
    the domain's state after the boot's apply, without password hashes."""

    applied: bool
    state: DomainState


class HostBoot:
    def __init__(self, bios: BiosService) -> None:
        self._bios = bios

    def boot(self, principal: Principal, cause: ResetCause, *, apply: bool,
             consume_boot_next: bool) -> HostBootAnswer:
        """A boot of D's machine on host H (``apply`` False: H is in restricted mode
        itself, and only reads)."""
        domain_id = self._domain(principal)
        state = self._bios.state_of(domain_id)
        to_do = bool(state.pending) or (consume_boot_next and state.boot_next is not None)
        applied = True
        if apply and to_do:
            def mutate(state: DomainState) -> Mapping[str, object]:
                applied = state.apply_pending(consume_boot_next=consume_boot_next)
                return {"applied": applied,
                        "at": f"boot on host {principal.host} ({cause.value})"}

            try:
                self._bios.write(principal, "ApplyPendingAttributes", lambda: domain_id,
                                 mutate, None, requested=domain_id)
            except ServiceRestricted:
                applied = False
            state = self._bios.state_of(domain_id)
        elif to_do:
            applied = False
        return HostBootAnswer(applied, _without_secrets(state))

    def state(self, principal: Principal) -> DomainState:
        """D's state as it is (the power use case's pending flag, its restore policy)."""
        return _without_secrets(self._bios.state_of(self._domain(principal)))

    def boot_next_consumed(self, principal: Principal, option_id: str) -> None:
        domain_id = self._domain(principal)

        def mutate(state: DomainState) -> Mapping[str, object]:
            if state.boot_next == option_id:
                state.boot_next = None
            return {"boot_next_consumed": option_id, "on": f"host {principal.host}"}

        self._bios.write(principal, "FirmwareConsumedBootNext", lambda: domain_id, mutate,
                         None, requested=domain_id, gated=False)

    def watchdog_setting(self, principal: Principal, enabled: bool) -> int:
        """``OsWatchdogTimer`` Enabled or Disabled as D's watchdog is (when the registry
        in force has it); D's version after it."""
        wanted = "Enabled" if enabled else "Disabled"

        def target() -> str:
            domain_id = self._domain(principal)
            if not principal.platform:
                raise AccessDenied("only the domain's platform sets the setting of its"
                                   " watchdog (X-Vbios-Acting-As: platform)")
            return domain_id

        def mutate(state: DomainState) -> Mapping[str, object]:
            # a domain's values hold OsWatchdogTimer exactly when the registry has it
            if state.current.get(WATCHDOG_ATTRIBUTE, wanted) != wanted:
                state.set_attributes(self._bios.registry, {WATCHDOG_ATTRIBUTE: wanted},
                                     ApplyTime.IMMEDIATE)
            return {WATCHDOG_ATTRIBUTE: wanted, "on": f"host {principal.host}"}

        return self._bios.write(principal, "SetWatchdog", target, mutate, None,
                                requested=principal.domain_id)

    def _domain(self, principal: Principal) -> str:
        if not principal.via_host or principal.domain_id is None:
            raise AccessDenied("only a host speaking for a domain it was granted drives"
                               " that domain's machine")
        return principal.domain_id


def _without_secrets(state: DomainState) -> DomainState:
    """The state a host gets: the password hashes stay here (a boot needs none)."""
    return replace(state, passwords={})
