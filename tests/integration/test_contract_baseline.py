"""The published WSDL keeps everything the committed v1 baseline records
(``wsdl/v1-baseline.json``; the policy is in ``docs/contract.md``)."""

from __future__ import annotations

from pathlib import Path

from bios_ws.soap.baseline import check, from_json, report, to_json
from bios_ws.soap.contract import render_wsdl

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "wsdl" / "v1-baseline.json"


def test_the_wsdl_breaks_no_client_of_the_v1_baseline() -> None:
    breaks = check(from_json(BASELINE.read_text(encoding="utf-8")), render_wsdl())
    assert not breaks, report(breaks, "wsdl/v1-baseline.json")


def test_the_baseline_file_is_as_the_command_writes_it() -> None:
    text = BASELINE.read_text(encoding="utf-8")
    assert to_json(from_json(text)) == text, (
        "wsdl/v1-baseline.json was edited by hand: run `python -m bios_ws.soap.baseline"
        " update`")


def test_the_baseline_is_taken_after_get_quotes_selection_was_renamed() -> None:
    quote = from_json(BASELINE.read_text(encoding="utf-8")).operation("GetQuote")
    assert [f.name for f in quote.request_fields] == ["Nonce", "Bank", "PcrSelection"]
    assert "Pcrs" in [f.name for f in quote.response_fields]
