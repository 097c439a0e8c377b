"""Secure Boot use cases, and the boot observer's firmware bookkeeping, over memory fakes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.firmware import FirmwareState, KeyDatabases, SecureBootCurrent
from bios_ws.domain.power import MachineKind, ResetCause
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.errors import (
    AccessDenied,
    InvalidRequest,
    InvalidSecureBootChange,
    PasswordRequired,
    ServiceRestricted,
)
from bios_ws.platform.simulated import in_memory_machines
from bios_ws.service.bios import BiosService
from bios_ws.service.boot import MachineObserver
from bios_ws.service.domains import DomainService
from bios_ws.service.secureboot import ResetKeysType, SecureBootService

GUEST = Principal.guest("vm1")
ADMIN = Principal.admin("root")


def certificate(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=9))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


def pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()


PLATFORM_KEY = certificate("test platform key")
DEFAULT = KeyDatabases(pk=(PLATFORM_KEY,), kek=(PLATFORM_KEY,), db=(PLATFORM_KEY,))


@dataclass
class World:
    store: MemoryStore
    bios: BiosService
    secure: SecureBootService
    observer: MachineObserver
    restricted: bool = False

    def gate(self) -> None:
        if self.restricted:
            raise ServiceRestricted("untrusted")


@pytest.fixture
def world(shipped_registry: AttributeRegistry) -> World:
    store = MemoryStore()
    holder: list[World] = []
    bios = BiosService(store.unit_of_work, shipped_registry, gate=lambda: holder[0].gate())
    domains = DomainService(store.unit_of_work, shipped_registry, in_memory_machines(),
                            default_keys=lambda: DEFAULT)
    domains.create(ADMIN, "vm1")
    observer = MachineObserver(store.unit_of_work, bios, lambda: datetime.now(UTC),
                               lambda: DEFAULT)
    holder.append(World(store, bios, SecureBootService(store.unit_of_work, bios,
                                                       lambda: DEFAULT), observer))
    return holder[0]


def test_a_new_domain_has_the_default_keys_and_an_unknown_current_boot(world: World) -> None:
    view = world.secure.get(GUEST)
    assert (view.enabled, view.current_boot, view.mode, view.pending_enabled) == (
        True, SecureBootCurrent.UNKNOWN, "DeployedMode", None)
    databases = world.secure.databases(GUEST)
    assert [c.subject for c in databases["PK"]] == ["CN=test platform key"]
    assert databases["dbx"] == []


def test_the_switch_is_the_attribute_and_changes_at_reset(world: World) -> None:
    version = world.secure.set_enabled(GUEST, False)
    view = world.secure.get(GUEST)
    assert view.enabled and view.pending_enabled is False
    assert world.bios.get_pending(GUEST).values == {"SecureBoot": "Disabled"}
    world.bios.apply_pending(ADMIN, "vm1")
    assert not world.secure.get(GUEST).enabled
    assert version == 2


def test_key_resets_move_mode_and_policy_with_the_keys(world: World) -> None:
    world.secure.reset_keys(GUEST, ResetKeysType.DELETE_PK)
    attributes = world.bios.get_attributes(GUEST).values
    assert world.secure.databases(GUEST)["PK"] == [] and len(
        world.secure.databases(GUEST)["KEK"]) == 1
    assert (attributes["SecureBootMode"], attributes["SecureBootPolicy"]) == (
        "SetupMode", "Custom")
    world.secure.reset_keys(GUEST, ResetKeysType.DELETE_ALL_KEYS)
    assert all(v == [] for v in world.secure.databases(GUEST).values())
    world.secure.reset_keys(GUEST, ResetKeysType.RESET_ALL_KEYS_TO_DEFAULT)
    attributes = world.bios.get_attributes(GUEST).values
    assert (attributes["SecureBootMode"], attributes["SecureBootPolicy"]) == (
        "DeployedMode", "Standard")
    assert world.secure.get(GUEST).mode == "DeployedMode"


def test_admin_adds_and_removes_certificates(world: World) -> None:
    extra = certificate("extra db key")
    world.secure.add_certificate(ADMIN, "vm1", "db", pem(extra))
    db = world.secure.databases(GUEST)["db"]
    assert [c.subject for c in db] == ["CN=test platform key", "CN=extra db key"]
    assert world.bios.get_attributes(GUEST).values["SecureBootPolicy"] == "Custom"
    world.secure.remove_certificate(ADMIN, "vm1", "db", db[1].sha256)
    assert len(world.secure.databases(GUEST)["db"]) == 1


@pytest.mark.parametrize(("database", "text", "error"), [
    ("db", "not a certificate", InvalidRequest),
    ("db", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", InvalidRequest),
    ("nodb", None, InvalidRequest),
    ("PK", None, InvalidSecureBootChange),  # already there
])
def test_refused_additions_change_nothing(world: World, database: str, text: str | None,
                                          error: type[Exception]) -> None:
    before = world.store.domains["vm1"][0].copy()
    with pytest.raises(error):
        world.secure.add_certificate(ADMIN, "vm1", database, text or pem(PLATFORM_KEY))
    assert world.store.domains["vm1"][0] == before
    assert world.store.audit[-1].outcome.startswith("refused:")


def test_the_last_platform_key_stays_while_secure_boot_is_on(world: World) -> None:
    before = world.store.domains["vm1"][0].copy()
    fingerprint = world.secure.databases(GUEST)["PK"][0].sha256
    with pytest.raises(InvalidSecureBootChange, match="DeletePK") as refused:
        world.secure.remove_certificate(ADMIN, "vm1", "PK", fingerprint)
    assert refused.value.attribute == "PK"
    assert world.store.domains["vm1"][0] == before
    with pytest.raises(InvalidSecureBootChange):
        world.secure.remove_certificate(ADMIN, "vm1", "KEK", "00" * 32)


def test_guests_may_not_touch_certificates_and_writes_are_guarded(world: World) -> None:
    with pytest.raises(AccessDenied):
        world.secure.add_certificate(GUEST, "vm1", "db", pem(certificate("x")))
    world.bios.change_password(GUEST, "SetupPassword", None, "correct-horse-9")
    with pytest.raises(PasswordRequired):
        world.secure.reset_keys(GUEST, ResetKeysType.DELETE_ALL_KEYS)
    world.restricted = True
    with pytest.raises(ServiceRestricted):
        world.secure.reset_keys(GUEST, ResetKeysType.DELETE_ALL_KEYS, password="correct-horse-9")


def test_a_real_firmware_gets_boot_next_and_gives_it_back_after_the_run(world: World) -> None:
    with world.store.unit_of_work() as uow:  # the machine of vm1 is a QEMU guest here
        record = uow.machines.get("vm1")
        uow.machines.save(replace(record, kind=MachineKind.QEMU), record.version)
        uow.commit()
    world.bios.set_boot_next(GUEST, "Shell.Uefi")
    plan = world.observer.before_boot("vm1", ResetCause.MANAGEMENT_COMMAND)
    assert plan is not None and plan.firmware.boot_next == 5
    assert world.bios.get_boot(GUEST).boot_next == "Shell.Uefi"  # not until the firmware ran
    machine = world.store.machines["vm1"]
    assert machine.delivered_boot_next == "Shell.Uefi"
    assert machine.secure_boot_current is SecureBootCurrent.ENABLED
    still = FirmwareState(boot_order=(1,), boot_next=5, secure_boot_enable=True, keys=DEFAULT)
    world.observer.after_run("vm1", still)
    assert world.bios.get_boot(GUEST).boot_next == "Shell.Uefi"
    world.observer.after_run("vm1", FirmwareState((1,), None, True, DEFAULT))
    assert world.bios.get_boot(GUEST).boot_next is None
    assert world.store.audit[-1].operation == "FirmwareConsumedBootNext"
    assert world.store.machines["vm1"].delivered_boot_next is None


def test_a_simulated_machine_consumes_boot_next_at_its_boot(world: World) -> None:
    world.bios.set_boot_next(GUEST, "Shell.Uefi")
    plan = world.observer.before_boot("vm1", ResetCause.MANAGEMENT_COMMAND)
    assert plan is not None and plan.firmware.boot_next is None
    assert world.bios.get_boot(GUEST).boot_next is None
