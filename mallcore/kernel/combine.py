"""Group commit: placements that arrive together run in one transaction.

A hot SKU sells at the rate its row can be updated and committed. Placed one
by one, every order pays a transaction of its own (BEGIN, seven statements,
COMMIT: a WAL flush on PostgreSQL, a turn of the writer lock on SQLite) and
each statement is a driver call. :class:`Combiner` lets placements that are
*already waiting* for the writer share one transaction:

- **No added latency when idle.** The first placement to find the writer
  free becomes the leader and runs at once, alone, exactly as
  :meth:`OrderService.place_alone` (no savepoint, no batch). Placements that
  arrive while a batch runs queue; when it ends, the oldest waiting one
  leads the next batch with everything queued behind it (at most
  ``[orders.combine] max_batch``). Nothing waits on a timer: a batch is only
  what piled up during the previous one. That is the ``caller`` writer; the
  ``thread`` and ``async`` writers hand every order to one writer thread per
  process, and with ``async`` the place route awaits it on the event loop
  (:meth:`Combiner.place_async`; the loop is woken once per batch).
- **Per-order hooks, as today.** Each order of a batch gets
  ``order_pre_validate`` and ``order_price`` once, inside its own savepoint:
  a raise there undoes that order alone. Then the batch's orders and lines
  are inserted with one multi-row statement each, centers implementing
  ``order_reserve_batch`` hold stock for the whole batch at once (WMS: one
  conditional UPDATE per SKU), the other centers get ``order_reserve`` per
  order, and the timeline entries, outbox events and stored
  ``Idempotency-Key`` answers of the batch go out one statement each.
- **Each order's own answer, each hook once.** Every order's
  ``order_reserve`` (centers without the batch hook) runs exactly once, in a
  savepoint: a raise undoes that order's holds and its rows are deleted. The
  batch hook may refuse orders (out of stock); so that a refused order is
  known before any ``order_reserve`` runs for it, the batch hook first runs
  as a *trial* that is rolled back when centers of both kinds are on, then
  ``order_reserve`` runs for the orders it accepted, then the batch hook
  holds for real. Without per-order centers there is no trial: a refusal
  rolls back the batch hook alone and it runs again for the others. So
  nothing of a refused order is written, and every client gets what placing
  its order alone would have answered: 201 with its order, or its own error
  and code. One exception, logged as ``combine.redone``: if the hold refuses
  an order the trial accepted (another transaction took the stock in
  between, PostgreSQL with several processes), or the batch's own writes
  fail, or an order failing in ``order_reserve`` leaves stock that, first
  come first served, belongs to a refused order that arrived before one
  already reserved of the same SKU, the others are written again and their
  ``order_reserve`` runs a second time.
- **Idempotency.** Two requests with the same ``Idempotency-Key`` in one
  batch: the second waits for the next batch, where it finds the first's
  stored answer (or, if the first failed, is placed itself). The batch
  claims its keys before writing any order; a key that another transaction
  stored meanwhile (seen at that INSERT) takes its order out alone, before
  any hook has run for it, and that request answers with the stored reply.

The savepoints are sent straight to the driver (``SAVEPOINT mc_order`` before
each order, ``SAVEPOINT mc_batch`` before the batch's writes) and never
released: ``ROLLBACK TO`` goes back to the most recent one of a name, and
the commit ends them all, which saves a round trip per order.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from . import fast, pricing, tracing
from . import tables as t
from .context import OrderContext, PlacementIntent
from .idempotency import Reply
from .orders import LINE_KEYS, ORDER_KEYS, _line_row, _order_row, placed_payload

if TYPE_CHECKING:
    from .orders import OrderService
    from .schemas import OrderView, PlaceOrder
    from .types import Adjustment, Line, Order, Principal


class _Job:
    """One waiting placement: what to place, and (once done) its answer or error."""

    __slots__ = (
        "applied",
        "body",
        "context",
        "ctx",
        "done",
        "error",
        "future",
        "lead",
        "lines",
        "mark",
        "order",
        "original",
        "principal",
        "reply",
        "retry",
        "view",
    )

    def __init__(
        self,
        principal: Principal,
        order: Order,
        lines: list[Line],
        reply: Reply,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.principal = principal
        self.order = order
        self.lines = lines
        self.reply = reply
        # The caller's context variables (request facts, log bindings): its hooks run in them.
        self.context = contextvars.copy_context()
        # How the caller waits: a thread on ``done``, a coroutine (writer = "async") on ``future``.
        self.future = future
        self.done = threading.Event() if future is None else None
        self.lead = False
        self.retry = False
        self.error: BaseException | None = None
        self.ctx: OrderContext | None = None
        self.view: OrderView | None = None
        self.body = b""
        self.applied: list[Adjustment] = []
        self.original: list[Adjustment] = []
        self.mark: tuple[Any, ...] = ()

    # -- after pricing: what a re-run of the batch's writes must start from --------

    def checkpoint(self) -> tuple[Any, ...]:
        """What the order's context holds now (buffered entries, changes, stash)."""
        ctx = self.ctx
        assert ctx is not None
        return (
            len(ctx._events),
            len(ctx._timeline),
            len(ctx._after_commit),
            dict(ctx._changes),
            dict(ctx.stash),
            self.order.hold,
            dict(self.order.extra),
        )

    def rewind(self, mark: tuple[Any, ...]) -> None:
        """Back to :meth:`checkpoint`'s ``mark`` (what was written since was rolled back)."""
        ctx = self.ctx
        assert ctx is not None
        events, timeline, after, changes, stash, hold, extra = mark
        del ctx._events[events:], ctx._timeline[timeline:], ctx._after_commit[after:]
        ctx._changes, ctx.stash = dict(changes), dict(stash)
        self.order.hold, self.order.extra = hold, dict(extra)
        if ctx._session is not None:
            ctx._session.close()
            ctx._session = None

    def remember(self) -> None:
        self.original = [msgspec.structs.replace(a) for a in self.applied]
        self.mark = self.checkpoint()

    def restore(self) -> None:
        """Back to just after pricing: the batch's writes are redone from there."""
        self.rewind(self.mark)
        self.order.id = None
        for line in self.lines:
            line.id = None
        self.applied = [msgspec.structs.replace(a) for a in self.original]
        self.view = None


