"""How `vbios-client firmware` prints: entries, jobs and the history as text or JSON on
stdout, and the progress of an upload and of a job on stderr (a redrawn bar on a
terminal; on anything else no upload bar, and one line per state of the job)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from vbios_client._cli_text import dump as _dump
from vbios_client._cli_text import escape_controls, utc_text
from vbios_client.models import FirmwareEntry, FirmwareJob

BAR_WIDTH = 30
_MIB = 1024 * 1024


def entry_dict(entry: FirmwareEntry) -> dict[str, Any]:
    return {"firmware_class": entry.firmware_class, "fw_version": entry.fw_version,
            "lowest_supported_version": entry.lowest_supported_version,
            "last_attempt_version": entry.last_attempt_version,
            "last_attempt_status": entry.last_attempt_status,
            "last_attempt_status_code": entry.last_attempt_status_code,
            "active_slot": entry.active_slot, "bios_version": entry.bios_version}


def job_dict(job: FirmwareJob) -> dict[str, Any]:
    return {"job_id": job.job_id, "state": job.state,
            "percent_complete": job.percent_complete, "apply_time": job.apply_time,
            "firmware_class": job.firmware_class, "fw_version": job.fw_version,
            "from_version": job.from_version,
            "lowest_supported_version": job.lowest_supported_version,
            "monotonic_count": job.monotonic_count, "slot": job.slot, "status": job.status,
            "status_code": job.status_code, "message": job.message, "signer": job.signer,
            "requested_by": job.requested_by, "capsule_sha256": job.capsule_sha256,
            "created_at": utc_text(job.created_at), "updated_at": utc_text(job.updated_at)}


def _rows(out: TextIO, rows: dict[str, str], indent: str = "") -> None:
    width = max(len(name) for name in rows)
    out.write("".join(f"{indent}{name.ljust(width)} = {value}\n"
                      for name, value in rows.items()))


def _known(value: object) -> str:
    return "?" if value is None else str(value)


def inventory(out: TextIO, entries: Sequence[FirmwareEntry], *, as_json: bool) -> None:
    if as_json:
        _dump(out, [entry_dict(entry) for entry in entries])
        return
    if not entries:
        out.write("no firmware listed\n")
    for entry in entries:
        out.write(f"firmware {entry.firmware_class}\n")
        _rows(out, {
            "version": f"{entry.fw_version} ({entry.bios_version})",
            "lowest supported": str(entry.lowest_supported_version),
            "last attempt": f"version {entry.last_attempt_version}:"
                            f" {entry.last_attempt_status} ({entry.last_attempt_status_code})",
            "active slot": entry.active_slot}, indent="  ")


def version_change(job: FirmwareJob) -> str:
    return f"{_known(job.from_version)}->{_known(job.fw_version)}"


def job(out: TextIO, found: FirmwareJob, *, as_json: bool) -> None:
    if as_json:
        _dump(out, job_dict(found))
        return
    status = "-" if found.status is None else f"{found.status} ({found.status_code})"
    _rows(out, {
        "job": found.job_id, "state": f"{found.state} ({found.percent_complete}%)",
        "apply time": found.apply_time, "version": version_change(found),
        "slot": found.slot or "-", "status": status, "message": found.message or "-",
        "signer": found.signer or "-", "requested by": found.requested_by,
        "capsule sha256": found.capsule_sha256,
        "created": str(utc_text(found.created_at)),
        "updated": str(utc_text(found.updated_at))})


HISTORY_COLUMNS = ("CREATED", "STATE", "VERSION", "STATUS", "JOB", "SIGNER")


def history(out: TextIO, jobs: Sequence[FirmwareJob], *, as_json: bool) -> None:
    """A table, newest first: created, state, from->to version, status, job id, signer
    (last: a subject holds spaces)."""
    if as_json:
        _dump(out, [job_dict(each) for each in jobs])
        return
    if not jobs:
        out.write("no firmware update yet\n")
        return
    rows = [(str(utc_text(each.created_at)), each.state, version_change(each),
             each.status or "-", each.job_id, each.signer or "-") for each in jobs]
    widths = [max(len(row[i]) for row in [HISTORY_COLUMNS, *rows])
              for i in range(len(HISTORY_COLUMNS) - 1)]
    for row in [HISTORY_COLUMNS, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")


# -- progress on stderr ------------------------------------------------------------------


def _bar(fraction: float) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * BAR_WIDTH)
    return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"


class Progress:
    """The upload's bar and the job's, on ``err``; bars only on a terminal."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.tty = _isatty(err)
        self._open = False  # a bar is drawn on the current line
        self._last: tuple[str, int] | None = None

    def upload(self, sent: int, total: int) -> None:
        if not self.tty or total <= 0:
            return
        self._draw(f"uploading {_bar(sent / total)} {100 * sent // total:3d}%"
                   f"  {sent / _MIB:.1f} of {total / _MIB:.1f} MiB")
        if sent >= total:
            self.done()

    def job(self, seen: FirmwareJob) -> None:
        now = (seen.state, seen.percent_complete)
        if self.tty:
            self._draw(f"job {seen.job_id[:8]} {_bar(seen.percent_complete / 100)}"
                       f" {seen.percent_complete:3d}%  {seen.state}")
            if seen.finished:
                self.done()
        elif now != self._last:
            self.err.write(escape_controls(
                f"job {seen.job_id}: {seen.state} ({seen.percent_complete}%)") + "\n")
            self.err.flush()
        self._last = now

    def _draw(self, line: str) -> None:
        self.err.write("\r" + escape_controls(line) + "\x1b[K")
        self.err.flush()
        self._open = True

    def done(self) -> None:
        """End the bar's line (before anything else is written to the terminal)."""
        if self._open:
            self.err.write("\n")
            self.err.flush()
            self._open = False


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
