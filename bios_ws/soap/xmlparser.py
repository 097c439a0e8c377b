"""The one hardened XML parser configuration, and the checks every parsed document passes.

No DTD (internal or external), no entity expansion, no network, no huge
trees, no processing instructions (WS-I R1009), a bounded depth, and UTF-8 or
UTF-16 only, agreeing with the charset the HTTP header declares (R1012).
Refusals are ``InvalidRequest`` with a fixed text: parser messages are never
echoed, as they can quote the document.
"""

from __future__ import annotations

import threading

from lxml import etree

from bios_ws.errors import InvalidRequest

#: Deepest element nesting accepted (a SOAP request of this contract needs 6).
MAX_DEPTH = 64

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_ACCEPTED_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-16": "utf-16",
                       "utf-16le": "utf-16", "utf-16be": "utf-16"}
_HAS_PI = etree.XPath("boolean(//processing-instruction())")
#: How an XML declaration begins ("<?xml-stylesheet" is a processing instruction).
_DECLARATIONS = (b"<?xml ", b"<?xml\t", b"<?xml\r", b"<?xml\n")
_local = threading.local()


def hardened_parser() -> etree.XMLParser:
    """This thread's parser (lxml parsers are not shared between threads)."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=False,
            collect_ids=False,
            attribute_defaults=False,
        )
        _local.parser = parser
    return parser


def _too_deep(depth: int) -> etree.XPath:
    return etree.XPath("boolean(/*" + "/*" * depth + ")")


_TOO_DEEP = _too_deep(MAX_DEPTH)


def normalized_charset(charset: str | None) -> str | None:
    """``utf-8`` or ``utf-16`` for an accepted charset name, None when none is given."""
    if charset is None:
        return None
    name = charset.strip().strip('"').lower()
    try:
        return _ACCEPTED_ENCODINGS[name]
    except KeyError:
        raise InvalidRequest("only UTF-8 and UTF-16 request bodies are accepted") from None


def parse_xml(data: bytes, *, charset: str | None = None) -> etree._Element:
    """Parse ``data`` with the hardened parser and refuse what SOAP forbids.

    ``charset`` is the one the HTTP Content-Type declares, if any.
    """
    declared = normalized_charset(charset)
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError:
        raise InvalidRequest("the request body is not well-formed XML") from None
    if root is None:
        raise InvalidRequest("the request body is not well-formed XML")
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.internalDTD is not None or docinfo.doctype:
        raise InvalidRequest("a document type declaration is not allowed in SOAP messages")
    encoding = "utf-16" if data.startswith(_UTF16_BOMS) else (docinfo.encoding or "utf-8")
    actual = _ACCEPTED_ENCODINGS.get(encoding.lower())
    if actual is None:
        raise InvalidRequest("only UTF-8 and UTF-16 request bodies are accepted")
    if declared is not None and declared != actual:
        raise InvalidRequest("the request's encoding does not match its declared charset")
    # Each tree walk (8 µs in a worker) runs unless the bytes rule out what it looks for:
    # a "<?" besides the XML declaration's (UTF-16 is always walked: its "<?" is four
    # bytes), more "<" than levels allowed.
    declarations = 1 if data.startswith(_DECLARATIONS) else 0
    if (actual == "utf-16" or data.count(b"<?") > declarations) and _HAS_PI(tree):
        raise InvalidRequest("processing instructions are not allowed in SOAP messages")
    if data.count(b"<") > MAX_DEPTH and _TOO_DEEP(tree):
        raise InvalidRequest(f"the request nests elements deeper than {MAX_DEPTH}")
    return root
