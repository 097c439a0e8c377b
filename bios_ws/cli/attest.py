"""`vbios attest enroll|show`: the host's attestation key (AK) in the TPM, and its certificate.

`enroll` verifies the TPM's EK certificate, creates (or re-uses) the AK, proves
it by credential activation and has the installation CA certify it (see
``bios_ws.launch.enroll``). `show` prints what is enrolled, without the TPM.
"""

from __future__ import annotations

import argparse
import json

from bios_ws.cli.options import add_home
from bios_ws.home import Home, resolve_home_path

__all__ = ["register"]

Subparsers = argparse._SubParsersAction


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    home_option = argparse.ArgumentParser(add_help=False)
    add_home(home_option)

    attest = commands.add_parser("attest", help="the attestation key in the TPM")
    attest_commands = attest.add_subparsers(dest="attest_command", required=True,
                                            metavar="COMMAND")
    enroll = attest_commands.add_parser(
        "enroll", parents=[home_option],
        help="verify the EK, create or re-use the attestation key, certify it")
    enroll.add_argument("--tpm", metavar="TCTI",
                        help="TPM to use (default: $VBIOS_TPM, else the home's)")
    enroll.set_defaults(run=run_enroll, no_tpm=False)
    show = attest_commands.add_parser("show", parents=[home_option],
                                      help="print the enrolled attestation key")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=run_show)


def run_enroll(args: argparse.Namespace) -> int:
    from bios_ws.cli.options import chosen_tpm
    from bios_ws.launch.enroll import ek_anchors, enroll
    from bios_ws.launch.sealing import LaunchContext, unseal_key_passphrase
    from bios_ws.pki.authority import Authority

    home = Home.open(resolve_home_path(args.home))
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
        "ak_not_after": ak.not_valid_after_utc.isoformat(),
        "ek_certificate": str(home.ek_cert),
        "ek_issuer": ek.issuer.rfc4514_string(),
        "record": str(ak_record_path(home)),
    }


def run_show(args: argparse.Namespace) -> int:
    home = Home.open(resolve_home_path(args.home))
    shown = describe(home)
    if args.json:
        print(json.dumps(shown, indent=2, sort_keys=True))
        return 0
    print(f"attestation key name:  {shown['ak_name']}")
    print(f"AK certificate:        {shown['ak_certificate']}")
    print(f"  subject:             {shown['ak_subject']}")
    print(f"  SHA-256 fingerprint: {shown['ak_fingerprint_sha256']}")
    print(f"  valid until:         {shown['ak_not_after']}")
    print(f"EK certificate:        {shown['ek_certificate']}")
    print(f"  issuer:              {shown['ek_issuer']}")
    return 0
