"""``docs/operations.md``: generated from the WSDL, committed, never stale."""

from __future__ import annotations

import re
from pathlib import Path

from bios_ws.soap.callers import CALLERS, describe
from bios_ws.soap.operations_doc import COMMAND, render

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_DOC = ROOT / "docs" / "operations.md"
COMMITTED_WSDL = ROOT / "wsdl" / "vbios.wsdl"


def test_committed_page_is_generated_from_the_current_wsdl() -> None:
    assert COMMITTED_DOC.read_text(encoding="utf-8") == render(), (
        f"docs/operations.md is stale: regenerate it with `{COMMAND}`")


def test_page_of_the_committed_wsdl_is_the_same() -> None:
    assert render(COMMITTED_WSDL.read_bytes()) == render()


def test_every_operation_has_a_section_with_its_callers_and_faults() -> None:
    page = render()
    for operation, callers in CALLERS.items():
        section = page.split(f"\n## {operation}\n", 1)[1].split("\n## ", 1)[0]
        assert f"Callers: {describe(callers)}." in section
        assert "`AccessDenied` (Client)" in section and "`InternalError` (Server)" in section


def test_capability_faults_go_to_their_operations_only() -> None:
    page = render()
    quote = page.split("\n## GetQuote\n", 1)[1].split("\n## ", 1)[0]
    attributes = page.split("\n## SetAttributes\n", 1)[1].split("\n## ", 1)[0]
    assert "`TpmUnavailable` (Server)" in quote and "`VersionConflict`" not in quote
    assert "`VersionConflict` (Client)" in attributes and "`TpmUnavailable`" not in attributes


def test_documentation_in_the_wsdl_is_published() -> None:
    wsdl = COMMITTED_WSDL.read_text(encoding="utf-8").replace(
        '<wsdl:operation name="GetQuote" parameterOrder="GetQuote">',
        '<wsdl:operation name="GetQuote" parameterOrder="GetQuote">'
        "<wsdl:documentation>Signs the PCRs\n   with the host's\tkey.</wsdl:documentation>", 1)
    page = render(wsdl.encode())
    assert "## GetQuote\n\nCallers: guest, admin. Capability: attestation.\n\n" \
        "Signs the PCRs with the host's key.\n" in page


def test_every_link_has_its_heading() -> None:
    page = render()
    anchors = {h.lower() for h in re.findall(r"^#{2,3} (\w+)$", page, re.MULTILINE)}
    links = set(re.findall(r"\]\(#(\w+)\)", page))
    assert links <= anchors, sorted(links - anchors)
    headings = re.findall(r"^#{2,3} (\w+)$", page, re.MULTILINE)
    assert len(headings) == len({h.lower() for h in headings}), "two headings, one anchor"
