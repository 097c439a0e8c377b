"""`vbios capsule create|show`: signed UEFI FMP capsules, as edk2's GenerateCapsule makes them.

    vbios capsule create --image FILE --guid GUID --fw-version N --lowest-supported N
                         --monotonic-count N --signer-cert PEM --signer-key PEM --out FILE
    vbios capsule show FILE [--json] [--trust CERT ... | --home DIR]

Numbers are decimal or 0x-prefixed hexadecimal. The signer PEM may hold intermediates after
the signer's own certificate; they are embedded in the signature. `show` exits 1 when
trusted certificates are given and the signature does not verify against them; with
--home (and no --trust) the trusted certificates are those of `vbios firmware trust`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.cli.eventlog import read_bounded_file
from bios_ws.cli.output import print_json
from bios_ws.domain.capsule import DEFAULT_MAX_CAPSULE_BYTES, UnverifiedCapsule, parse_capsule
from bios_ws.errors import AdminError, CapsuleNotTrusted

if TYPE_CHECKING:
    from bios_ws.domain.capsule import VerifiedCapsule

__all__ = ["register"]

Subparsers = argparse._SubParsersAction

UINT32_MAX = 0xFFFF_FFFF
UINT64_MAX = 0xFFFF_FFFF_FFFF_FFFF
MAX_PEM_BYTES = 1024 * 1024


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    capsule = commands.add_parser("capsule", help="signed UEFI FMP firmware capsules")
    sub = capsule.add_subparsers(dest="capsule_command", required=True, metavar="COMMAND")
    create = sub.add_parser("create", help="build and sign a capsule (as edk2 GenerateCapsule)")
    create.add_argument("--image", metavar="FILE", type=Path, required=True,
                        help="the firmware image")
    create.add_argument("--guid", metavar="GUID", required=True,
                        help="the firmware class (FMP UpdateImageTypeId)")
    create.add_argument("--fw-version", metavar="N", required=True, help="FwVersion (UINT32)")
    create.add_argument("--lowest-supported", metavar="N", required=True,
                        help="LowestSupportedVersion (UINT32)")
    create.add_argument("--monotonic-count", metavar="N", required=True,
                        help="MonotonicCount (UINT64)")
    create.add_argument("--signer-cert", metavar="PEM", type=Path, required=True,
                        help="the signer's certificate, then any intermediates")
    create.add_argument("--signer-key", metavar="PEM", type=Path, required=True,
                        help="the signer's private key (unencrypted PEM)")
    create.add_argument("--out", metavar="FILE", type=Path, required=True,
                        help="where to write the capsule")
    create.set_defaults(run=run_create)
    show = sub.add_parser("show", help="print a capsule's headers and check its signature")
    show.add_argument("file", metavar="FILE", type=Path, help="the capsule")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--trust", metavar="CERT", type=Path, action="append", default=[],
                      help="a trusted signer certificate (PEM; repeatable)")
    show.add_argument("--home", metavar="DIR",
                      help="verify against the signers this home trusts (vbios firmware trust;"
                           " unless --trust is given)")
    show.set_defaults(run=run_show)


def parse_number(option: str, text: str, high: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise AdminError(f"{option}: {text!r} is not a number") from None
    if not 0 <= value <= high:
        raise AdminError(f"{option}: {value} is outside 0..{high:#x}")
    return value


def parse_guid(option: str, text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise AdminError(f"{option}: {text!r} is not a GUID") from None


def run_create(args: argparse.Namespace) -> int:
    from bios_ws.domain.capsule_build import CapsuleSpec, build_capsule
    from bios_ws.firmware import load_signing_key

    spec = CapsuleSpec(
        image_type_id=parse_guid("--guid", args.guid),
        fw_version=parse_number("--fw-version", args.fw_version, UINT32_MAX),
        lowest_supported_version=parse_number("--lowest-supported", args.lowest_supported,
                                              UINT32_MAX),
        monotonic_count=parse_number("--monotonic-count", args.monotonic_count, UINT64_MAX))
    image = read_bounded_file(args.image, DEFAULT_MAX_CAPSULE_BYTES, "image")
    signer = load_signing_key(
        read_bounded_file(args.signer_cert, MAX_PEM_BYTES, "signer certificate"),
        read_bounded_file(args.signer_key, MAX_PEM_BYTES, "signer key"),
        cert_name=f"signer certificate {args.signer_cert}",
        key_name=f"signer key {args.signer_key}")
    data = build_capsule(image, spec, signer.sign)
    parse_capsule(data)  # what we write, we can read
    _write_atomically(args.out, data)
    subject = signer.certificate.subject.rfc4514_string()
    print(f"capsule {args.out}: {len(data)} bytes, firmware class {spec.image_type_id},"
          f" FwVersion {spec.fw_version:#x}, signed by {subject}")
    return 0


def _write_atomically(path: Path, data: bytes) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise AdminError(f"--out {path} is a directory")
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise AdminError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise AdminError(f"cannot write {path}: {exc.strerror or exc}") from None


def run_show(args: argparse.Namespace) -> int:
    capsule = parse_capsule(read_bounded_file(args.file, DEFAULT_MAX_CAPSULE_BYTES, "capsule"))
    verdict: dict[str, object] = {"checked": False}
    verified: VerifiedCapsule | None = None
    checked = bool(args.trust) or args.home is not None
    if args.trust:
        verified, verdict = _verify(capsule, [der for path in args.trust
                                              for der in _trusted_ders(path)])
    elif args.home is not None:
        from bios_ws.cli.firmware import trusted_anchors

        verified, verdict = _verify(capsule, trusted_anchors(args))
    report = capsule_report(capsule)
    report["signature"] = verdict
    if args.json:
        print_json(report)
    else:
        _print_report(report, verified)
    return 1 if checked and verified is None else 0


def _trusted_ders(path: Path) -> list[bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = read_bounded_file(path, MAX_PEM_BYTES, "trusted certificate")
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise AdminError(f"trusted certificate {path} holds no PEM certificate") from None
    return [c.public_bytes(serialization.Encoding.DER) for c in certificates]


def _verify(capsule: UnverifiedCapsule, anchors: list[bytes]
            ) -> tuple[VerifiedCapsule | None, dict[str, object]]:
    from bios_ws.firmware import Pkcs7CapsuleVerifier

    try:
        verified = Pkcs7CapsuleVerifier().verify(capsule, anchors, now=datetime.now(UTC))
    except CapsuleNotTrusted as exc:
        return None, {"checked": True, "verified": False, "reason": exc.reason,
                      "detail": exc.detail}
    signer = verified.signer
    return verified, {"checked": True, "verified": True, "signer": {
        "subject": signer.subject, "issuer": signer.issuer,
        "serial_number": f"{signer.serial_number:x}",
        "sha256_fingerprint": signer.sha256_fingerprint}}


def capsule_report(capsule: UnverifiedCapsule) -> dict[str, object]:
    """The headers of ``capsule`` as JSON-ready values (GUIDs as strings)."""
    header, image_header = capsule.capsule_header, capsule.image_header
    auth, payload = capsule.authentication, capsule.payload_header
    return {
        "capsule_header": {"capsule_guid": str(header.capsule_guid),
                           "header_size": header.header_size, "flags": header.flags,
                           "capsule_image_size": header.capsule_image_size},
        "image_header": {"version": image_header.version,
                         "update_image_type_id": str(image_header.update_image_type_id),
                         "update_image_index": image_header.update_image_index,
                         "update_image_size": image_header.update_image_size,
                         "update_hardware_instance": image_header.update_hardware_instance,
                         "image_capsule_support": image_header.image_capsule_support},
        "authentication": {"monotonic_count": auth.monotonic_count,
                           "cert_type": str(auth.cert_type),
                           "signature_size": len(auth.signature)},
        "payload_header": {"fw_version": payload.fw_version,
                           "lowest_supported_version": payload.lowest_supported_version},
        "image": {"size": len(capsule.image),
                  "sha256": hashlib.sha256(capsule.image).hexdigest()},
    }


def _print_report(report: dict[str, object], verified: VerifiedCapsule | None) -> None:
    for section, values in report.items():
        if section == "signature":
            continue
        assert isinstance(values, dict)
        print(f"{section}:")
        for name, value in values.items():
            shown = f"{value:#x}" if isinstance(value, int) and name in {
                "flags", "fw_version", "lowest_supported_version", "image_capsule_support"} \
                else value
            print(f"  {name}: {shown}")
    verdict = report["signature"]
    assert isinstance(verdict, dict)
    if not verdict["checked"]:
        print("signature: not checked (no --trust or --home given)")
    elif verified is not None:
        signer = verified.signer
        print(f"signature: verified; signer {signer.subject} (issuer {signer.issuer},"
              f" SHA-256 {signer.sha256_fingerprint})")
    else:
        print(f"signature: NOT verified ({verdict['reason']}): {verdict['detail']}")
