"""Machines: the platform port (``port``) and its adapters (``simulated``, ``qemu``)."""
