"""The library's one hardened XML parser configuration (answers and the bundled WSDL).

No DTD (a document that declares one is refused, so no entity is ever defined), no
entity expansion, no network, no huge-tree mode (libxml2 then bounds text nodes
and depth), comments and processing instructions dropped, and a size bound checked
before parsing. Parsers are kept per thread (lxml parsers are not shared).
"""

from __future__ import annotations

import threading
from typing import Any

from lxml import etree

#: The longest answer the library reads (the largest, CollectDiagnostics, carries a
#: base64 event log that libxml2 bounds to 10 MB of text without huge-tree mode).
MAX_ANSWER_BYTES = 32 * 1024 * 1024
MAX_WSDL_BYTES = 1024 * 1024


class UnsafeXml(ValueError):
    """A document this library refuses to read: too long, malformed, or with a DTD."""


class NotXml(UnsafeXml):
    """Not well-formed XML at all."""


_local = threading.local()


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, remove_comments=True, remove_pis=True, collect_ids=False,
        )
        _local.parser = parser
    return parser


def parse(data: bytes, *, limit: int | None = None) -> etree._Element:
    """The root element of ``data``; UnsafeXml when it is longer than ``limit`` (default
    ``MAX_ANSWER_BYTES``), malformed or has a DTD."""
    limit = MAX_ANSWER_BYTES if limit is None else limit
    if len(data) > limit:
        raise UnsafeXml(f"longer than {limit} bytes")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        if b"<!DOCTYPE" in data:  # refused while libxml2 read it (amplification, network)
            raise UnsafeXml("a document type declaration is refused") from None
        raise NotXml(f"not well-formed XML (line {exc.lineno})") from None
    docinfo: Any = root.getroottree().docinfo  # lxml-stubs lack doctype
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXml("a document type declaration is refused")
    return root
