"""vbios-client argument parsing, NAME=VALUE typing and output shapes (no I/O)."""

from __future__ import annotations

import getpass
import io
import json
from pathlib import Path

import pytest
import vbios_client as vc
from vbios_client import _output, cli
from vbios_client.models import (
    AttributeDefinition,
    AttributeRegistry,
    AttributeSet,
    BootConfig,
    BootOption,
    PendingAttributes,
)

REGISTRY = AttributeRegistry("t-1", (
    AttributeDefinition("BootTimeout", "Integer", "Boot timeout", lower_bound=0, upper_bound=60,
                        default=5),
    AttributeDefinition("SecureBoot", "Boolean", "Secure boot", default=True),
    AttributeDefinition("BootMode", "Enumeration", "Boot mode", allowed_values=("Uefi", "Bios"),
                        default="Uefi", reset_required=True),
    AttributeDefinition("AssetTag", "String", "Asset tag", default=""),
))


def parse(*argv: str) -> object:
    return cli.build_parser().parse_args(list(argv))


def test_global_options_before_or_after_the_command() -> None:
    before = parse("--url", "https://h:1/", "--json", "--timeout", "5", "attributes", "get", "A")
    after = parse("attributes", "get", "A", "--url", "https://h:1/", "--json", "--timeout", "5")
    for args in (before, after):
        assert args.url == "https://h:1/"  # type: ignore[attr-defined]
        assert args.json is True  # type: ignore[attr-defined]
        assert args.timeout == 5.0  # type: ignore[attr-defined]
        assert args.names == ["A"]  # type: ignore[attr-defined]


def test_defaults() -> None:
    args = parse("boot", "get")
    assert args.timeout == 30.0  # type: ignore[attr-defined]
    assert args.json is False  # type: ignore[attr-defined]
    assert args.url is None and args.bundle is None  # type: ignore[attr-defined]


def test_set_options() -> None:
    args = parse("attributes", "set", "BootTimeout=10", "A=b=c", "--apply-time", "OnReset",
                 "--if-match", "4")
    assert args.assignments == ["BootTimeout=10", "A=b=c"]  # type: ignore[attr-defined]
    assert args.apply_time == "OnReset"  # type: ignore[attr-defined]
    assert args.if_match == 4  # type: ignore[attr-defined]
    assert args.run is cli._attributes_set  # type: ignore[attr-defined]


