"""The ``membership`` scenario: what the membership center adds to a placement.

Both sides run catalog, payment, WMS and TMS (a flat freight template, so
both store an adjustment per order, as a shop with freight does); one runs
membership too. There the customer is a Gold member (5% member price on
every line) with points enough for every order, and every 3-line order
spends 100 of them: one read-and-hold ``UPDATE`` of the member row and one
``INSERT`` of the hold's ledger row. Measured in the same run:

- over HTTP, like ``place``: each side served by uvicorn in turn, rounds
  alternating which goes first; orders/s of each side's median run;
- in process, like ``plugins``: the two kernels placing in alternating
  batches, medians of the batch times (wall clock, and this process's CPU
  time, steadier on a shared machine);
- SQL statements per placement on both sides (the kernel keeps an order's
  adjustments on its row, so a shop with no freight pays nothing more for them, as for
  any discount: see tests/plugins/membership/test_placement.py).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

ADMIN = "bench_membership_admin"  # tokens: also keys of MALLCORE_AUTH__TOKENS__... for the servers
# Customers placing the orders, in turn: one customer's concurrent orders would queue on their
# member row (held from pricing to commit), which is not how a shop's traffic looks.
MEMBERS = 32
CUSTOMERS = [(f"bench-member-{i}", f"bench_member_{i}") for i in range(MEMBERS)]
SKUS = {f"MEM-{i}": 1000 + 100 * i for i in range(1, 4)}
POINTS = 100
ADDRESS = {"name": "Bench", "phone": "13800000000", "region": "310000", "detail": "1 Bench Rd"}


def _environment(url: str, schema: str | None, membership: bool) -> dict[str, str]:
    """The configuration of one side, as MALLCORE_* variables (a server reads the same)."""
    centers = ["catalog", "payment", "wms", "tms", *(["membership"] if membership else [])]
    env = {
        "MALLCORE_DATABASE__URL": url,
        "MALLCORE_DATABASE__POOL_SIZE": "20",
        "MALLCORE_CENTERS__ENABLED": json.dumps(centers),
        "MALLCORE_JOBS__ENABLED": "false",
        "MALLCORE_LOGGING__LEVEL": '"warning"',
        # Seeding sends 64 admin requests at once, and 32 customers then order as fast as
        # they can: rate limits would answer 429 (both sides alike; they are not measured here).
        "MALLCORE_HTTP__LIMITS__ENABLED": "false",
        f"MALLCORE_AUTH__TOKENS__{ADMIN.upper()}__SUBJECT": "bench-admin",
        f"MALLCORE_AUTH__TOKENS__{ADMIN.upper()}__ROLES": '["admin"]',
    }
    for subject, token in CUSTOMERS:
        env[f"MALLCORE_AUTH__TOKENS__{token.upper()}__SUBJECT"] = subject
        env[f"MALLCORE_AUTH__TOKENS__{token.upper()}__ROLES"] = '["customer"]'

    if schema:
        env["MALLCORE_DATABASE__SCHEMA"] = schema
    return env


def _kernel(target: Any, membership: bool) -> tuple[Any, dict[str, str]]:
    """A seeded kernel on a fresh database, and the environment that configures it."""
    from litestar.testing import TestClient

    from mallcore.kernel import Kernel, load_config
    from mallcore.kernel.http.app import create_app

    url, schema = target.fresh()
    env = _environment(url, schema, membership)
    kernel = Kernel(load_config(env=env))
    kernel.create_schema()
    with TestClient(create_app(kernel, lifecycle=False)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"

        def post(path: str, body: dict[str, Any], put: bool = False) -> None:
            r = (client.put if put else client.post)(path, json=body)
            r.raise_for_status()

        post(
            "/catalog/products",
            {"name": "Bench", "shop": "bench", "skus": [{"code": s, "price": p} for s, p in SKUS.items()]},
        )
        post("/wms/warehouses", {"code": "WH1", "name": "Bench", "region": "310000"})
        for sku in SKUS:
            post("/wms/inbound", {"warehouse": "WH1", "sku": sku, "quantity": 10**8})
        post(
            "/tms/templates",
            {
                "shop": "bench",
                "name": "flat",
                "mode": "piece",
                "default": True,
                "default_rule": {"first": 1, "first_fee": 800, "additional": 1, "additional_fee": 0},
            },
        )
        if membership:
            for subject, _ in CUSTOMERS:
                post(f"/membership/members/{subject}/level", {"level": "gold", "reason": "bench"}, put=True)
                post(f"/membership/members/{subject}/points", {"delta": 10**9, "reason": "bench"})
    return kernel, env


def _request(lines: int, points: int) -> Any:
    import msgspec

    from mallcore.kernel.schemas import PlaceOrder

    body: dict[str, Any] = {
        "shop": "bench",
        "lines": [{"sku": sku, "quantity": 1} for sku in list(SKUS)[:lines]],
        "points": points,
        "address": ADDRESS,
    }
    return msgspec.convert(body, PlaceOrder)


def _statements(kernel: Any, principal: Any, req: Any) -> int:
    kernel.orders.place(principal, req)  # warm the caches
    with kernel.db.count_statements() as counter:
        kernel.orders.place(principal, req)
    return int(counter.count)


def scenario(
    target: Any, folder: Path, *, requests: int, clients: int, workers: int, rounds: int, **_: Any
) -> dict[str, Any]:
    """``mallcore bench --scenario membership``."""
    return run(target, folder, requests, clients, workers, rounds)


def run(target: Any, folder: Path, n: int, clients: int, workers: int, rounds: int) -> dict[str, Any]:
    """In process (``n // 3`` orders a side at least 200, in batches) and over HTTP (``n``
    requests a side per round, ``rounds`` rounds)."""
    return {
        "in_process": in_process(target, max(200, n // 3), max(3, rounds + 1)),
        "http": over_http(target, folder, n, clients, workers, rounds),
    }


def over_http(target: Any, folder: Path, n: int, clients: int, workers: int, rounds: int) -> dict[str, Any]:
    """Both sides served by uvicorn like the ``place`` scenario, rounds alternating which goes
    first; orders/s of the median run of each side."""
    import msgspec

    from . import load
    from .scenarios import server

    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    warm = max(100, n // 10)
    for i in range(rounds):
        for side in ("off", "on") if i % 2 == 0 else ("on", "off"):
            kernel, env = _kernel(target, side == "on")
            kernel.close()
            body = msgspec.json.encode(
                {"shop": "bench", "lines": [{"sku": sku, "quantity": 1} for sku in SKUS],
                 "address": ADDRESS, "points": POINTS if side == "on" else 0}
            )  # fmt: skip
            requests = [
                load.request_bytes(
                    "POST",
                    "/orders",
                    body,
                    {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                )
                for _, token in CUSTOMERS
            ]
            factory = "mallcore.kernel.http.app:app_from_environment"
            with server(factory, env, workers, folder / "servers.log") as port:
                load.run("127.0.0.1", port, [requests[i % MEMBERS] for i in range(warm)], clients)
                result = load.run("127.0.0.1", port, [requests[i % MEMBERS] for i in range(n)], clients)
            runs[side].append(
                {
                    "per_second": round(result.rate(201), 1),
                    "p50_ms": round(result.percentile(0.5) * 1000, 2),
                    "p99_ms": round(result.percentile(0.99) * 1000, 2),
                    "statuses": result.statuses,
                }
            )
    mid = {side: sorted(r, key=lambda x: x["per_second"])[len(r) // 2] for side, r in runs.items()}
    return {
        "runs": runs,
        "off": mid["off"],
        "on": mid["on"],
        "slower": round(1 - mid["on"]["per_second"] / mid["off"]["per_second"], 4),
        "errors": {
            side: [r["statuses"] for r in rs if set(r["statuses"]) != {201}] for side, rs in runs.items()
        },
    }


def in_process(target: Any, orders: int, rounds: int) -> dict[str, Any]:
    from mallcore.kernel import Principal

    principal = Principal(CUSTOMERS[0][0], frozenset({"customer"}))
    kernels = {"off": _kernel(target, False)[0], "on": _kernel(target, True)[0]}
    spend = {"off": 0, "on": POINTS}
    statements: dict[str, Any] = {}
    batch = 50
    batches = max(4, orders * rounds // batch)
    times: dict[str, list[float]] = {name: [] for name in kernels}
    cpu: dict[str, list[float]] = {name: [] for name in kernels}
    try:
        for name, kernel in kernels.items():
            statements[name] = {
                "3_lines": _statements(kernel, principal, _request(3, spend[name])),
                "1_line": _statements(kernel, principal, _request(1, spend[name])),
            }
        reqs = {name: _request(3, spend[name]) for name in kernels}
        for name, kernel in kernels.items():
            for _ in range(100):
                kernel.orders.place(principal, reqs[name])
        for i in range(batches):
            order = list(kernels.items()) if i % 2 == 0 else list(reversed(kernels.items()))
            for name, kernel in order:
                started, used = time.perf_counter(), time.process_time()
                for _ in range(batch):
                    kernel.orders.place(principal, reqs[name])
                times[name].append((time.perf_counter() - started) / batch)
                cpu[name].append((time.process_time() - used) / batch)
        on = kernels["on"].centers["membership"]
        with kernels["on"].db.transaction(write=False) as conn:
            consistent = on.ledger.check(conn) == []
    finally:
        for kernel in kernels.values():
            kernel.close()
    median = {name: statistics.median(t) for name, t in times.items()}
    median_cpu = {name: statistics.median(t) for name, t in cpu.items()}
    return {
        "orders": batches * batch,
        "us_per_order": {name: round(t * 1e6, 1) for name, t in median.items()},
        "overhead": round(median["on"] / median["off"] - 1, 4),
        # CPU time of this process (SQLite works in it; PostgreSQL's share is not counted):
        # steadier than wall time on a machine others use too.
        "cpu_us_per_order": {name: round(t * 1e6, 1) for name, t in median_cpu.items()},
        "cpu_overhead": round(median_cpu["on"] / median_cpu["off"] - 1, 4),
        "statements": statements,
        "extra_statements": statements["on"]["3_lines"] - statements["off"]["3_lines"],
        "ledger_consistent": consistent,
    }


def line(result: dict[str, Any]) -> str:
    r, h = result["in_process"], result["http"]
    s = r["statements"]
    return (
        f"  membership  HTTP off {h['off']['per_second']}/s, on {h['on']['per_second']}/s "
        f"(p50 {h['off']['p50_ms']} / {h['on']['p50_ms']} ms): {h['slower']:.1%} slower\n"
        f"  in process  off {r['us_per_order']['off']} µs/order, on (Gold, {POINTS} points an order) "
        f"{r['us_per_order']['on']} µs/order, overhead {r['overhead']:.1%} (CPU {r['cpu_overhead']:.1%}); "
        "statements per placement "
        f"{s['off']['3_lines']} -> {s['on']['3_lines']} (+{r['extra_statements']})"
    )
