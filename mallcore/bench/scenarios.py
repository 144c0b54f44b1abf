"""The benchmark scenarios behind ``mallcore bench`` (see :mod:`mallcore.bench`)."""

from __future__ import annotations

import importlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa

from . import MODULE_SCENARIOS, SCENARIOS, load, raw

T = TypeVar("T")

ADMIN, CUSTOMER = "bench-admin-token", "bench-customer-token"
SKUS = {f"BENCH-{i}": (1000 + 100 * i, 10**8) for i in range(1, 11)}
HOT = "BENCH-HOT"
WARM = "BENCH-WARM"  # the hot scenario warms each server up on this SKU


class Target:
    """A fresh database: a SQLite file or a new PostgreSQL schema."""

    def __init__(self, kind: str, pg_url: str, folder: Path) -> None:
        self.kind = kind
        self.pg_url = pg_url
        self.folder = folder
        self.schemas: list[str] = []

    def fresh(self) -> tuple[str, str | None]:
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / f'{uuid.uuid4().hex[:8]}.db'}", None
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        engine = sa.create_engine(self.pg_url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        self.schemas.append(schema)
        return self.pg_url, schema

    def cleanup(self) -> None:
        if not self.schemas:
            return
        engine = sa.create_engine(self.pg_url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            for schema in self.schemas:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Server process by port, for cpu_seconds().
PIDS: dict[int, int] = {}


def cpu_seconds(port: int) -> float | None:
    """CPU time (user + system) the server on ``port`` and its worker processes have used, from
    /proc (Linux; None elsewhere). Unlike rates, it hardly moves when other programs load the machine."""
    pid = PIDS.get(port)
    if pid is None or not Path(f"/proc/{pid}").exists():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total / tick


def cpu_during(port: int, work: Callable[[], T]) -> tuple[T, float | None]:
    """``work()``'s result and the CPU seconds the server on ``port`` used meanwhile (None
    where /proc cannot tell)."""
    before = cpu_seconds(port)
    result = work()
    after = cpu_seconds(port)
    return result, None if before is None or after is None else after - before


def measured(port: int, requests: list[bytes], clients: int) -> tuple[load.Result, float | None]:
    """Run ``requests`` and return the result with the server's CPU milliseconds per request."""
    result, cpu = cpu_during(port, lambda: load.run("127.0.0.1", port, requests, clients))
    return result, None if cpu is None else round(cpu * 1000 / len(requests), 3)


@contextmanager
def server(factory: str, env: dict[str, str], workers: int, log: Path) -> Iterator[int]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=out)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"server {factory} did not start; see {log}") from None
                time.sleep(0.1)
        PIDS[port] = proc.pid
        yield port
    finally:
        PIDS.pop(port, None)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def kernel_config(
    url: str, schema: str | None, folder: Path, extra_centers: tuple[str, ...] = (), http: str = ""
) -> Path:
    """A config for the bench's kernel; ``http`` adds TOML lines under ``[http]``. Rate limits
    are off: every request of the bench comes from one address and one customer."""
    path = folder / f"bench-{uuid.uuid4().hex[:8]}.toml"
    schema_line = f'schema = "{schema}"\n' if schema else ""
    centers = ", ".join(f'"{c}"' for c in ("catalog", "payment", "wms", *extra_centers))
    path.write_text(
        f'[database]\nurl = "{url}"\n{schema_line}pool_size = 20\n'
        f"[centers]\nenabled = [{centers}]\n"
        "[jobs]\nenabled = false\n"
        f"[http]\n{http}[http.limits]\nenabled = false\n"
        '[logging]\nlevel = "info"\nformat = "json"\n'
        f'[auth.tokens."{ADMIN}"]\nsubject = "bench-admin"\nroles = ["admin"]\n'
        f'[auth.tokens."{CUSTOMER}"]\nsubject = "bench-customer"\nroles = ["customer"]\n'
    )
    return path


def seed_kernel_http(port: int, skus: dict[str, tuple[int, int]]) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as c:
        body = {
            "name": "Bench",
            "shop": "bench",
            "skus": [{"code": s, "price": p, "weight_grams": 300} for s, (p, _) in skus.items()],
        }
        r = c.post("/catalog/products", json=body)
        r.raise_for_status()
        c.post(
            "/wms/warehouses", json={"code": "WH1", "name": "Bench warehouse", "region": "310000"}
        ).raise_for_status()
        for sku, (_, qty) in skus.items():
            c.post("/wms/inbound", json={"warehouse": "WH1", "sku": sku, "quantity": qty}).raise_for_status()


