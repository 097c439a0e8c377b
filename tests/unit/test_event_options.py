"""`vbios serve --event-retention-days/--event-retention-count` become the configuration's
event retention, and the events use case of the object graph keeps events that long."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import pytest

from bios_ws.bootstrap import bootstrap, initialize_home
from bios_ws.cli.options import add_server_options, config_from_args
from bios_ws.domain.events import EventRetention
from bios_ws.errors import AdminError
from bios_ws.service.event_subscriptions import EventService


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_options(parser)
    return parser.parse_args(list(argv))


def test_the_defaults_keep_a_week_or_a_hundred_thousand_events() -> None:
    args = parse()
    assert (args.event_retention_days, args.event_retention_count) == (7, 100_000)


def test_the_options_become_the_retention_the_events_use_case_applies(tmp_path: Path) -> None:
    home = initialize_home(tmp_path / "home")
    config = config_from_args(parse("--event-retention-days", "2",
                                    "--event-retention-count", "50"), home)
    assert config.event_retention == EventRetention(timedelta(days=2), 50)
    with bootstrap(config) as app:
        assert app.use(EventService).retention == config.event_retention


@pytest.mark.parametrize("argv", [("--event-retention-days", "0"),
                                  ("--event-retention-count", "-3"),
                                  ("--event-retention-count", "x")])
def test_nothing_kept_is_no_retention(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)


def test_a_retention_of_centuries_is_refused(tmp_path: Path) -> None:
    home = initialize_home(tmp_path / "home")
    with pytest.raises(AdminError, match="36500"):
        config_from_args(parse("--event-retention-days", "40000"), home)
