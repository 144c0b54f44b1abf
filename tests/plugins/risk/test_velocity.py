"""Velocity counters: orders per customer, IP, device and address in sliding windows,
distinct customers per address, phone, IP and device, exact under concurrency, and
shared by two `mallcore serve` processes through Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mallcore.plugins.risk.counters import Counters, MemoryBackend, RedisBackend

from .support import order, risk_kernel, rule, staff

REDIS = ("127.0.0.1", 6379)


def redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=0.5):
            return True
    except OSError:
        return False


requires_redis = pytest.mark.skipif(
    not redis_up(), reason="needs Redis on 127.0.0.1:6379 (the CI starts one)"
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_orders_are_counted_in_sliding_windows_the_previous_bucket_fading_out():
    clock = Clock(3600 * 1000.0)  # the start of an hour
    counters = Counters(MemoryBackend(), [("1h", 3600)], [], [], clock=clock)
    seen = [counters.observe({"ip": "203.0.113.9"}, "alice")["ip_orders_1h"] for _ in range(4)]
    assert seen == [1, 2, 3, 4]
    clock.now += 3600 + 900  # a quarter into the next hour: 3/4 of the last one still counts
    assert counters.observe({"ip": "203.0.113.9"}, "alice")["ip_orders_1h"] == 1 + 3  # 4 * 0.75
    clock.now += 1800  # three quarters in: a quarter of 4 is 1
    assert counters.observe({"ip": "203.0.113.9"}, "alice")["ip_orders_1h"] == 2 + 1
    clock.now += 7200
    assert counters.observe({"ip": "203.0.113.9"}, "alice")["ip_orders_1h"] == 1


def test_distinct_customers_count_each_customer_once_across_both_buckets():
    clock = Clock(86400 * 100.0)
    counters = Counters(MemoryBackend(), [], [("24h", 86400)], [], clock=clock)

    def seen(customer: str) -> int:
        return counters.observe({"device": "dev-1", "address": "fp"}, customer)["device_customers_24h"]

    assert [seen(c) for c in ("a", "a", "b", "c", "b")] == [1, 1, 2, 3, 3]
    clock.now += 86400  # next day, at its start: yesterday's three still count in full
    assert seen("a") == 3  # a again: one of them, not a fourth
    assert seen("d") == 4


@requires_redis
def test_memory_and_redis_counters_see_the_same_signals():
    """The in-process records and the Redis script count alike, window edges included."""
    import random

    windows = ([("1m", 60), ("1h", 3600)], [("10m", 600)], [("1h", 3600)])
    clock = Clock(3600 * 500.0 + 17)
    redis = RedisBackend("redis://127.0.0.1:6379/0", f"risk-test-{uuid.uuid4().hex[:8]}")
    sides = [Counters(MemoryBackend(), *windows, clock=clock), Counters(redis, *windows, clock=clock)]
    pick = random.Random(7)
    try:
        for _ in range(300):
            clock.now += pick.choice([0, 1, 7, 45, 200])
            values = {
                "customer": f"c{pick.randrange(6)}",
                "ip": f"203.0.113.{pick.randrange(3)}",
                "device": pick.choice(["", "d1", "d2"]),
                "address": f"a{pick.randrange(2)}",
                "phone": "138",
            }
            if pick.random() < 0.2:
                for side in sides:
                    side.claim(values["customer"], values["device"])
            memory, shared = (side.observe(values, values["customer"]) for side in sides)
            assert memory == shared
            claims = [side.coupon_claims(values["customer"], values["device"]) for side in sides]
            assert claims[0] == claims[1]
    finally:
        redis.clear()


def test_concurrent_orders_from_one_ip_see_distinct_counts(mallcore):
    counters = Counters(MemoryBackend(), [("1m", 60)], [], [])
    with ThreadPoolExecutor(8) as pool:
        counts = list(
            pool.map(lambda _: counters.observe({"ip": "203.0.113.9"}, "x")["ip_orders_1m"], range(200))
        )
    assert sorted(counts) == list(range(1, 201))


def test_many_accounts_on_one_device_trip_a_ring_rule(mallcore, peers):
    kernel = risk_kernel(mallcore, centers=("catalog", "payment", "risk"))
    rule(
        staff(mallcore, kernel),
        "signals.device_customers_24h >= 3",
        "block",
        name="one device, many accounts",
    )
    codes = []
    for customer in ("u1", "u2", "u3", "u1"):
        client = peers.client(kernel, "203.0.113.5", subject=customer, **{"X-Device-Id": "farm-7"})
        codes.append(client.post("/orders", json=order()).status_code)
    assert codes == [201, 201, 403, 403]  # u1 again: still three accounts on the device
    other = peers.client(kernel, "203.0.113.5", subject="u4", **{"X-Device-Id": "own-phone"})
    assert other.post("/orders", json=order()).status_code == 201


def test_risk_s_own_trusted_proxies_decide_the_client_ip(mallcore, peers):
    kernel = risk_kernel(
        mallcore, centers=("catalog", "payment", "risk"), risk={"trusted_proxies": ["10.0.0.0/8"]}
    )
    risk = staff(mallcore, kernel)
    behind = peers.client(
        kernel, "10.1.2.3", subject="alice", **{"X-Forwarded-For": "198.51.100.7, 10.9.9.9"}
    )
    placed = behind.post("/orders", json=order()).json()
    spoofed = peers.client(kernel, "192.0.2.44", subject="bob", **{"X-Forwarded-For": "198.51.100.7"})
    other = spoofed.post("/orders", json=order()).json()
    ips = {d["order_id"]: d["facts"]["request"]["ip"] for d in risk.get("/risk/decisions").json()}
    assert (ips[placed["id"]], ips[other["id"]]) == ("198.51.100.7", "192.0.2.44")


# -- two server processes, one Redis ------------------------------------------------------


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@requires_redis
def test_two_servers_sharing_redis_let_exactly_five_orders_per_ip_and_minute_through(mallcore, tmp_path):
    prefix = f"risk-test-{uuid.uuid4().hex[:8]}"
    risk_settings = {
        "counters": {"storage": "redis://127.0.0.1:6379/0", "prefix": prefix, "order_windows": ["1m"]},
        "rules": [
            {"name": "5 per IP per minute", "condition": "signals.ip_orders_1m > 5", "action": "block"}
        ],
    }
    kernel = risk_kernel(mallcore, centers=("catalog", "payment", "risk"), risk=risk_settings)
    db = kernel.config.database
    config = tmp_path / "mallcore.toml"
    schema = f'schema = "{db.schema}"\n' if db.schema else ""
    config.write_text(
        f'[database]\nurl = "{db.url}"\n{schema}migrate_on_start = false\npool_size = 8\n'
        '[jobs]\nenabled = false\n[logging]\nlevel = "warning"\n'
        '[http]\ntrusted_proxies = ["127.0.0.1"]\n'
        '[centers]\nenabled = ["catalog", "payment", "risk"]\n'
        f'[centers.risk.counters]\nstorage = "redis://127.0.0.1:6379/0"\nprefix = "{prefix}"\norder_windows = ["1m"]\n'
        '[[centers.risk.rules]]\nname = "5 per IP per minute"\ncondition = "signals.ip_orders_1m > 5"\naction = "block"\n'
        '[auth.tokens."velocity-customer"]\nsubject = "alice"\nroles = ["customer"]\n'
    )
    mallcore_cli = str(Path(sys.executable).parent / "mallcore")
    ports = [_port(), _port()]
    env = {**os.environ, "MALLCORE_CONFIG": str(config)}
    procs = [
        subprocess.Popen(
            [mallcore_cli, "serve", "--no-migrate", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 60  # two interpreters importing everything, on a busy machine
        for port in ports:
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    assert time.monotonic() < deadline, "the servers did not start"
                    time.sleep(0.1)
        # Twenty orders must land in one minute's bucket (they take a second or two):
        # start at least ten seconds before the minute ends.
        if time.time() % 60 > 50:
            time.sleep(61 - time.time() % 60)
        headers = {"Authorization": "Bearer velocity-customer", "X-Forwarded-For": "203.0.113.77"}

        def place(i: int) -> int:
            url = f"http://127.0.0.1:{ports[i % 2]}/orders"
            return httpx.post(url, json=order(), headers=headers, timeout=20).status_code

        with ThreadPoolExecutor(20) as pool:
            codes = list(pool.map(place, range(20)))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        kernel.centers["risk"].counters.backend.clear()
    assert (codes.count(201), codes.count(403)) == (5, 15), codes
