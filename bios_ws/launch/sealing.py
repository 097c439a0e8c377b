"""Seal the key passphrases to the measured boot and service; unseal them at launch.

Policy: PolicyPCR over the sha256 bank of PCRs 0-7 (the boot) and 23 (the
service). At sealing, PCRs 0-7 are taken as they are and PCR 23 as it *will
be* after a measured launch: ``SHA-256(0*32 || service digest)``, computed
offline. A measured launch resets PCR 23 and extends it with the digest before
unsealing; the value it leaves is the same whichever process does it (the
server or an admin command), so commands running beside the server do not
disturb it. Each launch also records its extend as a TCG event
(``bios_ws.tpm.service_log``), so a guest's quote over PCR 23 replays.

The TPM connection is opened for the launch and closed right after: the
running server does not hold it (swtpm serves one connection at a time).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from bios_ws.errors import (
    KeyUnreadable,
    StateDirectoryError,
    TpmError,
    TpmPolicyMismatch,
    TpmUnavailable,
)
from bios_ws.home import Home, TpmChoice
from bios_ws.launch.diagnosis import describe_changes
from bios_ws.launch.measure import Measurement, expected_service_pcr, measure
from bios_ws.launch.record import SealedState, read_record, write_record
from bios_ws.launch.recovery import KeyPassphrases
from bios_ws.pki.files import PRIVATE_MODE, PUBLIC_MODE, ensure_dir, write_file_atomic
from bios_ws.tpm.port import BOOT_PCRS, SERVICE_PCR, SealedBlob, Tpm
from bios_ws.tpm.service_log import (
    SERVICE_LOG_NAME,
    read_service_log,
    served_event_log,
    service_event_log,
    service_extend_digests,
)

KEYS = ("server", "ca")
SEALED_PCRS = (*BOOT_PCRS, SERVICE_PCR)
LINUX_EVENT_LOG = Path("/sys/kernel/security/tpm0/binary_bios_measurements")
_MAX_EVENT_LOG = 4 * 1024 * 1024
_KEY_LABELS = {"server": "server key", "ca": "CA key"}

TpmOpener = Callable[[str], Tpm]


def _default_opener(tcti: str) -> Tpm:
    from bios_ws.tpm.esapi import open_tpm

    return open_tpm(tcti)


@dataclass
class LaunchContext:
    """One home's TPM and how to reach it; ``opener`` is injectable for tests."""

    home: Home
    #: The command's choice (--tpm, --no-tpm, $VBIOS_TPM), else the home's own.
    tpm_override: TpmChoice | None = None
    opener: TpmOpener = field(default=_default_opener)
    package_root: Path | None = None
    #: Where the platform's boot event log is, when the TPM setting does not tell.
    event_log_path: Path | None = None

    @property
    def choice(self) -> TpmChoice:
        return self.tpm_override or self.home.tpm

    def tcti(self) -> str:
        """The TCTI to open; never a default search. TpmUnavailable for a stopped dev TPM."""
        choice = self.choice
        if choice.is_none:
            raise StateDirectoryError(f"{self.home.path} uses no TPM (initialized with --no-tpm)")
        if not choice.is_dev:
            return choice.setting
        from bios_ws.tpm.devtpm import DevTpm

        status = DevTpm(self.home.tpm_dir).status()
        if not status.running or not status.tcti:
            raise TpmUnavailable(
                f"the development TPM of {self.home.path} is not running;"
                f" start it with: vbios tpm start --home {self.home.path}")
        return status.tcti

    def open(self) -> Tpm:
        """The home's TPM, connected; TpmUnavailable naming the TCTI (and the fix)."""
        tcti = self.tcti()
        try:
            return self.opener(tcti)
        except ValueError as exc:
            raise StateDirectoryError(f"invalid TPM for {self.home.path}: {exc}") from None
        except TpmUnavailable as exc:
            hint = (f"; is it running? vbios tpm status --home {self.home.path}"
                    if self.choice.is_dev else "")
            raise TpmUnavailable(f"the TPM at {tcti} is unreachable: {exc.message}{hint}") from None

    def measure(self) -> Measurement:
        return measure(self.home, self.package_root)

    def event_log(self) -> bytes | None:
        """The current boot event log of this home's platform, if one can be read."""
        if self.event_log_path is not None:
            path = self.event_log_path
        elif self.choice.is_dev:
            from bios_ws.tpm.devtpm import DevTpm

            path = DevTpm(self.home.tpm_dir).event_log_path
        elif self.choice.setting.startswith("device:"):
            path = LINUX_EVENT_LOG
        else:
            return None
        return read_bounded(path)

    @property
    def service_log_path(self) -> Path:
        """Where launches record their extend of PCR 23 (``bios_ws.tpm.service_log``)."""
        return self.home.tpm_dir / SERVICE_LOG_NAME

    def service_event_log(self) -> bytes | None:
        """The last launch's record of PCR 23, if there is one."""
        return read_service_log(self.service_log_path)

    def served_event_log(self) -> bytes | None:
        """What guests receive: the boot event log, then the service PCR's events."""
        boot = self.event_log()
        return None if boot is None else served_event_log(boot, self.service_event_log())


