"""The ``risk`` scenario: placement with the risk center on against off, in one run.

In process (as ``plugins``), alternating short batches so both sides share
the machine's noise. Orders come from a pool of 1,000 customers, each with
their own IP address, device id and delivery address (as an HTTP placement
would carry them), with baskets of varying size. "on" is risk with five
rules that evaluate on every placement (none fires, so every order is
placed), lists of 10,000 entries of every kind and counters on, in memory;
"on (redis)" the same with counters in Redis, when one answers on
127.0.0.1:6379; "on, decision in the stage" writes each decision in its
placement's transaction (``decisions.flush_ms = 0``) instead of through the
writer thread. Each batch ends by waiting for risk's decision writer, so its
work is in the batch's time.

Both wall time and CPU time (``time.process_time``: every thread of the
process, the writer's included) are reported per order; on a machine shared
with other work the CPU figure is the steadier one. Also statements per
placement: risk off, risk on for a returning customer, and for a customer's
first order (their credit profile is written).
"""

from __future__ import annotations

import os
import socket
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

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


POOL = 1000  # customers, each with an IP address, a device and a delivery address
ENTRIES = 10_000  # list entries, of every kind


def _risk_settings(storage: str, flush_ms: int = 200) -> dict[str, Any]:
    return {
        "cache_recheck_seconds": 5.0,
        "counters": {"storage": storage, "prefix": f"bench-{uuid.uuid4().hex[:8]}"},
        "rules": [{"name": n, "condition": c, "action": a, "stages": ["place"]} for n, c, a in RULES],
        "decisions": {"flush_ms": flush_ms},
    }


def _traffic(n: int) -> list[tuple[Any, Any, dict[str, Any]]]:
    """(principal, order, ASGI scope) of ``n`` customers."""
    from mallcore.kernel import Address, Principal
    from mallcore.kernel.schemas import LineIn, PlaceOrder

    out = []
    for i in range(n):
        lines = [LineIn(sku=f"BENCH-{k}", quantity=1 + (i + k) % 3) for k in range(1, 1 + i % 3 + 1)]
        address = Address(name=f"Bench {i}", phone=f"138{i:08d}", region="310000", detail=f"{i} Bench Rd")
        scope = {
            "type": "http",
            "client": (f"198.51.{(i >> 8) & 255}.{i & 255}", 40000),
            "headers": [(b"x-device-id", f"bench-device-{i}".encode()), (b"user-agent", b"bench/1.0")],
            "method": "POST",
            "path": "/orders",
        }
        principal = Principal(f"bench-customer-{i}", frozenset({"customer"}))
        out.append((principal, PlaceOrder(shop="bench", lines=lines, address=address), scope))
    return out


def _fill_lists(kernel: Any, n: int = ENTRIES) -> None:
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


def scenario(
    target: Any, folder: Path, *, requests: int, clients: int, workers: int, rounds: int, **_: Any
) -> dict[str, Any]:
    """``mallcore bench --scenario risk``."""
    return scenario_risk(
        target,
        folder,
        max(200, requests // 3),
        max(3, rounds + 1),
        requests=requests,
        clients=clients,
        workers=workers,
    )


def scenario_risk(
    target: Any,
    folder: Path,
    orders: int,
    rounds: int,
    *,
    requests: int = 0,
    clients: int = 16,
    workers: int = 1,
    customers: int = POOL,
    entries: int = ENTRIES,
) -> dict[str, Any]:
    """In process (below), and over HTTP when ``requests`` (see :func:`over_http`);
    ``customers`` and ``entries`` smaller for a smoke test."""
    out = in_process(target, folder, orders, rounds, customers, entries)
    if requests:
        out["http"] = over_http(target, folder, requests, clients, workers, max(2, rounds - 1))
    return out


# -- over HTTP -----------------------------------------------------------------------------

HTTP_CUSTOMERS = 200  # bearer tokens in the servers' config


@contextmanager
def _server(target: Any, folder: Path, risk: bool, workers: int) -> Iterator[int]:
    """A server on a fresh database (risk on: its rules in config, its lists filled), seeded."""
    from mallcore.kernel import Kernel, load_config

    from .scenarios import SKUS, kernel_config, seed_kernel_http, server

    url, schema = target.fresh()
    # (the [http] section is kernel_config's: TOML refuses a second one)
    proxies = 'trusted_proxies = ["127.0.0.1"]\n'
    config = kernel_config(url, schema, folder, ("risk",) if risk else (), http=proxies)
    extra = [
        f'[auth.tokens."bench-risk-{i}"]\nsubject = "bench-customer-{i}"\nroles = ["customer"]\n'
        for i in range(HTTP_CUSTOMERS)
    ]
    if risk:
        extra.append("[centers.risk]\ncache_recheck_seconds = 5.0\n")
        extra += [
            f'[[centers.risk.rules]]\nname = "{n}"\ncondition = "{c}"\naction = "{a}"\n' for n, c, a in RULES
        ]
    with config.open("a", encoding="utf-8") as handle:
        handle.write("".join(extra))
    kernel = Kernel(load_config(config, env={}))
    kernel.upgrade()
    if risk:
        _fill_lists(kernel)
    kernel.close()
    env = {"MALLCORE_CONFIG": str(config)}
    with server(
        "mallcore.kernel.http.app:app_from_environment", env, workers, folder / "servers.log"
    ) as port:
        seed_kernel_http(port, SKUS)
        yield port


def _http_requests(n: int) -> list[bytes]:
    """Placements of ``n`` customers, each from their own address, device and IP."""
    from . import load

    out = []
    for i in range(n):
        c = i % HTTP_CUSTOMERS
        body = msgspec.json.encode(
            {
                "shop": "bench",
                "lines": [{"sku": f"BENCH-{k}", "quantity": 1 + (i + k) % 3} for k in range(1, 2 + i % 3)],
                "address": {
                    "name": "Bench",
                    "phone": f"138{c:08d}",
                    "region": "310000",
                    "detail": f"{c} Bench Rd",
                },
            }
        )
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer bench-risk-{c}",
            "X-Forwarded-For": f"198.51.{(c >> 8) & 255}.{c & 255}",
            "X-Device-Id": f"bench-device-{c}",
        }
        out.append(load.request_bytes("POST", "/orders", body, headers))
    return out


