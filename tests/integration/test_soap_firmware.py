"""The firmware operations through XML, in-process: uploads in chunks (plain and encrypted
with one-time keys), their resumption and every refusal as a typed fault, the commit into
a job, the inventory and the history."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from vbios_client._transfer import OneTimeSender

from bios_ws.domain.firmware_upload import MAX_CHUNK_BYTES, MAX_OPEN_UPLOADS, UPLOAD_LIFETIME
from bios_ws.domain.principal import Principal
from bios_ws.firmware.transfer import TransferKey
from bios_ws.service.firmware_trust import FirmwareTrustService
from bios_ws.service.firmware_upload import FirmwareUploadService
from bios_ws.soap.testing import Endpoint, WsgiResult, build_endpoint
from tests.firmware_support import Signers, capsule, firmware_volume, make_signers

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NS = "{urn:bios-ws:vbios:v1}"


@pytest.fixture
def signers() -> Signers:
    return make_signers(NOW)


@pytest.fixture
def ep(signers: Signers) -> Endpoint:
    endpoint = build_endpoint(transfer_key=TransferKey.generate())
    endpoint.clock.moment = NOW
    endpoint.use_cases.use(FirmwareTrustService).add(endpoint.admin, signers.root.cert_pem())
    return endpoint


def ok(result: WsgiResult) -> WsgiResult:
    assert result.status == 200 and result.fault_code() is None, result.body
    return result


def value(result: WsgiResult, name: str) -> str:
    found = ok(result).xml().findtext(f".//{NS}{name}")
    assert found is not None, result.body
    return found


def refused(result: WsgiResult, code: str, attribute: str | None = None) -> str:
    assert result.status == 500, result.body
    assert result.detail("Code") == code, result.body
    if attribute is not None:
        assert result.detail("Attribute") == attribute, result.body
    return str(result.detail("Message"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def begin(ep: Endpoint, data: bytes, *, client_key: bytes | None = None,
          as_: Principal | None = None) -> WsgiResult:
    key = "" if client_key is None else f"<tns:ClientKey>{b64(client_key)}</tns:ClientKey>"
    return ep.call("BeginFirmwareUpload", f"<tns:Size>{len(data)}</tns:Size><tns:Sha256>"
                   f"{hashlib.sha256(data).hexdigest()}</tns:Sha256>{key}", as_=as_)


def chunk(ep: Endpoint, upload_id: str, offset: int, data: bytes, *,
          sha256: str | None = None, as_: Principal | None = None) -> WsgiResult:
    digest = sha256 or hashlib.sha256(data).hexdigest()
    return ep.call("UploadFirmwareChunk", f"<tns:UploadId>{upload_id}</tns:UploadId>"
                   f"<tns:Offset>{offset}</tns:Offset><tns:Data>{b64(data)}</tns:Data>"
                   f"<tns:Sha256>{digest}</tns:Sha256>", as_=as_)


def commit(ep: Endpoint, upload_id: str, apply_time: str = "OnReset") -> WsgiResult:
    return ep.call("CommitFirmwareUpload", f"<tns:UploadId>{upload_id}</tns:UploadId>"
                   f"<tns:ApplyTime>{apply_time}</tns:ApplyTime>")


def send(ep: Endpoint, upload_id: str, data: bytes, size: int) -> None:
    for offset in range(0, len(data), size):
        ok(chunk(ep, upload_id, offset, data[offset:offset + size]))


def status(ep: Endpoint, upload_id: str, field: str) -> str:
    return value(ep.call("GetFirmwareUpload", f"<tns:UploadId>{upload_id}</tns:UploadId>"),
                 field)


# --- plain uploads --------------------------------------------------------------------------

def test_a_capsule_in_chunks_becomes_a_job_and_the_history_shows_it(
        ep: Endpoint, signers: Signers) -> None:
    data = capsule(signers, 2, count=1, image=firmware_volume(64 * 1024))
    opened = begin(ep, data)
    upload_id = value(opened, "UploadId")
    assert int(value(opened, "MaxChunkSize")) == MAX_CHUNK_BYTES
    assert value(opened, "NextOffset") == "0"
    assert ok(opened).xml().find(f".//{NS}ServerOneTimeKey") is None
    send(ep, upload_id, data, 20_000)
    assert int(status(ep, upload_id, "NextOffset")) == len(data)
    assert status(ep, upload_id, "Encrypted") == "false"
    job = commit(ep, upload_id)
    assert (value(job, "State"), value(job, "Slot"), value(job, "FwVersion"),
            value(job, "FromVersion"), value(job, "PercentComplete")) == (
        "NeedsReset", "B", "2", "1", "40")
    assert value(job, "Signer") == "CN=Update Signer"
    job_id = value(job, "JobId")
    assert value(ep.call("GetFirmwareJob", f"<tns:JobId>{job_id}</tns:JobId>"),
                 "State") == "NeedsReset"
    assert value(ep.call("GetFirmwareJob"), "JobId") == job_id  # the newest
    history = ok(ep.call("GetFirmwareHistory")).xml().findall(f".//{NS}Job")
    assert [h.findtext(f"{NS}JobId") for h in history] == [job_id]
    refused(commit(ep, upload_id), "UnknownUpload")  # committed: gone


def test_the_inventory_and_the_admin_s_view(ep: Endpoint) -> None:
    inventory = ep.call("GetFirmwareInventory")
    assert (value(inventory, "FwVersion"), value(inventory, "LowestSupportedVersion"),
            value(inventory, "ActiveSlot"), value(inventory, "LastAttemptStatus"),
            value(inventory, "LastAttemptStatusCode"), value(inventory, "BiosVersion")) == (
        "1", "1", "A", "Success", "0", "vbios-1")
    admin = ep.call("GetDomainFirmwareInventory", "<tns:Domain>vm1</tns:Domain>",
                    as_=ep.admin)
    assert value(admin, "FirmwareClass") == value(inventory, "FirmwareClass")
    refused(ep.call("GetDomainFirmwareHistory", "<tns:Domain>vm1</tns:Domain>"),
            "AccessDenied")


def test_an_interrupted_upload_resumes_at_the_next_offset(ep: Endpoint,
                                                          signers: Signers) -> None:
    data = capsule(signers, 2, image=firmware_volume(32 * 1024))
    upload_id = value(begin(ep, data), "UploadId")
    ok(chunk(ep, upload_id, 0, data[:10_000]))
    # the answer to the next chunk was lost: the client resends it, is told where to go on
    ok(chunk(ep, upload_id, 10_000, data[10_000:20_000]))
    refused(chunk(ep, upload_id, 10_000, data[10_000:20_000]), "ChunkRefused", "Offset")
    nxt = int(status(ep, upload_id, "NextOffset"))
    assert nxt == 20_000
    ok(chunk(ep, upload_id, nxt, data[nxt:]))
    assert value(commit(ep, upload_id), "State") == "NeedsReset"


# --- chunk refusals: nothing taken ----------------------------------------------------------

def test_chunk_refusals_name_the_field_and_take_nothing(ep: Endpoint, signers: Signers) -> None:
    data = capsule(signers, 2)
    upload_id = value(begin(ep, data), "UploadId")
    refused(chunk(ep, upload_id, 0, data[:100], sha256="0" * 64), "ChunkRefused", "Sha256")
    refused(chunk(ep, upload_id, 5, data[5:100]), "ChunkRefused", "Offset")
    refused(chunk(ep, upload_id, 0, data + b"x"), "ChunkRefused", "Data")
    assert status(ep, upload_id, "NextOffset") == "0"
    refused(commit(ep, upload_id), "ChunkRefused", "Offset")  # incomplete
    refused(chunk(ep, "f" * 32, 0, data[:10]), "UnknownUpload")
    refused(chunk(ep, "../../etc", 0, data[:10]), "UnknownUpload")


def test_a_chunk_larger_than_the_bound_is_refused(ep: Endpoint) -> None:
    data = b"\x01" * (MAX_CHUNK_BYTES + 1)
    upload_id = value(begin(ep, data), "UploadId")
    message = refused(chunk(ep, upload_id, 0, data), "ChunkRefused", "Data")
    assert str(MAX_CHUNK_BYTES) in message


def test_a_capsule_whose_bytes_are_not_the_announced_ones_is_discarded(
        ep: Endpoint, signers: Signers) -> None:
    data = capsule(signers, 2)
    other = bytearray(data)
    other[-1] ^= 1
    upload_id = value(ep.call("BeginFirmwareUpload", f"<tns:Size>{len(data)}</tns:Size>"
                              f"<tns:Sha256>{hashlib.sha256(data).hexdigest()}</tns:Sha256>"),
                      "UploadId")
    ok(chunk(ep, upload_id, 0, bytes(other)))
    refused(commit(ep, upload_id), "ChunkRefused", "Sha256")
    refused(commit(ep, upload_id), "UnknownUpload")


@pytest.mark.parametrize(("size", "sha256"), [(0, "0" * 64), (-1, "0" * 64),
                                              (33 * 1024 * 1024, "0" * 64), (10, "abc"),
                                              (10, "g" * 64)])
def test_a_begin_with_a_bad_size_or_digest_is_refused(ep: Endpoint, size: int,
                                                      sha256: str) -> None:
    refused(ep.call("BeginFirmwareUpload", f"<tns:Size>{size}</tns:Size>"
                    f"<tns:Sha256>{sha256}</tns:Sha256>"), "InvalidRequest")


def test_a_domain_has_a_bounded_number_of_open_uploads(ep: Endpoint) -> None:
    for _ in range(MAX_OPEN_UPLOADS):
        ok(begin(ep, b"capsule"))
    refused(begin(ep, b"capsule"), "InvalidRequest")


def test_an_upload_belongs_to_its_domain(ep: Endpoint, signers: Signers) -> None:
    ep.domains.create(ep.admin, "vm2")
    data = capsule(signers, 2)
    upload_id = value(begin(ep, data), "UploadId")
    other = Principal.guest("vm2")
    refused(chunk(ep, upload_id, 0, data, as_=other), "UnknownUpload")
    ok(chunk(ep, upload_id, 0, data, as_=ep.admin))  # the admin may help
    assert value(commit(ep, upload_id), "State") == "NeedsReset"


def test_an_untouched_upload_expires_with_its_bytes(ep: Endpoint, signers: Signers) -> None:
    data = capsule(signers, 2)
    upload_id = value(begin(ep, data), "UploadId")
    ok(chunk(ep, upload_id, 0, data[:100]))
    ep.clock.moment += UPLOAD_LIFETIME - timedelta(seconds=1)
    ok(chunk(ep, upload_id, 100, data[100:200]))  # a chunk renews the lifetime
    ep.clock.moment += UPLOAD_LIFETIME
    refused(chunk(ep, upload_id, 200, data[200:]), "UnknownUpload")
    assert ep.use_cases.use(FirmwareUploadService).expire() == 1
    with ep.store.unit_of_work() as uow:
        assert uow.firmware.get_upload(upload_id) is None
        assert uow.firmware.read_chunks(upload_id) == b""


# --- the rules as faults --------------------------------------------------------------------

def upload_whole(ep: Endpoint, data: bytes) -> WsgiResult:
    upload_id = value(begin(ep, data), "UploadId")
    ok(chunk(ep, upload_id, 0, data))
    return commit(ep, upload_id)


def test_refusals_of_the_rules_are_typed_faults_and_kept_in_the_history(
        ep: Endpoint, signers: Signers) -> None:
    message = refused(upload_whole(ep, capsule(signers, 0, lowest=0, count=1)),
                      "FirmwareUpdateRefused", "FwVersion")
    assert "below the lowest supported version 1" in message
    ep.clock.advance(1)
    refused(upload_whole(ep, capsule(signers, 2, stranger=True)), "CapsuleNotTrusted")
    ep.clock.advance(1)
    refused(upload_whole(ep, b"not a capsule at all"), "InvalidCapsule")
    history = ok(ep.call("GetFirmwareHistory")).xml().findall(f".//{NS}Job")
    assert [(h.findtext(f"{NS}State"), h.findtext(f"{NS}Status")) for h in history] == [
        ("Failed", "InvalidFormat"), ("Failed", "AuthError"), ("Failed", "IncorrectVersion")]
    inventory = ep.call("GetFirmwareInventory")
    assert (value(inventory, "FwVersion"), value(inventory, "LastAttemptStatus")) == (
        "1", "AuthError")  # an unparsed capsule names no firmware class: not recorded


# --- encrypted uploads ----------------------------------------------------------------------

def encrypted_upload(ep: Endpoint, data: bytes, *, tamper: bool = False) -> WsgiResult:
    sender = OneTimeSender()
    opened = begin(ep, data, client_key=sender.client_public())
    upload_id = value(opened, "UploadId")
    ciphertext = bytearray(sender.encrypt(
        upload_id, base64.b64decode(value(opened, "ServerStaticKey")),
        base64.b64decode(value(opened, "ServerOneTimeKey")), data))
    assert len(ciphertext) == len(data) + 16
    if tamper:
        ciphertext[len(ciphertext) // 2] ^= 0x40
    send(ep, upload_id, bytes(ciphertext), 7_000)
    assert status(ep, upload_id, "Encrypted") == "true"
    return commit(ep, upload_id)


def test_an_encrypted_capsule_becomes_a_job(ep: Endpoint, signers: Signers) -> None:
    data = capsule(signers, 3, count=4, image=firmware_volume(24 * 1024))
    job = encrypted_upload(ep, data)
    assert (value(job, "State"), value(job, "FwVersion")) == ("NeedsReset", "3")
    assert value(job, "CapsuleSha256") == hashlib.sha256(data).hexdigest()


def test_a_tampered_ciphertext_is_refused_and_nothing_is_kept(ep: Endpoint,
                                                             signers: Signers) -> None:
    refused(encrypted_upload(ep, capsule(signers, 3), tamper=True), "ChunkRefused", "Data")
    assert ok(ep.call("GetFirmwareHistory")).xml().find(f".//{NS}Job") is None
    with ep.store.unit_of_work() as uow:
        assert uow.firmware.uploads() == []


def test_a_replayed_one_time_key_is_refused(ep: Endpoint, signers: Signers) -> None:
    sender = OneTimeSender()
    data = capsule(signers, 2)
    ok(begin(ep, data, client_key=sender.client_public()))
    message = refused(begin(ep, data, client_key=sender.client_public()), "InvalidRequest")
    assert "used before" in message


@pytest.mark.parametrize("key", [b"\x04" + b"\x00" * 64, b"\x02" + b"\x11" * 32, b"\x04" * 3])
def test_a_bad_client_key_is_refused(ep: Endpoint, key: bytes) -> None:
    refused(begin(ep, b"capsule", client_key=key), "InvalidRequest")


def test_without_a_transfer_key_encrypted_uploads_are_refused_clearly(
        signers: Signers) -> None:
    ep = build_endpoint()
    message = refused(begin(ep, b"capsule", client_key=OneTimeSender().client_public()),
                      "InvalidRequest")
    assert "no transfer key" in message
