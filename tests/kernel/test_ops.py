"""/health, /ready (with each center's center_ready), /metrics and the access log."""

from datetime import timedelta

import structlog

from mallcore.kernel import Center, hookimpl, utcnow
from mallcore.kernel import tables as t
from mallcore.kernel.metrics import sample
from tests.helpers import order_body


class Flaky(Center):
    name = "flaky"
    problem: str | None = "warming up"

    @hookimpl
    def center_ready(self, kernel):
        return self.problem


def test_health_answers_without_a_token_or_a_database(mallcore):
    kernel = mallcore.kernel()
    anonymous = mallcore.client(kernel, None)
    kernel.db.dispose()  # no database connection needed
    r = anonymous.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "alive"}


def test_ready_checks_database_migrations_and_centers(mallcore):
    kernel = mallcore.kernel(migrate=True)
    r = mallcore.client(kernel, None).get("/ready")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "migrations": "ok"}


def test_ready_is_503_while_migrations_are_missing(mallcore):
    kernel = mallcore.kernel()  # tables created directly, no Alembic revision recorded
    r = mallcore.client(kernel, None).get("/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["code"] == "not_ready" and list(body["checks"]) == ["migrations"]
    assert "mallcore db upgrade" in body["checks"]["migrations"]
    assert r.headers["retry-after"]


def test_hook_center_ready_makes_ready_answer_503_with_the_centers_reason(mallcore):
    flaky = Flaky()
    kernel = mallcore.kernel(extra=[flaky], migrate=True)
    client = mallcore.client(kernel, None)
    r = client.get("/ready")
    assert r.status_code == 503
    assert r.json()["checks"] == {"flaky": "warming up"}
    flaky.problem = None
    r = client.get("/ready")
    assert r.status_code == 200
    assert r.json()["checks"]["flaky"] == "ok"


def test_a_center_ready_that_raises_is_not_ready(mallcore):
    class Broken(Center):
        name = "broken"

        @hookimpl
        def center_ready(self, kernel):
            raise RuntimeError("queue client closed")

    kernel = mallcore.kernel(extra=[Broken], migrate=True)
    r = mallcore.client(kernel, None).get("/ready")
    assert r.status_code == 503 and r.json()["checks"] == {"broken": "queue client closed"}


def test_metrics_count_requests_by_route_orders_and_stage_failures(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body()).json()
    assert alice.get(f"/orders/{order['id']}").status_code == 200
    assert alice.post("/orders", json=order_body(lines=[("NOPE", 1)])).status_code == 422
    assert alice.post(f"/orders/{order['id']}/cancel", json={"reason": "x"}).status_code == 200
    assert alice.post(f"/orders/{order['id']}/cancel", json={"reason": "x"}).status_code == 409

    m = kernel.metrics
    assert sample(m, "mallcore_orders_placed_total") == 1
    assert (
        sample(m, "mallcore_http_requests_total", {"method": "POST", "route": "/orders", "status": 201}) == 1
    )
    assert (
        sample(m, "mallcore_http_requests_total", {"method": "POST", "route": "/orders", "status": 422}) == 1
    )
    route = "/orders/{order_id}"
    assert sample(m, "mallcore_http_requests_total", {"method": "GET", "route": route, "status": 200}) == 1
    assert sample(m, "mallcore_stage_failures_total", {"stage": "place", "code": "sku_unknown"}) == 1
    assert sample(m, "mallcore_stage_failures_total", {"stage": "cancel", "code": "invalid_transition"}) == 1
    assert (
        sample(m, "mallcore_http_request_duration_seconds_count", {"method": "POST", "route": "/orders"}) == 2
    )

    text = mallcore.client(kernel, None).get("/metrics")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert 'mallcore_http_requests_total{method="POST",route="/orders",status="201"} 1.0' in text.text
    assert "mallcore_http_request_duration_seconds_bucket" in text.text


def test_metrics_report_job_runs_and_the_outbox_lag_of_each_relay(mallcore):
    kernel = mallcore.kernel(config={"http": {"metrics": {"outbox_relays": ["nats"]}}})
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    mallcore.client(kernel, "customer", "alice").post("/orders", json=order_body())
    kernel.jobs.run("kernel.idempotency_purge")
    m = kernel.metrics
    assert sample(m, "mallcore_job_runs_total", {"job": "kernel.idempotency_purge", "outcome": "ok"}) == 1

    with kernel.db.transaction() as conn:
        conn.execute(t.outbox.update().values(created_at=utcnow() - timedelta(minutes=10)))
        last = conn.execute(t.outbox.select().order_by(t.outbox.c.id.desc())).first().id
        conn.execute(t.outbox_cursors.insert().values(relay="other", position=last, updated_at=utcnow()))
    lag = kernel.events.outbox_lag(["nats"])
    assert lag["other"] == 0.0  # up to date
    assert 590 < lag["nats"] < 700  # never ran: as old as the oldest event
    assert 590 < sample(m, "mallcore_outbox_lag_seconds", {"relay": "nats"}) < 700


def test_metrics_can_require_a_token_or_be_off(mallcore):
    kernel = mallcore.kernel(config={"http": {"metrics": {"token": "scrape-me"}}})
    anonymous = mallcore.client(kernel, None)
    r = anonymous.get("/metrics")
    assert r.status_code == 401 and r.json()["code"] == "metrics_token_required"
    assert anonymous.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert anonymous.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200

    off = mallcore.kernel(config={"http": {"metrics": {"enabled": False}}})
    assert mallcore.client(off, None).get("/metrics").status_code == 404


def test_one_access_log_line_per_request_with_the_callers_subject_and_error_code(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    with structlog.testing.capture_logs() as logs:
        alice.post("/orders", json=order_body(), headers={"X-Request-ID": "req-1"})
        alice.post("/orders", json=order_body(lines=[("NOPE", 1)]), headers={"X-Request-ID": "req-2"})
    lines = [e for e in logs if e["event"] == "http.request"]
    assert len(lines) == 2
    ok, bad = lines
    assert ok["method"] == "POST" and ok["path"] == "/orders" and ok["status"] == 201
    assert ok["subject"] == "alice" and ok["log_level"] == "info" and ok["ms"] > 0
    assert "code" not in ok
    assert bad["status"] == 422 and bad["code"] == "sku_unknown" and bad["log_level"] == "info"


def test_the_access_log_can_be_turned_off(mallcore):
    kernel = mallcore.kernel(config={"http": {"access_log": False}})
    with structlog.testing.capture_logs() as logs:
        mallcore.client(kernel, None).get("/health")
    assert not [e for e in logs if e["event"] == "http.request"]


def test_unmatched_paths_and_methods_are_logged_and_counted_under_one_route_label(mallcore):
    kernel = mallcore.kernel()
    client = mallcore.client(kernel, None)
    with structlog.testing.capture_logs() as logs:
        scanned = [client.get(f"/wp-admin/{n}.php", headers={"X-Request-ID": f"scan-{n}"}) for n in range(5)]
        wrong_method = client.delete("/health")
    assert {(r.status_code, r.json()["code"]) for r in scanned} == {(404, "not_found")}
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")
    assert scanned[0].headers["X-Request-ID"] == "scan-0" and wrong_method.headers["X-Request-ID"]
    lines = [e for e in logs if e["event"] == "http.request"]
    assert [(e["method"], e["path"], e["status"], e["code"]) for e in lines] == [
        *(("GET", f"/wp-admin/{n}.php", 404, "not_found") for n in range(5)),
        ("DELETE", "/health", 405, "method_not_allowed"),
    ]
    assert all(e["log_level"] == "info" and e["route"] == "unmatched" for e in lines)
    assert lines[1]["request_id"] == "scan-1"
    m = kernel.metrics
    assert (
        sample(m, "mallcore_http_requests_total", {"method": "GET", "route": "unmatched", "status": 404}) == 5
    )
    assert (
        sample(m, "mallcore_http_requests_total", {"method": "DELETE", "route": "unmatched", "status": 405})
        == 1
    )
    # with their latency, under the same label
    assert all(e["ms"] >= 0 for e in lines)
    latency = {"method": "GET", "route": "unmatched"}
    assert sample(m, "mallcore_http_request_duration_seconds_count", latency) == 5
    assert sample(m, "mallcore_http_request_duration_seconds_count", {**latency, "method": "DELETE"}) == 1
    # the raw paths never become labels: one series, however many URLs are scanned
    text = client.get("/metrics").text
    assert "wp-admin" not in text
    # a matched request is still counted once, under its route template, not as unmatched
    client.get("/health")
    assert (
        sample(m, "mallcore_http_requests_total", {"method": "GET", "route": "unmatched", "status": 404}) == 5
    )


def test_metrics_report_how_late_the_event_loop_runs(mallcore):
    import time

    kernel = mallcore.kernel()
    client = mallcore.client(kernel, None)
    client.get("/health")
    time.sleep(0.3)
    assert sample(kernel.metrics, "mallcore_event_loop_lag_seconds_count") >= 2
    assert "mallcore_event_loop_lag_seconds_bucket" in client.get("/metrics").text