def order_request(lines: list[tuple[str, int]], auth: bool = True) -> bytes:
    body = msgspec.json.encode(
        {
            "shop": "bench",
            "lines": [{"sku": s, "quantity": q} for s, q in lines],
            "address": {"name": "Bench", "phone": "13800000000", "region": "310000", "detail": "1 Bench Rd"},
        }
    )
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = f"Bearer {CUSTOMER}"
    return load.request_bytes("POST", "/orders", body, headers)


def summarize(result: load.Result, ok: int, cpu_ms: float | None = None) -> dict[str, Any]:
    return {
        # Server CPU per request (all of its processes): robust to a busy machine.
        "cpu_ms_per_request": cpu_ms,
        "requests": result.requests,
        "seconds": round(result.seconds, 3),
        "statuses": result.statuses,
        "per_second": round(result.statuses.get(ok, 0) / result.seconds, 1) if result.seconds else 0.0,
        "p50_ms": round(result.percentile(0.50) * 1000, 2),
        "p99_ms": round(result.percentile(0.99) * 1000, 2),
    }


# -- scenarios -------------------------------------------------------------------


def warm_then_run(
    port: int, warm_up: bytes, warm: int, request: bytes, n: int, clients: int
) -> tuple[load.Result, float | None]:
    """``warm`` requests first (not measured), then ``n`` measured ones; with the server's
    CPU milliseconds per measured request."""
    load.run("127.0.0.1", port, [warm_up] * warm, clients)
    return measured(port, [request] * n, clients)


@contextmanager
def raw_server(
    target: Target, skus: dict[str, tuple[int, int]], workers: int, log: Path
) -> Iterator[tuple[int, str, str | None]]:
    """The baseline on a fresh database stocked with ``skus``: (port, url, schema)."""
    url, schema = target.fresh()
    _prepare_raw(url, schema, skus)
    env = {"MALLCORE_BENCH_URL": url, "MALLCORE_BENCH_SCHEMA": schema or ""}
    with server("mallcore.bench.raw:app_from_environment", env, workers, log) as port:
        yield port, url, schema


@contextmanager
def mallcore_server(
    target: Target, folder: Path, skus: dict[str, tuple[int, int]], workers: int, log: Path
) -> Iterator[tuple[int, Path]]:
    """mallcore on a fresh database, its catalog and stock seeded over HTTP: (port, config)."""
    url, schema = target.fresh()
    config = _kernel(url, schema, folder)
    env = {"MALLCORE_CONFIG": str(config)}
    with server("mallcore.kernel.http.app:app_from_environment", env, workers, log) as port:
        seed_kernel_http(port, skus)
        yield port, config