@pytest.mark.parametrize("argv", [
    [],
    ["attributes"],
    ["attributes", "set"],
    ["attributes", "set", "A=1", "--apply-time", "Later"],
    ["attributes", "set", "A=1", "--if-match", "x"],
    ["attributes", "set", "A=1", "--if-match", "-1"],
    ["boot", "set"],
    ["boot", "get", "--timeout", "0"],
    ["boot", "get", "--timeout", "nan"],
    ["password", "change"],
    ["power", "off"],
    ["boot", "get", "--password", "secret"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_missing_url_or_bundle_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VBIOS_URL", raising=False)
    monkeypatch.delenv("VBIOS_BUNDLE", raising=False)
    err = io.StringIO()
    assert cli.main(["boot", "get"], stderr=err) == 2
    assert "VBIOS_URL" in err.getvalue()


def test_bundle_that_is_not_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    err = io.StringIO()
    code = cli.main(["--url", "https://127.0.0.1:9/", "--bundle", str(tmp_path / "none"),
                     "boot", "get"], stderr=err)
    assert code == 2
    assert err.getvalue().startswith("vbios-client: error:")


def test_plain_http_url_is_a_usage_error(tmp_path: Path) -> None:
    for name in ("cert.pem", "key.pem", "ca.pem"):
        (tmp_path / name).write_text("x")
    err = io.StringIO()
    code = cli.main(["--url", "http://127.0.0.1:9/", "--bundle", str(tmp_path), "boot", "get"],
                    stderr=err)
    assert code == 2
    assert "https" in err.getvalue()


def test_assignments() -> None:
    assert cli.parse_assignments(["A=1", "B=", "C=x=y"]) == {"A": "1", "B": "", "C": "x=y"}
    for bad in (["A"], ["=1"], ["A=1", "A=2"]):
        with pytest.raises(cli.UsageError):
            cli.parse_assignments(bad)


def test_values_are_typed_by_the_registry() -> None:
    typed = cli.typed_changes(
        {"BootTimeout": "10", "SecureBoot": "false", "BootMode": "Bios", "AssetTag": "42",
         "Unknown": "7"},
        REGISTRY,
    )
    assert typed == {"BootTimeout": 10, "SecureBoot": False, "BootMode": "Bios",
                     "AssetTag": "42", "Unknown": "7"}
    assert type(typed["BootTimeout"]) is int and type(typed["SecureBoot"]) is bool


def test_untypable_value_is_a_usage_error() -> None:
    with pytest.raises(cli.UsageError, match="Integer"):
        cli.typed_changes({"BootTimeout": "ten"}, REGISTRY)


def test_secret_file_drops_only_the_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(" pass word \n")
    assert cli.read_secret_file(str(path)) == " pass word "
    path.write_bytes(b"x" * 5000)
    with pytest.raises(cli.UsageError, match="too long"):
        cli.read_secret_file(str(path))
    with pytest.raises(cli.UsageError, match="cannot read"):
        cli.read_secret_file(str(tmp_path / "missing"))


def test_json_shapes() -> None:
    out = io.StringIO()
    _output.attributes(out, AttributeSet(3, {"B": True, "A": 1}, False), as_json=True)
    assert json.loads(out.getvalue()) == {"version": 3, "attributes": {"A": 1, "B": True},
                                          "setup_password_set": False}
    out = io.StringIO()
    _output.attributes(out, PendingAttributes(4, {}), as_json=True)
    assert json.loads(out.getvalue()) == {"version": 4, "attributes": {}}
    out = io.StringIO()
    _output.version(out, 9, as_json=True)
    assert json.loads(out.getvalue()) == {"version": 9}
    out = io.StringIO()
    config = BootConfig(2, (BootOption("D", "Disk", True), BootOption("P", "PXE", False)),
                        ("P", "D"), "D")
    _output.boot(out, config, as_json=True)
    assert json.loads(out.getvalue()) == {
        "version": 2, "order": ["P", "D"], "boot_next": "D",
        "options": [{"id": "D", "display_name": "Disk", "enabled": True},
                    {"id": "P", "display_name": "PXE", "enabled": False}],
    }
    out = io.StringIO()
    _output.registry(out, REGISTRY, as_json=True)
    data = json.loads(out.getvalue())
    assert data["version"] == "t-1"
    assert [a["name"] for a in data["attributes"]] == [d.name for d in REGISTRY]
    assert data["attributes"][0]["upper_bound"] == 60


def test_human_output_is_aligned() -> None:
    out = io.StringIO()
    _output.attributes(out, AttributeSet(3, {"SecureBoot": True, "Tag": "x"}, True),
                       as_json=False)
    lines = out.getvalue().splitlines()
    assert lines[0] == "# version 3"
    assert "SecureBoot = true" in lines
    assert "Tag        = x" in lines


# -- the run flow, over a fake client ------------------------------------------------


class FakeClient:
    """Stands in for BiosClient: records calls, raises what it is told to."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def get_attribute_registry(self) -> AttributeRegistry:
        return REGISTRY

    def set_attributes(self, *args: object) -> int:
        self.calls.append(("set_attributes", args))
        if self.errors:
            raise self.errors.pop(0)
        return 8

    def get_boot_order(self) -> BootConfig:
        if self.errors:
            raise self.errors.pop(0)
        return BootConfig(1, (), (), None)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(monkeypatch: pytest.MonkeyPatch, fake: FakeClient, *argv: str,
        stdin: io.StringIO | None = None) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "_connect", lambda args: fake)
    monkeypatch.delenv("VBIOS_SETUP_PASSWORD", raising=False)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err, stdin=stdin or io.StringIO())
    return code, out.getvalue(), err.getvalue()


def test_set_sends_typed_values_and_prints_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClient()
    code, out, _ = run(monkeypatch, fake, "attributes", "set", "BootTimeout=10",
                       "SecureBoot=off", "--apply-time", "OnReset", "--if-match", "7", "--json")
    assert code == 0 and json.loads(out) == {"version": 8}
    assert fake.calls == [("set_attributes",
                           ({"BootTimeout": 10, "SecureBoot": False}, "OnReset", 7, None))]


def test_fault_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    error = vc.ReadOnlyAttribute("attribute X is\nread-only", attribute="X")
    code, out, err = run(monkeypatch, FakeClient(error), "attributes", "set", "AssetTag=x")
    assert (code, out) == (1, "")
    assert err == "vbios-client: ReadOnlyAttribute: attribute X is read-only\n"


def test_unknown_fault_code_still_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    error = vc.FaultError("new", code="SomethingNew")
    code, _, err = run(monkeypatch, FakeClient(error), "boot", "get")
    assert code == 1 and err.startswith("vbios-client: SomethingNew: ")


def test_transport_error_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(monkeypatch, FakeClient(vc.TransportError("https://x/: TLS failure")),
                       "boot", "get")
    assert code == 3 and err == "vbios-client: TransportError: https://x/: TLS failure\n"


def test_password_from_env_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeClient()
    monkeypatch.setattr(cli, "_connect", lambda args: fake)
    monkeypatch.setenv("VBIOS_SETUP_PASSWORD", "from-env")
    assert cli.main(["attributes", "set", "AssetTag=x"], stdout=io.StringIO()) == 0
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert cli.main(["attributes", "set", "AssetTag=y", "--password-file", str(secret)],
                    stdout=io.StringIO()) == 0
    assert [call[1][3] for call in fake.calls] == ["from-env", "from-file"]


def test_prompts_once_on_password_required_at_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClient(vc.PasswordRequired("a setup password is set"))
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return "typed"

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    code, out, _ = run(monkeypatch, fake, "attributes", "set", "AssetTag=x", stdin=Tty())
    assert code == 0 and out == "version 8\n"
    assert prompts == ["Setup password: "]
    assert [call[1][3] for call in fake.calls] == [None, "typed"]


def test_no_prompt_without_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClient(vc.PasswordRequired("a setup password is set"))
    monkeypatch.setattr(getpass, "getpass", lambda prompt: pytest.fail("prompted"))
    code, _, err = run(monkeypatch, fake, "attributes", "set", "AssetTag=x")
    assert code == 1 and "PasswordRequired" in err
    assert len(fake.calls) == 1
