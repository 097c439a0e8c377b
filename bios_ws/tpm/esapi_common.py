"""Small ESAPI helpers shared by the adapter modules (``esapi``, ``esapi_attest``).

Each takes an ESAPI context; none holds state. Kept apart so that the adapter
modules can share them without importing each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from tpm2_pytss import TSS2_Exception
from tpm2_pytss.types import TPML_PCR_SELECTION

from bios_ws.errors import TpmError


def selection(bank: str, pcrs: Sequence[int]) -> Any:
    """A TPML_PCR_SELECTION of ``pcrs`` in one ``bank``."""
    return TPML_PCR_SELECTION.parse(f"{bank}:{','.join(str(i) for i in pcrs)}")


def best_effort(function: Callable[[Any], Any], handle: Any) -> None:
    """Cleanup after a failure: the first error wins."""
    with contextlib.suppress(TSS2_Exception):
        function(handle)


def read_pcrs(ctx: Any, bank: str, selected: tuple[int, ...]) -> dict[int, bytes]:
    """PCR_Read returns at most 8 digests per call: ask again for the rest."""
    remaining = list(selected)
    values: dict[int, bytes] = {}
    while remaining:
        _, returned, digests = ctx.pcr_read(selection(bank, remaining))
        served: list[int] = []
        for chosen in returned:
            bitmap = [chosen.pcrSelect[i] for i in range(chosen.sizeofSelect)]
            served += [i for i in range(len(bitmap) * 8) if bitmap[i // 8] & (1 << (i % 8))]
        digest_list = [bytes(d) for d in digests]
        if not served or len(served) != len(digest_list):
            raise TpmError(f"PCR bank {bank} is not active")
        values.update(zip(served, digest_list, strict=True))
        remaining = [i for i in remaining if i not in values]
    return values
