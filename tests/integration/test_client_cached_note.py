"""The guest library's view of a cached answer (``BiosClient.last_answer_cached``) through
its requests sender, in-process: the real forwarder of host A (``tests.forwarding_support``)
with the stand-in remote on loopback. (The library's own HTTPS sender is covered by
``tests/e2e/test_routed_cache_e2e.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import vbios_client as vc

from bios_ws.domain.principal import Principal
from tests.forwarding_support import ADMIN, host_a, stand_in
from tests.integration.test_client_inprocess import URL, WsgiAdapter
from tests.routing_support import RemoteInstallation

ATTRIBUTES = (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"'
              b' xmlns:t="urn:bios-ws:vbios:v1"><e:Body><t:GetAttributesResponse>'
              b"<t:Version>4</t:Version><t:SetupPasswordSet>false</t:SetupPasswordSet>"
              b"<t:Attributes><t:AttributeValue><t:Name>NumLock</t:Name><t:BooleanValue>true"
              b"</t:BooleanValue></t:AttributeValue></t:Attributes></t:GetAttributesResponse>"
              b"</e:Body></e:Envelope>")


def test_the_library_says_which_answer_was_cached_and_how_old(tmp_path: Path) -> None:
    installation = RemoteInstallation()
    with stand_in(installation, tmp_path) as remote, host_a(installation, tmp_path) as host:
        remote.remote.body = ATTRIBUTES
        host.add_remote(remote.url)
        host.routing.set_route(ADMIN, "settings", "cloud-b", cache_seconds=60)
        session = requests.Session()
        session.trust_env = False
        session.mount("https://", WsgiAdapter(host.forwarder, Principal.guest("vm1")))
        with vc.BiosClient._over_session(URL, session, timeout=5) as client:
            assert client.last_answer_cached is None  # no call yet
            fresh = client.get_attributes()
            assert (fresh.version, fresh.values) == (4, {"NumLock": True})
            assert client.last_answer_cached is None
            remote.stop()
            host.clock.now += 3
            assert client.get_attributes() == fresh
            assert client.last_answer_cached == vc.CachedAnswer("cloud-b", 3)
            with pytest.raises(vc.RemoteUnavailable):
                client.set_attributes({"NumLock": False})
            assert client.last_answer_cached is None  # each call says its own
