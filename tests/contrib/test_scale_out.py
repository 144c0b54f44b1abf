"""Two `mallcore serve` processes on two ports, one PostgreSQL schema, one Redis: orders spread
over both never oversell, each job runs once (the lease), an Idempotency-Key holds across
processes, and a caller's rate limit is one limit across both."""

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
import sqlalchemy as sa

PG = os.environ.get("MALLCORE_TEST_DATABASE_URL")


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.skipif(not PG, reason="needs PostgreSQL: set MALLCORE_TEST_DATABASE_URL"),
    pytest.mark.skipif(not redis_up(), reason="needs Redis on 127.0.0.1:6379"),
    pytest.mark.timeout(240),
]

MALLCORE = str(Path(sys.executable).parent / "mallcore")
ADMIN = "scale-admin-token"
LIMIT = 60  # per caller per minute, counted in Redis by both processes
LONG = 3600  # job intervals far longer than the test: each job may run once in all


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cluster(tmp_path):
    assert PG
    schema = f"scale_{uuid.uuid4().hex[:10]}"
    admin_engine = sa.create_engine(PG, poolclass=sa.pool.NullPool)
    with admin_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    run = uuid.uuid4().hex[:8]  # Redis keys of this run only
    customers = {f"buyer-{run}-{i}": f"buyer-{run}-{i}-token" for i in range(8)}
    limited = f"limited-{run}"
    tokens = "".join(
        f'[auth.tokens."{token}"]\nsubject = "{subject}"\nroles = ["customer"]\n'
        for subject, token in [*customers.items(), (limited, f"{limited}-token")]
    )
    config = tmp_path / "mallcore.toml"
    config.write_text(
        f'[database]\nurl = "{PG}"\nschema = "{schema}"\npool_size = 10\n'
        '[centers]\nenabled = ["catalog", "payment", "wms"]\n'
        f"[centers.wms]\nexpire_every_seconds = {LONG}\ndispatch_retry_every_seconds = {LONG}\n"
        "[jobs]\nenabled = true\ntick_seconds = 0.3\n"
        '[logging]\nlevel = "warning"\nformat = "json"\n'
        f'[http.limits]\nper_ip = ""\nper_principal = "{LIMIT}/minute"\nstorage = "redis://127.0.0.1:6379/0"\n'
        f'[auth.tokens."{ADMIN}"]\nsubject = "scale-admin"\nroles = ["admin"]\n' + tokens
    )
    ports = [free_port(), free_port()]
    procs = []
    for port in ports:
        log = (tmp_path / f"serve-{port}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [MALLCORE, "--config", str(config), "serve", "--port", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("MALLCORE_")},
            )
        )
    try:
        for port, proc in zip(ports, procs, strict=True):
            deadline = time.time() + 90
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, (tmp_path / f"serve-{port}.log").read_text()
                assert time.time() < deadline, f"serve on {port} never became ready"
                time.sleep(0.3)
        yield {
            "urls": [f"http://127.0.0.1:{p}" for p in ports],
            "customers": list(customers.values()),
            "limited": f"{limited}-token",
            "engine": sa.create_engine(PG, connect_args={"options": f"-csearch_path={schema}"}),
        }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        with admin_engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin_engine.dispose()


def order(sku: str) -> dict:
    return {
        "shop": "s1",
        "lines": [{"sku": sku, "quantity": 1}],
        "address": {"name": "A", "phone": "13800000000", "region": "310000", "detail": "1 Rd"},
    }


def metric(url: str, name: str, labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_two_processes_share_stock_jobs_idempotency_and_rate_limits(cluster):
    urls = cluster["urls"]
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = httpx.post(
        f"{urls[0]}/catalog/products",
        headers=admin,
        json={
            "name": "Hot",
            "shop": "s1",
            "skus": [{"code": "HOT", "price": 100}, {"code": "MANY", "price": 5}],
        },
    )
    assert r.status_code == 201, r.text
    wh = {"code": "WH1", "name": "WH", "region": "310000"}
    assert httpx.post(f"{urls[1]}/wms/warehouses", headers=admin, json=wh).status_code == 201
    for sku, qty in (("HOT", 30), ("MANY", 10_000)):
        stocked = httpx.post(
            f"{urls[1]}/wms/inbound", headers=admin, json={"warehouse": "WH1", "sku": sku, "quantity": qty}
        )
        assert stocked.status_code in (200, 201), stocked.text

    # 48 buyers' attempts on 30 units, alternating between the two processes, 16 at a time
    tokens = cluster["customers"]

    def buy(i: int) -> int:
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        return httpx.post(f"{urls[i % 2]}/orders", headers=headers, json=order("HOT"), timeout=60).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(buy, range(48)))
    assert statuses.count(201) == 30 and statuses.count(409) == 18, statuses
    with cluster["engine"].connect() as conn:
        on_hand, reserved = conn.execute(
            sa.text("SELECT on_hand, reserved FROM wms_stock WHERE sku = 'HOT'")
        ).one()
        held = conn.execute(sa.text("SELECT count(*) FROM order_lines WHERE sku = 'HOT'")).scalar()
    assert (on_hand, reserved, held) == (30, 30, 30)

    # one Idempotency-Key, asked of both processes, twice at once and once after: one order
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}", "Authorization": f"Bearer {tokens[0]}"}

    def place(url: str) -> httpx.Response:
        return httpx.post(f"{url}/orders", headers=key, json=order("MANY"), timeout=60)

    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(place, urls))
    after = place(urls[1])
    answers = [*together, after]
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert after.headers.get("idempotent-replayed") == "true"
    with cluster["engine"].connect() as conn:
        many = conn.execute(sa.text("SELECT count(*) FROM order_lines WHERE sku = 'MANY'")).scalar()
    assert many == 1

    # each job ran once across both processes (their lease), though both tick every 0.3 s
    time.sleep(2)
    for job in ("kernel.idempotency_purge", "wms.expire_unpaid", "wms.dispatch_paid"):
        runs = [metric(url, "mallcore_job_runs_total", f'job="{job}"') for url in urls]
        assert sum(runs) == 1, (job, runs)

    # one caller's limit is one limit, whichever process answers
    limited = {"Authorization": f"Bearer {cluster['limited']}"}
    codes = [httpx.get(f"{urls[i % 2]}/me", headers=limited).status_code for i in range(LIMIT + 10)]
    assert codes.count(200) == LIMIT and codes.count(429) == 10, codes
    refused = httpx.get(f"{urls[0]}/me", headers=limited)
    assert refused.json()["code"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
