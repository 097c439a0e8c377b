"""32 threads send the first requests of a fresh process at the same moment.

Each scenario runs in a new interpreter, so nothing is warmed up by earlier
tests: the Spyne application, the WSDL, the request schema validators and the
response encoders are all met for the first time by the concurrent calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THREADS = 32
RUNS = 3

#: Runs in a fresh interpreter; prints one JSON line: every answer's status and code.
SCRIPT = textwrap.dedent("""
    import json, sys, threading
    from bios_ws.soap.testing import build_endpoint
    from bios_ws.soap import contract as contract_module
    from bios_ws.soap.app import create_wsgi_app

    mode, threads = sys.argv[1], int(sys.argv[2])
    ep = build_endpoint("vm1") if mode == "built" else None
    barrier = threading.Barrier(threads)
    answers, contracts = [], []
    SET = ("<tns:Attributes><tns:AttributeValue><tns:Name>WakeTimeout</tns:Name>"
           "<tns:IntegerValue>{}</tns:IntegerValue></tns:AttributeValue></tns:Attributes>"
           "<tns:ApplyTime>Immediate</tns:ApplyTime>")

    def one(index):
        endpoint = ep
        barrier.wait()
        if endpoint is None:  # every thread builds its own app at once, then calls it
            endpoint = build_endpoint("vm1")
        contracts.append(id(contract_module.contract()))
        if index % 3 == 0:
            result = endpoint.call("SetAttributes", SET.format(5 * (index % 100)))
        elif index % 3 == 1:
            result = endpoint.call("GetAttributes")
        else:
            result = endpoint.call("GetBootOrder")
        answers.append([result.status, result.detail("Code")])

    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps({"answers": answers, "contracts": len(set(contracts))}))
""")


def run_fresh(mode: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(THREADS)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("mode", ["built", "building"])
def test_first_requests_from_32_threads_in_a_fresh_process_all_succeed(mode: str) -> None:
    for _ in range(RUNS):
        result = run_fresh(mode)
        answers = result["answers"]
        assert isinstance(answers, list) and len(answers) == THREADS
        assert all(status == 200 and code is None for status, code in answers), answers
        assert result["contracts"] == 1  # one application per process, whoever built it
