"""Decision rows: one per evaluation, with the facts, the signals, what fired and why.

Where each is written:

- A decision that **holds** something (``review``) and every decision at
  after-sale requests and refunds (the refund-abuse signals count them) is
  written in the stage's own transaction (one INSERT, precompiled for the
  driver), so it exists exactly when the held order, case or refund does.
- An **allowed placement or payment** (nearly every one) is handed to a writer thread,
  which writes the rows it has gathered in one transaction with one
  multi-row INSERT every ``decisions.flush_ms`` milliseconds (or as soon as
  ``decisions.batch`` rows wait). The placement pays for building the row
  and nothing else; measured (``mallcore bench --scenario risk``), writing it
  in the placement's transaction instead adds a quarter to a half again to
  what risk costs a placement.
- A **refused** stage (``block``) rolls its transaction back; its decision
  goes to the same writer, written once the refused stage has let go.

What a crash can lose: the decisions of allowed placements and payments and
of refusals handed over in the last ``flush_ms`` (orders are never lost, and
nothing held is). If the database refuses the writer, rows are kept and retried;
beyond ``decisions.max_pending`` waiting rows, placements write their own
decision in their transaction again until the writer catches up. A clean
shutdown (``center_shutdown``, or the interpreter exiting) writes what is
waiting. ``flush_ms = 0`` writes every decision in its stage.

Readers in this process (the decisions list, the review queue, dry runs)
call :meth:`DecisionLog.flush` first, so they never miss one of its own
placements; another worker's appear within ``flush_ms``.
"""

from __future__ import annotations

import atexit
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from mallcore.kernel.fast import insert

from . import tables as t

if TYPE_CHECKING:
    import sqlalchemy as sa

    from mallcore.kernel import Kernel

    from .settings import DecisionSettings

KEYS = (
    "stage", "order_id", "case_id", "refund_id", "shop", "customer", "case_type", "action", "score",
    "rules", "lists", "facts", "signals", "errors", "created_at",
)  # fmt: skip
log = structlog.get_logger("mallcore").bind(center="risk")


class DecisionLog:
    def __init__(self, kernel: Kernel, settings: DecisionSettings) -> None:
        self.kernel = kernel
        self.flush_s = settings.flush_ms / 1000
        self.batch = settings.batch
        self.max_pending = settings.max_pending
        self._insert = insert(t.decisions, KEYS, kernel.db, returning=("id",))
        self._insert_many = insert(t.decisions, KEYS, kernel.db)
        self._pending: list[dict[str, Any]] = []
        self._writing: list[dict[str, Any]] = []  # taken by the writer, not yet committed
        self._handed = 0  # rows handed over so far
        self._written = 0  # ... and written (or given up on)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._first_at = 0.0  # when the oldest waiting row was handed over
        self._hurry = False  # someone waits in flush()
        self._closing = False

    @property
    def deferred(self) -> bool:
        """Are allowed placements' decisions written by the writer (``flush_ms`` > 0)?"""
        return self.flush_s > 0 and len(self._pending) < self.max_pending

    def record(self, conn: sa.Connection, row: dict[str, Any]) -> int:
        """Write the decision in the caller's transaction; its id."""
        return int(self._insert.execute(conn, row).scalar())

    def defer(self, row: dict[str, Any]) -> None:
        """Hand the decision to the writer (see the module docstring)."""
        with self._cond:
            if self._thread is None:
                self._start()
            if not self._pending:
                self._first_at = time.monotonic()
                self._cond.notify_all()
            self._pending.append(row)
            self._handed += 1
            if len(self._pending) == self.batch:
                self._cond.notify_all()

    def waiting(self, order_id: int, stage: str) -> dict[str, Any] | None:
        """The decision on ``order_id`` at ``stage`` if it is still waiting for the writer.

        (Stages read this instead of calling :meth:`flush`: on SQLite a stage holds the
        database's one write lock, which the writer would wait for.)"""
        with self._cond:
            for row in (*self._writing, *self._pending):
                if row["order_id"] == order_id and row["stage"] == stage:
                    return row
        return None

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every decision handed over so far is written (never from inside a
        write transaction: on SQLite the writer would wait for it; see :meth:`waiting`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._handed
            while self._written < target and self._thread is not None and self._thread.is_alive():
                self._hurry = True
                self._cond.notify_all()
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("risk.decisions_flush_timeout", waiting=target - self._written)
                    return
                self._cond.wait(left)

    def close(self) -> None:
        """Write what waits and stop the writer."""
        self.flush()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        atexit.unregister(self._at_exit)
        with self._cond:
            self._thread, self._closing = None, False

    # -- the writer ------------------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="risk-decisions", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        self.flush(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return  # closing, nothing left
                # Let a batch gather: until it is full, flush_ms after its first row,
                # or someone waits for it (flush, close).
                while len(self._pending) < self.batch and not (self._hurry or self._closing):
                    left = self._first_at + self.flush_s - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                rows, self._pending, self._hurry = self._pending, [], False
                self._writing = rows
            try:
                with self.kernel.db.transaction() as conn:
                    self._insert_many.execute(conn, rows)
            except Exception:
                log.exception("risk.decisions_not_written", rows=len(rows))
                with self._cond:
                    if self._closing:  # shutting down: nothing more to try
                        self._written += len(rows)
                        self._cond.notify_all()
                        return
                    # kept, in order (placements write their own beyond max_pending)
                    self._pending[:0] = rows
                    self._writing = []
                    self._first_at = time.monotonic()
                time.sleep(min(max(self.flush_s, 0.1) * 5, 5.0))
                continue
            with self._cond:
                self._written += len(rows)
                self._writing = []
                self._cond.notify_all()
