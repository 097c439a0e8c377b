"""`vbios serve --access-log PATH|-|off` and its rotation options become the server's
options: the home's log file by default, the metrics directory in the home's run
directory (``config_from_args`` applies it: the e2e suite finds the log in the home); a
rotation too small or keeping too many files is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bios_ws.cli import build_parser
from bios_ws.cli.options import with_telemetry
from bios_ws.errors import AdminError
from bios_ws.home import Home
from bios_ws.server.options import ACCESS_LOG_STDERR, ServerOptions

HOME = Home(Path("/srv/vbios"))


def server_options(*argv: str, command: str = "serve") -> ServerOptions:
    args = build_parser().parse_args([command, "--home", str(HOME.path), *argv])
    return with_telemetry(ServerOptions(), args, HOME)


def test_by_default_the_access_log_and_the_metrics_live_in_the_home() -> None:
    options = server_options()
    assert options.access_log == HOME.path / "log" / "access.log"
    assert options.metrics_dir == HOME.path / "run" / "metrics"
    assert (options.access_log_max_bytes, options.access_log_backups) == (10 * 1_048_576, 5)


@pytest.mark.parametrize("command", ["serve", "devrun"])
def test_the_access_log_goes_to_a_file_standard_error_or_nowhere(command: str) -> None:
    assert server_options("--access-log", "/var/log/vbios/access.log",
                          command=command).access_log == Path("/var/log/vbios/access.log")
    assert server_options("--access-log", "-", command=command).access_log == ACCESS_LOG_STDERR
    assert server_options("--access-log", "off", command=command).access_log is None


def test_a_relative_access_log_path_is_made_absolute() -> None:
    chosen = server_options("--access-log", "access.log").access_log
    assert chosen == Path.cwd() / "access.log"


def test_the_rotation_options_reach_the_server() -> None:
    options = server_options("--access-log-max-bytes", "1048576", "--access-log-backups", "0")
    assert (options.access_log_max_bytes, options.access_log_backups) == (1_048_576, 0)


def test_a_rotation_size_below_64_kib_is_refused() -> None:
    with pytest.raises(AdminError, match="--access-log-max-bytes: at least 65536"):
        server_options("--access-log-max-bytes", "4096")


@pytest.mark.parametrize(("option", "value"), [
    ("--access-log-backups", "1001"), ("--access-log-backups", "-1"),
    ("--access-log-max-bytes", "0"), ("--access-log-max-bytes", "lots"),
])
def test_a_malformed_rotation_option_is_a_usage_error(option: str, value: str,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    with pytest.raises(SystemExit) as exited:
        server_options(option, value)
    assert exited.value.code == 2
    assert option in capsys.readouterr().err
