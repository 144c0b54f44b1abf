"""The ``risk`` scenario: placement with the risk center on against off, in one run.

In process (as ``plugins``), alternating short batches so both sides share
the machine's noise. "on" is risk with five rules that evaluate on every
placement (none fires, so every order is placed), lists of 10,000 entries of
every kind, counters on, and the request's facts (an IP, a device id) of an
HTTP placement; "on (redis)" the same with counters in Redis, when one
answers on 127.0.0.1:6379; "on, no decision row" skips the decision INSERT,
to show what storing every evaluation costs. Also statements per placement
with risk off and on.
"""

from __future__ import annotations

import socket
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

RULES = [
    ("ip burst", "signals.ip_orders_1h > 1000000", "review"),
    ("device ring", "signals.device_customers_24h >= 1000", "block"),
    ("new account, large order", "signals.new_account_large_order && order.total > 100000000", "review"),
    ("low credit", "customer.credit < 10", "review"),
    ("many units", "order.quantity > 100000 || size(order.skus) > 500", "review"),
]


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.3):
            return True
    except OSError:
        return False


def _risk_settings(storage: str) -> dict[str, Any]:
    return {
        "cache_recheck_seconds": 5.0,
        "counters": {"storage": storage, "prefix": f"bench-{uuid.uuid4().hex[:8]}"},
        "rules": [{"name": n, "condition": c, "action": a, "stages": ["place"]} for n, c, a in RULES],
    }


def _fill_lists(kernel: Any, n: int = 10_000) -> None:
    from mallcore.kernel import utcnow
    from mallcore.plugins.risk import tables as t
    from mallcore.plugins.risk.versions import bump

    now = utcnow()
    kinds = ["customer", "phone", "address", "ip", "cidr", "device"]
    rows = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        value = {
            "customer": f"fraudster-{i}",
            "phone": f"170{i:08d}",
            "address": f"{i:024x}",
            "ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
            "cidr": f"100.{(i >> 8) & 63}.{i & 255}.0/24",
            "device": f"farm-{i}",
        }[kind]
        rows.append(
            {
                "kind": kind,
                "value": value,
                "action": "block" if i % 3 else "review",
                "shop": None,
                "reason": "bench",
                "source": "staff",
                "created_by": "bench",
                "created_at": now,
            }
        )
    with kernel.db.transaction() as conn:
        conn.execute(t.lists.insert(), rows)
        bump(conn, "lists")


def scenario_risk(target: Any, folder: Path, orders: int, rounds: int) -> dict[str, Any]:
    from mallcore.kernel import facts
    from mallcore.kernel.schemas import LineIn, PlaceOrder

    variants: dict[str, dict[str, Any] | None] = {"off": None, "on": _risk_settings("memory")}
    if _redis_up():
        variants["on (redis)"] = _risk_settings("redis://127.0.0.1:6379/0")
    variants["on, no decision row"] = _risk_settings("memory")
    kernels: dict[str, tuple[Any, Any]] = {}
    for name, settings in variants.items():
        kernel, principal = _risk_kernel(target, folder, settings)
        if settings is not None:
            _fill_lists(kernel)
            if name == "on, no decision row":
                kernel.centers["risk"].decisions.record = lambda conn, row: 0
        kernels[name] = (kernel, principal)
    req = PlaceOrder(
        shop="bench", lines=[LineIn(sku=s, quantity=1) for s in ("BENCH-1", "BENCH-2", "BENCH-3")]
    )
    scope = {
        "type": "http",
        "client": ("203.0.113.10", 40000),
        "headers": [(b"x-device-id", b"bench-device-1"), (b"user-agent", b"bench/1.0")],
        "method": "POST",
        "path": "/orders",
    }
    reader = facts.FactsReader((), "X-Device-Id")
    token = facts.enter(scope, reader)
    batch = 50
    batches = max(20, orders * rounds // batch)
    times: dict[str, list[float]] = {name: [] for name in kernels}
    statements: dict[str, int] = {}
    try:
        for kernel, principal in kernels.values():
            for _ in range(100):
                kernel.orders.place(principal, req)
        for name in ("off", "on"):
            kernel, principal = kernels[name]
            with kernel.db.count_statements() as counter:
                kernel.orders.place(principal, req)
            statements[name] = counter.count
        for i in range(batches):
            order = list(kernels.items()) if i % 2 == 0 else list(reversed(kernels.items()))
            for name, (kernel, principal) in order:
                started = time.perf_counter()
                for _ in range(batch):
                    kernel.orders.place(principal, req)
                times[name].append((time.perf_counter() - started) / batch)
    finally:
        facts.leave(token)
        for name, (kernel, _) in kernels.items():
            if name != "off" and "redis" in name:
                kernel.centers["risk"].counters.backend.clear()
            kernel.close()
    median = {name: statistics.median(t) for name, t in times.items()}
    return {
        "orders": batches * batch,
        "list_entries": 10_000,
        "rules": len(RULES),
        "us_per_order": {name: round(t * 1e6, 1) for name, t in median.items()},
        "overhead": {name: round(t / median["off"] - 1, 4) for name, t in median.items() if name != "off"},
        "statements_per_placement": statements,
    }


def _risk_kernel(target: Any, folder: Path, settings: dict[str, Any] | None) -> tuple[Any, Any]:
    from . import _in_process_kernel

    if settings is None:
        return _in_process_kernel(target, folder)
    return _in_process_kernel(target, folder, risk=settings)


def line(r: dict[str, Any]) -> str:
    us = r["us_per_order"]
    over = ", ".join(f"{name} {pct:+.1%}" for name, pct in r["overhead"].items())
    return (
        f"  risk   off {us['off']} µs/order; {over} "
        f"(5 rules, 10,000 list entries); statements {r['statements_per_placement']}"
    )
