"""The peer bench/concurrency.py measures bios-ws against: sushy-tools, OpenStack's
Redfish emulator, deployed at its best for this comparison.

- gunicorn's threaded worker with keep-alive, as many workers and threads as
  `vbios serve` (gunicorn's sync worker closes every connection);
- plain HTTPS with a self-signed certificate made here, no client certificates,
  no HTTP authentication;
- the fake systems driver (no libvirt), one system per guest, its BIOS holding the
  defaults of the vBIOS's own attribute registry so both answer the same settings
  (bench/sushy_peer.py gives the fake driver its BIOS resource).

sushy-tools lives in a virtualenv of its own, made by `make peer`; its interpreter
comes from --peer-python or the environment variable PEER_ENV names.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import requests
from _shared import spawn_server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bios_ws.registry_file import load_registry
from bios_ws.server.options import ServerOptions

PEER_ENV = "VBIOS_BENCH_PEER_PYTHON"
DEFAULT_PEER = Path(__file__).with_name(".venv-peer") / "bin" / "python"
_LISTENING = re.compile(rb"Listening at: https://127\.0\.0\.1:([0-9]+)")


def find_peer(option: str | None) -> Path | None:
    """The peer's interpreter: the option, else $PEER_ENV, else `make peer`'s; None
    (said loudly on stderr) when it is not there or has no sushy-tools."""
    path = Path(option or os.environ.get(PEER_ENV) or DEFAULT_PEER)
    has_sushy = path.is_file() and subprocess.run(
        [str(path), "-c", "import sushy_tools.emulator.main, gunicorn"],
        capture_output=True, timeout=60, check=False).returncode == 0
    if has_sushy:
        return path
    print(f"\n*** sushy-tools column SKIPPED: no interpreter with sushy-tools and gunicorn "
          f"at {path}.\n*** `make peer` installs them into bench/.venv-peer; or name one "
          f"with --peer-python PATH or {PEER_ENV}=PATH.\n", file=sys.stderr, flush=True)
    return None


def system_id(guest: int) -> str:
    """The fake system of guest ``guest`` (from 1), by its UUID, the driver's key."""
    return f"00000000-0000-4000-8000-{guest:012d}"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A P-256 certificate for 127.0.0.1, valid a day, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sushy-tools bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "sushy-cert.pem", directory / "sushy-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def write_config(directory: Path, guests: int) -> Path:
    """The emulator's configuration file (Python, read by Flask): the fake driver with
    one powered-on system per guest, its state in ``directory``."""
    bios = load_registry().defaults()
    systems = [{"uuid": system_id(guest), "name": f"guest-{guest:02d}", "power_state": "On",
                "nics": [], "bios": bios} for guest in range(1, guests + 1)]
    config = directory / "sushy-emulator.conf"
    config.write_text(
        "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
        f"SUSHY_EMULATOR_STATE_DIR = {str(directory / 'sushy-state')!r}\n"
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}\n")
    return config


def spawn_sushy(python: Path, directory: Path,
                guests: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start the emulator; its process, base URL and the certificate to trust."""
    cert, key = self_signed(directory)
    options = ServerOptions()
    command = [str(python), "-m", "gunicorn", "--worker-class", "gthread",
               "--workers", str(options.workers), "--threads", str(options.threads),
               "--keep-alive", str(int(options.bounds.idle_timeout)), "--no-control-socket",
               "--certfile", str(cert), "--keyfile", str(key),
               "--pythonpath", str(Path(__file__).parent), "sushy_peer:app"]
    env = {**os.environ, "SUSHY_EMULATOR_CONFIG": str(write_config(directory, guests))}
    proc, port = spawn_server(command, directory / "sushy.log", serving=_LISTENING, env=env)
    return proc, f"https://127.0.0.1:{port}", cert


def session_trusting(cert: Path) -> requests.Session:
    """A requests session trusting ``cert`` alone, without a client certificate."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify
    session.verify = str(cert)
    return session
