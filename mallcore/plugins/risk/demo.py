"""The demo's rules and lists: enough to see risk at work, nothing that stops the demo's
own customers (alice and bob) from buying."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import Principal, utcnow

from . import tables as t
from .admin import add_entry
from .schemas import ListIn
from .versions import bump

if TYPE_CHECKING:
    from mallcore.kernel import Kernel

    from . import RiskCenter

RULES = [
    ("IP burst 同IP短时多单", "signals.ip_orders_1h > 20", "review", ["place"], 30),
    ("New account, large order 新账号大额", "signals.new_account_large_order", "review", ["place"], 40),
    ("One device, many accounts 一机多号", "signals.device_customers_24h >= 4", "block", ["place"], 80),
    ("Low credit 信用分低", "customer.credit < 400", "review", ["place", "pay"], 50),
    (
        "Refund-only abuse 仅退款滥用",
        "case.type == 'refund_only' && signals.paid_orders >= 3 && signals.refund_rate >= 50",
        "review",
        ["after_sale"],
        60,
    ),
]
LISTS = [
    ("customer", "mallory", "block", "chargebacks on three orders (demo)"),
    ("ip", "203.0.113.66", "block", "card-testing bot (demo)"),
    ("cidr", "198.51.100.0/24", "review", "hosting provider range (demo)"),
    ("device", "emulator-farm-01", "block", "device farm (demo)"),
    ("phone", "+86 170-0000-0000", "review", "virtual operator number used by a 刷单 ring (demo)"),
]


def seed(center: RiskCenter, kernel: Kernel, demo: Any) -> None:
    staff = Principal("risk@platform", frozenset({"risk"}), platform=True)
    now = utcnow()
    with kernel.db.transaction() as conn:
        names = set(conn.execute(sa.select(t.rules.c.name).where(t.rules.c.removed_at.is_(None))).scalars())
        for name, condition, action, stages, score in RULES:
            if name in names:
                continue
            conn.execute(
                t.rules.insert().values(
                    name=name,
                    shop=None,
                    condition=condition,
                    action=action,
                    score=score,
                    stages=stages,
                    enabled=True,
                    created_by=staff.subject,
                    created_at=now,
                    updated_at=now,
                )
            )
        bump(conn, "rules")
        listed = set(
            conn.execute(
                sa.select(t.lists.c.kind, t.lists.c.label, t.lists.c.value).where(
                    t.lists.c.removed_at.is_(None)
                )
            ).all()
        )
        seen = {(k, v) for k, _, v in listed} | {(k, label) for k, label, _ in listed if label}
        for kind, value, action, reason in LISTS:
            if (kind, value) not in seen:
                add_entry(conn, staff, ListIn(kind=kind, value=value, action=action, reason=reason))  # type: ignore[arg-type]
    center.changed("lists")
    center.changed("rules")
    token = kernel.auth.issue_token(staff.subject, ["risk"], None, label="demo", platform=True)
    demo.notes.append(
        f"risk: {len(RULES)} rules (GET /risk/rules) and {len(LISTS)} list entries, e.g. customer 'mallory' "
        "and IP 203.0.113.66 blocked; orders from a new account of ¥1000 or more wait in GET /risk/reviews"
    )
    demo.notes.append(f"risk: platform risk staff 'risk@platform' token {token}")
