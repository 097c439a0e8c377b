"""Use cases of Secure Boot (Redfish's SecureBoot and SecureBootDatabases are the model).

One truth, two views: the switch is the ``SecureBoot`` attribute (turning it on
or off is a pending change applied at reset, like any reset-required
attribute), and the key databases live in the domain's settings state (the
installation's default set until changed). Every key operation also sets the
``SecureBootMode`` and ``SecureBootPolicy`` attributes, which follow the keys
(read-only in the registry): no PK is ``SetupMode``; the default set is
``Standard``, anything else ``Custom``. What the firmware enforced at the
current or last boot (``CurrentBoot``) is what the machine recorded when it
booted. Key changes reach the firmware at its next boot. All writes go through
``BiosService.write``: authorized, versioned, refused in restricted mode,
audited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from bios_ws.domain.firmware import DATABASES, KeyDatabases, SecureBootCurrent
from bios_ws.domain.ports import UnitOfWorkFactory
from bios_ws.domain.principal import Principal, check_domain_id
from bios_ws.domain.state import ApplyTime, DomainState
from bios_ws.errors import InvalidRequest, InvalidSecureBootChange
from bios_ws.pki.certinfo import CertificateInfo, describe, pem_certificate_der
from bios_ws.service.bios import BiosService

SWITCH, MODE, POLICY = "SecureBoot", "SecureBootMode", "SecureBootPolicy"


class ResetKeysType(StrEnum):
    RESET_ALL_KEYS_TO_DEFAULT = "ResetAllKeysToDefault"
    DELETE_ALL_KEYS = "DeleteAllKeys"
    DELETE_PK = "DeletePK"


@dataclass(frozen=True)
class SecureBootView:
    enabled: bool
    current_boot: SecureBootCurrent
    mode: str
    #: The switch's value at the next reset, when a change is pending.
    pending_enabled: bool | None


class SecureBootService:
    def __init__(self, uow: UnitOfWorkFactory, bios: BiosService,
                 default_keys: Callable[[], KeyDatabases]) -> None:
        self._uow = uow
        self._bios = bios
        self._default_keys = default_keys

    # -- guests ----------------------------------------------------------------------

    def get(self, principal: Principal) -> SecureBootView:
        domain_id = principal.own_domain()
        state = self._bios.state_of(domain_id)
        with self._uow() as uow:
            current = uow.machines.get(domain_id).secure_boot_current
        pending = state.pending.get(SWITCH)
        return SecureBootView(
            enabled=state.current.get(SWITCH) == "Enabled", current_boot=current,
            mode=key_mode(self._keys(state)),
            pending_enabled=None if pending is None else pending == "Enabled")

    def set_enabled(self, principal: Principal, enabled: bool,
                    expected_version: int | None = None, password: str | None = None) -> int:
        """Turn Secure Boot on or off at the next reset."""
        return self._bios.set_attributes(principal, {SWITCH: "Enabled" if enabled else
                                                     "Disabled"}, ApplyTime.ON_RESET,
                                         expected_version, password)

    def reset_keys(self, principal: Principal, reset_type: ResetKeysType,
                   expected_version: int | None = None, password: str | None = None) -> int:
        def change(state: DomainState) -> Mapping[str, object]:
            state.check_setup_password(password)
            if reset_type is ResetKeysType.RESET_ALL_KEYS_TO_DEFAULT:
                self._set_keys(state, None)
            elif reset_type is ResetKeysType.DELETE_ALL_KEYS:
                self._set_keys(state, KeyDatabases())
            else:
                self._set_keys(state, replace(self._keys(state), pk=()))
            return {"reset_keys": reset_type.value}

        return self._bios.write(principal, "ResetSecureBootKeys", principal.own_domain,
                                change, expected_version)

    def databases(self, principal: Principal) -> dict[str, list[CertificateInfo]]:
        """Each database's certificates, as the firmware gets them at its next boot."""
        keys = self._keys(self._bios.state_of(principal.own_domain()))
        return {name: [describe(der) for der in keys.of(name)] for name in DATABASES}

    # -- the admin -------------------------------------------------------------------

    def add_certificate(self, principal: Principal, domain_id: str, database: str,
                        pem: str) -> int:
        def change(state: DomainState) -> Mapping[str, object]:
            der = pem_certificate_der(pem)
            keys = self._keys(state)
            present = keys.of(check_database(database))
            if der in present:
                raise InvalidSecureBootChange(f"{database} holds this certificate already",
                                              attribute=database)
            self._set_keys(state, _with(keys, database, (*present, der)))
            return {"database": database, "added": describe(der).sha256}

        return self._admin_write(principal, "AddSecureBootCertificate", domain_id, change)

    def remove_certificate(self, principal: Principal, domain_id: str, database: str,
                           sha256: str) -> int:
        def change(state: DomainState) -> Mapping[str, object]:
            keys = self._keys(state)
            present = keys.of(check_database(database))
            kept = tuple(der for der in present if describe(der).sha256 != sha256.lower())
            if len(kept) == len(present):
                raise InvalidSecureBootChange(f"{database} holds no certificate {sha256}",
                                              attribute=database)
            if database == "PK" and not kept and state.current.get(SWITCH) == "Enabled":
                raise InvalidSecureBootChange(
                    "removing the last platform key while Secure Boot is on would leave"
                    " it in setup mode: use ResetSecureBootKeys DeletePK", attribute="PK")
            self._set_keys(state, _with(keys, database, kept))
            return {"database": database, "removed": sha256.lower()}

        return self._admin_write(principal, "RemoveSecureBootCertificate", domain_id, change)

    # -- the rules ---------------------------------------------------------------------

    def _keys(self, state: DomainState) -> KeyDatabases:
        return state.secure_boot_keys if state.secure_boot_keys is not None \
            else self._default_keys()

    def _set_keys(self, state: DomainState, keys: KeyDatabases | None) -> None:
        """New key databases (None: the default set), and the attributes that follow them."""
        state.secure_boot_keys = keys
        follow_keys(state, self._keys(state))

    def _admin_write(self, principal: Principal, operation: str, domain_id: str,
                     change: Callable[[DomainState], Mapping[str, object]]) -> int:
        def target() -> str:
            principal.require_admin_of(domain_id)  # or the domain's platform (routed)
            return check_domain_id(domain_id)

        return self._bios.write(principal, operation, target, change, None,
                                requested=domain_id)


def key_mode(keys: KeyDatabases) -> str:
    """The Secure Boot mode keys put the firmware in."""
    return "SetupMode" if keys.setup_mode else "DeployedMode"


def follow_keys(state: DomainState, effective: KeyDatabases) -> None:
    """Set the attributes that follow the keys (one truth, two views), where the registry
    has them."""
    if MODE in state.current:
        state.current[MODE] = key_mode(effective)
    if POLICY in state.current:
        state.current[POLICY] = "Standard" if state.secure_boot_keys is None else "Custom"


def check_database(name: str) -> str:
    if name not in DATABASES:
        raise InvalidRequest(f"no Secure Boot database {name!r}: use one of"
                             f" {', '.join(DATABASES)}")
    return name


def _with(keys: KeyDatabases, database: str, certificates: tuple[bytes, ...]) -> KeyDatabases:
    field = {"PK": "pk", "KEK": "kek", "db": "db", "dbx": "dbx"}[database]
    return replace(keys, **{field: certificates})
