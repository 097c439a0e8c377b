"""The attribute registry in force, as each worker sees it.

The store keeps the registry in force (host records): ``REGISTRY_DIGEST_KEY`` holds
its SHA-256 and the record's version is the registry's generation;
``REGISTRY_TEXT_KEY`` holds its text. A keeper compares the generation on each
call (one primary-key read of a 64-character value) and reloads the registry only
when it moved, so a registry put in force (``service.registry``) reaches running
workers without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from bios_ws.domain.ports import UnitOfWork
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.registry_change import RegistryDocument
from bios_ws.errors import StoreUnavailable

REGISTRY_DIGEST_KEY = "attribute_registry"
REGISTRY_TEXT_KEY = "attribute_registry_text"


@dataclass(frozen=True)
class InForce:
    """The registry the store says is in force."""

    digest: str
    generation: int
    registry_version: str


class RegistryKeeper:
    """The registry in force for one service object: the store's, reloaded when its
    generation moves; ``fallback`` (the file read at start) while the store has none."""

    def __init__(self, fallback: AttributeRegistry) -> None:
        self._held: tuple[int | None, AttributeRegistry] = (None, fallback)

    @property
    def registry(self) -> AttributeRegistry:
        """The registry as last seen (fresh after any ``refresh`` in this process)."""
        return self._held[1]

    def refresh(self, uow: UnitOfWork, *, for_update: bool = False) -> AttributeRegistry:
        """The registry in force, within ``uow`` (one indexed read when unchanged);
        ``for_update`` begins a writing unit with it, holding the registry in force shared
        (a settings write of another domain passes; a registry apply, which takes it
        exclusively, waits for the writers and they for it)."""
        if for_update:
            uow.records.hold_shared(REGISTRY_DIGEST_KEY)
        version = uow.records.version(REGISTRY_DIGEST_KEY)
        generation, registry = self._held
        if version is None or version == generation:
            return registry
        text = uow.records.get(REGISTRY_TEXT_KEY)
        if text is None:
            raise StoreUnavailable("the registry in force is recorded without its text")
        fresh = RegistryDocument.parse(text.value).registry
        self._held = (version, fresh)
        return fresh
