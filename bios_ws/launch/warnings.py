"""The loud warning of a home without TPM, and the environment variable naming the TPM."""

from __future__ import annotations

#: Read by the command when it runs (never at import): overrides the home's TPM.
TPM_ENV = "VBIOS_TPM"

NO_TPM_WARNING = """\
WARNING: *** NO TPM: DEVELOPMENT ONLY ***
WARNING: the server and CA key passphrase is a plain 0600 file in the state directory.
WARNING: anyone who can read that directory can speak as this vBIOS; nothing binds the
WARNING: keys to the measured boot or to the service code. Never run this in production:
WARNING: initialize with a TPM (vbios init --tpm TCTI, or the development TPM by default)."""
