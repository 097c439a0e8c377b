"""node-soap (npm ``soap``, the exact version of tests/interop/node/package.json) against
the committed WSDL over mutual TLS.

node-soap reads and parses the WSDL each time the program starts; nothing of it is
cached. What is cached is the toolchain: ``node_modules`` in tests/interop/node, which
``make interop-deps`` installs with ``npm ci`` from the committed package-lock.json (no
registry is reached by the test). The scenario (inputs, and the comparison with what the
Python guest library reads) is tests/interop/scenario.py's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.firmware_support import Signers
from tests.interop.conftest import Deployment, run_step
from tests.interop.contract import check_coverage
from tests.interop.scenario import check_answers, prepare, result_of

NODE_DIR = Path(__file__).resolve().parent / "node"


def installed_soap_version() -> str:
    """The version of ``soap`` in node_modules; it must be the one package.json pins."""
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["soap"]
    manifest = NODE_DIR / "node_modules" / "soap" / "package.json"
    assert manifest.is_file(), \
        f"node-soap is not installed in {NODE_DIR}: run make interop-deps (npm ci)"
    installed = str(json.loads(manifest.read_text())["version"])
    assert installed == pinned, f"node_modules has soap {installed}, package.json pins {pinned}"
    return installed


def test_node_soap_calls_every_guest_operation(deployment: Deployment,
                                               capsule_signers: Signers,
                                               tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node (Debian nodejs) is missing: run make interop-deps"
    installed_soap_version()
    scenario = prepare(deployment, "interop-node", tmp_path, capsule_signers)
    done = run_step([node, str(NODE_DIR / "client.js"), str(scenario.input)],
                    cwd=tmp_path, what="the node-soap program")
    check_coverage("node-soap", done.stdout)
    check_answers(deployment, scenario, result_of(done.stdout))
    assert result_of(done.stdout)["fault"]["class"] == "Error"
    deployment.check_routed_calls(scenario.guest.domain)  # the routed run: B answered them