def read_bounded(path: Path) -> bytes | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_EVENT_LOG + 1)
    except OSError:
        return None
    return data if len(data) <= _MAX_EVENT_LOG else None


# -- the measured launch ---------------------------------------------------------------


def extend_service_pcr(tpm: Tpm, digest: bytes) -> None:
    """Reset PCR 23 and extend it with ``digest`` (sha256 bank; other banks get
    their own hash of the digest)."""
    tpm.pcr_reset(SERVICE_PCR)
    tpm.pcr_extend(SERVICE_PCR, service_extend_digests(digest, tpm.active_banks()))


def launch(context: LaunchContext, tpm: Tpm) -> Measurement:
    """Measure the service, extend the service PCR with it and record that as an event."""
    measurement = context.measure()
    extend_service_pcr(tpm, measurement.digest)
    record_service_launch(context, tpm, measurement.digest)
    return measurement


def record_service_launch(context: LaunchContext, tpm: Tpm, digest: bytes) -> None:
    """Write the event log of PCR 23 as the launch left it (reset, one extend)."""
    ensure_dir(context.home.tpm_dir)
    write_file_atomic(context.service_log_path,
                      service_event_log(digest, tpm.active_banks()), PUBLIC_MODE)


# -- sealing -----------------------------------------------------------------------


def seal_passphrases(
    context: LaunchContext, tpm: Tpm, passphrases: KeyPassphrases, measurement: Measurement
) -> SealedState:
    """Seal both passphrases to PCRs 0-7 now and PCR 23 as the launch will set it."""
    home = context.home
    tpm.ensure_storage_primary()
    expected = dict(tpm.pcr_read(BOOT_PCRS))
    expected[SERVICE_PCR] = expected_service_pcr(measurement.digest)
    ensure_dir(home.sealed_dir)
    for key in KEYS:
        blob = tpm.seal(passphrases.of(key), SEALED_PCRS, expected)
        write_file_atomic(home.sealed_blob(key), blob.to_json().encode("utf-8"), PRIVATE_MODE)
    log = context.event_log()
    if log is not None:
        write_file_atomic(home.sealed_event_log, log, PUBLIC_MODE)
    else:
        home.sealed_event_log.unlink(missing_ok=True)
    state = SealedState.now(expected, measurement.digest, measurement.files)
    write_record(home.sealed_state, state)
    return state


def load_blob(home: Home, key: str) -> SealedBlob:
    path = home.sealed_blob(key)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyUnreadable(f"cannot read the sealed {_KEY_LABELS[key]} passphrase {path}:"
                            f" {exc.strerror or exc}") from None
    try:
        return SealedBlob.from_json(text)
    except ValueError:
        raise KeyUnreadable(f"the sealed {_KEY_LABELS[key]} passphrase {path} is damaged") from None


def unseal_passphrase(context: LaunchContext, tpm: Tpm, key: str,
                      measurement: Measurement) -> bytes:
    """Unseal one passphrase after a launch; TpmPolicyMismatch says what changed."""
    blob = load_blob(context.home, key)
    try:
        return tpm.unseal(blob)
    except TpmPolicyMismatch:
        raise TpmPolicyMismatch(refusal_paragraph(context, tpm, key, measurement)) from None


def refusal_paragraph(context: LaunchContext, tpm: Tpm, key: str,
                      measurement: Measurement) -> str:
    home = context.home
    head = (f"the TPM refuses to unseal the {_KEY_LABELS[key]} passphrase: this host did not"
            " boot, or does not run, what it was sealed to.")
    state = read_record(home.sealed_state)
    findings: list[str] = []
    if state is not None:
        with suppress(TpmError, ValueError):
            current = tpm.pcr_read(sorted(state.pcrs))
            findings = describe_changes(state, current, measurement.files,
                                        read_bounded(home.sealed_event_log), context.event_log())
    else:
        findings = [f"(no sealed-state record at {home.sealed_state}: cannot say what changed)"]
    if not findings:
        findings = ["the PCR values equal the recorded ones: the sealed blob does not match"
                    " its record (restored from another installation?)"]
    tail = (f"If the change was intended, re-seal: vbios tpm reseal --home {home.path}")
    return "\n".join([head, *(f"  {line}" for line in findings), tail])


def unseal_key_passphrase(home: Home, key: str, *, tpm: TpmChoice | None = None,
                          package_root: Path | None = None,
                          opener: TpmOpener | None = None) -> bytes:
    """Open the home's TPM, launch (measure, set PCR 23), unseal ``key``'s passphrase, close."""
    if key not in KEYS:
        raise ValueError(f"unknown key {key!r}")
    context = LaunchContext(home, tpm, opener or _default_opener, package_root)
    device = context.open()
    try:
        measurement = launch(context, device)
        return unseal_passphrase(context, device, key, measurement)
    finally:
        device.close()


def check_sealed_home(home: Home) -> None:
    """Refuse a TPM home whose sealed passphrases are missing, before touching the TPM."""
    missing = [str(home.sealed_blob(k)) for k in KEYS if not home.sealed_blob(k).is_file()]
    if missing:
        raise KeyUnreadable(f"{home.path} uses a TPM but its sealed passphrases are missing"
                            f" ({', '.join(missing)}); initialize it again")

