"""What a lifecycle hook sees: the order, its lines, the stage's transaction.

An :class:`OrderContext` is built by the stage that runs (see
:class:`~mallcore.kernel.orders.OrderService`); it buffers what hooks want
written (status, timeline, events) and is handed back to the stage to write.
It never calls a service: the stage gives it what it needs (a line loader, a
logger).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from . import facts, states
from .errors import InvalidInput
from .facts import RequestFacts
from .types import Adjustment, Event, Hint, Line, Order, TimelineEntry, utcnow

if TYPE_CHECKING:
    from .types import Principal

# What a stage gives its context to load the order's lines on first use.
LineLoader = Callable[[sa.Connection, int], list[Line]]


class OrderContext:
    """The order, its lines and the open transaction of one stage.

    - ``order`` / ``lines``: the order as it stands (lines load on first use).
    - ``conn``: the stage's SQLAlchemy connection (Core statements).
    - ``session``: an ORM session on the same transaction (made on first use).
    - ``principal``: who asked; ``stage``: which stage runs.
    - ``log``: a structlog logger bound with the order id.
    - ``stash``: scratch space shared by the hooks of this stage.
    - ``shared``: scratch space shared by every order placed in the same
      transaction (a combined batch; an order placed alone has its own). For
      reads that hold for the whole transaction, so that the batch's orders
      make them once (catalog: the SKU rows); never for anything one order's
      savepoint could undo.
    - ``parcels``: during dispatch, the warehouse plan (``Parcel`` list).
    - ``request``: the facts of the HTTP request behind the stage (client
      IP, device id, user agent; see :mod:`mallcore.kernel.facts`), or
      ``None`` for jobs and the CLI.
    - ``emit()``, ``timeline()``, ``because()``, ``adjust()``, ``hint()``,
      ``put_on_hold()``, ``transition()``, ``after_commit()``: see each.
    """

    __slots__ = (
        "_after_commit",
        "_base_log",
        "_causes",
        "_changes",
        "_events",
        "_lines",
        "_load_lines",
        "_log",
        "_session",
        "_timeline",
        "adjustments",
        "conn",
        "hints",
        "order",
        "parcels",
        "principal",
        "shared",
        "stage",
        "stash",
    )

    def __init__(
        self,
        stage: str,
        order: Order,
        conn: sa.Connection,
        principal: Principal,
        lines: list[Line] | None = None,
        *,
        load_lines: LineLoader,
        log: Any,
        shared: dict[Any, Any] | None = None,
    ) -> None:
        self.stage = stage
        self.order = order
        self.conn = conn
        self.principal = principal
        self._lines = lines
        self._session: Session | None = None
        self.adjustments: list[Adjustment] = []
        self.hints: list[Hint] = []
        self._events: list[Event] = []
        self._timeline: list[TimelineEntry] = []
        self._causes: list[str] = []
        self._after_commit: list[Callable[[], Any]] = []
        self._changes: dict[str, Any] = {}
        self.stash: dict[Any, Any] = {}
        self.shared: dict[Any, Any] = {} if shared is None else shared
        # Set by WMS in order_dispatch; TMS ships each (see aftersale.Parcel).
        self.parcels: list[Any] = []
        self._load_lines = load_lines
        self._base_log = log
        self._log: tuple[int | None, Any] | None = None

    @property
    def log(self) -> Any:
        """A structlog logger bound with the order id and the stage (made on first use)."""
        # Rebound once the order has its id (placement inserts it mid-stage).
        if self._log is None or self._log[0] != self.order.id:
            self._log = (self.order.id, self._base_log.bind(order_id=self.order.id, stage=self.stage))
        return self._log[1]

    @log.setter
    def log(self, logger: Any) -> None:
        self._log = (self.order.id, logger)

    @property
    def request(self) -> RequestFacts | None:
        """The facts of the HTTP request this stage runs for, if any."""
        return facts.current()

    @property
    def lines(self) -> list[Line]:
        if self._lines is None:
            assert self.order.id is not None
            self._lines = self._load_lines(self.conn, self.order.id)
        return self._lines

    def line(self, line_id: int) -> Line:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise InvalidInput(f"order {self.order.id} has no line {line_id}", code="line_unknown")

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(bind=self.conn, expire_on_commit=False, autoflush=True)
        return self._session

    def emit(self, topic: str, payload: dict[str, Any] | None = None) -> None:
        """Write an event to the outbox in this stage's transaction."""
        self._events.append(Event(topic=topic, payload=payload or {}, order_id=self.order.id))

    def timeline(
        self,
        kind: str,
        message: str,
        *,
        zh: str | None = None,
        public: bool = True,
        ref: str | None = None,
        data: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> TimelineEntry:
        """Add an entry to the order's timeline (customer-visible when ``public``).

        ``message`` is English; ``zh`` its Chinese wording, shown when the
        client asks for Chinese (``Accept-Language: zh``). ``ref`` ties the
        entry to an object, e.g. ``"after_sale:12"`` or ``"shipment:3"``.
        Inside :meth:`because`, the entry records what caused it. Returns the
        entry (pending until the stage commits), e.g. to pass to :meth:`because`.
        """
        entry = TimelineEntry(
            kind=kind,
            message=message,
            messages={"zh": zh} if zh else None,
            actor=actor or self.principal.subject,
            public=public,
            ref=ref,
            data=data,
            order_id=self.order.id,
            cause=self._causes[-1] if self._causes else None,
        )
        self._timeline.append(entry)
        return entry

    @contextmanager
    def because(self, entry: TimelineEntry) -> Iterator[TimelineEntry]:
        """Entries written inside are caused by ``entry``: one event told by several centers.

        A center that calls a hook after writing its entry (TMS a carrier scan before
        ``after_sale_parcel``; the after-sale center a case step before
        ``order_after_sale``) wraps the call, so that what reacting centers write names
        its cause (``data["cause"]`` = ``entry``'s ``data["entry"]``). The customer's
        tracking page folds such echoes into the owner's entry by this link, never by
        how close in time two entries are (:func:`mallcore.kernel.tracking.fold_echoes`).
        """
        if entry.key is None:
            entry.key = secrets.token_hex(6)
        self._causes.append(entry.key)
        try:
            yield entry
        finally:
            self._causes.pop()

    @property
    def pending_timeline(self) -> tuple[TimelineEntry, ...]:
        """Timeline entries this stage has added so far (written at commit)."""
        return tuple(self._timeline)

    def adjust(
        self,
        source: str,
        reason: str,
        amount: int,
        *,
        phase: int,
        line: Line | None = None,
        code: str | None = None,
        funded_by: str | None = None,
    ) -> Adjustment:
        """Add a price adjustment (negative = discount). Only while pricing.

        ``reason`` explains it to the customer ("满200减30: subtotal 238.00 ≥
        200.00"); ``code`` names what fired (a campaign, a coupon); a discount's
        ``funded_by`` says who pays for it, ``"platform"`` or ``"shop"``.
        """
        if self.stage not in ("place", "preview"):
            raise RuntimeError("adjustments can only be added while an order is priced")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError("amounts are integers in minor units")
        adj = Adjustment(
            source=source,
            reason=reason,
            amount=amount,
            phase=int(phase),
            line_no=None if line is None else line.line_no,
            code=code,
            funded_by=funded_by,
        )
        self.adjustments.append(adj)
        return adj

    def hint(
        self,
        source: str,
        message: str,
        *,
        zh: str | None = None,
        code: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Tell a price preview what the customer could still get (English ``message``, ``zh``)."""
        self.hints.append(
            Hint(source=source, message=message, messages={"zh": zh} if zh else None, code=code, data=data)
        )

    def put_on_hold(self, reason: str, note: str = "", *, zh: str | None = None) -> None:
        """Hold the order: it can be paid, not dispatched, until released.

        ``reason`` is a short code kept on the order (``risk_review``); the
        ``note`` goes on the timeline for staff only. While placing, the
        order is simply written held.
        """
        if self.order.id is None:
            self.order.hold = reason
        else:
            self.set(hold=reason)
        self.timeline(
            "order.held",
            f"Order held ({reason}){': ' + note if note else ''}",
            zh=zh or f"订单已冻结({reason}){':' + note if note else ''}",
            public=False,
            data={"hold": reason},
        )
        self.emit("order.held", {"hold": reason})

    def transition(
        self, target: str, *, message: str | None = None, zh: str | None = None, note: str = ""
    ) -> None:
        """Move the order to ``target`` (checked by the state machine), with a timeline entry.

        ``note`` (e.g. what staff typed when marking a step by hand) is added to
        the entry's message and kept in its ``data``.
        """
        current = self.order.status
        states.check(current, target)
        status = states.OrderStatus(target)
        self.order.status = status.value
        self.order.updated_at = utcnow()
        self._changes["status"] = status.value
        self._changes["updated_at"] = self.order.updated_at
        en, cn = states.MESSAGES[status]
        en, cn = message or en, zh or cn
        data: dict[str, Any] = {"from": current}
        if note:
            en, cn = f"{en}: {note}", f"{cn}:{note}"
            data["note"] = note
        self.timeline(f"order.{status.value}", en, zh=cn, data=data)
        self.emit(f"order.{status.value}", {"from": current, "to": status.value})
        self.log.info("order.transition", previous=current, status=status.value)

    def set(self, **fields: Any) -> None:
        """Change order columns (``paid``, ``refunded``, ``hold``, ``extra``) in this stage."""
        for key, value in fields.items():
            if key in ("id", "status"):
                raise ValueError(f"{key} cannot be set directly; use transition()")
            setattr(self.order, key, value)
            self._changes[key] = value

    def after_commit(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` once this stage has committed (not if it rolls back)."""
        self._after_commit.append(fn)


class PlacementIntent:
    """One order of a combined batch, as :func:`order_reserve_batch` sees it.

    - ``ctx``: the order's :class:`OrderContext` (order and lines with ids,
      priced; ``ctx.conn`` is the batch's transaction).
    - ``order`` / ``lines``: shortcuts to ``ctx.order`` / ``ctx.lines``.
    - ``arrival``: its place in the batch (0 is the earliest request).
    - ``refuse(error)``: refuse this order alone with ``error`` (e.g.
      :class:`~mallcore.kernel.OutOfStock`); its client gets that error as if
      the order had been placed alone, and nothing of it is written.
    """

    __slots__ = ("arrival", "ctx", "error")

    def __init__(self, ctx: OrderContext, arrival: int) -> None:
        self.ctx = ctx
        self.arrival = arrival
        self.error: Exception | None = None

    @property
    def order(self) -> Order:
        return self.ctx.order

    @property
    def lines(self) -> list[Line]:
        return self.ctx.lines

    def refuse(self, error: Exception) -> None:
        """Refuse this order (the first refusal stands)."""
        if self.error is None:
            self.error = error
