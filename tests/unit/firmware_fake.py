"""A fake vBIOS of the firmware operations behind a fake sender: requests are written and
answers read by the library's real codec (``SoapChannel``), answers rendered by zeep from
the bundled WSDL, and no socket is opened. ``drop`` and ``refuse`` script failures."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from vbios_client._channel import SoapChannel
from vbios_client._firmware import FirmwareCalls
from vbios_client.exceptions import TransportError

from bios_ws.firmware.transfer import TransferKey
from tests.unit.client_samples import envelope, zeep_response

TNS = "urn:bios-ws:vbios:v1"
EXPIRES = "2030-01-02T03:04:05.678Z"
CREATED = "2030-01-01T00:00:00.000Z"


def job_values(job_id: str = "j1", state: str = "NeedsReset", **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "JobId": job_id, "State": state, "PercentComplete": 40, "ApplyTime": "OnReset",
        "Message": "waits", "RequestedBy": "guest:d1", "CapsuleSha256": "ab" * 32,
        "CreatedAt": CREATED, "UpdatedAt": EXPIRES}
    values.update(extra)
    return values


def fault(code: str, attribute: str | None = None) -> bytes:
    extra = f"<tns:Attribute>{attribute}</tns:Attribute>" if attribute else ""
    return envelope(f"<soap11env:Fault><faultcode>soap11env:Client</faultcode><faultstring>"
                    f"no</faultstring><detail><tns:VbiosFaultDetail><tns:Code>{code}</tns:Code>"
                    f"<tns:Message>refused</tns:Message>{extra}</tns:VbiosFaultDetail></detail>"
                    "</soap11env:Fault>")


@dataclass
class Upload:
    size: int
    sha256: str
    total: int
    data: bytearray = field(default_factory=bytearray)
    wrapped: bytes | None = None


@dataclass
class FakeVbios:
    """The vBIOS's side: uploads, jobs, and a script of failures."""

    max_chunk: int = 1000
    key: TransferKey | None = None
    uploads: dict[str, Upload] = field(default_factory=dict)
    #: Every call, in order: (operation, its request fields).
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Operation names whose next calls fail: ("drop-before" | "drop-after" | fault code,
    #: attribute), or ("ok", None) for one that does not; consumed one per call.
    script: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    #: The states GetFirmwareJob answers, one per call (the last one stays).
    states: list[str] = field(default_factory=lambda: ["Completed"])
    committed: list[bytes] = field(default_factory=list)
    newest: dict[str, Any] | None = None

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float,
             operation: str) -> tuple[int, bytes]:
        fields = _fields(body)
        self.calls.append((operation, fields))
        failure = self.script.get(operation, [])
        step = failure.pop(0) if failure else None
        if step is not None and step[0] == "ok":
            step = None
        if step is not None and step[0] == "drop-before":
            raise TransportError(f"{url}: connection reset (before {operation})")
        if step is not None and step[0] != "drop-after":
            return 500, fault(step[0], step[1])
        status, answer = getattr(self, operation)(fields)
        if step is not None:
            raise TransportError(f"{url}: connection reset (the answer to {operation} lost)")
        return status, answer

    def close(self) -> None:
        pass

    # -- operations ----------------------------------------------------------------

    def BeginFirmwareUpload(self, f: dict[str, Any]) -> tuple[int, bytes]:
        upload_id = f"{len(self.uploads) + 1:032x}"
        upload = Upload(int(f["Size"]), f["Sha256"], int(f["Size"]))
        answer: dict[str, Any] = {"UploadId": upload_id, "MaxChunkSize": self.max_chunk,
                                  "NextOffset": 0, "ExpiresAt": EXPIRES}
        if "ClientKey" in f:
            assert self.key is not None
            accepted = self.key.accept(upload_id, f["ClientKey"])
            upload.wrapped, upload.total = accepted.wrapped_key, upload.size + 16
            answer.update(ServerStaticKey=self.key.public_point(),
                          ServerOneTimeKey=accepted.server_one_time_public)
        self.uploads[upload_id] = upload
        return 200, zeep_response("BeginFirmwareUpload", answer)

    def UploadFirmwareChunk(self, f: dict[str, Any]) -> tuple[int, bytes]:
        upload = self.uploads.get(f["UploadId"])
        if upload is None:
            return 500, fault("UnknownUpload")
        data: bytes = f["Data"]
        if hashlib.sha256(data).hexdigest() != f["Sha256"]:
            return 500, fault("ChunkRefused", "Sha256")
        if int(f["Offset"]) != len(upload.data):
            return 500, fault("ChunkRefused", "Offset")
        if len(data) > self.max_chunk or len(upload.data) + len(data) > upload.total:
            return 500, fault("ChunkRefused", "Data")
        upload.data += data
        return 200, zeep_response("UploadFirmwareChunk", {
            "NextOffset": len(upload.data), "Total": upload.total, "ExpiresAt": EXPIRES})

    def GetFirmwareUpload(self, f: dict[str, Any]) -> tuple[int, bytes]:
        upload = self.uploads.get(f["UploadId"])
        if upload is None:
            return 500, fault("UnknownUpload")
        return 200, zeep_response("GetFirmwareUpload", {
            "Size": upload.size, "Sha256": upload.sha256, "Encrypted": upload.wrapped is not None,
            "Total": upload.total, "NextOffset": len(upload.data), "ExpiresAt": EXPIRES})

    def CommitFirmwareUpload(self, f: dict[str, Any]) -> tuple[int, bytes]:
        upload = self.uploads.pop(f["UploadId"], None)
        if upload is None:
            return 500, fault("UnknownUpload")
        capsule = bytes(upload.data)
        if upload.wrapped is not None:
            assert self.key is not None
            capsule = self.key.decrypt(f["UploadId"], upload.wrapped, capsule)
        self.committed.append(capsule)
        self.newest = job_values(f"job{len(self.committed)}",
                                 CapsuleSha256=hashlib.sha256(capsule).hexdigest(),
                                 ApplyTime=f.get("ApplyTime", "OnReset"))
        return 200, zeep_response("CommitFirmwareUpload", {"Job": self.newest})

    def GetFirmwareJob(self, f: dict[str, Any]) -> tuple[int, bytes]:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        values = dict(self.newest) if self.newest else job_values()
        values["State"] = state
        if "JobId" in f:
            values["JobId"] = f["JobId"]
        return 200, zeep_response("GetFirmwareJob", {"Job": values})

    def count(self, operation: str) -> int:
        return sum(1 for name, _ in self.calls if name == operation)


def _fields(body: bytes) -> dict[str, Any]:
    """The request's fields by local name (Data and ClientKey decoded)."""
    root = etree.fromstring(body)
    element = root[0][0]
    found: dict[str, Any] = {}
    for child in element:
        name = etree.QName(child).localname
        text = child.text or ""
        found[name] = base64.b64decode(text) if name in ("Data", "ClientKey") else text
    return found


class Calls(FirmwareCalls):
    """The firmware calls of a client, over ``fake``."""

    def __init__(self, fake: FakeVbios) -> None:
        self._chan = SoapChannel("https://vbios.test/", fake, timeout=5)

    @property
    def _channel(self) -> SoapChannel:
        return self._chan


Progress = Callable[[int, int], None]
