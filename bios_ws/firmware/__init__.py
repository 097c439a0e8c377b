"""Firmware capsule signatures (cryptography for signing and chains, asn1crypto for PKCS#7).

``sign_detached`` makes the detached PKCS#7 edk2's GenerateCapsule makes (SHA-256, no signed
attributes); ``Pkcs7CapsuleVerifier`` is the ``CapsuleVerifier`` that checks one against the
admin's trusted signer certificates. The layout itself is ``bios_ws.domain.capsule``.
"""

from bios_ws.firmware.signing import CapsuleSigningKey, load_signing_key, sign_detached
from bios_ws.firmware.verification import Pkcs7CapsuleVerifier, verify_detached

__all__ = [
    "CapsuleSigningKey",
    "Pkcs7CapsuleVerifier",
    "load_signing_key",
    "sign_detached",
    "verify_detached",
]
