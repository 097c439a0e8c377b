"""The guest's firmware calls (vbios_client._firmware) against a fake vBIOS behind a fake
sender: answers decoded into models, uploads in chunks each with its SHA-256, resumed
after a dropped answer or a refused offset (bounded), encrypted as the server decrypts,
the commit found again after its answer was lost, and job waits. No I/O."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
import vbios_client as vc
from vbios_client import _answers, _firmware, _firmware_wire

from bios_ws.firmware.transfer import TransferKey
from tests.unit.client_samples import sample, zeep_response
from tests.unit.firmware_fake import EXPIRES, Calls, FakeVbios, job_values

CAPSULE = bytes(range(256)) * 14  # 3584 bytes: 4 chunks of at most 1000


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr(_firmware, "_sleep", pauses.append)
    return pauses


@pytest.fixture
def fake() -> FakeVbios:
    return FakeVbios()


def chunks(fake: FakeVbios) -> list[tuple[int, int]]:
    """(offset, size) of every chunk sent, in order."""
    return [(int(f["Offset"]), len(f["Data"])) for name, f in fake.calls
            if name == "UploadFirmwareChunk"]


# -- answers --------------------------------------------------------------------------


def test_a_job_with_every_field() -> None:
    values = job_values(state="Completed", FirmwareClass="5b7b6c1e", FwVersion=3,
                        FromVersion=2, LowestSupportedVersion=2, MonotonicCount=2**64 - 1,
                        Slot="B", Status="Success", StatusCode=0, Signer="CN=Update Signer")
    job = _firmware_wire.firmware_job(_answers.answer(
        "GetFirmwareJob", 200, zeep_response("GetFirmwareJob", {"Job": values})))
    assert job == vc.FirmwareJob(
        job_id="j1", state="Completed", percent_complete=40, apply_time="OnReset",
        message="waits", requested_by="guest:d1", capsule_sha256="ab" * 32,
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
        updated_at=datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        firmware_class="5b7b6c1e", fw_version=3, from_version=2, lowest_supported_version=2,
        monotonic_count=2**64 - 1, slot="B", status="Success", status_code=0,
        signer="CN=Update Signer")
    assert job.finished and job.succeeded


def test_a_job_of_a_capsule_that_did_not_parse() -> None:
    job = _firmware_wire.firmware_job(_answers.answer(
        "GetFirmwareJob", 200, zeep_response("GetFirmwareJob", {"Job": job_values(
            state="Failed", Message="")})))
    assert (job.fw_version, job.monotonic_count, job.slot, job.signer, job.message) == (
        None, None, None, None, "")
    assert job.finished and not job.succeeded


@pytest.mark.parametrize("repeat", [0, 1, 3])
def test_lists_of_entries_and_jobs(repeat: int) -> None:
    entries = _firmware_wire.inventory(_answers.answer(
        "GetFirmwareInventory", 200,
        zeep_response("GetFirmwareInventory", sample("GetFirmwareInventoryResponse",
                                                     text="x", repeat=repeat))))
    assert len(entries) == repeat
    assert all(e.fw_version == -(2**62) and e.active_slot == "B" for e in entries)
    jobs = _firmware_wire.history(_answers.answer(
        "GetFirmwareHistory", 200, zeep_response("GetFirmwareHistory", {
            "Jobs": {"Job": [job_values(f"j{i}") for i in range(repeat)]}})))
    assert [job.job_id for job in jobs] == [f"j{i}" for i in range(repeat)]


def test_the_client_is_a_firmware_client() -> None:
    assert issubclass(vc.BiosClient, _firmware.FirmwareCalls)
    for name in ("firmware_inventory", "firmware_history", "firmware_job", "update_firmware",
                 "wait_for_firmware_job", "begin_firmware_upload", "upload_firmware_chunk",
                 "get_firmware_upload", "resume_firmware_upload", "commit_firmware_upload"):
        assert callable(getattr(vc.BiosClient, name))


# -- uploads --------------------------------------------------------------------------


def test_a_plain_update_in_chunks(fake: FakeVbios) -> None:
    seen: list[tuple[int, int]] = []
    job = Calls(fake).update_firmware(CAPSULE, apply_time="Immediate",
                                      progress=lambda sent, total: seen.append((sent, total)))
    begin = fake.calls[0][1]
    assert (begin["Size"], begin["Sha256"]) == (str(len(CAPSULE)),
                                                 hashlib.sha256(CAPSULE).hexdigest())
    assert "ClientKey" not in begin
    assert chunks(fake) == [(0, 1000), (1000, 1000), (2000, 1000), (3000, 584)]
    assert all(hashlib.sha256(f["Data"]).hexdigest() == f["Sha256"]
               for name, f in fake.calls if name == "UploadFirmwareChunk")
    assert seen == [(0, 3584), (1000, 3584), (2000, 3584), (3000, 3584), (3584, 3584)]
    assert fake.committed == [CAPSULE]
    assert fake.calls[-1] == ("CommitFirmwareUpload", {"UploadId": f"{1:032x}",
                                                       "ApplyTime": "Immediate"})
    assert (job.job_id, job.state, job.apply_time) == ("job1", "NeedsReset", "Immediate")


def test_an_encrypted_update_decrypts_on_the_vbios_side() -> None:
    fake = FakeVbios(key=TransferKey.generate())
    Calls(fake).update_firmware(CAPSULE, encrypt=True)
    begin = fake.calls[0][1]
    assert len(begin["ClientKey"]) == 65 and begin["ClientKey"][0] == 4
    assert begin["Sha256"] == hashlib.sha256(CAPSULE).hexdigest()
    assert sum(size for _, size in chunks(fake)) == len(CAPSULE) + 16
    ciphertext = b"".join(f["Data"] for name, f in fake.calls if name == "UploadFirmwareChunk")
    assert CAPSULE[:64] not in ciphertext
    assert fake.committed == [CAPSULE]


def test_an_encrypted_update_without_the_vbios_keys_sends_nothing(fake: FakeVbios) -> None:
    fake.key = TransferKey.generate()
    fake.BeginFirmwareUpload = lambda f: (200, zeep_response(  # type: ignore[method-assign]
        "BeginFirmwareUpload", {"UploadId": "u" * 32, "MaxChunkSize": 10, "NextOffset": 0,
                                "ExpiresAt": EXPIRES}))
    with pytest.raises(vc.VbiosClientError, match="no transfer keys"):
        Calls(fake).update_firmware(CAPSULE, encrypt=True)
    assert fake.count("UploadFirmwareChunk") == 0


@pytest.mark.parametrize("failure", ["drop-before", "drop-after"])
def test_a_dropped_chunk_is_resumed_where_the_vbios_says(fake: FakeVbios, failure: str,
                                                         no_pauses: list[float]) -> None:
    fake.script["UploadFirmwareChunk"] = [("ok", None), (failure, None)]
    fake.script["GetFirmwareUpload"] = [("drop-before", None)]
    seen: list[int] = []
    Calls(fake).update_firmware(CAPSULE, progress=lambda sent, _: seen.append(sent))
    assert fake.committed == [CAPSULE]
    assert fake.count("GetFirmwareUpload") == 2  # the first ask was dropped too
    resumed_at = 2000 if failure == "drop-after" else 1000
    assert chunks(fake)[:3] == [(0, 1000), (1000, 1000), (resumed_at, 1000)]
    assert seen[-1] == len(CAPSULE) and len(no_pauses) == 2


@pytest.mark.parametrize("attribute", ["Offset", "Sha256"])
def test_a_refused_offset_or_digest_is_resumed(fake: FakeVbios, attribute: str) -> None:
    fake.script["UploadFirmwareChunk"] = [("ok", None), ("ChunkRefused", attribute)]
    Calls(fake).update_firmware(CAPSULE)
    assert fake.committed == [CAPSULE] and fake.count("GetFirmwareUpload") == 1


def test_a_refused_data_chunk_is_not_resumed(fake: FakeVbios) -> None:
    fake.script["UploadFirmwareChunk"] = [("ChunkRefused", "Data")]
    with pytest.raises(vc.ChunkRefused) as refused:
        Calls(fake).update_firmware(CAPSULE)
    assert refused.value.attribute == "Data" and fake.count("GetFirmwareUpload") == 0


def test_resuming_is_bounded(fake: FakeVbios, no_pauses: list[float]) -> None:
    fake.script["UploadFirmwareChunk"] = [("drop-before", None)] * 50
    with pytest.raises(vc.TransportError):
        Calls(fake).update_firmware(CAPSULE)
    assert fake.count("UploadFirmwareChunk") == _firmware.MAX_RESUMES + 1
    assert fake.count("CommitFirmwareUpload") == 0
    assert no_pauses == sorted(no_pauses) and max(no_pauses) <= 2.0


def test_an_expired_upload_ends_the_update(fake: FakeVbios) -> None:
    fake.script["UploadFirmwareChunk"] = [("ok", None), ("UnknownUpload", None)]
    with pytest.raises(vc.UnknownUpload):
        Calls(fake).update_firmware(CAPSULE)


def test_the_low_level_calls_and_a_resume_by_another_client(fake: FakeVbios) -> None:
    first = Calls(fake)
    opened = first.begin_firmware_upload(len(CAPSULE), hashlib.sha256(CAPSULE).hexdigest())
    assert (opened.max_chunk_size, opened.next_offset, opened.encrypted) == (1000, 0, False)
    assert opened.expires_at == datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    taken = first.upload_firmware_chunk(opened.upload_id, 0, CAPSULE[:1000])
    assert (taken.next_offset, taken.total) == (1000, len(CAPSULE))
    with pytest.raises(vc.ChunkRefused):
        first.upload_firmware_chunk(opened.upload_id, 1000, CAPSULE[1000:1500],
                                    sha256="00" * 32)
    second = Calls(fake)
    status = second.get_firmware_upload(opened.upload_id)
    assert (status.next_offset, status.total, status.encrypted, status.complete) == (
        1000, len(CAPSULE), False, False)
    with pytest.raises(ValueError, match="another capsule's"):
        second.resume_firmware_upload(opened.upload_id, CAPSULE + b"x")
    done = second.resume_firmware_upload(opened.upload_id, CAPSULE, chunk_size=700)
    assert done.complete and chunks(fake)[-1] == (3100, 484)
    job = second.commit_firmware_upload(opened.upload_id)
    assert job.apply_time == "OnReset" and fake.committed == [CAPSULE]
    with pytest.raises(vc.UnknownUpload):
        second.get_firmware_upload(opened.upload_id)


def test_a_commit_whose_answer_was_lost_is_found_in_the_jobs(fake: FakeVbios) -> None:
    fake.script["CommitFirmwareUpload"] = [("drop-after", None)]
    job = Calls(fake).update_firmware(CAPSULE)
    assert job.job_id == "job1" and fake.committed == [CAPSULE]
    assert job.capsule_sha256 == hashlib.sha256(CAPSULE).hexdigest()


def test_a_lost_commit_whose_job_is_not_found_raises_the_transport_error(
        fake: FakeVbios) -> None:
    fake.script["CommitFirmwareUpload"] = [("drop-after", None)]
    fake.script["GetFirmwareJob"] = [("UnknownFirmwareJob", None)]
    with pytest.raises(vc.TransportError, match="the answer to CommitFirmwareUpload lost"):
        Calls(fake).update_firmware(CAPSULE)

    def taken_by_another(f: dict[str, Any]) -> tuple[int, bytes]:
        del fake.uploads[f["UploadId"]]
        fake.newest = job_values("another's")  # its capsule is not this one
        return 200, zeep_response("CommitFirmwareUpload", {"Job": fake.newest})

    fake.script["CommitFirmwareUpload"] = [("drop-after", None)]
    fake.CommitFirmwareUpload = taken_by_another  # type: ignore[method-assign]
    with pytest.raises(vc.TransportError):
        Calls(fake).update_firmware(CAPSULE)


def test_a_commit_that_never_arrived_is_sent_again(fake: FakeVbios) -> None:
    fake.script["CommitFirmwareUpload"] = [("drop-before", None)]
    Calls(fake).update_firmware(CAPSULE)
    assert fake.count("CommitFirmwareUpload") == 2 and fake.committed == [CAPSULE]


def test_a_refused_capsule_raises_its_fault(fake: FakeVbios) -> None:
    fake.script["CommitFirmwareUpload"] = [("FirmwareUpdateRefused", "FwVersion")]
    with pytest.raises(vc.FirmwareUpdateRefused) as refused:
        Calls(fake).update_firmware(CAPSULE)
    assert refused.value.attribute == "FwVersion"


@pytest.mark.parametrize(("call", "error"), [
    (lambda c: c.update_firmware("text"), TypeError),
    (lambda c: c.update_firmware(b""), ValueError),
    (lambda c: c.update_firmware(CAPSULE, apply_time="Later"), ValueError),
    (lambda c: c.begin_firmware_upload(0, "ab" * 32), ValueError),
    (lambda c: c.begin_firmware_upload(True, "ab" * 32), TypeError),
    (lambda c: c.upload_firmware_chunk("u", -1, b"x"), ValueError),
    (lambda c: c.firmware_job(""), ValueError),
    (lambda c: c.wait_for_firmware_job("j", timeout=0), ValueError),
])
def test_bad_arguments_are_refused_before_sending(fake: FakeVbios, call: Any,
                                                  error: type[Exception]) -> None:
    with pytest.raises(error):
        call(Calls(fake))
    assert fake.calls == []


# -- jobs -----------------------------------------------------------------------------


def test_waiting_for_a_job_until_it_ends(fake: FakeVbios, no_pauses: list[float]) -> None:
    fake.states = ["NeedsReset", "Running", "Running", "Completed"]
    seen: list[str] = []
    job = Calls(fake).wait_for_firmware_job("j9", timeout=60, poll=0.25,
                                            progress=lambda job: seen.append(job.state))
    assert (job.job_id, job.state) == ("j9", "Completed")
    assert seen == ["NeedsReset", "Running", "Running", "Completed"]
    assert no_pauses == [0.25, 0.25, 0.25]
    assert [f for name, f in fake.calls] == [{"JobId": "j9"}] * 4


def test_waiting_survives_a_few_dropped_reads(fake: FakeVbios) -> None:
    fake.states = ["Running", "RolledBack"]
    fake.script["GetFirmwareJob"] = [("drop-before", None)] * _firmware.MAX_POLL_FAILURES
    assert Calls(fake).wait_for_firmware_job("j", timeout=60).state == "RolledBack"
    fake.script["GetFirmwareJob"] = [("drop-before", None)] * 10
    with pytest.raises(vc.TransportError):
        Calls(fake).wait_for_firmware_job("j", timeout=60)


def test_a_wait_that_gives_up_says_where_the_job_was(fake: FakeVbios,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fake.states = ["Running"]
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(_firmware.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(vc.FirmwareJobTimeout) as gave_up:
        Calls(fake).wait_for_firmware_job("j", timeout=25)
    assert isinstance(gave_up.value, TimeoutError)
    assert gave_up.value.job.state == "Running" and "still Running (40%)" in str(gave_up.value)


def test_the_newest_job_without_an_id(fake: FakeVbios) -> None:
    assert Calls(fake).firmware_job().job_id == "j1"
    assert fake.calls == [("GetFirmwareJob", {})]
