"""BiosClient: the guest's view of its own vBIOS, over mutual TLS."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from vbios_client import _bundle, _wire
from vbios_client._attestation_calls import AttestationCalls
from vbios_client._channel import DEFAULT_TIMEOUT, Sender, SoapChannel, check_timeout, check_url
from vbios_client._events import EventCalls
from vbios_client._firmware import FirmwareCalls
from vbios_client._system import SystemManagementCalls
from vbios_client._thermal import ThermalCalls
from vbios_client.exceptions import VbiosClientError
from vbios_client.models import (
    APPLY_TIMES,
    RESET_KEYS_TYPES,
    RESET_TYPES,
    AttributeRegistry,
    AttributeSet,
    BootConfig,
    CachedAnswer,
    IssuedBundle,
    PendingAttributes,
    PowerState,
    ProvisioningState,
    ResetOutcome,
    SecureBoot,
    SecureBootCertificate,
)

if TYPE_CHECKING:  # attestation and renewal bring cryptography: imported when used
    import requests

    from vbios_client._renewal import BundleRenewal
    from vbios_client.attestation import ClockState

StrPath = str | os.PathLike[str]
log = logging.getLogger("vbios_client")


class BiosClient(AttestationCalls, FirmwareCalls, SystemManagementCalls, ThermalCalls,
                 EventCalls):
    """Calls the vBIOS service as the domain named by the client certificate.

    Every write returns the domain's new version; pass it back as
    ``expected_version`` to make the next write conditional (If-Match).
    Faults raise ``vbios_client.FaultError`` subclasses; network, TLS and
    timeout failures raise ``vbios_client.TransportError``.

    A client may be shared by threads. It sends through a small pool of keep-alive
    TLS connections speaking a strict HTTP/1.1 of the library's own (``_https``;
    neither requests nor http.client is imported): a thread takes an idle connection
    or opens one, at most four wait between calls, and one the server closed while
    idle is replaced transparently (a read is sent again once, a write only if its
    request was not written whole).
    The TLS settings come from the bundle alone: its CA is the only one trusted,
    whatever ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` or ``SSL_CERT_FILE`` say; the
    server's name is checked; TLS 1.2 at least; no proxy, no redirect.
    Firmware updates (``update_firmware`` and the rest) are ``_firmware.FirmwareCalls``;
    SMBIOS, the event log, the wake alarm and the watchdog ``_system.SystemManagementCalls``.
    A read the vBIOS answered from its cache of a remote vBIOS's answers (that remote
    being unavailable, docs/routing.md) is told by ``last_answer_cached``.
    Firmware updates (``update_firmware`` and the rest) are ``_firmware.FirmwareCalls``,
    thermal readings (``thermal``) ``_thermal.ThermalCalls``, events (``events``, an
    iterator, and the subscription calls) ``_events.EventCalls``.
    """

    def __init__(
        self, url: str, cert: StrPath, key: StrPath, ca: StrPath, *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        check_url(url)
        check_timeout(timeout)
        self._paths: tuple[Path, Path, Path] | None = (Path(cert), Path(key), Path(ca))
        self._current = SoapChannel(url, self._sender(), timeout=timeout)
        self._ca_path: Path | None = Path(ca)
        self._clocks: dict[str, ClockState] = {}
        self._renewal: BundleRenewal | None = None

    @classmethod
    def from_bundle(
        cls, url: str, bundle_dir: StrPath, *, timeout: float = DEFAULT_TIMEOUT,
        auto_renew: bool = True,
    ) -> BiosClient:
        """A client from a bundle directory holding cert.pem, key.pem and ca.pem.

        With ``auto_renew`` (the default) the client renews its certificate by itself,
        once, before a call when less than a third of the certificate's lifetime
        remains (``renew_certificate``; a failure is logged and the current certificate
        kept). A renewal a crash interrupted is finished here first.
        """
        bundle = Path(bundle_dir)
        if not bundle.is_dir():
            raise ValueError(f"client bundle {str(bundle)!r} is not a directory")
        _bundle.recover(bundle)
        client = cls(url, bundle / "cert.pem", bundle / "key.pem", bundle / "ca.pem",
                     timeout=timeout)
        from vbios_client._renewal import BundleRenewal

        client._renewal = BundleRenewal(bundle.absolute(), automatic=auto_renew)
        return client

    @classmethod
    def _over_session(
        cls, url: str, session: requests.Session, *, timeout: float = DEFAULT_TIMEOUT
    ) -> BiosClient:
        """A client that sends through ``session`` (a ``requests.Session``) instead of its
        own connections: tests mount in-process adapters on it."""
        from vbios_client._soap import RequestsSender

        client = cls.__new__(cls)
        client._current = SoapChannel(url, RequestsSender(session), timeout=timeout)
        client._paths = None
        client._ca_path = None
        client._clocks = {}
        client._renewal = None
        return client

    @property
    def url(self) -> str:
        return self._current.url

    @property
    def last_answer_cached(self) -> CachedAnswer | None:
        """None when the calling thread's last answer came fresh; a ``CachedAnswer``
        (the remote, the answer's age in seconds) when the vBIOS served it from its cache
        of a remote's answers because that remote was unavailable (a route with a cache:
        only reads; docs/routing.md)."""
        return self._current.last_cached()

    @property
    def renewed(self) -> IssuedBundle | None:
        """What this client's renewal (asked for or automatic) wrote; None before one."""
        return None if self._renewal is None else self._renewal.renewed

    def close(self) -> None:
        self._current.close()

    def __enter__(self) -> BiosClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def _channel(self) -> SoapChannel:
        """The channel of the next call; an automatic renewal that is due happens first."""
        if self._renewal is not None and self._renewal.due():
            self._renew_automatically()
        return self._current

    # -- credential ------------------------------------------------------------

    def get_provisioning_state(self) -> ProvisioningState:
        """S1, S2 or S3, the next step, and until when the domain's certificate is valid."""
        return _wire.provisioning_state(self._channel.call("GetProvisioningState"))

    def renew_certificate(self) -> IssuedBundle:
        """A certificate for a fresh key made here, written into the bundle in place.

        cert.pem and key.pem are replaced (each atomically; a crash between the two is
        finished by the next ``from_bundle``); the client switches to them at once and
        calls GetProvisioningState with them, so that the server revokes the old
        certificate. Only for a client made with ``from_bundle``.
        """
        if self._renewal is None:
            raise ValueError("only a client made with from_bundle renews: the new"
                             " certificate replaces the bundle's")
        issued = self._renewal.renew(self._current)
        assert issued is not None
        self._reopen()
        self._current.call("GetProvisioningState")  # the old certificate is revoked now
        return issued

    def _renew_automatically(self) -> None:
        assert self._renewal is not None
        try:
            issued = self._renewal.renew(self._current, only_if_due=True)
        except VbiosClientError as exc:
            log.warning("automatic renewal of the certificate in %s failed; the current one"
                        " stays: %s", self._renewal.bundle, exc)
            return
        self._reopen()
        if issued is None:
            return
        log.info("renewed the certificate in %s: serial %s, valid until %s",
                 issued.path, issued.serial, issued.not_after.isoformat())
        try:
            self._current.call("GetProvisioningState")
        except VbiosClientError as exc:
            log.warning("the renewed certificate was not used yet: %s", exc)

    def _reopen(self) -> None:
        """A new sender on the bundle's files (new connections: the new certificate)."""
        old = self._current
        self._current = SoapChannel(old.url, self._sender(), timeout=old.timeout)
        old.close()

    def _sender(self) -> Sender:
        """What posts this client's calls: over the files in ``_paths``."""
        assert self._paths is not None
        from vbios_client import _https

        return _https.HttpsSender(*self._paths)

    # -- attributes ------------------------------------------------------------

    def get_attribute_registry(self) -> AttributeRegistry:
        return _wire.attribute_registry(self._channel.call("GetAttributeRegistry"))

    def get_attributes(self, names: Iterable[str] | None = None) -> AttributeSet:
        """Current values; ``names`` limits them (an unknown name is a fault)."""
        checked = _wire.names_list(names)
        params: dict[str, Any] = {}
        if checked:
            params["Names"] = {"Name": checked}
        return _wire.attribute_set(self._channel.call("GetAttributes", **params))

    def set_attributes(
        self,
        changes: Mapping[str, str | int | bool],
        apply_time: str = "Immediate",
        expected_version: int | None = None,
        password: str | None = None,
    ) -> int:
        if not isinstance(changes, Mapping) or not changes:
            raise ValueError("changes must be a non-empty mapping of name to value")
        if apply_time not in APPLY_TIMES:
            raise ValueError(f"apply_time must be one of {', '.join(APPLY_TIMES)}, "
                             f"not {apply_time!r}")
        params = {
            "Attributes": {"AttributeValue": _wire.attribute_values(changes)},
            "ApplyTime": apply_time,
            **_wire.guard(expected_version, password),
        }
        return _wire.version(self._channel.call("SetAttributes", **params))

    def get_pending_attributes(self) -> PendingAttributes:
        return _wire.pending_attributes(self._channel.call("GetPendingAttributes"))

    def cancel_pending_attributes(
        self, expected_version: int | None = None, password: str | None = None
    ) -> int:
        params = _wire.guard(expected_version, password)
        return _wire.version(self._channel.call("CancelPendingAttributes", **params))

    def reset_attributes_to_defaults(
        self, expected_version: int | None = None, password: str | None = None
    ) -> int:
        """Registry defaults become pending values, applied at the next reset."""
        params = _wire.guard(expected_version, password)
        return _wire.version(self._channel.call("ResetAttributesToDefaults", **params))

    def change_password(
        self,
        name: str,
        old_password: str | None,
        new_password: str,
        expected_version: int | None = None,
        password: str | None = None,
    ) -> int:
        """Set, change or (with ``new_password=""``) clear the password attribute ``name``."""
        _wire.check_str("name", name, empty=False)
        if old_password is not None:
            _wire.check_str("old_password", old_password)
        _wire.check_str("new_password", new_password)
        params: dict[str, Any] = {
            "PasswordName": name,
            "NewPassword": new_password,
            **_wire.guard(expected_version, password),
        }
        if old_password:
            params["OldPassword"] = old_password
        return _wire.version(self._channel.call("ChangePassword", **params))

    # -- boot ------------------------------------------------------------------

    def get_boot_order(self) -> BootConfig:
        return _wire.boot_config(self._channel.call("GetBootOrder"))

    def set_boot_order(
        self, order: Sequence[str], expected_version: int | None = None,
        password: str | None = None,
    ) -> int:
        """``order`` names every boot option exactly once."""
        if isinstance(order, str) or not isinstance(order, Sequence):
            raise TypeError("order must be a sequence of boot option ids")
        for option_id in order:
            _wire.check_str("boot option id", option_id, empty=False)
        params = {"Order": {"OptionId": list(order)}, **_wire.guard(expected_version, password)}
        return _wire.version(self._channel.call("SetBootOrder", **params))

    def set_boot_next(
        self, option_id: str | None, expected_version: int | None = None,
        password: str | None = None,
    ) -> int:
        """Boot ``option_id`` once at the next reset; None clears it."""
        params = _wire.guard(expected_version, password)
        if option_id is not None:
            _wire.check_str("option_id", option_id, empty=False)
            params["BootNext"] = option_id
        return _wire.version(self._channel.call("SetBootNext", **params))


    # -- power -----------------------------------------------------------------

    def get_power_state(self) -> PowerState:
        """The domain's power state, last reset cause and time, and pending changes."""
        return _wire.power_state(self._channel.call("GetPowerState"))

    def reset(self, reset_type: str) -> ResetOutcome:
        """A power request (``RESET_TYPES``: On, ForceOff, GracefulShutdown, ...)."""
        if reset_type not in RESET_TYPES:
            raise ValueError(f"reset_type must be one of {', '.join(RESET_TYPES)},"
                             f" not {reset_type!r}")
        return _wire.reset_outcome(self._channel.call("Reset", ResetType=reset_type))

    # -- Secure Boot -------------------------------------------------------------

    def get_secure_boot(self) -> SecureBoot:
        return _wire.secure_boot(self._channel.call("GetSecureBoot"))

    def set_secure_boot(self, enabled: bool, expected_version: int | None = None,
                        password: str | None = None) -> int:
        """Turn Secure Boot on or off at the next reset."""
        if not isinstance(enabled, bool):
            raise TypeError("enabled must be a bool")
        params = {"Enabled": enabled, **_wire.guard(expected_version, password)}
        return _wire.version(self._channel.call("SetSecureBoot", **params))

    def reset_secure_boot_keys(self, reset_type: str, expected_version: int | None = None,
                               password: str | None = None) -> int:
        """``RESET_KEYS_TYPES``: ResetAllKeysToDefault, DeleteAllKeys or DeletePK."""
        if reset_type not in RESET_KEYS_TYPES:
            raise ValueError(f"reset_type must be one of {', '.join(RESET_KEYS_TYPES)},"
                             f" not {reset_type!r}")
        params = {"ResetKeysType": reset_type, **_wire.guard(expected_version, password)}
        return _wire.version(self._channel.call("ResetSecureBootKeys", **params))

    def get_secure_boot_databases(self) -> dict[str, list[SecureBootCertificate]]:
        """PK, KEK, db and dbx: the certificates the firmware gets at its next boot."""
        return _wire.secure_boot_databases(self._channel.call("GetSecureBootDatabases"))
