"""Real machines: QEMU + OVMF guests under TCG.

``varstore`` checks a machine's OVMF variable store before every boot.
"""
