"""`vbios serve` as a process refuses a registry.json that is not the registry in force
(replaced by hand) with the values it rejects, and a registry path that is a FIFO."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e.test_serve import no_tpm_copy, no_tpm_home, serve_args, vbios  # noqa: F401


def test_serve_refuses_a_hand_replaced_registry_naming_the_rejected_values(
        no_tpm_copy: Path) -> None:  # noqa: F811 (the fixture)
    assert vbios("domain", "create", "vm1", "--home", str(no_tpm_copy)).returncode == 0
    registry = no_tpm_copy / "registry.json"
    document = json.loads(registry.read_text(encoding="utf-8"))
    for attribute in document["attributes"]:
        if attribute["name"] == "AssetTag":
            attribute.update(min_length=2, default="none")
    registry.write_text(json.dumps(document), encoding="utf-8")
    done = vbios(*serve_args(no_tpm_copy))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert 'domain vm1: AssetTag value "": attribute AssetTag is at least 2' in done.stderr
    assert f"vbios registry apply {registry} --reset-invalid" in done.stderr
    assert "serving" not in done.stdout


def test_serve_refuses_a_fifo_registry_at_once(no_tpm_copy: Path) -> None:  # noqa: F811
    registry = no_tpm_copy / "registry.json"
    registry.unlink()
    os.mkfifo(registry)
    done = vbios(*serve_args(no_tpm_copy), timeout=30)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{registry}: not a regular file" in done.stderr
