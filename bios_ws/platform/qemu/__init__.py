"""Real machines: QEMU + OVMF guests under TCG, each owned by its keeper process.

``QemuPlatform`` (``platform``) is the adapter; ``keeper`` the supervisor process
of one running machine (its command line: ``keeper_args``); ``guest`` one QEMU
process; ``qmp`` and ``control`` the two line-JSON protocols; ``varstore`` the
checks of a variable store before every boot; ``nvram`` OVMF's variable store
file; ``firmware`` a boot plan written into it and the state read back (its boot
entries: ``loadoption``); ``httpboot`` the HTTP boot responder on the guest's
closed network; ``console`` the bounded serial log; ``layout`` a machine's files.
"""

from bios_ws.platform.qemu.platform import QemuPlatform

__all__ = ["QemuPlatform"]
