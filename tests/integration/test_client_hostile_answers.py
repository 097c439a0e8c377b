"""Hostile and misshapen answers through the whole library (BiosClient over an in-process
adapter): each is a TransportError that says why and repeats nothing of the answer; and
what the `vbios-client` process imports (a subprocess per command shape)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import vbios_client as vc
from vbios_client import _xml

from tests.integration.test_client_inprocess import World

NS = "urn:bios-ws:vbios:v1"
ENVELOPE = ('<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="{ns}">'
            "<e:Body>{inner}</e:Body></e:Envelope>")
GOOD = ("<t:GetAttributesResponse><t:Version>1</t:Version><t:SetupPasswordSet>false"
        "</t:SetupPasswordSet><t:Attributes><t:AttributeValue><t:Name>A</t:Name>"
        "<t:StringValue>boom-ok</t:StringValue></t:AttributeValue></t:Attributes>"
        "</t:GetAttributesResponse>")


@pytest.fixture
def world() -> World:
    return World()


def _answer(inner: str, prefix: str = "") -> tuple[int, str, bytes]:
    return 200, "text/xml", (prefix + ENVELOPE.format(ns=NS, inner=inner)).encode()


def test_a_well_formed_answer_reads(world: World) -> None:
    with world.client(reply=lambda: _answer(GOOD)) as client:
        assert client.get_attributes().values == {"A": "boom-ok"}


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (_answer(GOOD.replace(">1<", ">boom<")), "not as the contract declares it"),
        (_answer(GOOD.replace("<t:Name>A</t:Name>", "")), "not as the contract declares it"),
        (_answer(GOOD.replace("<t:Attributes>", "<t:Boom/><t:Attributes>")),
         "not as the contract declares it"),
        (_answer(GOOD.replace("GetAttributesResponse", "GetBootOrderResponse")),
         "GetBootOrderResponse instead of GetAttributesResponse"),
        (_answer(GOOD, '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY b "boom">]>'),
         "document type declaration"),
        (_answer(GOOD, '<!DOCTYPE e [<!ENTITY a "boomboomboom"><!ENTITY b "&a;&a;&a;&a;&a;'
                       '&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'),
         "document type declaration"),
        (_answer(GOOD + GOOD), "2 elements"),
    ],
)
def test_misshapen_answers_are_transport_errors(world: World, reply: tuple[int, str, bytes],
                                                reason: str) -> None:
    with world.client(reply=lambda: reply) as client, \
            pytest.raises(vc.TransportError, match=f"unreadable answer to GetAttributes.*{reason}"
                          ) as caught:
        client.get_attributes()
    assert "boom" not in str(caught.value)


def test_an_oversized_answer_is_a_transport_error(world: World,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_xml, "MAX_ANSWER_BYTES", 4096)
    padded = GOOD.replace("boom-ok", "x" * 5000)
    with world.client(reply=lambda: _answer(padded)) as client, \
            pytest.raises(vc.TransportError, match="longer than 4096 bytes"):
        client.get_attributes()


# -- what the command imports -----------------------------------------------------------

HEAVY = ("requests", "urllib3", "zeep", "lxml", "cryptography")


def _imported_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint('\\n' + ' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True, cwd=Path(__file__).parent)
    return {name.split(".")[0] for name in done.stdout.splitlines()[-1].split()}


def test_help_imports_nothing_heavy() -> None:
    modules = _imported_after(
        "from vbios_client import cli\n"
        "try:\n    cli.build_parser().parse_args(['--help'])\nexcept SystemExit:\n    pass")
    assert "argparse" in modules and not modules & set(HEAVY)


def test_a_command_imports_no_requests_zeep_or_cryptography() -> None:
    """What `vbios-client attributes get` loads before its call: ssl and lxml (no http)."""
    modules = _imported_after(
        "from vbios_client import cli, client, _https, _answers, _codec, _bundle, _renewal\n"
        "client.BiosClient.get_attributes")
    assert "lxml" in modules and "ssl" in modules
    assert not modules & {"requests", "urllib3", "zeep", "cryptography", "http"}


def test_the_library_never_imports_zeep() -> None:
    modules = _imported_after("import vbios_client\nvbios_client.BiosClient\n"
                              "vbios_client.enroll\nfrom vbios_client import _soap, attestation")
    assert "requests" in modules and "zeep" not in modules
