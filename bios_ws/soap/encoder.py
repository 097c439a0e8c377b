"""A fast response encoder for the contract's Spyne models.

Spyne's own serializer costs several hundred microseconds per response, and
even lxml element building costs about one microsecond per element; this
encoder writes the XML text directly. For each Spyne class it generates, once,
a Python function specialised to that class's ``_type_info`` (so the WSDL stays
the one source of the schema): one ``getattr`` and one append per field, no
generic walk. It covers what the contract uses: complex types, lists
(``max_occurs > 1``), strings, integers, decimals, floats and doubles, booleans,
enumerations and base64Binary. Each simple type is written in its XML Schema lexical
form: an integer refuses a value with a fraction (never truncated), a double is the
shortest text that reads back as the same value (``42.7``; ``INF``, ``-INF``, ``NaN``),
a decimal has no exponent. Text is escaped, and a character XML cannot carry is
refused (ValueError). A test checks the output against Spyne's serializer.

Only attribute names that are Python identifiers reach the generated source
(anything else is refused); tags and helpers are bound as constants.
"""

from __future__ import annotations

import binascii
import decimal
import functools
import keyword
import math
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from spyne.model import ComplexModelBase
from spyne.model.binary import ByteArray
from spyne.model.enum import EnumBase
from spyne.model.primitive import Boolean, Decimal, Double, Float, Integer, Unicode

from bios_ws.soap.faults import SOAP11_ENV
from bios_ws.soap.types import TNS

