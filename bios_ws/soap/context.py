"""What a Spyne operation needs to serve one call: who calls, and the use cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from bios_ws.domain.principal import Principal
from bios_ws.service.use_cases import UseCases

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    principal: Principal
    use_cases: UseCases

    def use(self, kind: type[T]) -> T:
        """The use case of class ``kind`` (every registered capability has one)."""
        return self.use_cases.use(kind)

    def find(self, kind: type[T]) -> T | None:
        return self.use_cases.find(kind)


def call_of(ctx: Any) -> Call:
    """The ``Call`` the dispatcher put in Spyne's user-defined context."""
    call = ctx.udc
    if not isinstance(call, Call):
        raise TypeError("Spyne method context carries no vbios call")
    return call
