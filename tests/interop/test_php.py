"""PHP 8.2's SoapClient (ext/soap) against the committed WSDL over mutual TLS.

ext/soap reads the WSDL when the program starts; its parsed form is cached (the
default ``soap.wsdl_cache_enabled``) in the test's temporary directory, never in the
system's /tmp, so no WSDL of an earlier run is ever used. The scenario (the inputs
written for the client program, and the comparison of what it printed with what the
Python guest library reads afterwards) is tests/interop/scenario.py's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.firmware_support import Signers
from tests.interop.conftest import Deployment, run_step
from tests.interop.contract import check_coverage
from tests.interop.scenario import check_answers, prepare, result_of

PHP_DIR = Path(__file__).resolve().parent / "php"


def test_php_soapclient_calls_every_guest_operation(deployment: Deployment,
                                                    capsule_signers: Signers,
                                                    tmp_path: Path) -> None:
    php = shutil.which("php")
    assert php is not None, "php (Debian php-cli, php-soap) is missing: run make interop-deps"
    modules = run_step([php, "-m"], cwd=tmp_path, what="php -m").stdout.split()
    assert "soap" in modules and "openssl" in modules, f"php lacks soap or openssl: {modules}"
    scenario = prepare(deployment, "interop-php", tmp_path, capsule_signers)
    cache = tmp_path / "wsdl-cache"
    cache.mkdir()
    done = run_step([php, "-d", f"soap.wsdl_cache_dir={cache}", str(PHP_DIR / "client.php"),
                     str(scenario.input)], cwd=tmp_path, what="the PHP SoapClient program")
    check_coverage("php", done.stdout)
    check_answers(deployment, scenario, result_of(done.stdout))
    assert result_of(done.stdout)["fault"]["class"] == "SoapFault"
    assert any(cache.iterdir()), "ext/soap cached no parsed WSDL in the test's directory"
    deployment.check_routed_calls(scenario.guest.domain)  # the routed run: B answered them