_PROLOG = (
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    f'<soap11env:Envelope xmlns:soap11env="{SOAP11_ENV}" xmlns:tns="{TNS}">'
    "<soap11env:Body>"
)
_EPILOG = "</soap11env:Body></soap11env:Envelope>"
_NOT_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: Gives the XML text of the fields of one object (a record, or a message's values).
Writer = Callable[[Any], str]

_MAX_DEPTH = 16
#: Escaped texts are kept (names and enumeration values repeat in every response) in a
#: bounded, thread-safe LRU cache.
_CACHED_TEXTS = 4096
_CACHED_TEXT_CHARS = 128
#: Writers are compiled once per class, under the lock; a published writer never changes.
_writers: dict[tuple[Any, bool], Writer] = {}
_lock = threading.Lock()


def prepare(message_class: Any) -> None:
    """Compile the writer of a response message now (at start, not in a first request)."""
    _writer(message_class, positional=True)


def encode_response(message_class: Any, values: Sequence[Any]) -> bytes:
    """The SOAP 1.1 response envelope for a wrapped ``message_class`` and its values."""
    name = message_class.get_type_name()
    fields = _writer(message_class, positional=True)(values)
    return f"{_PROLOG}<tns:{name}>{fields}</tns:{name}>{_EPILOG}".encode()


class Rendered:
    """The XML text of the fields of one ``cls`` value, as ``render`` wrote it.

    Given in place of a (non-repeated) value of ``cls``, it is copied as is: a
    way to keep the text of a value that many responses share.
    """

    __slots__ = ("cls", "xml")

    def __init__(self, cls: Any, xml: str) -> None:
        self.cls = _origin(cls)
        self.xml = xml

    def xml_of(self, cls: Any) -> str:
        if self.cls is not cls:
            raise TypeError(f"rendered {self.cls!r} given where {cls!r} is expected")
        return self.xml


def _origin(cls: Any) -> Any:
    """The class a Spyne ``customize``d copy (e.g. ``min_occurs=1``) was made from."""
    while getattr(cls, "__orig__", None) is not None:
        cls = cls.__orig__
    return cls


def render(cls: Any, value: Any) -> Rendered:
    """The fields of ``value`` (an instance or record of complex class ``cls``) as XML."""
    return Rendered(cls, _writer(cls)(value))


def _writer(cls: Any, *, positional: bool = False) -> Writer:
    writer = _writers.get((cls, positional))
    if writer is None:
        with _lock:
            writer = _writers.get((cls, positional)) or _compile(cls, positional)
            _writers[cls, positional] = writer
    return writer


def _compile(cls: Any, positional: bool) -> Writer:
    """One function writing the fields of ``cls`` (read from a sequence if ``positional``).

    Nested classes are inlined.
    """
    source = _Source()
    source.line(0, "def write(obj):")
    source.line(1, "count = len(obj)" if positional else "pass")
    source.line(1, "s = ''")
    for index, (name, field) in enumerate(_fields(cls)):
        if positional:
            source.line(1, f"v0 = obj[{index}] if count > {index} else None")
        else:
            source.line(1, f"v0 = getattr(obj, {name!r}, None)")
        source.field(1, 0, name, field)
    source.line(1, "return s")
    namespace = dict(source.constants)
    code = compile(source.text(), f"<encoder {cls.get_type_name()}>", "exec")
    exec(code, namespace)  # noqa: S102 (source built above from checked identifiers)
    writer: Writer = namespace["write"]
    return writer


def _fields(cls: Any) -> list[tuple[str, Any]]:
    fields = list(cls.get_flat_type_info(cls).items())
    for name, _ in fields:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise TypeError(f"the response encoder does not handle the field name {name!r}")
    return fields


class _Source:
    """The generated source: lines, and the constants (tags, helpers) it refers to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {
            "string": _string, "integer": _integer, "double": _double, "decimal": _decimal,
            "base64": _base64, "Rendered": Rendered,
        }

    def line(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def text(self) -> str:
        return "\n".join(self.lines)

    def constant(self, value: Any) -> str:
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name

    def field(self, indent: int, depth: int, name: str, field: Any) -> None:
        """Append the field held in ``v{depth}`` (None: absent) to ``s``."""
        if depth > _MAX_DEPTH:
            raise TypeError("the response encoder does not handle types nested this deep")
        value = f"v{depth}"
        opening, closing = self.constant(f"<tns:{name}>"), self.constant(f"</tns:{name}>")
        self.line(indent, f"if {value} is not None:")
        indent += 1
        repeated = (field.Attributes.max_occurs or 1) > 1
        if repeated:
            item = f"i{depth}"
            self.line(indent, f"for {item} in {value}:")
            self.line(indent + 1, f"if {item} is not None:")
            indent += 2
            value = item
        if not issubclass(field, ComplexModelBase):
            self.line(indent, f"s += {opening} + {_text_of(field, value)} + {closing}")
            return
        if not repeated:  # a single value may come rendered already
            self.line(indent, f"if {value}.__class__ is Rendered:")
            origin = self.constant(_origin(field))
            self.line(indent + 1, f"s += {opening} + {value}.xml_of({origin}) + {closing}")
            self.line(indent, "else:")
            indent += 1
        self.line(indent, f"s += {opening}")
        for child_name, child in _fields(field):
            self.line(indent, f"v{depth + 1} = getattr({value}, {child_name!r}, None)")
            self.field(indent, depth + 1, child_name, child)
        self.line(indent, f"s += {closing}")


def _text_of(cls: Any, item: str) -> str:
    """The source of the expression giving the XML text of simple value ``item``."""
    if issubclass(cls, Boolean):
        return f"('true' if {item} else 'false')"
    if issubclass(cls, Integer):
        return f"integer({item})"
    if issubclass(cls, (Float, Double)):  # xs:float and xs:double
        return f"double({item})"
    if issubclass(cls, Decimal):
        return f"decimal({item})"
    if issubclass(cls, (Unicode, EnumBase)):
        return f"string({item})"
    if issubclass(cls, ByteArray):
        return f"base64({item})"
    raise TypeError(f"the response encoder does not handle {cls!r}")


def _base64(value: Any) -> str:
    """base64Binary text of bytes (or of a sequence of byte chunks, as Spyne gives them)."""
    data = value if isinstance(value, bytes) else b"".join(value)
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _integer(value: Any) -> str:
    """xs:integer text; a value with a fraction is refused, never truncated."""
    if isinstance(value, int):
        return str(int(value))  # bool and IntEnum as their numbers
    number = decimal.Decimal(str(value)) if isinstance(value, float) else value
    if not isinstance(number, decimal.Decimal) or number != number.to_integral_value():
        raise ValueError(f"{value!r} is not an integer")
    return str(int(number))


def _double(value: Any) -> str:
    """xs:double text: the shortest that reads back as the same double."""
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "INF" if number > 0 else "-INF"
    return repr(number)


def _decimal(value: Any) -> str:
    """xs:decimal text: no exponent; not a number and infinities are refused."""
    number = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a decimal number")
    text = format(number, "f")
    return "0" if text in ("-0", "0") else text


def _string(value: Any) -> str:
    text = value if type(value) is str else str(value)
    if len(text) <= _CACHED_TEXT_CHARS:
        return _escape_short(text)
    return _escape(text)


@functools.lru_cache(maxsize=_CACHED_TEXTS)
def _escape_short(text: str) -> str:
    return _escape(text)


def _escape(text: str) -> str:
    # Fast path: printable ASCII without markup characters is its own XML text.
    if text.isascii() and text.isprintable() and not (
        "&" in text or "<" in text or ">" in text
    ):
        return text
    if _NOT_XML_CHARS.search(text):
        raise ValueError("a response string holds a character XML cannot carry")
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("\r", "&#13;")
    )
