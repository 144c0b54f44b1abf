"""Decision rows: one per evaluation, with the facts, the signals, what fired and why.

An evaluation that lets the stage go on writes its row in the stage's own
transaction (one INSERT, precompiled for the driver as the kernel does for
its placement statements), so the row exists exactly when the order, case
or refund does. A ``block`` refuses the stage and rolls its transaction
back, row included; that decision is handed to a writer thread which
records it in a transaction of its own once the refused stage has let go
(on SQLite: the database's one writer lock). A process that dies in that
instant loses the record of a refusal, never an order.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Any

import structlog

from mallcore.kernel.fast import insert

from . import tables as t

if TYPE_CHECKING:
    import sqlalchemy as sa

    from mallcore.kernel import Kernel

KEYS = (
    "stage", "order_id", "case_id", "refund_id", "shop", "customer", "case_type", "action", "score",
    "rules", "lists", "facts", "signals", "errors", "created_at",
)  # fmt: skip
log = structlog.get_logger("mallcore").bind(center="risk")


class DecisionLog:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._insert = insert(t.decisions, KEYS, kernel.db, returning=("id",))
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def record(self, conn: sa.Connection, row: dict[str, Any]) -> int:
        """Write the decision in the caller's transaction; its id."""
        return int(self._insert.execute(conn, row).scalar())

    def record_refusal(self, row: dict[str, Any]) -> None:
        """Write a refused stage's decision once its transaction is gone."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="risk-decisions", daemon=True)
                self._thread.start()
        self._queue.put(row)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every refusal handed over so far is written (tests, shutdown)."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put({"__flush__": done})
        done.wait(timeout)

    def close(self) -> None:
        self.flush()
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        while True:
            row = self._queue.get()
            if row is None:
                return
            marker = row.get("__flush__")
            if marker is not None:
                marker.set()
                continue
            try:
                with self.kernel.db.transaction() as conn:
                    self.record(conn, row)
            except Exception:
                log.exception(
                    "risk.refusal_not_recorded", stage=row.get("stage"), customer=row.get("customer")
                )
