"""What a lifecycle hook sees: the order, its lines, the stage's transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from . import facts, states
from .errors import InvalidInput, Rejected
from .facts import RequestFacts

if TYPE_CHECKING:
    from .auth import Principal
    from .kernel import Kernel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Phase(IntEnum):
    """When an adjustment applies; the kernel applies them in this order, then by center."""

    PROMOTION = 10
    MEMBERSHIP = 20
    COUPON = 30
    POINTS = 40
    FREIGHT = 50
    # Waives freight (包邮, a free-shipping voucher): negative amounts taken off the
    # lines' shipping, never their goods, so a refund's goods value is untouched.
    SHIPPING_DISCOUNT = 55
    FEE = 60
    # Last word on the price, e.g. an exchange replacement at no charge.
    SETTLEMENT = 90


class Address(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    phone: str
    region: str
    detail: str


class Line(msgspec.Struct, kw_only=True):
    sku: str
    quantity: int
    id: int | None = None
    line_no: int = 0
    name: str = ""
    unit_price: int | None = None
    weight_grams: int = 0
    subtotal: int = 0
    discount: int = 0
    shipping: int = 0
    fees: int = 0
    total: int = 0
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)


class Adjustment(msgspec.Struct, kw_only=True):
    source: str
    reason: str
    amount: int
    phase: int
    line_no: int | None = None
    code: str | None = None
    # Who pays for a discount: "platform" or "shop" (finance settles shops by it).
    funded_by: str | None = None
    id: int | None = None
    line_id: int | None = None
    # line_no -> share, for order-level adjustments once allocated
    allocation: dict[int, int] | None = None


class Order(msgspec.Struct, kw_only=True):
    shop: str
    customer: str
    status: str
    currency: str
    id: int | None = None
    subtotal: int = 0
    discount: int = 0
    shipping: int = 0
    fees: int = 0
    total: int = 0
    paid: int = 0
    refunded: int = 0
    address: Address | None = None
    coupons: list[str] = msgspec.field(default_factory=list)
    points: int = 0
    parent_id: int | None = None
    hold: str | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    placed_at: datetime | None = None
    updated_at: datetime | None = None


class Payment(msgspec.Struct, kw_only=True):
    """A payment attempt handed to ``order_pay``; the payment center fills it in."""

    method: str
    amount: int
    currency: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    status: str = "unhandled"  # captured | pending | failed
    provider: str | None = None
    reference: str | None = None
    id: int | None = None
    failure: str | None = None


class TimelineEntry(msgspec.Struct, kw_only=True):
    kind: str
    message: str
    actor: str
    public: bool = True
    messages: dict[str, str] | None = None
    ref: str | None = None
    data: dict[str, Any] | None = None
    at: datetime = msgspec.field(default_factory=utcnow)
    order_id: int | None = None


class Event(msgspec.Struct, kw_only=True):
    topic: str
    payload: dict[str, Any]
    order_id: int | None = None
    at: datetime = msgspec.field(default_factory=utcnow)


class Hint(msgspec.Struct, kw_only=True):
    """Something the customer could still get ("add 12.00 more for 满200减30"), shown by a preview."""

    source: str
    message: str
    messages: dict[str, str] | None = None
    code: str | None = None
    data: dict[str, Any] | None = None


class OrderContext:
    """The order, its lines and the open transaction of one stage.

    - ``order`` / ``lines``: the order as it stands (lines load on first use).
    - ``conn``: the stage's SQLAlchemy connection (Core statements).
    - ``session``: an ORM session on the same transaction (made on first use).
    - ``principal``: who asked; ``stage``: which stage runs.
    - ``log``: a structlog logger bound with the order id.
    - ``stash``: scratch space shared by the hooks of this stage.
    - ``parcels``: during dispatch, the warehouse plan (``Parcel`` list).
    - ``request``: the facts of the HTTP request behind the stage (client
      IP, device id, user agent; see :mod:`mallcore.kernel.facts`), or
      ``None`` for jobs and the CLI.
    - ``emit()``, ``timeline()``, ``adjust()``, ``hint()``, ``put_on_hold()``,
      ``transition()``, ``after_commit()``: see each.
    """

    __slots__ = (
        "_after_commit",
        "_changes",
        "_events",
        "_lines",
        "_log",
        "_session",
        "_timeline",
        "adjustments",
        "conn",
        "hints",
        "kernel",
        "order",
        "parcels",
        "principal",
        "stage",
        "stash",
    )

    def __init__(
        self,
        kernel: Kernel,
        stage: str,
        order: Order,
        conn: sa.Connection,
        principal: Principal,
        lines: list[Line] | None = None,
    ) -> None:
        self.kernel = kernel
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
        self._after_commit: list[Callable[[], Any]] = []
        self._changes: dict[str, Any] = {}
        self.stash: dict[Any, Any] = {}
        # Set by WMS in order_dispatch; TMS ships each (see aftersale.Parcel).
        self.parcels: list[Any] = []
        self._log: Any = None

    @property
    def log(self) -> Any:
        """A structlog logger bound with the order id and the stage (made on first use)."""
        # Rebound once the order has its id (placement inserts it mid-stage).
        if self._log is None or self._log[0] != self.order.id:
            self._log = (self.order.id, self.kernel.log.bind(order_id=self.order.id, stage=self.stage))
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
            self._lines = self.kernel.orders.load_lines(self.conn, self.order.id)
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
    ) -> None:
        """Add an entry to the order's timeline (customer-visible when ``public``).

        ``message`` is English; ``zh`` its Chinese wording, shown when the
        client asks for Chinese (``Accept-Language: zh``). ``ref`` ties the
        entry to an object, e.g. ``"after_sale:12"`` or ``"shipment:3"``.
        """
        self._timeline.append(
            TimelineEntry(
                kind=kind,
                message=message,
                messages={"zh": zh} if zh else None,
                actor=actor or self.principal.subject,
                public=public,
                ref=ref,
                data=data,
                order_id=self.order.id,
            )
        )

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

    def reject(self, code: str, detail: str) -> None:
        raise Rejected(detail, code=code)

    def transition(self, target: str, *, message: str | None = None, zh: str | None = None) -> None:
        """Move the order to ``target`` (checked by the state machine), with a timeline entry."""
        current = self.order.status
        states.check(current, target)
        status = states.OrderStatus(target)
        self.order.status = status.value
        self.order.updated_at = utcnow()
        self._changes["status"] = status.value
        self._changes["updated_at"] = self.order.updated_at
        en, cn = states.MESSAGES[status]
        self.timeline(f"order.{status.value}", message or en, zh=zh or cn, data={"from": current})
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
