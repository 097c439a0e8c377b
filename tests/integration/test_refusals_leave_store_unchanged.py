"""Every refused write, sent as XML through the SOAP app into a real SQLite store,
leaves the stored domain row byte for byte as it was, and is audited as refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.domain.principal import Principal
from bios_ws.domain.state import ApplyTime
from bios_ws.platform.simulated import in_memory_machines
from bios_ws.registry_file import load_registry
from bios_ws.service.bios import BiosService
from bios_ws.service.domains import DomainService
from bios_ws.service.use_cases import UseCases
from bios_ws.soap.app import create_wsgi_app
from bios_ws.soap.guard import SoapGuard
from bios_ws.soap.testing import WsgiResult, call_wsgi, soap_envelope
from bios_ws.store import SqlStore, open_store

GUEST = Principal.guest("vm1")
SETUP_PASSWORD = "s3tup-secret"


def value(name: str, kind: str, text: str) -> str:
    return (f"<tns:AttributeValue><tns:Name>{name}</tns:Name>"
            f"<tns:{kind}>{text}</tns:{kind}></tns:AttributeValue>")


def set_attributes(*items: str, apply_time: str = "Immediate", extra: str = "") -> bytes:
    return soap_envelope(
        "SetAttributes",
        f"<tns:Attributes>{''.join(items)}</tns:Attributes>"
        f"<tns:ApplyTime>{apply_time}</tns:ApplyTime>{extra}",
    )


WITH_PASSWORD = f"<tns:Password>{SETUP_PASSWORD}</tns:Password>"
WRONG_PASSWORD = "<tns:Password>nope-nope</tns:Password>"
TIMEOUT_15 = value("BootTimeout", "IntegerValue", "15")


def guarded(*items: str) -> bytes:
    """SetAttributes carrying the right setup password."""
    return set_attributes(*items, extra=WITH_PASSWORD)


#: case -> (request, expected fault code), one for each way a write can be refused.
REFUSED = {
    "unknown attribute": (
        guarded(value("NoSuchThing", "StringValue", "x")), "UnknownAttribute"),
    "wrong type": (
        guarded(value("BootTimeout", "StringValue", "ten")), "InvalidAttributeValue"),
    "out of range": (
        guarded(value("BootTimeout", "IntegerValue", "100000")), "InvalidAttributeValue"),
    "too long": (
        guarded(value("AssetTag", "StringValue", "x" * 65)), "InvalidAttributeValue"),
    "read-only": (
        guarded(value("BiosVersion", "StringValue", "9.9.9")), "ReadOnlyAttribute"),
    "one bad among good": (
        guarded(TIMEOUT_15, value("AssetTag", "IntegerValue", "1")), "InvalidAttributeValue"),
    "missing password": (set_attributes(TIMEOUT_15), "PasswordRequired"),
    "wrong password": (set_attributes(TIMEOUT_15, extra=WRONG_PASSWORD), "InvalidPassword"),
    "stale version": (
        set_attributes(TIMEOUT_15, extra="<tns:ExpectedVersion>1</tns:ExpectedVersion>"
                       + WITH_PASSWORD),
        "VersionConflict"),
    "Immediate on reset-required": (
        guarded(value("BootMode", "StringValue", "Bios")), "ResetRequired"),
    "password through SetAttributes": (
        guarded(value("PowerOnPassword", "StringValue", "abcdefgh1")), "InvalidAttributeValue"),
    "cancel without password": (soap_envelope("CancelPendingAttributes"), "PasswordRequired"),
    "defaults with wrong password": (
        soap_envelope("ResetAttributesToDefaults", WRONG_PASSWORD), "InvalidPassword"),
    "boot order not a permutation": (
        soap_envelope("SetBootOrder", "<tns:Order><tns:OptionId>Shell.Uefi</tns:OptionId>"
                      "</tns:Order>" + WITH_PASSWORD),
        "InvalidBootOrder"),
    "unknown boot next": (
        soap_envelope("SetBootNext", "<tns:BootNext>Floppy.0</tns:BootNext>" + WITH_PASSWORD),
        "UnknownBootOption"),
    "wrong old setup password": (
        soap_envelope("ChangePassword", "<tns:PasswordName>SetupPassword</tns:PasswordName>"
                      "<tns:OldPassword>nope-nope</tns:OldPassword>"
                      "<tns:NewPassword>another-one</tns:NewPassword>"),
        "InvalidPassword"),
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "vbios.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqlStore]:
    store = open_store(f"sqlite:///{db}")
    yield store
    store.dispose()


@pytest.fixture
def app(store: SqlStore) -> SoapGuard:
    registry = load_registry()
    DomainService(store.unit_of_work, registry,
        in_memory_machines()).create(Principal.admin(), "vm1")
    bios = BiosService(store.unit_of_work, registry)
    bios.change_password(GUEST, "SetupPassword", None, SETUP_PASSWORD)
    bios.set_attributes(GUEST, {"BootMode": "Bios"}, ApplyTime.ON_RESET, None, SETUP_PASSWORD)
    return create_wsgi_app(UseCases([bios]))


def stored_row(db: Path) -> tuple[int, bytes]:
    with sqlite3.connect(db) as conn:
        version, state = conn.execute(
            "SELECT version, state FROM domains WHERE domain_id = 'vm1'"
        ).fetchone()
    return int(version), state.encode() if isinstance(state, str) else bytes(state)


def audit_outcomes(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT outcome FROM audit ORDER BY seq")]


def fault_code(result: WsgiResult) -> str | None:
    assert result.status == 500, result.body
    return result.detail("Code")


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_write_leaves_the_stored_row_unchanged(
    case: str, app: SoapGuard, db: Path
) -> None:
    request, code = REFUSED[case]
    before = stored_row(db)
    audited = len(audit_outcomes(db))

    assert fault_code(call_wsgi(app, request, principal=GUEST)) == code

    assert stored_row(db) == before
    assert audit_outcomes(db)[audited:] == [f"refused:{code}"]


def test_the_same_write_with_what_was_missing_succeeds(app: SoapGuard, db: Path) -> None:
    """The refusals above are not an artefact of a broken set-up."""
    before = stored_row(db)
    request = set_attributes(value("BootTimeout", "IntegerValue", "15"),
                             extra=f"<tns:ExpectedVersion>{before[0]}</tns:ExpectedVersion>"
                             + WITH_PASSWORD)
    result = call_wsgi(app, request, principal=GUEST)
    assert result.status == 200, result.body
    assert stored_row(db)[0] == before[0] + 1
    assert audit_outcomes(db)[-1] == "ok"
