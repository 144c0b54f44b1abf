"""One evaluation: the facts of a stage, its signals, the lists and rules, the verdict.

What wins, strongest first:

1. an ``allow`` entry on the **platform's** list: allowed (trusted by the platform);
2. a ``block`` entry (platform's or the order's shop's): blocked;
3. an ``allow`` entry on the shop's list, or a fired ``allow`` rule: allowed
   (a shop cannot lift the platform's blocks);
4. a fired ``block`` rule: blocked;
5. a ``review`` entry or a fired ``review`` rule: held for review;
6. otherwise allowed.

Lists refuse placements and payments only: at an after-sale request or a
refund a blocked customer's request is held for review instead; a ``block``
rule refuses an after-sale request; at a refund every ``block`` is a review
(a refund is held, never silently refused). The decision's score is the sum
of the fired rules' scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import OrderContext
from mallcore.kernel.tables import orders as kernel_orders
from mallcore.kernel.tables import refunds as kernel_refunds

from . import tables as t
from .geoip import mismatch
from .lists import Entry
from .normalize import address_fingerprint, phone
from .normalize import ip as normalize_ip
from .rules import Outcome, Rule

if TYPE_CHECKING:
    from . import RiskCenter


class Evaluation(msgspec.Struct, kw_only=True):
    stage: str
    shop: str
    customer: str
    facts: dict[str, Any]
    signals: dict[str, Any]
    entries: list[Entry]
    fired: list[Rule]
    errors: list[dict[str, Any]]
    action: str = "allow"
    score: int = 0
    case_type: str | None = None

    def why(self) -> str:
        """For staff: what fired (never shown to the customer)."""
        parts = [f"rule '{r.name}' ({r.action})" for r in self.fired]
        parts += [
            f"{e.kind} on the {'platform' if e.shop is None else e.shop} {e.action} list"
            for e in self.entries
        ]
        return "; ".join(parts) or "no rule fired"

    def row(
        self, now: datetime, *, order_id: int | None, case_id: int | None = None, refund_id: int | None = None
    ) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "order_id": order_id,
            "case_id": case_id,
            "refund_id": refund_id,
            "shop": self.shop,
            "customer": self.customer,
            "case_type": self.case_type,
            "action": self.action,
            "score": self.score,
            "rules": [r.brief() for r in self.fired] or None,
            "lists": [e.brief() for e in self.entries] or None,
            "facts": self.facts,
            "signals": self.signals,
            "errors": self.errors or None,
            "created_at": now,
        }


def verdict(stage: str, entries: list[Entry], fired: list[Rule]) -> str:
    """The action, by the precedence in the module docstring."""
    if not entries and not fired:  # nearly every evaluation
        return "allow"
    if any(e.action == "allow" and e.shop is None for e in entries):
        return "allow"
    listed_block = any(e.action == "block" for e in entries)
    if listed_block and stage in ("place", "pay"):
        return "block"
    if any(e.action == "allow" for e in entries) or any(r.action == "allow" for r in fired):
        return "allow"
    if any(r.action == "block" for r in fired):
        return "review" if stage == "refund" else "block"
    if listed_block or any(e.action == "review" for e in entries) or any(r.action == "review" for r in fired):
        return "review"
    return "allow"


class Engine:
    def __init__(self, center: RiskCenter) -> None:
        self.center = center

    # -- facts -----------------------------------------------------------------------

    def request_facts(self, ctx: OrderContext) -> dict[str, str]:
        req = ctx.request
        center = self.center
        if req is None:
            return {"ip": "", "device": "", "user_agent": "", "region": ""}
        # "" when the peer is no IP address (a test client, a Unix socket)
        ip = normalize_ip(req.client_ip(center.trusted_proxies) if center.trusted_proxies else req.ip)
        return {
            "ip": ip,
            "device": req.device_id or "",
            "user_agent": req.user_agent,
            "region": center.geoip.region(ip) if center.geoip is not None and ip else "",
        }

    def order_facts(self, ctx: OrderContext) -> dict[str, Any]:
        order, lines = ctx.order, ctx.lines
        return {
            "id": order.id or 0,
            "shop": order.shop,
            "total": order.total,
            "subtotal": order.subtotal,
            "discount": order.discount,
            "shipping": order.shipping,
            "currency": order.currency,
            "lines": len(lines),
            "quantity": sum(line.quantity for line in lines),
            "skus": [line.sku for line in lines],
            "coupons": len(order.coupons),
            "points": order.points,
            "paid": order.paid,
            "status": order.status,
        }

    def evaluate(
        self,
        ctx: OrderContext,
        stage: str,
        now: datetime,
        *,
        observe: bool = False,
        case: Mapping[str, Any] | None = None,
        refund: Mapping[str, Any] | None = None,
    ) -> Evaluation:
        """Everything known at ``stage`` of ``ctx``'s order, and the verdict on it.

        ``observe``: count this order in the velocity counters (placement only)."""
        center = self.center
        conn, order = ctx.conn, ctx.order
        customer = order.customer
        book = center.book(conn)
        reads = book.reads_at[stage]
        request = self.request_facts(ctx)
        addr = order.address
        if addr is not None:
            region = addr.region
            address = {
                "fingerprint": address_fingerprint(region, addr.detail),
                "region": region,
                "province": region[:2],
                "phone": phone(addr.phone),
            }
        else:
            address = {"fingerprint": "", "region": "", "province": "", "phone": ""}
        profile = center.profiles.get(conn, customer, now)
        age = max((now - profile.first_seen_at).days, 0)
        new = age < center.settings.new_account_days
        facts: dict[str, Any] = {
            "stage": stage,
            "order": self.order_facts(ctx),
            "customer": {
                "id": customer,
                "credit": profile.credit,
                "age_days": age,
                "new": new,
                "completed_orders": profile.completed_orders,
                "rejected_reviews": profile.rejected_reviews,
                "chargebacks": profile.chargebacks,
            },
            "request": request,
            "address": address,
        }
        if case is not None:
            facts["case"] = dict(case)
        if refund is not None:
            facts["refund"] = dict(refund)
        values = {
            "customer": customer,
            "ip": request["ip"],
            "device": request["device"],
            "address": address["fingerprint"],
            "phone": address["phone"],
        }
        if observe:
            signals: dict[str, Any] = center.counters.observe(values, customer)
        elif reads.signals:
            signals = self.placement_signals(conn, order.id)
        else:
            signals = {}
        signals["new_account_large_order"] = new and order.total >= center.settings.large_order_amount
        signals["region_mismatch"] = mismatch(request["region"], address["region"])
        if reads.refund_signals:
            signals.update(self.refund_signals(conn, customer, now, case))
        if reads.coupon_signals:
            signals.update(center.counters.coupon_claims(customer, request["device"]))
        entries = center.list_index(conn).match(values, order.shop, now)
        outcome: Outcome = book.evaluate(stage, order.shop, facts, signals)
        return Evaluation(
            stage=stage,
            shop=order.shop,
            customer=customer,
            facts=facts,
            signals=signals,
            entries=entries,
            fired=outcome.fired,
            errors=outcome.errors,
            action=verdict(stage, entries, outcome.fired),
            score=sum(r.score for r in outcome.fired),
            case_type=None if case is None else case.get("type"),
        )

    # -- signals read from the database (later stages, or when a rule reads them) -------

    def placement_signals(self, conn: sa.Connection, order_id: int | None) -> dict[str, Any]:
        """The velocity signals the order saw when it was placed (0s if that decision is
        another worker's, not yet written: see :mod:`.decisions`)."""
        waiting = self.center.decisions.waiting(order_id or 0, "place")
        if waiting is not None:
            return dict(waiting["signals"] or {})
        d = t.decisions.c
        row = conn.execute(
            sa.select(d.signals).where(d.order_id == order_id, d.stage == "place").order_by(d.id).limit(1)
        ).first()
        return dict(row.signals or {}) if row is not None else {}

    def refund_signals(
        self, conn: sa.Connection, customer: str, now: datetime, case: Mapping[str, Any] | None
    ) -> dict[str, int]:
        """Refund behaviour over ``refund_window_days``: paid orders, orders refunded
        (cancellations aside), their rate in whole percent (rounded down), and
        refund-only requests (this one included)."""
        since = now - timedelta(days=self.center.settings.refund_window_days)
        o, r, d = kernel_orders.c, kernel_refunds.c, t.decisions.c
        paid = conn.execute(
            sa.select(sa.func.count()).where(o.customer == customer, o.paid > 0, o.placed_at >= since)
        ).scalar_one()
        refunded = conn.execute(
            sa.select(sa.func.count(sa.distinct(r.order_id)))
            .select_from(kernel_refunds.join(kernel_orders, o.id == r.order_id))
            .where(
                o.customer == customer, r.status == "refunded", r.source != "cancel", r.created_at >= since
            )
        ).scalar_one()
        refund_only = conn.execute(
            sa.select(sa.func.count()).where(
                d.customer == customer,
                d.case_type == "refund_only",
                d.stage == "after_sale",
                d.created_at >= since,
            )
        ).scalar_one()
        if case is not None and case.get("type") == "refund_only":
            refund_only += 1
        return {
            "paid_orders": int(paid),
            "refunded_orders": int(refunded),
            "refund_rate": int(refunded) * 100 // int(paid) if paid else 0,
            "refund_only_cases": int(refund_only),
        }
