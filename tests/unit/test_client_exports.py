"""The public surface of vbios_client is pinned: adding or removing a name is deliberate."""

from __future__ import annotations

import vbios_client
from vbios_client import exceptions

EXPECTED = {
    "AccessDenied", "AttributeDefinition", "AttributeRegistry", "AttributeSet", "BiosClient",
    "BootConfig", "BootOption", "DomainExists", "DomainNotFound", "FaultError", "InternalError",
    "InvalidAttributeValue", "InvalidBootOrder", "InvalidPassword", "InvalidRequest",
    "MustUnderstand", "PasswordRequired", "PendingAttributes", "ReadOnlyAttribute",
    "ResetRequired", "StoreUnavailable", "TpmUnavailable", "ServiceRestricted",
    "AttestationUnavailable", "TpmError", "TransportError", "UnknownAttribute",
    "UnknownBootOption", "VbiosClientError", "VersionConflict", "VersionMismatch",
    "InvalidPowerTransition", "PlatformUnavailable", "MachineError", "RemoteUnavailable",
    "PowerState",
    "ResetOutcome", "InvalidSecureBootChange", "SecureBoot", "SecureBootCertificate",
    "BootstrapUri", "BundleError", "CaPinMismatch", "CertificateMismatch", "EnrollmentError",
    "InvalidBootstrapUri", "IssuedBundle", "ProvisioningState", "enroll", "parse_bootstrap_uri",
    "CapsuleNotTrusted", "ChunkRefused", "FirmwareJobTimeout", "FirmwareUpdateRefused",
    "InvalidCapsule", "UnknownFirmwareJob", "UnknownUpload", "UpdateInProgress",
    "FirmwareChunk", "FirmwareEntry", "FirmwareJob", "FirmwareUpload", "FirmwareUploadStatus",
    "UnknownRequestKind", "WatchdogNotArmed", "SelEntry", "Smbios", "SystemEventLog",
    "WakeAlarm", "Watchdog",
    "Fan", "TemperatureSensor", "Thermal", "ThermalThreshold",
    "Event", "EventBatch", "EventSubscription", "SubscriptionExpired", "UnknownSubscription",
    "CachedAnswer",
    "__version__",
}


def test_all_is_pinned() -> None:
    assert set(vbios_client.__all__) == EXPECTED
    assert len(vbios_client.__all__) == len(EXPECTED)


def test_every_exported_name_exists_and_is_public() -> None:
    for name in vbios_client.__all__:
        member = getattr(vbios_client, name)
        if name != "__version__":
            assert member.__module__.startswith("vbios_client."), name
            assert not member.__module__.split(".")[-1].startswith("_"), name


def test_every_fault_class_is_exported() -> None:
    for code, cls in exceptions.FAULT_CLASSES.items():
        assert getattr(vbios_client, cls.__name__) is cls
        assert cls.code == code


def test_fault_codes_cover_the_server_contract() -> None:
    from bios_ws.capabilities import fault_classes

    SERVER_CODES = fault_classes()

    assert set(SERVER_CODES) <= set(exceptions.FAULT_CLASSES)


def test_transport_error_is_not_a_fault() -> None:
    assert not issubclass(vbios_client.TransportError, vbios_client.FaultError)
    assert issubclass(vbios_client.TransportError, vbios_client.VbiosClientError)
    assert issubclass(vbios_client.FaultError, vbios_client.VbiosClientError)


def test_enrollment_errors_stop_on_the_guests_side() -> None:
    for cls in (vbios_client.InvalidBootstrapUri, vbios_client.CaPinMismatch,
                vbios_client.CertificateMismatch, vbios_client.BundleError):
        assert issubclass(cls, vbios_client.EnrollmentError)
        assert not issubclass(cls, vbios_client.FaultError | vbios_client.TransportError)
    assert issubclass(vbios_client.InvalidBootstrapUri, ValueError)
