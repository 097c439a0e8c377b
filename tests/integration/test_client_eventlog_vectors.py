"""The guest's event log parser and replay agree with the server's on every real log.

The logs are tpm2-tools' fixtures recorded on real firmware (see ORIGIN.md
beside them); ``bios_ws.domain.eventlog`` is itself checked against tpm2_eventlog.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vbios_client.attestation import parse_event_log, replay

from bios_ws.domain.eventlog import SPEC_ID_SIGNATURE
from bios_ws.domain.eventlog import parse_event_log as server_parse
from bios_ws.domain.eventlog import replay as server_replay

VECTORS = Path("/work/shared/vectors/eventlogs")
VECTOR_FILES = sorted(VECTORS.glob("*.bin"))


def test_the_vectors_are_there() -> None:
    assert len(VECTOR_FILES) >= 12


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda path: path.name)
def test_parse_and_replay_agree_with_the_server(path: Path) -> None:
    data = path.read_bytes()
    theirs = server_parse(data)
    if theirs[0].data.startswith(SPEC_ID_SIGNATURE):
        theirs = theirs[1:]  # the guest's parser keeps measurement events only
    ours = parse_event_log(data)
    assert [(e.pcr, e.type, e.digests) for e in ours] == [
        (e.pcr, e.type, e.digests) for e in theirs]
    values = replay(ours)
    assert values == server_replay(server_parse(data))
    assert bool(values) == bool(ours)  # specid-vendordata.bin has no event at all
