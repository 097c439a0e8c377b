"""The `vbios` command line itself: every subcommand described, usage errors where they
belong (JSON too with --json), the version, the exit codes in the help."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from importlib.metadata import version

import pytest

from bios_ws.cli import build_parser, main
from bios_ws.cli.hidden import is_hidden_alias
from bios_ws.cli.parsing import deepest_parser, sentence, wants_json


def _subcommands(parser: argparse.ArgumentParser
                 ) -> Iterator[tuple[argparse._SubParsersAction, str, argparse.ArgumentParser]]:
    """(its subcommands action, name, parser) of every subcommand under ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield action, name, child
                yield from _subcommands(child)


def test_every_subcommand_at_every_level_has_a_help_and_a_description() -> None:
    seen = list(_subcommands(build_parser()))
    assert len(seen) > 60  # the whole tree, not the top level only
    for action, name, parser in seen:
        listed = {choice.dest: choice.help for choice in action._choices_actions}
        assert parser.description, f"{parser.prog} has no description"
        if is_hidden_alias(parser):
            assert name not in listed, f"{parser.prog} is hidden, yet listed"
        else:
            assert listed.get(name), f"{parser.prog} has no help"


def test_attest_is_hidden_and_ak_is_not() -> None:
    hidden = {parser.prog for _, _, parser in _subcommands(build_parser())
              if is_hidden_alias(parser)}
    assert "vbios attest" in hidden
    assert "vbios ak" not in hidden


def test_a_help_becomes_a_sentence_as_description() -> None:
    assert sentence("list domains") == "List domains."
    assert sentence("measure now (exit 1 when Untrusted)") == "Measure now (exit 1 when" \
                                                             " Untrusted)."
    assert sentence("Done.") == "Done."
    parser = build_parser()
    domain_list = deepest_parser(parser, parser.parse_args(["domain", "list"]))
    assert domain_list.prog == "vbios domain list"
    assert domain_list.description == "List domains."


@pytest.mark.parametrize(("argv", "usage"), [
    (["domain", "create", "x", "--bogus"], "usage: vbios domain create "),
    (["domain", "power", "get", "x", "--bogus"], "usage: vbios domain power get "),
    (["audit", "show", "extra"], "usage: vbios audit show "),
    (["cert", "list", "--bogus"], "usage: vbios cert list "),
    (["eventlog", "show", "f", "--bogus"], "usage: vbios eventlog show "),
    (["ak", "show", "--bogus"], "usage: vbios ak show "),
])
def test_a_mistyped_option_shows_the_usage_of_its_subcommand(
        argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(usage)
    assert "unrecognized arguments: " in err.splitlines()[-1]


@pytest.mark.parametrize(("argv", "prog", "message"), [
    (["domain", "list", "--json", "--bogus"], "vbios domain list",
     "unrecognized arguments: --bogus"),
    (["audit", "show", "--json", "--since", "0"], "vbios audit show",
     "argument --since: must be 1 or more"),
    (["domain", "power", "reset", "x", "Bogus", "--json"], "vbios domain power reset",
     "argument TYPE: invalid choice: 'Bogus'"),
    (["domain", "nope", "--json"], "vbios domain", "argument COMMAND: invalid choice: 'nope'"),
])
def test_with_json_a_usage_error_is_json_on_stdout(
        argv: list[str], prog: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    out, err = capsys.readouterr()
    error = json.loads(out)["error"]
    assert error["code"] == "UsageError"
    assert error["message"].startswith(f"{prog}: {message}")
    assert out.startswith('{\n  "error": {\n    "code"')  # indented as all JSON output
    assert f"usage: {prog}" in err  # and people still see the usage


def test_without_json_a_usage_error_prints_nothing_on_stdout(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "show", "--since", "0"])
    assert capsys.readouterr().out == ""


def test_json_after_a_double_dash_is_an_argument_not_the_option() -> None:
    assert wants_json(["domain", "list", "--json"])
    assert not wants_json(["eventlog", "show", "--", "--json"])
    assert not wants_json(["domain", "list"])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"vbios {version('bios-ws')}\n"


def test_the_help_documents_exit_codes_and_the_json_rule(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for line in ("  0    success", "  1    refused or failed", "  2    usage error",
                 "  130  interrupted"):
        assert line in text
    assert '{"error": {"code": CODE, "message": TEXT}}' in text
    assert "--version" in text


def _no_tpm_help(*argv: str) -> str:
    parser = build_parser()
    command = deepest_parser(parser, parser.parse_args(list(argv)))
    (found,) = [a.help for a in command._actions if "--no-tpm" in a.option_strings]
    assert found
    return found


def test_each_no_tpm_help_says_what_it_means_for_its_command() -> None:
    creating = _no_tpm_help("init")
    assert "DEVELOPMENT ONLY" in creating and "new home gets no TPM" in creating
    assert _no_tpm_help("devrun") == creating  # devrun creates the home if missing
    serving = _no_tpm_help("serve")
    assert "serve a home created with --no-tpm" in serving and "refused" in serving
    measuring = _no_tpm_help("integrity")
    assert "nothing is measured" in measuring and "Untrusted" in measuring
    assert _no_tpm_help("reference", "show") == measuring
    assert _no_tpm_help("reference", "set", "--current") == measuring
    assert len({creating, serving, measuring}) == 3


def test_a_mistyped_command_is_told_the_choices_without_hidden_names(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["nope"])
    assert done.value.code == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert "invalid choice: 'nope' (choose from 'init', " in message
    assert "'ak'" in message and "'attest'" not in message
