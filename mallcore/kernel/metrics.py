"""Prometheus metrics of one kernel, with ``prometheus-client``.

Each kernel keeps its own registry (two kernels in one process never mix
their figures). What is counted:

- ``mallcore_http_requests_total{method, route, status}``: requests by route
  template (``/orders/{order_id:int}``, not the path) and status;
- ``mallcore_http_request_duration_seconds{method, route}``: a latency histogram;
- ``mallcore_orders_placed_total``: orders committed;
- ``mallcore_stage_failures_total{stage, code}``: stages rolled back, by the
  error's stable code (``out_of_stock``, ``write_conflict``...);
- ``mallcore_admission_wait_seconds{outcome}``: how long writes waited in the
  admission line (``[http.overload]``), ``admitted`` or ``refused`` (503);
- ``mallcore_event_loop_lag_seconds``: how late the HTTP event loop wakes a
  timer (sampled every 50 ms): time every answer waits for, admitted or
  refused, when the process is short of CPU;
- ``mallcore_job_runs_total{job, outcome}``: periodic job runs, ``ok`` or ``failed``;
- ``mallcore_outbox_lag_seconds{relay}``: the age of the oldest outbox event
  a relay has not delivered yet (0 when it is up to date), read from the
  database when scraped.

Several worker processes (``mallcore serve --workers N``) each count their
own requests; prometheus-client's multi-process mode adds them up: set
``PROMETHEUS_MULTIPROC_DIR`` to an empty folder before the workers start
(``serve`` does it for you with more than one worker) and ``/metrics``
answers for all of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import OperationalError

from .db import lost_race

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds: from a cached read (a millisecond) to a request queued behind a busy writer.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def failure_code(exc: BaseException) -> str:
    """The stable code a failed stage is counted under."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    if lost_race(exc):
        return "write_conflict"
    if isinstance(exc, OperationalError):
        return "database_unavailable"
    return "internal_error"


class _Lag(Collector):
    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self.read = read

    def describe(self) -> Iterator[Metric]:
        # Registering must not read the database (it may not exist yet).
        return iter(())

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "mallcore_outbox_lag_seconds",
            "Age of the oldest outbox event the relay has not delivered (0 when up to date)",
            labels=["relay"],
        )
        for relay, seconds in sorted(self.read().items()):
            family.add_metric([relay], seconds)
        yield family


class Metrics:
    """The counters a kernel's services and HTTP layer update, and their rendering."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._scraped: list[Collector] = []
        r = self.registry
        self.requests = Counter(
            "mallcore_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "mallcore_http_request_duration_seconds",
            "Time from the request's arrival to its response",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.orders_placed = Counter("mallcore_orders_placed", "Orders placed (committed)", registry=r)
        self.stage_failures = Counter(
            "mallcore_stage_failures", "Stages rolled back, by error code", ["stage", "code"], registry=r
        )
        self.admission_wait = Histogram(
            "mallcore_admission_wait_seconds",
            "Time writes waited for a place in the admission line (http.overload)",
            ["outcome"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.loop_lag = Histogram(
            "mallcore_event_loop_lag_seconds",
            "How late the event loop woke a 50 ms timer (the process waiting for a CPU)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.placement_batch = Histogram(
            "mallcore_placement_batch_orders",
            "Orders placed in one transaction ([orders.combine]; 1 = placed alone)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.job_runs = Counter("mallcore_job_runs", "Periodic job runs", ["job", "outcome"], registry=r)
        # The labelled series every request updates, looked up once per label set: ``labels()``
        # takes a lock and builds a key each time (a few per cent of a request's event loop).
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._admission_series: dict[str, Any] = {}

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        series[0].inc()
        series[1].observe(seconds)

    def admission_waited(self, seconds: float, outcome: str) -> None:
        series = self._admission_series.get(outcome)
        if series is None:
            series = self._admission_series[outcome] = self.admission_wait.labels(outcome)
        series.observe(seconds)

    def stage_failed(self, stage: str, exc: BaseException) -> None:
        self.stage_failures.labels(stage, failure_code(exc)).inc()

    def job_ran(self, job: str, ok: bool) -> None:
        self.job_runs.labels(job, "ok" if ok else "failed").inc()

    def watch_outbox(self, read: Callable[[], dict[str, float]]) -> None:
        """Report ``read()`` (relay -> lag in seconds) as ``mallcore_outbox_lag_seconds`` when scraped."""
        collector = _Lag(read)
        self._scraped.append(collector)
        self.registry.register(collector)

    def render(self) -> bytes:
        """The Prometheus text format: this process's figures, or every worker's in multi-process mode."""
        if not os.environ.get(MULTIPROC_ENV):
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in self._scraped:
            registry.register(collector)
        return generate_latest(registry)


def sample(metrics: Metrics, name: str, labels: dict[str, Any] | None = None) -> float:
    """A metric's current value in this process (0 when never set), for tests and commands."""
    value = metrics.registry.get_sample_value(name, {k: str(v) for k, v in (labels or {}).items()})
    return float(value or 0.0)
