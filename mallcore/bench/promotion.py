"""The ``promotion`` scenario: placement with the promotion center on, against the same
placement with it off, in one run.

Both sides run catalog, payment and WMS on a fresh database; the "with" side
adds promotion with three live campaigns in scope of every order (满减 on the
whole shop, 5% off the three SKUs ordered, buy one get one half price on one
of them: all three fire) and a coupon of its own on each order, so a coupon
is read, locked and recorded every time. Measured:

- over HTTP, as ``place`` measures (uvicorn, the same worker count, 3-line
  orders from concurrent clients): orders/s and latency of each side, the
  median of ``rounds`` runs per side, and the ratio;
- in process: the CPU time of one placement (``time.process_time``, so other
  programs on the machine do not count), in alternating batches, and the
  SQL statements of one placement on each side.

Target (issue 12): at most 15% slower, at most 3 statements more.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

LINES = [("BENCH-1", 1), ("BENCH-2", 2), ("BENCH-3", 1)]
CAMPAIGNS: list[dict[str, Any]] = [
    {
        "type": "threshold_off",
        "rules": {"tiers": [{"threshold": 3000, "off": 300}, {"threshold": 10000, "off": 1500}]},
    },
    {"type": "percent_off", "rules": {"percent": 5}, "skus": [s for s, _ in LINES], "stacking_group": "sku"},
    {"type": "buy_x_get_y", "rules": {"buy": 1, "get": 1, "percent_off_get": 50}, "skus": ["BENCH-2"]},
]
SUBJECT = "bench-customer"  # the bench customer token's subject
BATCH = 40
WARM = 100


def _campaigns(client: Any) -> None:
    ends = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for body in CAMPAIGNS:
        r = client.post(
            "/promotion/campaigns", json={"shop": "bench", "name": body["type"], "ends_at": ends, **body}
        )
        r.raise_for_status()


def _coupons(kernel: Any, n: int) -> list[str]:
    """``n`` coupons (1.00 off, no minimum) in the bench customer's wallet, written in one go."""
    from mallcore.kernel import utcnow
    from mallcore.plugins.promotion import tables as t
    from mallcore.plugins.promotion.cache import bump_version
    from mallcore.plugins.promotion.coupons import new_code

    now = utcnow()
    good = now + timedelta(days=1)
    with kernel.db.transaction() as conn:
        template_id = conn.execute(
            t.templates.insert()
            .values(
                shop="bench",
                name="bench coupon",
                kind="amount",
                value=100,
                min_spend=0,
                currency="CNY",
                skus=[],
                categories=[],
                total=n,
                issued=n,
                per_customer=n,
                valid_to=good,
                claimable=False,
                status="active",
                created_by="bench",
                created_at=now,
                updated_at=now,
            )
            .returning(t.templates.c.id)
        ).scalar_one()
        codes = [new_code() for _ in range(n)]
        fixed = {"template_id": template_id, "shop": "bench", "customer": SUBJECT, "status": "available"}
        fixed |= {
            "source": "batch",
            "reason": "bench",
            "valid_from": None,
            "valid_to": good,
            "order_id": None,
        }
        fixed |= {"issued_at": now, "claimed_at": now, "used_at": None, "updated_at": now}
        conn.execute(t.coupons.insert(), [{"code": code, **fixed} for code in codes])
        bump_version(conn, "bench")  # the template's terms reach every process's cache
    if "promotion" in kernel.centers:
        kernel.centers["promotion"].changed("bench")
    return codes


# -- over HTTP ---------------------------------------------------------------------------


@contextmanager
def _server(
    target: Any, folder: Path, promotion: bool, coupons: int, workers: int
) -> Iterator[tuple[int, list[str]]]:
    from mallcore.kernel import Kernel, load_config

    from .scenarios import ADMIN, SKUS, kernel_config, seed_kernel_http, server

    url, schema = target.fresh()
    config = kernel_config(url, schema, folder, ("promotion",) if promotion else ())
    kernel = Kernel(load_config(config, env={}))
    kernel.upgrade()
    codes = _coupons(kernel, coupons) if promotion else ["X" * 16] * coupons
    kernel.close()
    with server(
        "mallcore.kernel.http.app:app_from_environment",
        {"MALLCORE_CONFIG": str(config)},
        workers,
        folder / "servers.log",
    ) as port:
        seed_kernel_http(port, SKUS)
        if promotion:
            import httpx

            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {ADMIN}"}
            ) as c:
                _campaigns(c)
        yield port, codes