def _server_cpu(port: int) -> float | None:
    """CPU seconds used so far by the server listening on ``port`` and its worker
    processes (Linux; else None)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    used: dict[int, float] = {}
    parent: dict[int, int] = {}
    root = None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pid = int(entry.name)
            parent[pid] = int(fields[1])
            used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            if root is None:
                args = (entry / "cmdline").read_bytes().split(b"\0")
                if b"uvicorn" in b" ".join(args) and str(port).encode() in args:
                    root = pid
        except (OSError, ValueError, IndexError):
            continue
    if root is None:
        return None
    family, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parent.items() if ppid in family} - family
        family |= more
        grew = bool(more)
    return sum(used.get(pid, 0.0) for pid in family)


def over_http(target: Any, folder: Path, n: int, clients: int, workers: int, rounds: int) -> dict[str, Any]:
    """Orders per second over HTTP (uvicorn, ``clients`` concurrent connections), as
    ``place`` measures them, risk off against on. Both servers run side by side and
    take turns, a batch of orders each, so they share the machine's moments; each
    side's rate is its median batch's, and its CPU per order is what its process
    used (every thread, the decision writer's included) over the whole run."""
    from . import load

    warm = max(HTTP_CUSTOMERS, n // 10)
    batches = max(4, 2 * rounds)
    size = max(clients * 4, n // batches)
    requests = _http_requests(warm + size * batches)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    latency: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, float | None] = {}
    with _server(target, folder, False, workers) as off, _server(target, folder, True, workers) as on:
        ports = {"off": off, "on": on}
        for port in ports.values():
            load.run("127.0.0.1", port, requests[:warm], clients)
        started = {side: _server_cpu(port) for side, port in ports.items()}
        for i in range(batches):
            chunk = requests[warm + i * size : warm + (i + 1) * size]
            for side in ("off", "on") if i % 2 == 0 else ("on", "off"):
                result = load.run("127.0.0.1", ports[side], chunk, clients)
                assert set(result.statuses) == {201}, result.statuses
                rates[side].append(result.rate(201))
                latency[side].append(result.percentile(0.5))
        time.sleep(0.5)  # the decision writer's last batch
        for side, port in ports.items():
            now, before = _server_cpu(port), started[side]
            cpu[side] = None if now is None or before is None else (now - before) / (size * batches)
    rate = {side: statistics.median(r) for side, r in rates.items()}
    out: dict[str, Any] = {
        "orders": size * batches,
        "clients": clients,
        "per_second": {side: round(r, 1) for side, r in rate.items()},
        "p50_ms": {side: round(statistics.median(v) * 1000, 2) for side, v in latency.items()},
        "slower": round(rate["off"] / rate["on"] - 1, 4),
    }
    if cpu["off"] and cpu["on"]:
        out["server_cpu_us_per_order"] = {side: round(v * 1e6, 1) for side, v in cpu.items() if v}
        out["server_cpu_overhead"] = round(cpu["on"] / cpu["off"] - 1, 4)
    return out


# -- in process ----------------------------------------------------------------------------


def in_process(
    target: Any, folder: Path, orders: int, rounds: int, pool: int = POOL, entries: int = ENTRIES
) -> dict[str, Any]:
    from mallcore.kernel import facts

    variants: dict[str, dict[str, Any] | None] = {"off": None, "on": _risk_settings("memory")}
    if _redis_up():
        variants["on (redis)"] = _risk_settings("redis://127.0.0.1:6379/0")
    variants["on, decision in the stage"] = _risk_settings("memory", flush_ms=0)
    kernels: dict[str, Any] = {}
    for name, settings in variants.items():
        kernel, _ = _risk_kernel(target, folder, settings)
        if settings is not None:
            _fill_lists(kernel, entries)
        kernels[name] = kernel
    traffic = _traffic(pool)
    reader = facts.FactsReader((), "X-Device-Id")
    served = [0]

    def one(kernel: Any, principal: Any, req: Any, scope: dict[str, Any]) -> None:
        token = facts.enter(dict(scope), reader)
        try:
            kernel.orders.place(principal, req)
        finally:
            facts.leave(token)

    def place(kernel: Any, n: int) -> None:
        for _ in range(n):
            one(kernel, *traffic[served[0] % pool])
            served[0] += 1
        risk = kernel.centers.get("risk")
        if risk is not None:
            risk.decisions.flush()  # the writer's work belongs to these orders

    batch = 50
    batches = max(2, orders * rounds // batch)
    wall: dict[str, list[float]] = {name: [] for name in kernels}
    cpu: dict[str, list[float]] = {name: [] for name in kernels}
    statements: dict[str, int] = {}
    try:
        for kernel in kernels.values():
            served[0] = 0
            place(kernel, pool)  # every customer once: profiles written, caches warm
        newcomers = _traffic(pool + 2)[-2:]  # two customers never seen
        for name, kernel, (warm, counted) in (
            ("off", kernels["off"], traffic[:2]),
            ("on", kernels["on"], traffic[:2]),
            ("on, a customer's first order", kernels["on"], newcomers),
        ):
            # one placement first, so that a periodic cache check does not fall on the counted one
            one(kernel, *warm)
            if "risk" in kernel.centers:
                kernel.centers["risk"].decisions.flush()
            with kernel.db.count_statements() as counter:
                one(kernel, *counted)
            statements[name] = counter.count
        for i in range(batches):
            ordered = list(kernels.items()) if i % 2 == 0 else list(reversed(kernels.items()))
            for name, kernel in ordered:
                started, used = time.perf_counter(), time.process_time()
                place(kernel, batch)
                wall[name].append((time.perf_counter() - started) / batch)
                cpu[name].append((time.process_time() - used) / batch)
    finally:
        for name, kernel in kernels.items():
            if "redis" in name:
                kernel.centers["risk"].counters.backend.clear()
            if name != "off":
                kernel.centers["risk"].decisions.close()
            kernel.close()
    wall_median = {name: statistics.median(t) for name, t in wall.items()}
    cpu_median = {name: statistics.median(t) for name, t in cpu.items()}
    return {
        "orders": batches * batch,
        "customers": pool,
        "list_entries": entries,
        "rules": len(RULES),
        "us_per_order": {name: round(t * 1e6, 1) for name, t in wall_median.items()},
        "overhead": {n: round(t / wall_median["off"] - 1, 4) for n, t in wall_median.items() if n != "off"},
        "cpu_us_per_order": {name: round(t * 1e6, 1) for name, t in cpu_median.items()},
        "cpu_overhead": {n: round(t / cpu_median["off"] - 1, 4) for n, t in cpu_median.items() if n != "off"},
        "statements_per_placement": statements,
    }


def _risk_kernel(target: Any, folder: Path, settings: dict[str, Any] | None) -> tuple[Any, Any]:
    from .scenarios import _in_process_kernel

    if settings is None:
        return _in_process_kernel(target, folder)
    return _in_process_kernel(target, folder, centers={"risk": settings})


def line(r: dict[str, Any]) -> str:
    us, cpu = r["us_per_order"], r["cpu_us_per_order"]
    over = ", ".join(f"{name} {pct:+.1%}" for name, pct in r["overhead"].items())
    cpu_over = ", ".join(f"{name} {pct:+.1%}" for name, pct in r["cpu_overhead"].items())
    out = (
        f"  risk   in process: off {us['off']} µs/order; {over}\n"
        f"         cpu: off {cpu['off']} µs/order; {cpu_over}\n"
        f"         (5 rules, {r['list_entries']:,} list entries, {r['customers']:,} customers); "
        f"statements {r['statements_per_placement']}"
    )
    http = r.get("http")
    if http:
        rate, p50 = http["per_second"], http["p50_ms"]
        out += (
            f"\n         HTTP: off {rate['off']}/s, on {rate['on']}/s: on is {http['slower']:+.1%} slower "
            f"(p50 {p50['off']} → {p50['on']} ms)"
        )
        if "server_cpu_overhead" in http:
            used = http["server_cpu_us_per_order"]
            out += f"; server cpu {used['off']} → {used['on']} µs/order ({http['server_cpu_overhead']:+.1%})"
    return out
