"""Running a transaction again when it lost to another: PostgreSQL's serialization failures
(SQLSTATE 40001) and detected deadlocks (40P01), raised as ``StoreConflict``
(``store.engine.store_errors``). The server rolled the transaction back, so the whole
unit of work runs again, ``CONFLICT_ATTEMPTS`` runs at most, after a short random pause
that keeps the losers from meeting again; then the last StoreConflict goes up, and the
SOAP layer answers it as the StoreUnavailable fault it is a kind of.

Where the retry sits, and why there: around one unit of work, never around a SOAP
operation. What the server rolled back is exactly one unit of work, so that is exactly
what may run again; an operation is more than its units. It may commit a unit and then
lose in the next one (a second run would repeat the first), it may act outside the
store (start a machine, quote with the TPM) before or between its units, and every
refused or failed write commits an audit entry of its own (``service.audit``): rerun
whole, a call that lost once would leave a "failed:StoreUnavailable" entry, counted
against the caller's refusal limit, beside its "ok" one.

So a use case runs a unit that only reads and writes the store with
``ports.retrying(uow, work)``: ``work(uow)`` does the whole transaction (and commits it)
in a fresh unit each run, and takes nothing from a former run. A refusal raised inside
(``VersionConflict`` on a stale expected version, any rule) is no conflict and goes up at
once; a retried run sees what the winner committed, as if the call had come after it.
Effects outside the store stay outside ``work``: a power request's machine action runs
once, and only the unit that records it may run again. ``BiosService.write`` (the one
write path of every domain's settings state: settings, boot order, Secure Boot, the
apply at boot), the event subscriptions and ``service.audit`` (the entries of refusals)
run their units so.

The loop itself lives beside the ``UnitOfWork`` port (``bios_ws.domain.ports``), where the
use cases reach it; the store's own waits run it too (``store.turns``). Each retry is
logged and counted (``vbios_store_conflict_retries_total``, ``server.metrics``).
"""

from __future__ import annotations

__all__ = ["CONFLICT_ATTEMPTS", "retry_conflicts", "retrying"]

from bios_ws.domain.ports import CONFLICT_ATTEMPTS, retry_conflicts, retrying
