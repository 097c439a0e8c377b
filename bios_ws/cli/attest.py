"""`vbios ak enroll|show`: the host's attestation key (AK) in the TPM, and its certificate.

(`vbios attest` is its old name: it still works, unlisted, and says the new one.)
`enroll` verifies the TPM's EK certificate, creates (or re-uses) the AK, proves
it by credential activation and has the installation CA certify it (see
``bios_ws.launch.enroll``). `show` prints what is enrolled, without the TPM.
"""

from __future__ import annotations

import argparse

from bios_ws.cli.hidden import add_hidden_alias
from bios_ws.cli.options import add_home
from bios_ws.cli.output import print_json, rfc3339
from bios_ws.errors import AdminError
from bios_ws.home import Home, resolve_home_path

__all__ = ["register"]

Subparsers = argparse._SubParsersAction


AK_HELP = "the host's attestation key in the TPM: show, enroll"
AK_DESCRIPTION = ("The host's attestation key (AK) in the TPM, certified by the installation"
                  " CA: guests verify the quotes it signs (vbios-client attest).")


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    _add_commands(commands.add_parser("ak", help=AK_HELP, description=AK_DESCRIPTION))
    _add_commands(add_hidden_alias(commands, "attest", "vbios ak",
                                   description=f"{AK_DESCRIPTION} Now `vbios ak`."))


def _add_commands(ak: argparse.ArgumentParser) -> None:
    home_option = argparse.ArgumentParser(add_help=False)
    add_home(home_option)
    ak_commands = ak.add_subparsers(dest="ak_command", required=True, metavar="COMMAND")
    enroll = ak_commands.add_parser(
        "enroll", parents=[home_option],
        help="verify the EK, create or re-use the attestation key, certify it")
    enroll.add_argument("--tpm", metavar="TCTI",
                        help="TPM to use (default: $VBIOS_TPM, else the home's)")
    enroll.set_defaults(run=run_enroll, no_tpm=False)
    show = ak_commands.add_parser("show", parents=[home_option],
                                  help="print the enrolled attestation key")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=run_show)


def _home_with_tpm(args: argparse.Namespace) -> Home:
    """The home of the command; refused, in the same words everywhere, if it has no TPM."""
    home = Home.open(resolve_home_path(args.home))
    if home.tpm.is_none:
        raise AdminError(f"{home.path}: this home has no TPM (created with --no-tpm)")
    return home


def run_enroll(args: argparse.Namespace) -> int:
    from bios_ws.cli.options import chosen_tpm
    from bios_ws.launch.enroll import ek_anchors, enroll
    from bios_ws.launch.sealing import LaunchContext, unseal_key_passphrase
    from bios_ws.pki.authority import Authority

    home = _home_with_tpm(args)
    tpm_choice = chosen_tpm(args)
    ek_anchors(home)  # refuse a home without TPM or without EK CAs before touching the TPM
    # The CA first: unsealing its passphrase opens the TPM itself (one connection at a time).
    authority = Authority.load(home, unseal_key_passphrase(home, "ca", tpm=tpm_choice))
    tpm = LaunchContext(home, tpm_choice).open()
    try:
        identity = enroll(home, tpm, authority)
    finally:
        tpm.close()
    print(f"attestation key enrolled: name {identity.ak_name.hex()}")
    print(f"  AK certificate: {home.ak_cert}")
    print(f"  EK certificate: {home.ek_cert}")
    return 0


def describe(home: Home) -> dict[str, str]:
    """What `show` prints: AK certificate subject, fingerprint, validity, AK name, EK issuer."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from bios_ws.launch.enroll import ak_record_path, load_identity

    identity = load_identity(home)
    ak = x509.load_pem_x509_certificate(identity.ak_cert_pem)
    ek = x509.load_pem_x509_certificate(identity.ek_cert_pem)
    return {
        "ak_name": identity.ak_name.hex(),
        "ak_certificate": str(home.ak_cert),
        "ak_subject": ak.subject.rfc4514_string(),
        "ak_fingerprint_sha256": ak.fingerprint(hashes.SHA256()).hex(),
        "ak_not_after": rfc3339(ak.not_valid_after_utc),
        "ek_certificate": str(home.ek_cert),
        "ek_issuer": ek.issuer.rfc4514_string(),
        "record": str(ak_record_path(home)),
    }


def run_show(args: argparse.Namespace) -> int:
    shown = describe(_home_with_tpm(args))
    if args.json:
        print_json(shown)
        return 0
    print(f"attestation key name:  {shown['ak_name']}")
    print(f"AK certificate:        {shown['ak_certificate']}")
    print(f"  subject:             {shown['ak_subject']}")
    print(f"  SHA-256 fingerprint: {shown['ak_fingerprint_sha256']}")
    print(f"  valid until:         {shown['ak_not_after']}")
    print(f"EK certificate:        {shown['ek_certificate']}")
    print(f"  issuer:              {shown['ek_issuer']}")
    return 0
