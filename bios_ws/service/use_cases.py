"""The use cases of one object graph, looked up by their class.

``bios_ws.bootstrap`` builds one instance of each registered capability's use
case (``bios_ws.capabilities``) and hands them over in a ``UseCases``; the SOAP
operations and the CLI find theirs with ``use(BiosService)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


class UseCases:
    """An immutable set of use-case objects, at most one per class."""

    def __init__(self, items: Iterable[object] = ()) -> None:
        found: dict[type, object] = {}
        for item in items:
            if type(item) in found:
                raise ValueError(f"two use cases of class {type(item).__name__}")
            found[type(item)] = item
        self._items = found

    def find(self, kind: type[T]) -> T | None:
        """The use case of class ``kind``, or None when this graph has none."""
        item = self._items.get(kind)
        return item if isinstance(item, kind) else None

    def use(self, kind: type[T]) -> T:
        """The use case of class ``kind``; LookupError when this graph has none."""
        item = self.find(kind)
        if item is None:
            raise LookupError(f"no {kind.__name__} in this object graph")
        return item

    def with_(self, item: object) -> UseCases:
        """These use cases and ``item``."""
        return UseCases([*self._items.values(), item])
