"""The deployment under test: ``VBIOS_CONFORMANCE_URL`` + ``VBIOS_CONFORMANCE_BUNDLE`` (a
guest's client bundle directory) when both are set, otherwise a real ``vbios serve`` of
a new home on loopback with one guest domain (the e2e fixtures, reused)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.wire import Deployment

URL_VARIABLE = "VBIOS_CONFORMANCE_URL"
BUNDLE_VARIABLE = "VBIOS_CONFORMANCE_BUNDLE"


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    url = os.environ.get(URL_VARIABLE, "").strip()
    bundle = os.environ.get(BUNDLE_VARIABLE, "").strip()
    if url or bundle:
        if not (url and bundle):
            pytest.fail(f"set both {URL_VARIABLE} and {BUNDLE_VARIABLE}, or neither")
        for part in ("cert.pem", "key.pem", "ca.pem"):
            if not (Path(bundle) / part).is_file():
                pytest.fail(f"{BUNDLE_VARIABLE}={bundle} has no {part}")
        yield Deployment.from_bundle(url, Path(bundle))
        return
    from tests.e2e.conftest import served_home

    with served_home(tmp_path_factory.mktemp("vbios-conformance")) as server:
        guest = server.create_domain("conformance")
        yield Deployment.from_bundle(server.url, guest)
