"""Our event log parser agrees with tpm2-tools' `tpm2_eventlog` on real logs and on ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from bios_ws.domain.eventlog import Event, parse_event_log, replay
from bios_ws.tpm.bootlog import BootManifest, shipped_manifest_text
from tests.eventlog_tool import (
    TOOL_UNKNOWN_TYPE,
    VECTOR_FILES,
    VECTORS,
    ToolLog,
    needs_tool,
    run_tool,
)


def assert_agrees(path: Path) -> None:
    compare(run_tool(path), parse_event_log(path.read_bytes()))


def compare(tool: ToolLog, ours: list[Event]) -> None:
    assert len(ours) == len(tool.events)
    for event, expected in zip(ours, tool.events, strict=True):
        assert event.pcr == expected.pcr, event.index
        if expected.type_name != TOOL_UNKNOWN_TYPE:
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