def _wake_all(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():  # a request cancelled meanwhile (client gone)
            future.set_result(None)


class _Redo(Exception):
    """The batch hook refused orders whose ``order_reserve`` already ran: (job, error) pairs."""

    def __init__(self, failed: list[tuple[_Job, Exception]]) -> None:
        super().__init__(f"{len(failed)} order(s) refused after order_reserve")
        self.failed = failed


def _overtaken(refused: list[_Job], reserved: list[_Job], arrival: dict[int, int]) -> bool:
    """Whether a refused order arrived before a reserved order wanting one of its SKUs."""
    for job in refused:
        skus = {line.sku for line in job.lines}
        came = arrival[id(job)]
        if any(
            arrival[id(other)] > came and any(line.sku in skus for line in other.lines) for other in reserved
        ):
            return True
    return False


class Combiner:
    """Places orders, combining those that wait for the writer together (see the module)."""

    def __init__(
        self, orders: OrderService, *, max_batch: int, writer: str = "caller", batches_at_once: int = 1
    ) -> None:
        self.orders = orders
        self.max_batch = max_batch
        self.writer = writer
        # writer = "caller": how many batches may run at once in this process (their own
        # transactions; more than one only where writers run side by side, PostgreSQL).
        self.batches_at_once = batches_at_once
        self._leading = 0
        self._mutex = threading.Lock()
        self._queue: deque[_Job] = deque()
        # writer = "thread": one thread per process drains the queue (measured, see docs/benchmarks.md).
        self._wake = threading.Condition(self._mutex)
        self._thread: threading.Thread | None = None
        self._closed = False
        calls = orders.calls
        # Centers with the combined-writes hook are left out of the per-order order_reserve.
        self._batch_centers = calls.implementers("order_reserve_batch")
        self._reserve_each = calls.excluding("order_reserve", self._batch_centers)
        self._per_order = [c for c in calls.implementers("order_reserve") if c not in self._batch_centers]
        db = orders.db
        self._insert_orders = fast.MultiRowInsert(t.orders, ORDER_KEYS, db, ("id",))
        self._insert_lines = fast.MultiRowInsert(t.order_lines, LINE_KEYS, db, ("id", "order_id", "line_no"))
        # Figures for tests and the bench: batches run, orders in them, batches written again.
        self.batches = 0
        self.combined = 0
        self.redone = 0

    # -- the queue -------------------------------------------------------------------

    def __call__(
        self, principal: Principal, order: Order, lines: list[Line], reply: Reply
    ) -> tuple[OrderContext, OrderView, bytes]:
        while True:
            job = _Job(principal, order, lines, reply)
            self._submit(job)
            if not job.retry:
                break
        if job.error is not None:
            raise job.error
        assert job.ctx is not None and job.view is not None
        return job.ctx, job.view, job.body

    def together(
        self, placements: Sequence[tuple[Principal, PlaceOrder]]
    ) -> list[tuple[OrderView, bytes] | BaseException]:
        """Place ``placements`` as one batch, in this order, as if they had arrived together.

        For bulk imports, tests and the bench; it runs beside the queue, as
        another worker process would. Each item's answer, or its error.
        """
        out: list[tuple[OrderView, bytes] | BaseException] = []
        jobs: list[tuple[int, _Job]] = []
        for i, (principal, req) in enumerate(placements):
            try:
                order, lines = self.orders._new_order(principal, req)
            except Exception as exc:
                out.append(exc)
                continue
            out.append(RuntimeError("not placed"))
            jobs.append((i, _Job(principal, order, lines, Reply())))
        batch = [job for _, job in jobs]
        try:
            self._run(batch)
        except Exception as exc:
            for job in batch:
                job.error, job.view = job.error or exc, None
        for i, job in jobs:
            if job.error is not None or job.ctx is None or job.view is None:
                out[i] = job.error or RuntimeError("not placed")
            else:
                self.orders.placed(job.ctx)
                out[i] = (job.view, job.body)
        return out

    def _submit(self, job: _Job) -> None:
        if self.writer != "caller":
            self._hand_to_writer(job)
            return
        with self._mutex:
            if self._leading >= self.batches_at_once:
                self._queue.append(job)
            else:
                self._leading += 1
                job.lead = True
        assert job.done is not None
        if not job.lead:
            job.done.wait()
            if not job.lead:
                return  # placed (or refused) in another thread's batch
        batch = [job]
        with self._mutex:
            while self._queue and len(batch) < self.max_batch:
                batch.append(self._queue.popleft())
        try:
            self._run(batch)
        except BaseException as exc:
            # The transaction itself failed (commit, connection, lock): nothing was written.
            for each in batch:
                if not each.retry:
                    each.error = each.error or exc
                    each.view = None
        finally:
            with self._mutex:
                following = self._queue.popleft() if self._queue else None
                if following is None:
                    self._leading -= 1
            for each in batch[1:]:
                each.done.set()  # type: ignore[union-attr]
            if following is not None:
                following.lead = True
                following.done.set()  # type: ignore[union-attr]

    # -- writer = "thread" ----------------------------------------------------------------

    def _hand_to_writer(self, job: _Job) -> None:
        self._enqueue(job)
        assert job.done is not None
        job.done.wait()

    def _enqueue(self, job: _Job) -> None:
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name="mallcore-writer", daemon=True)
                self._thread.start()
            self._queue.append(job)
            self._wake.notify()

    def _drain(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed and not self._queue:
                    return
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            try:
                self._run(batch)
            except BaseException as exc:
                for each in batch:
                    if not each.retry:
                        each.error, each.view = each.error or exc, None
            finally:
                waiting: list[_Job] = []
                for each in batch:
                    if each.future is None:
                        each.done.set()  # type: ignore[union-attr]
                    else:
                        waiting.append(each)
                if waiting:
                    self._settle(waiting)

    # -- writer = "async": the place route awaits, the writer thread places -------------

    async def place_async(
        self, principal: Principal, order: Order, lines: list[Line], reply: Reply
    ) -> tuple[OrderContext, OrderView, bytes]:
        """Hand the order to the writer thread and await its answer (see :meth:`_settle`)."""
        loop = asyncio.get_running_loop()
        while True:
            job = _Job(principal, order, lines, reply, loop.create_future())
            self._enqueue(job)
            await job.future  # type: ignore[misc]
            if not job.retry:
                break
        if job.error is not None:
            raise job.error
        assert job.ctx is not None and job.view is not None
        return job.ctx, job.view, job.body

    def _settle(self, jobs: list[_Job]) -> None:
        """After a batch: its placed orders' log lines, counts, events and after-commit
        callbacks run here, in the writer thread (as the request's own thread runs them
        otherwise), in each request's context (its request id), then every waiting
        coroutine is woken with one call into its event loop per batch: the loop, which
        serves every connection, does none of it."""
        orders = self.orders
        for job in jobs:
            if job.error is None and job.ctx is not None and not job.retry:
                try:
                    job.context.run(orders.placed, job.ctx)
                except Exception:  # never leave the others waiting
                    orders.log.exception("combine.committed_failed", order_id=job.order.id)
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for job in jobs:
            future = job.future
            assert future is not None
            by_loop.setdefault(future.get_loop(), []).append(future)
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_wake_all, futures)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def close(self) -> None:
        """Stop the writer thread (writer = "thread") once its queue is empty."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self, batch: list[_Job]) -> None:
        # Two requests with one Idempotency-Key: the later waits for the next batch.
        seen: set[tuple[str, str]] = set()
        jobs: list[_Job] = []
        for job in batch:
            claim = job.reply.claim
            if claim is not None:
                if (claim.subject, claim.key) in seen:
                    job.retry = True
                    continue
                seen.add((claim.subject, claim.key))
            jobs.append(job)
        self.orders.metrics.placement_batch.observe(len(jobs))
        if len(jobs) == 1:
            job = jobs[0]
            try:
                # In the caller's context variables (request id, log bindings, trace),
                # whichever thread places it.
                job.ctx, job.view, job.body = job.context.run(
                    self.orders.place_alone, job.principal, job.order, job.lines, job.reply
                )
            except Exception as exc:
                job.error = exc
            return
        self.batches += 1
        self.combined += len(jobs)
        with tracing.stage_span("place"), self.orders.db.transaction() as conn:
            priced: list[_Job] = []
            shared: dict[Any, Any] = {}  # ctx.shared: the batch's reads, made once
            for job in jobs:
                self._sql(conn, "SAVEPOINT mc_order")
                try:
                    job.context.run(self._price, conn, job, shared)
                except Exception as exc:
                    self._sql(conn, "ROLLBACK TO SAVEPOINT mc_order")
                    job.error = exc
                else:
                    job.remember()
                    priced.append(job)
            self._write(conn, priced)

    # -- one order's per-order stages --------------------------------------------------

    def _price(self, conn: sa.Connection, job: _Job, shared: dict[Any, Any]) -> None:
        orders = self.orders
        ctx = job.ctx = orders.context("place", job.order, conn, job.principal, job.lines, shared=shared)
        orders.calls.order_pre_validate(ctx=ctx)
        orders.calls.order_price(ctx=ctx)
        job.applied = pricing.price(job.order, job.lines, ctx.adjustments)

    # -- the batch's writes ------------------------------------------------------------

    def _write(self, conn: sa.Connection, jobs: list[_Job]) -> None:
        """Write ``jobs`` (priced); each order's ``order_reserve`` runs once, but see :class:`_Redo`."""
        while jobs:
            self._sql(conn, "SAVEPOINT mc_batch")
            try:
                self._write_once(conn, jobs)
                return
            except _Redo as redo:
                # The stock changed between the batch hook's trial and its hold (another
                # transaction took it, PostgreSQL only), or an order failing in order_reserve
                # left stock to a refused order that arrived before a reserved one: the rest
                # are written again.
                self._sql(conn, "ROLLBACK TO SAVEPOINT mc_batch")
                for job, error in redo.failed:
                    job.error = error
                jobs = [j for j in jobs if j.error is None]
                self.redone += 1
                self.orders.log.warning("combine.redone", refused=len(redo.failed), again=len(jobs))
                for job in jobs:
                    job.restore()
            except Exception as exc:
                # Not one order's fault that we can tell (a batch hook or an order view
                # raising): write them one at a time.
                self._sql(conn, "ROLLBACK TO SAVEPOINT mc_batch")
                jobs = [j for j in jobs if j.error is None]
                if len(jobs) == 1:
                    jobs[0].error = exc
                    return
                self.redone += 1
                self.orders.log.warning("combine.one_by_one", orders=len(jobs), error=repr(exc))
                for job in jobs:
                    job.restore()
                    self._write(conn, [job])
                return

    def _write_once(self, conn: sa.Connection, jobs: list[_Job]) -> None:
        """One attempt at the batch's writes, inside the savepoint ``mc_batch``.

        The steps: Idempotency-Keys claimed (a key another transaction stored
        takes its order out before anything else is written), orders and lines
        inserted, then the holds. With centers of both kinds, the batch hook
        runs first as a trial that is rolled back, so the orders it refuses
        leave before any ``order_reserve``; then ``order_reserve`` once per
        order (a raise takes that order out), then the batch hook for the
        orders left. A refused order's rows are deleted; what a hook wrote for
        it was rolled back in its own savepoint.
        """
        orders = self.orders
        jobs = self._claim(conn, jobs)
        if not jobs:
            return
        self._insert(conn, jobs)
        batch_hook, each = bool(self._batch_centers), bool(self._per_order)
        if batch_hook and each:
            jobs = self._reserve_tried(conn, jobs)
        elif each:
            jobs = self._drop(conn, jobs, self._reserve(conn, jobs))
        while batch_hook and jobs:
            self._sql(conn, "SAVEPOINT mc_hold")
            marks = [job.checkpoint() for job in jobs]
            refused = self._hold(conn, jobs)
            if not refused:
                break
            if each:
                raise _Redo(refused)  # their order_reserve ran: they cannot leave alone
            # Only the batch hook ran for them: it runs again for the others.
            self._sql(conn, "ROLLBACK TO SAVEPOINT mc_hold")
            for job, mark in zip(jobs, marks, strict=True):
                job.rewind(mark)
            jobs = self._drop(conn, jobs, refused)
        if not jobs:
            return
        for job in jobs:
            assert job.ctx is not None and job.order.id is not None
            by_no = {line.line_no: line.id for line in job.lines}
            for adj in job.applied:
                adj.line_id = by_no[adj.line_no] if adj.line_no is not None else None
                adj.allocation = {by_no[no]: amount for no, amount in (adj.allocation or {}).items()}  # type: ignore[misc]
            job.context.run(self._announce, conn, job)
        orders.idempotency.answer_many(conn, [j.reply for j in jobs])
        first, *rest = (j.ctx for j in jobs)
        orders.finish(first, *rest)  # type: ignore[arg-type]

    def _reserve(self, conn: sa.Connection, jobs: list[_Job]) -> list[tuple[_Job, Exception]]:
        """``order_reserve`` once per order, each in a savepoint: the orders that raised."""
        failed: list[tuple[_Job, Exception]] = []
        for job in jobs:
            self._sql(conn, "SAVEPOINT mc_reserve")
            try:
                job.context.run(self._reserve_each, ctx=job.ctx)
            except Exception as exc:
                self._sql(conn, "ROLLBACK TO SAVEPOINT mc_reserve")
                job.error = exc  # at once: a redo of the batch must not run it again
                failed.append((job, exc))
        return failed

    def _reserve_tried(self, conn: sa.Connection, jobs: list[_Job]) -> list[_Job]:
        """``order_reserve`` for the orders a trial of the batch hook accepts.

        The trial is rolled back. If an order then fails in ``order_reserve``,
        the stock it would have taken may fit orders the trial refused: they
        are tried again, after the orders already reserved (whose stock the
        trial already granted), until no order fails. The orders left refused
        are dropped with those that failed. Stock goes first come, first served,
        as one by one: when a refused order arrived before one already reserved
        that wants one of its SKUs, the batch is written again without the
        failed orders (:class:`_Redo`).
        """
        reserved: list[_Job] = []
        waiting = jobs
        refused: list[tuple[_Job, Exception]] = []
        failed: list[tuple[_Job, Exception]] = []
        arrival = {id(job): i for i, job in enumerate(jobs)}
        while waiting:
            candidates = reserved + waiting
            self._sql(conn, "SAVEPOINT mc_trial")
            marks = [job.checkpoint() for job in candidates]
            refused = self._hold(conn, candidates)
            self._sql(conn, "ROLLBACK TO SAVEPOINT mc_trial")
            for job, mark in zip(candidates, marks, strict=True):
                job.rewind(mark)
            out = {id(job) for job, _ in refused}
            if any(id(job) in out for job in reserved):
                # The stock changed since the last trial (another transaction took it).
                raise _Redo([(j, e) for j, e in refused if any(j is r for r in reserved)])
            accepted = [j for j in waiting if id(j) not in out]
            now = self._reserve(conn, accepted)
            failed += now
            bad = {id(job) for job, _ in now}
            reserved += [j for j in accepted if id(j) not in bad]
            if not now or not refused:
                break
            if _overtaken([j for j, _ in refused], reserved, arrival):
                # What the failed orders leave belongs first to a refused order that arrived
                # before one already reserved of the same SKU (as one by one): the batch is
                # written again without them.
                raise _Redo(now)
            waiting = [job for job, _ in refused]  # what the failed orders left may fit them now
        self._drop(conn, jobs, failed + refused)
        return reserved  # in the order of the last trial, which the hold keeps

    def _claim(self, conn: sa.Connection, jobs: list[_Job]) -> list[_Job]:
        """Claim the batch's Idempotency-Keys (answers filled in at the end); the jobs left."""
        store = self.orders.idempotency
        while True:
            claims = [j.reply.claim for j in jobs if j.reply.claim is not None]
            if not claims:
                return jobs
            self._sql(conn, "SAVEPOINT mc_keys")
            try:
                store.claim_many(conn, claims)
                return jobs
            except IntegrityError as exc:
                # Another request with the same key committed first (seen only now, at
                # the INSERT): its order alone leaves; it will answer with the stored reply.
                self._sql(conn, "ROLLBACK TO SAVEPOINT mc_keys")
                stored = store.stored_keys(conn, claims)
                lost = [
                    j for j in jobs if j.reply.claim and (j.reply.claim.subject, j.reply.claim.key) in stored
                ]
                if not lost:
                    raise
                for job in lost:
                    job.error = exc
                jobs = [j for j in jobs if j.error is None]

    def _insert(self, conn: sa.Connection, jobs: list[_Job]) -> None:
        """The orders, then their lines: one statement each."""
        # Ids come from a sequence (or SQLite's rowid) in VALUES order, whatever
        # order RETURNING lists them in.
        ids: list[int] = sorted(
            row[0]
            for row in self._insert_orders.execute(conn, [_order_row(j.order, j.applied) for j in jobs]).rows
        )
        for job, order_id in zip(jobs, ids, strict=True):
            job.order.id = order_id
        returned = self._insert_lines.execute(
            conn,
            [
                _line_row(order_id, line)
                for job, order_id in zip(jobs, ids, strict=True)
                for line in job.lines
            ],
        )
        line_ids = {(order_id, line_no): line_id for line_id, order_id, line_no in returned.rows}
        for job in jobs:
            for line in job.lines:
                line.id = line_ids[(job.order.id, line.line_no)]

    def _hold(self, conn: sa.Connection, jobs: list[_Job]) -> list[tuple[_Job, Exception]]:
        """The batch hook for ``jobs``: the orders it refused, with their errors."""
        intents = [PlacementIntent(job.ctx, i) for i, job in enumerate(jobs)]  # type: ignore[arg-type]
        self.orders.calls.order_reserve_batch(conn=conn, intents=intents)
        return [(jobs[i.arrival], i.error) for i in intents if i.error is not None]

    def _drop(
        self, conn: sa.Connection, jobs: list[_Job], failed: list[tuple[_Job, Exception]]
    ) -> list[_Job]:
        """Take ``failed`` out of the batch (``jobs``, all its orders still in): their rows and
        claimed keys are deleted, or the batch's savepoint rolled back if none is left."""
        if not failed:
            return jobs
        for job, error in failed:
            job.error = error
        left = [j for j in jobs if j.error is None]
        if not left:
            self._sql(conn, "ROLLBACK TO SAVEPOINT mc_batch")
            return left
        gone = [job.order.id for job, _ in failed]
        conn.execute(t.order_lines.delete().where(t.order_lines.c.order_id.in_(gone)))
        conn.execute(t.orders.delete().where(t.orders.c.id.in_(gone)))
        claims = [job.reply.claim for job, _ in failed if job.reply.claim is not None]
        if claims:
            self.orders.idempotency.forget(conn, claims)
        return left

    def _announce(self, conn: sa.Connection, job: _Job) -> None:
        """The order's placed event and its answer (encoded, stored with the batch's)."""
        ctx, order, lines = job.ctx, job.order, job.lines
        assert ctx is not None
        ctx.emit("order.placed", placed_payload(order, lines))
        job.view = self.orders.views.render(order, lines, job.applied, conn=conn)
        job.body = job.reply.encode(job.view, 201)

    def _sql(self, conn: sa.Connection, statement: str) -> None:
        """A savepoint statement, straight to the driver (see the module docstring)."""
        db = self.orders.db
        if db.counters:
            db.note_statement(statement, False)
        cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(statement)
        finally:
            cursor.close()
