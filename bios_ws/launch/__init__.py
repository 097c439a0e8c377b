"""Measured launch and sealing: the server's keys bound to the measured boot and service.

``measure``: the service digest and the files behind it. ``sealing``: seal the
key passphrases at init, unseal them at start, reseal after an intended
change. ``diagnosis``: say what changed when the TPM refuses. ``recovery``: the
admin's recovery code (printed once by `vbios init`). ``permissions``: refuse a home
whose keys other users could read or replace, before anything is unsealed.
"""
