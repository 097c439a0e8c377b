"""What a new user of vbios-client meets: --version, the exit codes in --help, JSON errors,
a mistyped option reported by its own command, a description for every command, pending
values beside current ones, the registry's step, refusals before anything is sent."""

from __future__ import annotations

import argparse
import io
import json
from importlib import metadata

import pytest
import vbios_client as vc
from vbios_client import _cli_parser, _output, cli
from vbios_client.models import (
    AttributeDefinition,
    AttributeRegistry,
    AttributeSet,
    PendingAttributes,
)

REGISTRY = AttributeRegistry("t-1", (
    AttributeDefinition("BootTimeout", "Integer", "Boot timeout", lower_bound=0,
                        upper_bound=300, scalar_increment=5, default=5),
    AttributeDefinition("Counter", "Integer", "A counter"),
    AttributeDefinition("BootMode", "Enumeration", "Boot mode", allowed_values=("Uefi", "Bios"),
                        default="Uefi", reset_required=True),
    AttributeDefinition("AssetTag", "String", "Asset tag", default=""),
    AttributeDefinition("SetupPassword", "Password", "Setup password"),
    AttributeDefinition("PowerOnPassword", "Password", "Power-on password"),
))


class FakeClient:
    """Stands in for BiosClient (the CLI is under test): answers, records, raises."""

    def __init__(self, *errors: Exception, values: dict[str, object] | None = None,
                 pending: dict[str, object] | None = None) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.values = values or {"BootMode": "Uefi", "BootTimeout": 5}
        self.pending = pending or {}

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _answer(self, name: str, *args: object) -> None:
        self.calls.append((name, args))
        if self.errors:
            raise self.errors.pop(0)

    def get_attribute_registry(self) -> AttributeRegistry:
        return REGISTRY

    def get_attributes(self, names: list[str] | None) -> AttributeSet:
        self._answer("get_attributes", names)
        shown = {n: v for n, v in self.values.items() if not names or n in names}
        return AttributeSet(3, shown, False)  # type: ignore[arg-type]

    def get_pending_attributes(self) -> PendingAttributes:
        return PendingAttributes(3, dict(self.pending))  # type: ignore[arg-type]

    def set_attributes(self, *args: object) -> int:
        self._answer("set_attributes", *args)
        return 4

    def change_password(self, *args: object) -> int:
        self._answer("change_password", *args)
        return 5


