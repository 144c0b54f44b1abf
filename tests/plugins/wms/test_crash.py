"""kill -9 of a server placing combined batches: after a restart, every order is whole or absent.

The server runs as ``mallcore serve`` would (uvicorn, one worker), with
combining on, 64 clients buying two SKUs; it is killed with SIGKILL while
orders are being placed. On SQLite or on PostgreSQL (MALLCORE_TEST_DATABASE_URL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mallcore.bench import load
from mallcore.bench.scenarios import CUSTOMER, free_port, kernel_config, order_request, seed_kernel_http
from mallcore.kernel import Kernel, load_config
from mallcore.kernel import tables as kt
from mallcore.plugins.wms import tables as wt

from .helpers import check_invariants

SKUS = {"CRASH-1": (1000, 100_000), "CRASH-2": (500, 100_000)}


def start(config: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "mallcore.kernel.http.app:app_from_environment"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, env={**os.environ, "MALLCORE_CONFIG": str(config)}, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)


def test_kill_9_mid_batch_leaves_every_order_whole_or_absent(mallcore: Any, tmp_path: Path) -> None:
    db = mallcore.database()
    config = kernel_config(db["url"], db.get("schema"), tmp_path)
    kernel = Kernel(load_config(config, env={}))
    kernel.upgrade()
    assert kernel.combiner is not None
    kernel.close()
    log = tmp_path / "server.log"
    proc, port = start(config, log)
    try:
        seed_kernel_http(port, SKUS)
        buy = order_request([("CRASH-1", 1), ("CRASH-2", 2)])
        assert CUSTOMER in buy.decode()

        def hammer() -> None:
            try:
                load.run("127.0.0.1", port, [buy] * 20_000, 64)
            except Exception:
                pass  # the server dies under it

        clients = threading.Thread(target=hammer, daemon=True)
        clients.start()
        probe = sa.create_engine(
            db["url"],
            poolclass=sa.pool.NullPool,
            connect_args={"options": f"-csearch_path={db['schema']}"} if db.get("schema") else {},
        )
        deadline = time.monotonic() + 120
        while True:
            with probe.connect() as conn:
                placed = conn.execute(sa.select(sa.func.count()).select_from(kt.orders)).scalar_one()
            if placed >= 300:
                break
            assert time.monotonic() < deadline and proc.poll() is None, "the server placed too few orders"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        clients.join(timeout=60)
        probe.dispose()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    after = Kernel(load_config(config, env={}))
    try:
        with after.db.transaction(write=False) as conn:
            orders = set(conn.execute(sa.select(kt.orders.c.id)).scalars())
            lines: dict[int, set[str]] = {}
            for order_id, sku in conn.execute(sa.select(kt.order_lines.c.order_id, kt.order_lines.c.sku)):
                lines.setdefault(order_id, set()).add(sku)
            held: dict[int, int] = {}
            r = wt.reservations.c
            for order_id, quantity in conn.execute(
                sa.select(r.order_id, r.quantity).where(r.status == "live")
            ):
                held[order_id] = held.get(order_id, 0) + quantity
            placed_events = set(
                conn.execute(
                    sa.select(kt.outbox.c.order_id).where(kt.outbox.c.topic == "order.placed")
                ).scalars()
            )
        assert len(orders) >= 300
        # Whole: each order has both lines, its three units held and its event; absent: nothing at all.
        assert {o: lines.get(o) for o in orders} == {o: set(SKUS) for o in orders}
        assert set(lines) == orders and set(held) == orders and placed_events == orders
        assert set(held.values()) == {3}
        check_invariants(after)  # stock = sum of movements, reserved = live reservations
    finally:
        after.close()
