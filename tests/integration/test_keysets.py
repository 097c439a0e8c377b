"""The Secure Boot key sets an installation may give its domains by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from bios_ws.errors import PlatformUnavailable
from bios_ws.pki.certinfo import describe
from bios_ws.platform.keysets import lazy_key_set, load_key_set


def test_snakeoil_is_debians_test_key_as_pk_kek_and_db() -> None:
    keys = load_key_set("snakeoil")
    assert keys.pk == keys.kek == keys.db and len(keys.pk) == 1 and keys.dbx == ()
    assert "O=SnakeOil" in describe(keys.pk[0]).subject


def test_none_is_setup_mode() -> None:
    assert load_key_set("none").setup_mode


def test_a_template_gives_its_keys() -> None:
    keys = load_key_set("template:/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
    assert any("Microsoft Corporation UEFI CA 2011" in describe(d).subject for d in keys.db)
    assert not keys.setup_mode


def test_an_unusable_set_is_refused_or_falls_back_to_setup_mode(tmp_path: Path) -> None:
    with pytest.raises(PlatformUnavailable, match="unknown Secure Boot key set"):
        load_key_set("microsoftish")
    damaged = tmp_path / "vars.fd"
    damaged.write_bytes(b"\0" * 4096)
    with pytest.raises(PlatformUnavailable, match=str(damaged)):
        load_key_set(f"template:{damaged}")
    assert lazy_key_set(f"template:{damaged}")().setup_mode
