"""Our event log parser agrees with tpm2-tools' `tpm2_eventlog` on real logs and on ours."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bios_ws.domain.eventlog import Event, parse_event_log, replay
from bios_ws.tpm.bootlog import BootManifest, shipped_manifest_text

VECTORS = Path("/work/shared/vectors/eventlogs")
VECTOR_FILES = sorted(VECTORS.glob("*.bin"))

needs_tool = pytest.mark.skipif(shutil.which("tpm2_eventlog") is None,
                                reason="tpm2-tools is not installed")

_PCR_INDEX = re.compile(r"^(?:- )?PCRIndex: (\d+)$")
_TYPE = re.compile(r"^\s+EventType: (\S+)$")
_ALG = re.compile(r"^\s+- AlgorithmId: (\S+)$")
_DIGEST = re.compile(r'^\s+Digest: "([0-9a-f]+)"$')
_BANK = re.compile(r"^  (\w+):$")
_PCR = re.compile(r"^    (\d+)\s*: 0x([0-9a-fA-F]+)$")


@dataclass
class ToolEvent:
    pcr: int
    type_name: str = ""
    digests: dict[str, bytes] = field(default_factory=dict)


@dataclass
class ToolLog:
    events: list[ToolEvent]
    pcrs: dict[str, dict[int, bytes]]
    warnings: list[str]


def run_tool(path: Path) -> ToolLog:
    """Run `tpm2_eventlog` and read its YAML-like output by regular expressions."""
    result = subprocess.run(["tpm2_eventlog", str(path)], capture_output=True, text=True,
                            timeout=60, check=True)
    events: list[ToolEvent] = []
    pcrs: dict[str, dict[int, bytes]] = {}
    in_pcrs, bank, pending_alg = False, "", None
    for line in result.stdout.splitlines():
        if line == "pcrs:":
            in_pcrs = True
        elif in_pcrs:
            if m := _BANK.match(line):
                bank = m.group(1)
                pcrs[bank] = {}
            elif m := _PCR.match(line):
                pcrs[bank][int(m.group(1))] = bytes.fromhex(m.group(2))
        elif m := _PCR_INDEX.match(line.strip()):
            events.append(ToolEvent(int(m.group(1))))
            pending_alg = None
        elif (m := _TYPE.match(line)) and events:
            events[-1].type_name = m.group(1)
        elif m := _ALG.match(line):
            pending_alg = m.group(1)
        elif (m := _DIGEST.match(line)) and events:
            # a bare Digest (no AlgorithmId) is the SHA-1 format header event's
            events[-1].digests[pending_alg or "sha1"] = bytes.fromhex(m.group(1))
            pending_alg = None
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    return ToolLog(events, pcrs, warnings)


def assert_agrees(path: Path) -> None:
    compare(run_tool(path), parse_event_log(path.read_bytes()))


def compare(tool: ToolLog, ours: list[Event]) -> None:
    assert len(ours) == len(tool.events)
    for event, expected in zip(ours, tool.events, strict=True):
        assert event.pcr == expected.pcr, event.index
        if expected.type_name != "unknown":
            assert event.type_name == expected.type_name, event.index
        assert event.digests == expected.digests, event.index
    assert replay(ours) == tool.pcrs


@needs_tool
@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_real_logs_agree_with_tpm2_eventlog(path: Path) -> None:
    assert_agrees(path)


@needs_tool
@pytest.mark.parametrize("left,right", [("event-uefivar.bin", "event-uefiaction.bin"),
                                        ("event-uefiaction.bin", "event-uefiservices.bin")])
def test_the_comparison_can_fail(left: str, right: str) -> None:
    with pytest.raises(AssertionError):
        compare(run_tool(VECTORS / left), parse_event_log((VECTORS / right).read_bytes()))


@needs_tool
def test_our_manifest_log_agrees_with_tpm2_eventlog_without_warnings(tmp_path: Path) -> None:
    manifest = BootManifest.from_json(shipped_manifest_text())
    path = tmp_path / "binary_bios_measurements"
    path.write_bytes(manifest.event_log(("sha1", "sha256")))
    assert_agrees(path)
    tool = run_tool(path)
    assert tool.warnings == []  # digests of separators, variables, GPT match their data
    assert [e.type_name for e in tool.events[1:]] == [c.type_name for c in manifest.components]