def run(monkeypatch: pytest.MonkeyPatch, fake: FakeClient, *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr; a mistake in the command line is said on sys.stdout
    and sys.stderr and exits, as argparse does (so the run is read back from capsys)."""
    monkeypatch.setattr(cli, "_connect", lambda args: fake)
    monkeypatch.delenv("VBIOS_BUNDLE", raising=False)
    monkeypatch.delenv("VBIOS_SETUP_PASSWORD", raising=False)
    out, err = io.StringIO(), io.StringIO()
    try:
        code = cli.main(list(argv), stdout=out, stderr=err, stdin=io.StringIO())
    except SystemExit as exit_:
        assert (out.getvalue(), err.getvalue()) == ("", "")
        return int(str(exit_.code)), "", ""
    return code, out.getvalue(), err.getvalue()


def run_usage(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
              fake: FakeClient, *argv: str) -> tuple[int, str, str]:
    code, _, _ = run(monkeypatch, fake, *argv)
    printed = capsys.readouterr()
    return code, printed.out, printed.err


# -- version, help, descriptions -----------------------------------------------------------


def test_version_is_the_installed_distribution_s(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"vbios-client {metadata.version('vbios-client')}\n"


def test_help_lists_the_exit_codes() -> None:
    text = cli.build_parser().format_help()
    for line in ("0  done", "1  the service refused", "2  usage", "3  the service could not"):
        assert line in text
    assert '{"error": {"code": ..., "message": ...}}' in text


def test_every_command_at_every_level_has_a_description() -> None:
    commands = list(_cli_parser.walk(cli.build_parser()))
    assert len(commands) > 40 and ("attributes", "set") in dict(commands)
    assert ("host", "status") in dict(commands) and ("sm", "watchdog") in dict(commands)
    undescribed = [" ".join(path) for path, parser in commands if not parser.description]
    assert undescribed == []


# -- a mistyped option: the command's own usage ------------------------------------------


@pytest.mark.parametrize(("argv", "prog", "unknown"), [
    (["attributes", "set", "--bogus", "A=1"], "vbios-client attributes set", "--bogus"),
    (["attributes", "get", "--bogus"], "vbios-client attributes get", "--bogus"),
    (["sm", "watchdog", "enable", "60", "--frobnicate"], "vbios-client sm watchdog",
     "--frobnicate"),
    (["firmware", "history", "extra"], "vbios-client firmware history", "extra"),
    (["thermal", "--bogus"], "vbios-client thermal", "--bogus"),
])
def test_an_unknown_option_is_reported_by_its_command(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
        prog: str, unknown: str) -> None:
    fake = FakeClient()
    code, out, err = run_usage(monkeypatch, capsys, fake, *argv)
    assert (code, out, fake.calls) == (2, "", [])
    assert err.startswith(f"usage: {prog} ")
    assert err.endswith(f"\n{prog}: error: unrecognized arguments: {unknown}\n")


def test_parse_args_used_directly_reports_by_the_command_too(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["boot", "set", "A", "--bogus"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: vbios-client boot set ")
    assert "vbios-client boot set: error: unrecognized arguments: --bogus" in err


# -- --json errors ------------------------------------------------------------------------


def error_of(out: str) -> dict[str, str]:
    data = json.loads(out)  # the whole of stdout is the one object
    assert set(data) == {"error"} and out.startswith('{\n  "error": {\n    "code"')
    return dict(data["error"])


@pytest.mark.parametrize(("error", "status", "code"), [
    (vc.ReadOnlyAttribute("attribute X is\nread-only", attribute="X"), 1, "ReadOnlyAttribute"),
    (vc.FaultError("new", code="SomethingNew"), 1, "SomethingNew"),
    (vc.TransportError("https://x/: TLS failure"), 3, "TransportError"),
])
def test_json_errors_carry_the_code_with_the_same_exit(
        monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, code: str) -> None:
    result, out, err = run(monkeypatch, FakeClient(error), "attributes", "set", "AssetTag=x",
                           "--json")
    assert result == status and error_of(out)["code"] == code
    assert err.startswith(f"vbios-client: {code}: ") and len(err.splitlines()) == 1
    if code == "ReadOnlyAttribute":
        assert error_of(out)["message"] == "attribute X is read-only"


@pytest.mark.parametrize("argv", [
    ["--json", "attributes", "set", "--bogus", "A=1"],
    ["attributes", "frob", "--json"],
    ["power", "reset", "Off", "--json"],
    ["attributes", "set", "BootTimeout=ten", "--json"],
])
def test_json_usage_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                           argv: list[str]) -> None:
    fake = FakeClient()
    code, out, err = run(monkeypatch, fake, *argv)
    if not out:  # argparse's own mistakes: said on sys.stdout and sys.stderr
        printed = capsys.readouterr()
        out, err = printed.out, printed.err
    assert code == 2 and error_of(out)["code"] == "UsageError"
    assert "error: " in err and fake.calls == []


def test_without_json_a_failure_leaves_stdout_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(monkeypatch, FakeClient(vc.TransportError("down")), "attributes",
                       "set", "AssetTag=x")
    assert (code, out) == (3, "")


def test_missing_url_is_a_json_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VBIOS_URL", raising=False)
    monkeypatch.delenv("VBIOS_BUNDLE", raising=False)
    out = io.StringIO()
    assert cli.main(["boot", "get", "--json"], stdout=out, stderr=io.StringIO()) == 2
    assert "VBIOS_URL" in error_of(out.getvalue())["message"]


# -- attributes: pending beside current, the step, refusals before sending -------------------


def test_get_shows_pending_values_beside_current_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClient(pending={"BootMode": "Bios", "AssetTag": "later"})
    code, out, _ = run(monkeypatch, fake, "attributes", "get")
    assert code == 0
    assert "BootMode    = Uefi (pending: Bios)" in out.splitlines()
    assert "BootTimeout = 5" in out.splitlines()
    code, out, _ = run(monkeypatch, fake, "attributes", "get", "--json")
    data = json.loads(out)
    assert data["attributes"] == {"BootMode": "Uefi", "BootTimeout": 5}
    assert data["pending"] == {"BootMode": "Bios"}  # only the names shown
    code, out, _ = run(monkeypatch, FakeClient(), "attributes", "get", "BootTimeout", "--json")
    assert json.loads(out)["pending"] == {}


def test_registry_shows_the_step() -> None:
    out = io.StringIO()
    _output.registry(out, REGISTRY, as_json=False)
    assert "BootTimeout     = Integer  [0..300 step 5]  default 5" in out.getvalue()
    assert "Counter         = Integer\n" in out.getvalue()


@pytest.mark.parametrize("name", ["SetupPassword", "PowerOnPassword"])
def test_a_password_attribute_points_to_password_change(
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    fake = FakeClient()
    code, out, err = run(monkeypatch, fake, "attributes", "set", f"{name}=s3cret-pw")
    assert (code, out, fake.calls) == (2, "", [])
    assert err == (f"vbios-client: error: {name} is a password: set it with vbios-client"
                   f" password change {name}\n")
    assert "ChangePassword" not in err and "s3cret-pw" not in err


@pytest.mark.parametrize(("assignment", "bounds"), [
    ("BootTimeout=99999999999999999999", "0 to 300"),
    ("BootTimeout=-9223372036854775809", "0 to 300"),
    ("Counter=9223372036854775808", "-9223372036854775808 to 9223372036854775807"),
])
def test_an_integer_beyond_64_bits_is_out_of_range_and_not_sent(
        monkeypatch: pytest.MonkeyPatch, assignment: str, bounds: str) -> None:
    fake = FakeClient()
    code, out, err = run(monkeypatch, fake, "attributes", "set", assignment, "--json")
    assert code == 2 and fake.calls == [] and "out of range" in err
    message = error_of(out)["message"]
    assert message.endswith(f"is out of range: {bounds}") and "contract" not in message


def test_a_64_bit_integer_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClient()
    code, _, _ = run(monkeypatch, fake, "attributes", "set", "Counter=9223372036854775807")
    assert code == 0 and fake.calls[0][1][0] == {"Counter": 2**63 - 1}


def test_walk_names_each_command_once() -> None:
    paths = [path for path, _ in _cli_parser.walk(cli.build_parser())]
    assert len(paths) == len(set(paths)) and paths[0] == ()
    assert all(isinstance(p, argparse.ArgumentParser)
               for _, p in _cli_parser.walk(cli.build_parser()))