def _requests(codes: list[str]) -> list[bytes]:
    from . import load
    from .scenarios import CUSTOMER as TOKEN

    out = []
    for code in codes:
        body = msgspec.json.encode(
            {
                "shop": "bench",
                "lines": [{"sku": s, "quantity": q} for s, q in LINES],
                "address": {
                    "name": "Bench",
                    "phone": "13800000000",
                    "region": "310000",
                    "detail": "1 Bench Rd",
                },
                "coupons": [code],
            }
        )
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        out.append(load.request_bytes("POST", "/orders", body, headers))
    return out


def over_http(target: Any, folder: Path, n: int, clients: int, workers: int, rounds: int) -> dict[str, Any]:
    from . import load
    from .scenarios import compare, summarize

    warm = max(100, n // 10)
    runs: dict[str, list[dict[str, Any]]] = {"raw": [], "mallcore": []}  # raw: without, mallcore: with
    for _ in range(rounds):
        for side, promotion in (("raw", False), ("mallcore", True)):
            with _server(target, folder, promotion, warm + n, workers) as (port, codes):
                requests = _requests(codes)
                load.run("127.0.0.1", port, requests[:warm], clients)
                runs[side].append(summarize(load.run("127.0.0.1", port, requests[warm:], clients), 201))
    compared = compare(runs, "per_second")
    return {
        "without": compared["raw"],
        "with": compared["mallcore"],
        "ratio": compared["ratio"],
        "slower": round(1 / compared["ratio"] - 1, 4) if compared["ratio"] else None,
        "runs": {"without": runs["raw"], "with": runs["mallcore"]},
    }


# -- in process ----------------------------------------------------------------------------


class Adjustments:
    """A center adding the four adjustments the promotion center gives the bench order, as
    constants: what the kernel itself spends on an order's adjustments (pricing,
    allocation, their INSERT, the view), with no promotion work at all."""

    name = "fixedadjustments"

    def __init__(self) -> None:
        from mallcore.kernel import Phase, hookimpl

        def order_price(ctx: Any) -> None:
            ctx.adjust("promotion", "buy_x_get_y (第二件半价): 2 units in scope, 1 at 50% off", -600,
                       phase=Phase.PROMOTION, line=ctx.lines[1], code="campaign:3", funded_by="shop")  # fmt: skip
            ctx.adjust("promotion", "threshold_off (满30减3): subtotal 42.00 ≥ 30.00", -300,
                       phase=Phase.PROMOTION, code="campaign:1", funded_by="shop")  # fmt: skip
            ctx.adjust("promotion", "percent_off (9.5折): 5% off 39.00", -195,
                       phase=Phase.PROMOTION, code="campaign:2", funded_by="shop")  # fmt: skip
            ctx.adjust("promotion", "coupon bench coupon: 1.00 off", -100,
                       phase=Phase.COUPON, code="coupon:BENCHBENCHBENCH1", funded_by="shop")  # fmt: skip

        self.order_price = hookimpl(order_price)


def _kernel(target: Any, folder: Path, promotion: bool, extra_centers: tuple[Any, ...] = ()) -> Any:
    """The bench's in-process kernel (catalog, payment, WMS, stock), with promotion and
    its three campaigns when ``promotion``."""
    from litestar.testing import TestClient

    from mallcore.kernel.http.app import create_app

    from .scenarios import ADMIN, _in_process_kernel

    if promotion:
        from mallcore.plugins.promotion import PromotionCenter

        extra_centers = (*extra_centers, PromotionCenter)
    kernel, _ = _in_process_kernel(target, folder, extra=extra_centers)
    if promotion:
        with TestClient(create_app(kernel, lifecycle=False)) as client:
            client.headers["Authorization"] = f"Bearer {ADMIN}"
            _campaigns(client)
    return kernel


def in_process(target: Any, folder: Path, orders: int, rounds: int) -> dict[str, Any]:
    from mallcore.kernel import Principal
    from mallcore.kernel.schemas import LineIn, PlaceOrder

    batches = max(2, orders * rounds // BATCH)
    kernels = {
        "without": _kernel(target, folder, False),
        "with": _kernel(target, folder, True),
        # the kernel's own share of the difference: the same adjustments, no promotion work
        "adjustments_only": _kernel(target, folder, False, (Adjustments(),)),
    }
    who = Principal(SUBJECT, frozenset({"customer"}))
    codes = {"with": iter(_coupons(kernels["with"], WARM + batches * BATCH + 10))}

    def request(name: str) -> PlaceOrder:
        # The same order on both sides; without promotion nobody reads the coupon.
        code = next(codes[name]) if name in codes else "X" * 16
        return PlaceOrder(shop="bench", lines=[LineIn(sku=s, quantity=q) for s, q in LINES], coupons=[code])

    cpu: dict[str, list[float]] = {name: [] for name in kernels}
    wall: dict[str, list[float]] = {name: [] for name in kernels}
    statements: dict[str, int] = {}
    sample: dict[str, Any] = {}
    try:
        for name, k in kernels.items():
            for _ in range(WARM // 2):
                k.orders.place(who, request(name))
            with k.db.count_statements(keep=True) as counter:
                view, _ = k.orders.place(who, request(name))
            statements[name] = counter.count
            if name == "with":
                sample = {
                    "total": view.total,
                    "discount": view.discount,
                    "adjustments": [(a.code, a.amount, a.reason) for a in view.adjustments],
                    "statements": [s.split("\n")[0][:100] for s in counter.statements],
                }
        for i in range(batches):
            order = list(kernels.items()) if i % 2 == 0 else list(reversed(kernels.items()))
            for name, k in order:
                reqs = [request(name) for _ in range(BATCH)]
                started, cpu_started = time.perf_counter(), time.process_time()
                for req in reqs:
                    k.orders.place(who, req)
                cpu[name].append((time.process_time() - cpu_started) / BATCH)
                wall[name].append((time.perf_counter() - started) / BATCH)
    finally:
        for k in kernels.values():
            k.close()
    cpu_median = {name: statistics.median(t) for name, t in cpu.items()}
    wall_median = {name: statistics.median(t) for name, t in wall.items()}
    return {
        "orders": batches * BATCH,
        "cpu_us_per_order": {name: round(t * 1e6, 1) for name, t in cpu_median.items()},
        "wall_us_per_order": {name: round(t * 1e6, 1) for name, t in wall_median.items()},
        "cpu_slower": round(cpu_median["with"] / cpu_median["without"] - 1, 4),
        "cpu_slower_adjustments_only": round(cpu_median["adjustments_only"] / cpu_median["without"] - 1, 4),
        "statements_per_placement": statements,
        "extra_statements": statements["with"] - statements["without"],
        "sample_order": sample,
    }


def scenario(
    target: Any, folder: Path, *, requests: int, clients: int, workers: int, rounds: int, **_: Any
) -> dict[str, Any]:
    """``mallcore bench --scenario promotion``: over HTTP, then in process."""
    return run(target, folder, requests, clients, workers, rounds)


def run(target: Any, folder: Path, n: int, clients: int, workers: int, rounds: int) -> dict[str, Any]:
    return {
        "http": over_http(target, folder, n, clients, workers, rounds),
        "in_process": in_process(target, folder, n // 3, max(3, rounds + 1)),
    }


def line(r: dict[str, Any]) -> str:
    h, p = r["http"], r["in_process"]
    cpu, st = p["cpu_us_per_order"], p["statements_per_placement"]
    return (
        f"  promotion  HTTP: off {h['without']['per_second']}/s, on (3 campaigns + a coupon) "
        f"{h['with']['per_second']}/s: {h['slower']:+.1%} time per order (median runs)\n"
        f"             in process: off {cpu['without']} µs CPU/order ({st['without']} statements), "
        f"on {cpu['with']} µs ({st['with']} statements): {p['cpu_slower']:+.1%}, {p['extra_statements']:+d} statements; "
        f"the same four adjustments from a center doing nothing else: {p['cpu_slower_adjustments_only']:+.1%}"
    )
