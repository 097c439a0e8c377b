"""`vbios serve --remote-timeout SECONDS` bounds a call routed to a remote vBIOS
(``ServerOptions.remote_timeout``, read by the forwarder: docs/routing.md)."""

from __future__ import annotations

import pytest

from bios_ws.cli import build_parser
from bios_ws.server.options import ServerOptions


def parsed(*argv: str) -> float:
    args = build_parser().parse_args(["serve", "--home", "/srv/vbios", *argv])
    return float(args.remote_timeout)


def test_the_bound_defaults_to_the_server_options_and_can_be_set() -> None:
    assert parsed() == ServerOptions.remote_timeout == 10.0
    assert parsed("--remote-timeout", "2.5") == 2.5


def test_a_bound_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parsed("--remote-timeout", "0")
    assert "expected seconds" in capsys.readouterr().err
