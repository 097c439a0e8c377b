"""``parse_xml`` refuses processing instructions and deep nesting wherever they are, in
UTF-8 and UTF-16 (its tree walks are skipped only when the bytes rule them out)."""

from __future__ import annotations

import pytest

from bios_ws.errors import InvalidRequest
from bios_ws.soap.xmlparser import MAX_DEPTH, parse_xml

DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'


def nested(depth: int) -> str:
    """A document whose deepest element is at ``depth`` (the root is at 1)."""
    return "<e>" * depth + "</e>" * depth


def test_nesting_up_to_the_bound_is_accepted_one_more_is_refused() -> None:
    parse_xml(nested(MAX_DEPTH).encode())
    with pytest.raises(InvalidRequest, match=f"deeper than {MAX_DEPTH}"):
        parse_xml(nested(MAX_DEPTH + 1).encode())


def test_deep_nesting_in_utf16_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="deeper than"):
        parse_xml(nested(MAX_DEPTH + 1).encode("utf-16"))


@pytest.mark.parametrize("document", [
    DECLARATION + "<r><?pi x?></r>",
    "<?pi x?><r/>",                                   # in place of the declaration
    '<?xml-stylesheet href="s"?><r/>',                # looks like one, is not
    DECLARATION + "<r><![CDATA[<?]]></r><?pi?>",      # after a "<?" that is text
    DECLARATION + "<r/><?pi?>",                       # after the root
])
def test_processing_instructions_are_refused_wherever_they_are(document: str) -> None:
    with pytest.raises(InvalidRequest, match="processing instructions"):
        parse_xml(document.encode())


def test_processing_instructions_in_utf16_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="processing instructions"):
        parse_xml('<?xml version="1.0" encoding="utf-16"?><r><?pi x?></r>'.encode("utf-16"))


@pytest.mark.parametrize("document", [
    DECLARATION + "<r>a &lt;? b</r>",                  # an escaped "<?" is text
    DECLARATION + "<r><![CDATA[<?]]></r>",             # so is one in CDATA
    "<r/>",
])
def test_documents_without_one_are_accepted(document: str) -> None:
    assert parse_xml(document.encode()).tag == "r"
