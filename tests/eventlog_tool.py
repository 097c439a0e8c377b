"""Run Debian tpm2-tools' `tpm2_eventlog` and read its output: the reference our parser,
and `vbios eventlog`, are compared with (on the real logs in /work/shared/vectors/eventlogs).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

VECTORS = Path("/work/shared/vectors/eventlogs")
VECTOR_FILES = sorted(VECTORS.glob("*.bin"))

needs_tool = pytest.mark.skipif(shutil.which("tpm2_eventlog") is None,
                                reason="tpm2-tools is not installed")

#: the EventType tpm2_eventlog prints for types it has no name for (we print EV_UNKNOWN_0x...
#: or, for newer types, their PFP name)
TOOL_UNKNOWN_TYPE = "unknown"

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