def compare(runs: dict[str, list[dict[str, Any]]], rate: str) -> dict[str, Any]:
    """The median run of each side (one lucky or unlucky run moves neither), the ratio of
    their ``rate`` and the ratio of the best runs."""
    mid = {side: sorted(r, key=lambda x: x[rate])[len(r) // 2] for side, r in runs.items()}
    best = {side: max(r, key=lambda x: x[rate]) for side, r in runs.items()}
    cpu = {side: [x["cpu_ms_per_request"] for x in r] for side, r in runs.items()}
    cpu_ratio = None
    if all(v is not None for vs in cpu.values() for v in vs):
        # Server CPU per request, baseline over mallcore (median of the runs): like ``ratio``,
        # above 1.0 means mallcore is cheaper, but a loaded machine hardly moves it.
        cpu_ratio = round(statistics.median(cpu["raw"]) / statistics.median(cpu["mallcore"]), 3)
    return {
        "raw": mid["raw"],
        "mallcore": mid["mallcore"],
        "ratio": round(mid["mallcore"][rate] / mid["raw"][rate], 3),
        "best_ratio": round(best["mallcore"][rate] / best["raw"][rate], 3),
        "cpu_ratio": cpu_ratio,
    }


def scenario_place(
    target: Target, folder: Path, n: int, clients: int, workers: int, rounds: int
) -> dict[str, Any]:
    lines = [("BENCH-1", 1), ("BENCH-2", 2), ("BENCH-3", 1)]
    warm = max(100, n // 10)
    runs: dict[str, list[dict[str, Any]]] = {"raw": [], "mallcore": []}
    log = folder / "servers.log"
    for _ in range(rounds):
        with raw_server(target, SKUS, workers, log) as (port, _, _):
            request = order_request(lines, auth=False)
            result, cpu = warm_then_run(port, request, warm, request, n, clients)
        runs["raw"].append(summarize(result, 201, cpu))

        with mallcore_server(target, folder, SKUS, workers, log) as (port, _):
            request = order_request(lines)
            result, cpu = warm_then_run(port, request, warm, request, n, clients)
        runs["mallcore"].append(summarize(result, 201, cpu))
    return {
        "runs": runs,
        **compare(runs, "per_second"),
        "errors": {
            side: [r["statuses"] for r in rs if set(r["statuses"]) != {201}] for side, rs in runs.items()
        },
    }


def scenario_hot(
    target: Target, folder: Path, attempts: int, clients: int, workers: int, rounds: int
) -> dict[str, Any]:
    """Each side, ``rounds`` times on a fresh database: warm the server up on another SKU
    (so that a cold start is not what is measured), then ``attempts`` buyers of one SKU
    with stock for half of them. The median run of each side gives the ratio."""
    stock = attempts // 2
    warm = max(200, attempts // 4)
    skus = {HOT: (500, stock), WARM: (500, 10**8)}
    log = folder / "servers.log"
    runs: dict[str, list[dict[str, Any]]] = {"raw": [], "mallcore": []}

    def hot_body(sku: str) -> bytes:
        body = msgspec.json.encode({"sku": sku, "quantity": 1})
        return load.request_bytes("POST", "/hot", body, {"Content-Type": "application/json"})

    def record(side: str, measured: tuple[load.Result, float | None], on_hand: int, reserved: int) -> None:
        result, cpu = measured
        runs[side].append(
            {
                **summarize(result, 201, cpu),
                "decrements_per_second": round(result.rate(201), 1),
                "sold": result.statuses.get(201, 0),
                "reserved": reserved,
                "on_hand": on_hand,
                "oversold": result.statuses.get(201, 0) > stock or reserved > on_hand,
            }
        )

    for _ in range(rounds):
        with raw_server(target, skus, workers, log) as (port, url, schema):
            result = warm_then_run(port, hot_body(WARM), warm, hot_body(HOT), attempts, clients)
        record("raw", result, *raw.stock(url, schema, HOT))

        with mallcore_server(target, folder, skus, workers, log) as (port, config):
            buy = order_request([(HOT, 1)])
            result = warm_then_run(port, order_request([(WARM, 1)]), warm, buy, attempts, clients)
        record("mallcore", result, *_kernel_stock(config, HOT))

    return {
        "attempts": attempts,
        "stock": stock,
        "clients": clients,
        "warm_up": warm,
        "runs": runs,
        **compare(runs, "decrements_per_second"),
        # Any run of a side that sold more than its stock, or reserved more than on hand.
        "oversold": {side: any(r["oversold"] for r in rs) for side, rs in runs.items()},
    }


def scenario_statements(target: Target, folder: Path) -> dict[str, Any]:
    from mallcore.kernel.schemas import LineIn, PlaceOrder

    kernel, principal = _in_process_kernel(target, folder)
    out: dict[str, Any] = {}
    try:
        for n_lines in (1, 3, 10):
            req = PlaceOrder(
                shop="bench", lines=[LineIn(sku=f"BENCH-{i}", quantity=1) for i in range(1, n_lines + 1)]
            )
            kernel.orders.place(principal, req)  # warm caches
            with kernel.db.count_statements() as counter:
                view, _ = kernel.orders.place(principal, req)
            with kernel.db.count_statements() as pay:
                kernel.orders.pay(principal, view.id, "sandbox", None)
            out[f"{n_lines}_lines"] = {"place": counter.count, "pay_and_dispatch": pay.count}
        with kernel.db.count_statements(keep=True) as counter:
            kernel.orders.place(
                principal, PlaceOrder(shop="bench", lines=[LineIn(sku="BENCH-1", quantity=1)])
            )
        out["statements_1_line"] = [s.split("\n")[0][:120] for s in counter.statements]
        out["growth_1_to_10"] = round(out["10_lines"]["place"] / out["1_lines"]["place"] - 1, 3)
        if kernel.combiner is not None:
            # Round trips per order when 16 placements are combined (3 lines each), BEGIN and
            # COMMIT of the batch included (the counter leaves them out).
            req = PlaceOrder(shop="bench", lines=[LineIn(sku=f"BENCH-{i}", quantity=1) for i in (1, 2, 3)])
            kernel.combiner.together([(principal, req)] * 16)
            with kernel.db.count_statements() as counter:
                answers = kernel.combiner.together([(principal, req)] * 16)
            assert not any(isinstance(a, BaseException) for a in answers), answers
            out["batch_of_16"] = {
                "statements": counter.count + 2,
                "per_order": round((counter.count + 2) / 16, 2),
            }
        out["raw_baseline_place"] = 6
    finally:
        kernel.close()
    return out


def scenario_plugins(target: Target, folder: Path, orders: int, rounds: int) -> dict[str, Any]:
    """Placement in process, with and without ten no-op centers, in alternating batches.

    Alternating short batches puts both kernels through the same moments of
    machine noise; the medians of the batch times are compared.
    """
    from mallcore.kernel.schemas import LineIn, PlaceOrder

    from .noop import noop_centers

    kernels = {
        "none": _in_process_kernel(target, folder),
        "ten_noop": _in_process_kernel(target, folder, extra=noop_centers(10)),
    }
    req = PlaceOrder(
        shop="bench", lines=[LineIn(sku=s, quantity=1) for s in ("BENCH-1", "BENCH-2", "BENCH-3")]
    )
    batch = 50
    batches = max(20, orders * rounds // batch)
    times: dict[str, list[float]] = {name: [] for name in kernels}
    try:
        for kernel, principal in kernels.values():
            for _ in range(100):
                kernel.orders.place(principal, req)
        for i in range(batches):
            order = list(kernels.items()) if i % 2 == 0 else list(reversed(kernels.items()))
            for name, (kernel, principal) in order:
                started = time.perf_counter()
                for _ in range(batch):
                    kernel.orders.place(principal, req)
                times[name].append((time.perf_counter() - started) / batch)
    finally:
        for kernel, _ in kernels.values():
            kernel.close()
    median = {name: statistics.median(t) for name, t in times.items()}
    return {
        "orders": batches * batch,
        "us_per_order": {name: round(t * 1e6, 1) for name, t in median.items()},
        "overhead": round(median["ten_noop"] / median["none"] - 1, 4),
    }


# -- helpers ---------------------------------------------------------------------


def _prepare_raw(url: str, schema: str | None, skus: dict[str, tuple[int, int]]) -> None:
    from mallcore.kernel import tables

    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"} if schema else {})
    tables.metadata.create_all(engine)
    engine.dispose()
    raw.prepare(url, schema, skus)


def _kernel(url: str, schema: str | None, folder: Path) -> Path:
    from mallcore.kernel import Kernel, load_config

    config = kernel_config(url, schema, folder)
    kernel = Kernel(load_config(config, env={}))
    kernel.upgrade()
    kernel.close()
    return config


def _kernel_stock(config: Path, sku: str) -> tuple[int, int]:
    from mallcore.kernel import Kernel, load_config

    kernel = Kernel(load_config(config, env={}))
    table = kernel.metadatas["wms"].tables["wms_stock"]
    with kernel.db.transaction(write=False) as conn:
        row = conn.execute(
            sa.select(sa.func.sum(table.c.on_hand), sa.func.sum(table.c.reserved)).where(table.c.sku == sku)
        ).one()
    kernel.close()
    return int(row[0] or 0), int(row[1] or 0)


def _in_process_kernel(
    target: Target,
    folder: Path,
    extra: tuple[Any, ...] = (),
    centers: dict[str, dict[str, Any]] | None = None,
) -> tuple[Any, Any]:
    """A kernel (catalog, payment, wms, plus ``centers`` with their settings) on a fresh
    database with the bench's SKUs in stock, and the bench's customer."""
    from litestar.testing import TestClient

    from mallcore.kernel import Kernel, Principal, load_config
    from mallcore.kernel.http.app import create_app

    url, schema = target.fresh()
    overrides: dict[str, Any] = {"logging": {"level": "warning"}}
    if centers:
        overrides["centers"] = {"enabled": ["catalog", "payment", "wms", *centers], **centers}
    config = load_config(kernel_config(url, schema, folder), env={}, overrides=overrides)
    kernel = Kernel(config, centers=extra)
    kernel.create_schema()
    with TestClient(create_app(kernel, lifecycle=False)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        client.post(
            "/catalog/products",
            json={
                "name": "Bench",
                "shop": "bench",
                "skus": [{"code": s, "price": p} for s, (p, _) in SKUS.items()],
            },
        ).raise_for_status()
        client.post(
            "/wms/warehouses", json={"code": "WH1", "name": "Bench", "region": "310000"}
        ).raise_for_status()
        for sku, (_, qty) in SKUS.items():
            client.post(
                "/wms/inbound", json={"warehouse": "WH1", "sku": sku, "quantity": qty}
            ).raise_for_status()
    return kernel, Principal("bench-customer", frozenset({"customer"}))


# -- the whole run ---------------------------------------------------------------


def run(
    dbs: str,
    pg_url: str,
    scenarios: tuple[str, ...],
    n: int,
    clients: int,
    workers: int | None,
    rounds: int,
    hot_attempts: int,
    hot_clients: int,
    out: str,
    **center_options: Any,
) -> None:
    """Run the chosen scenarios (all when none) on the chosen databases; write the report to ``out``."""
    from rich.console import Console

    from mallcore.kernel.config import LoggingConfig
    from mallcore.kernel.logs import configure_logging

    configure_logging(LoggingConfig(level="warning"))
    console = Console(stderr=True)
    chosen = scenarios or SCENARIOS
    kinds = ["sqlite", "postgres"] if dbs == "both" else [dbs]
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {"requests": n, "clients": clients, "workers": workers, "rounds": rounds},
    }
    with tempfile.TemporaryDirectory(prefix="mallcore-bench-") as tmp:
        folder = Path(tmp)
        for kind in kinds:
            target = Target(kind, pg_url, folder)
            procs = workers or (1 if kind == "sqlite" else min(2, os.cpu_count() or 1))
            section: dict[str, Any] = {}
            try:
                for name in chosen:
                    console.print(f"[bold]{kind}[/bold]: {name} …")
                    if name == "place":
                        section[name] = scenario_place(target, folder, n, clients, procs, rounds)
                    elif name == "hot":
                        section[name] = scenario_hot(target, folder, hot_attempts, hot_clients, procs, rounds)
                    elif name == "statements":
                        section[name] = scenario_statements(target, folder)
                    elif name in MODULE_SCENARIOS:
                        section[name] = _center_module(name).scenario(
                            target,
                            folder,
                            requests=n,
                            clients=clients,
                            workers=procs,
                            rounds=rounds,
                            **center_options,
                        )
                    else:
                        section[name] = scenario_plugins(target, folder, max(200, n // 3), max(3, rounds + 1))
                    console.print(_line(kind, name, section[name]))
            finally:
                target.cleanup()
            section["workers"] = procs
            report[kind] = section
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    console.print(f"full results: {out}")


def _center_module(name: str) -> Any:
    return importlib.import_module(f"{__package__}.{name}")


def _line(kind: str, name: str, r: dict[str, Any]) -> str:
    if name in MODULE_SCENARIOS:
        return str(_center_module(name).line(r))
    if name == "place":
        return (
            f"  place  raw {r['raw']['per_second']}/s (p50 {r['raw']['p50_ms']} ms, p99 {r['raw']['p99_ms']} ms)  "
            f"mallcore {r['mallcore']['per_second']}/s (p50 {r['mallcore']['p50_ms']} ms, p99 {r['mallcore']['p99_ms']} ms)  "
            f"ratio {r['ratio']} (median runs; best runs {r['best_ratio']}){_cpu(r)}"
        )
    if name == "hot":
        return (
            f"  hot    raw {r['raw']['decrements_per_second']}/s  mallcore {r['mallcore']['decrements_per_second']}/s  "
            f"ratio {r['ratio']} (median runs; best runs {r['best_ratio']})  "
            f"sold {r['raw']['sold']}/{r['mallcore']['sold']} of {r['stock']}  oversold {r['oversold']}{_cpu(r)}"
        )
    if name == "statements":
        return (
            f"  statements per placement: 1 line {r['1_lines']['place']}, 3 lines {r['3_lines']['place']}, "
            f"10 lines {r['10_lines']['place']} (growth {r['growth_1_to_10']:.0%}); raw baseline {r['raw_baseline_place']}"
            + (
                f"; combined, a batch of 16: {r['batch_of_16']['statements']} "
                f"({r['batch_of_16']['per_order']} per order, BEGIN/COMMIT included)"
                if "batch_of_16" in r
                else ""
            )
        )
    return f"  plugins  none {r['us_per_order']['none']} µs/order, ten no-op centers {r['us_per_order']['ten_noop']} µs/order, overhead {r['overhead']:.1%}"


def _cpu(r: dict[str, Any]) -> str:
    if r.get("cpu_ratio") is None:
        return ""
    raw, mine = r["raw"]["cpu_ms_per_request"], r["mallcore"]["cpu_ms_per_request"]
    return f"  server CPU/request raw {raw} ms, mallcore {mine} ms (cpu ratio {r['cpu_ratio']})"
