"""Power through the guest library and `vbios-client power`, in-process (over the app)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import requests
import vbios_client as vc
from vbios_client import cli

from bios_ws.registry_file import load_registry
from bios_ws.soap.testing import Endpoint, build_endpoint
from tests.integration.test_client_inprocess import URL, WsgiAdapter


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint(registry=load_registry())


@pytest.fixture
def bios(ep: Endpoint) -> Iterator[vc.BiosClient]:
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", WsgiAdapter(ep.app, ep.guest))
    with vc.BiosClient._over_session(URL, session, timeout=5) as client:
        yield client


def test_power_state_and_reset(bios: vc.BiosClient, ep: Endpoint) -> None:
    assert bios.get_power_state() == vc.PowerState("Off", None, None, False)
    outcome = bios.reset("On")
    assert isinstance(outcome, vc.ResetOutcome)
    assert (outcome.power_state, outcome.pending_changes) == ("PoweringOn", False)
    ep.clock.advance(ep.platform.boot_seconds)
    state = bios.get_power_state()
    assert (state.power_state, state.last_reset_cause) == ("On", "ManagementCommand")
    assert state.last_reset_time is not None and state.last_reset_time.startswith("2026-")


def test_a_reset_that_makes_no_sense_raises_its_class(bios: vc.BiosClient) -> None:
    with pytest.raises(vc.InvalidPowerTransition) as refused:
        bios.reset("Resume")
    assert refused.value.attribute == "Off"


def test_an_unknown_reset_type_never_leaves_the_library(bios: vc.BiosClient) -> None:
    with pytest.raises(ValueError, match="reset_type must be one of"):
        bios.reset("Reboot")


def test_pending_changes_show_and_apply_at_power_on(bios: vc.BiosClient) -> None:
    bios.set_attributes({"BootMode": "Bios"}, apply_time="OnReset")
    assert bios.get_power_state().pending_changes is True
    outcome = bios.reset("On")
    assert outcome.pending_changes is False and "applied" in outcome.message
    assert bios.get_attributes(["BootMode"]).values == {"BootMode": "Bios"}


def run(bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str,
                                                                                   str]:
    monkeypatch.setattr(cli, "_connect", lambda args: bios)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--url", URL, "--bundle", "unused", *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_power_get_json_and_text(bios: vc.BiosClient,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(bios, monkeypatch, "power", "get", "--json")
    assert code == 0
    assert json.loads(out) == {"power_state": "Off", "last_reset_cause": None,
                               "last_reset_time": None, "pending_changes": False}
    code, out, _ = run(bios, monkeypatch, "power", "get")
    assert code == 0 and "power state" in out and "Off" in out


def test_cli_power_reset(bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(bios, monkeypatch, "power", "reset", "ForceOn", "--json")
    assert code == 0
    assert json.loads(out)["power_state"] == "PoweringOn"
    code, _, err = run(bios, monkeypatch, "power", "reset", "ForceOn")
    assert code == 1 and err.startswith("vbios-client: InvalidPowerTransition: ")
    assert len(err.splitlines()) == 1


def test_cli_refuses_an_unknown_type_as_usage(bios: vc.BiosClient,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as usage:
        run(bios, monkeypatch, "power", "reset", "Reboot")
    assert usage.value.code == 2
