"""``mallcore bench --scenario overload``: twice the saturating load on the write path.

One mallcore server (catalog, payment, wms) with the admission line
(``[http.overload]``) set to ``max_writes_in_flight`` = the saturating
clients per worker (or ``--overload-in-flight``) and ``max_wait_ms`` =
``--overload-wait-ms``:

1. **Saturating load**: ``clients`` connections place orders as fast as
   answers come (the place scenario's load), after a warm-up. This gives the
   saturating rate R and the unloaded p99.
2. **Twice that**: ``2 * clients`` connections, each sending at most one
   order per ``clients / R`` seconds, so that 2R orders a second are offered,
   for ``--overload-seconds``.

Reported: every status seen, the 5xx other than 503 (must be 0), the longest
any request waited for its answer (and the longest 503), the p99 of the
admitted orders (201) against the unloaded p99 (the goal: within 2x), and
the rate of orders placed under overload against R.
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

from . import load


def scenario(
    target: Any,
    folder: Path,
    *,
    requests: int,
    clients: int,
    workers: int,
    overload_seconds: float = 30.0,
    overload_wait_ms: int = 50,
    overload_in_flight: int = 0,
    overload_line: str = "adaptive",
    **_: Any,
) -> dict[str, Any]:
    from mallcore.kernel import Kernel, load_config

    from .scenarios import SKUS, kernel_config, order_request, seed_kernel_http, server, summarize

    per_worker = overload_in_flight or max(1, math.ceil(clients / workers))
    url, schema = target.fresh()
    config = kernel_config(
        url,
        schema,
        folder,
        http=(
            f"[http.overload]\nmax_writes_in_flight = {per_worker}\nmax_wait_ms = {overload_wait_ms}\n"
            f'line = "{overload_line}"\n'
        ),
    )
    kernel = Kernel(load_config(config, env={}))
    kernel.upgrade()
    kernel.close()
    request = order_request([("BENCH-1", 1), ("BENCH-2", 2), ("BENCH-3", 1)])
    log = folder / "servers.log"
    # every worker's metrics in one scrape (the admission line's waits)
    metrics_dir = folder / f"metrics-{uuid.uuid4().hex[:8]}"
    metrics_dir.mkdir()
    env = {"MALLCORE_CONFIG": str(config), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with server("mallcore.kernel.http.app:app_from_environment", env, workers, log) as port:
        seed_kernel_http(port, SKUS)
        load.run("127.0.0.1", port, [request] * max(100, requests // 10), clients)
        unloaded = load.run("127.0.0.1", port, [request] * requests, clients)
        rate = unloaded.statuses.get(201, 0) / unloaded.seconds
        interval = clients / rate if rate else 0.0
        before = scrape(port)
        loaded = load.run(
            "127.0.0.1", port, [request], 2 * clients, interval=interval, seconds=overload_seconds
        )
        after = scrape(port)
        waits = admission_waits(after)
        in_app = server_side(before, after)
        lag = _shares(_delta(before, after, "mallcore_event_loop_lag_seconds"))
    other_5xx = sum(n for status, n in loaded.statuses.items() if status >= 500 and status != 503)
    p99_unloaded = unloaded.percentile(0.99)
    p99_admitted = loaded.percentile(0.99, 201)
    return {
        "settings": {
            "clients": clients,
            "workers": workers,
            "max_writes_in_flight": per_worker,
            "max_wait_ms": overload_wait_ms,
            "line": overload_line,
            "seconds": overload_seconds,
        },
        "unloaded": summarize(unloaded, 201),
        "overloaded": {
            **summarize(loaded, 201),
            "offered_per_second": round(loaded.requests / loaded.seconds, 1) if loaded.seconds else 0.0,
            "target_per_second": round(2 * rate, 1),
        },
        "other_5xx": other_5xx,
        "admission_waits": waits,
        "server_side": in_app,
        "event_loop_lag": lag,
        "max_wait_ms": round(max(loaded.latencies, default=0.0) * 1000, 1),
        "max_503_ms": round(max(loaded.by_status.get(503, []), default=0.0) * 1000, 1),
        "p99_unloaded_ms": round(p99_unloaded * 1000, 2),
        "p99_admitted_ms": round(p99_admitted * 1000, 2),
        "p99_ratio": round(p99_admitted / p99_unloaded, 2) if p99_unloaded else None,
        "goodput_ratio": round(loaded.statuses.get(201, 0) / loaded.seconds / rate, 2) if rate else None,
    }


def scrape(port: int) -> str:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text


def histogram(text: str, name: str, where: str = "") -> dict[str, float]:
    """Cumulative bucket counts (upper bound -> requests) of the series of ``name`` whose labels
    contain ``where``, added up over those series (and every worker's)."""
    buckets: dict[str, float] = {}
    for row in text.splitlines():
        if row.startswith(name + "_bucket{") and where in row:
            bound = row.split('le="', 1)[1].split('"', 1)[0]
            buckets[bound] = buckets.get(bound, 0.0) + float(row.rsplit(" ", 1)[1])
    return buckets


def _shares(buckets: dict[str, float]) -> dict[str, Any]:
    total = buckets.get("+Inf", 0.0)
    within = {
        str(round(float(b) * 1000)): round(n / total, 4) for b, n in buckets.items() if b != "+Inf" and total
    }
    # the smallest bucket bound every observation is under: an upper bound of the longest
    top = next((ms for ms, share in sorted(within.items(), key=lambda x: float(x[0])) if share >= 1.0), None)
    return {"count": int(total), "within_ms": within, "all_within_ms": top}


def admission_waits(text: str) -> dict[str, Any]:
    """The server's own account of the admission line (``mallcore_admission_wait_seconds``):
    how many writes waited, how many within each bound, and of the admitted ones alone."""
    everything = _shares(histogram(text, "mallcore_admission_wait_seconds"))
    admitted = _shares(histogram(text, "mallcore_admission_wait_seconds", 'outcome="admitted"'))
    return {**everything, "admitted": admitted}


def server_side(before: str, after: str) -> dict[str, Any]:
    """Where the time goes, seen by the server, for the orders of the loaded phase alone: the
    request's time in the app (from the kernel's middleware to the answer, the line included)
    against the clients' figures, which add the time outside the app (sockets, the server's
    and the load generator's own event loops waiting for a CPU)."""
    return _shares(
        _delta(before, after, "mallcore_http_request_duration_seconds", 'method="POST",route="/orders"')
    )


def _delta(before: str, after: str, name: str, where: str = "") -> dict[str, float]:
    then = histogram(before, name, where)
    return {bound: n - then.get(bound, 0.0) for bound, n in histogram(after, name, where).items()}


def line(r: dict[str, Any]) -> str:
    o = r["overloaded"]
    return (
        f"  overload  line {r['settings'].get('line', 'fixed')}; saturating {r['unloaded']['per_second']}/s (p99 {r['p99_unloaded_ms']} ms); "
        f"2x offered {o['offered_per_second']}/s for {r['settings']['seconds']} s: statuses {o['statuses']}, "
        f"5xx other than 503: {r['other_5xx']}, max wait {r['max_wait_ms']} ms (503s {r['max_503_ms']} ms; "
        f"in the line: {_within(r)}; in the app: {_app(r)}; event loop late: {_lag(r)}), "
        f"p99 admitted {r['p99_admitted_ms']} ms = {r['p99_ratio']}x unloaded, "
        f"placed {o['per_second']}/s ({r['goodput_ratio']}x saturating)"
    )


def _within(r: dict[str, Any]) -> str:
    waits, bound = r["admission_waits"], r["settings"]["max_wait_ms"]
    shares = [
        f"<= {ms} ms {waits['within_ms'][str(ms)]:.2%}"
        for ms in sorted({5, bound, 2 * bound})
        if str(ms) in waits["within_ms"]
    ]
    admitted = waits.get("admitted", {})
    tail = f", admitted all <= {admitted.get('all_within_ms')} ms" if admitted.get("count") else ""
    return f"{waits['count']} waits, " + ", ".join(shares) + tail


def _lag(r: dict[str, Any]) -> str:
    lag = r.get("event_loop_lag") or {}
    shares = [
        f"<= {ms} ms {lag['within_ms'][ms]:.2%}"
        for ms in ("10", "50", "250")
        if ms in lag.get("within_ms", {})
    ]
    return ", ".join(shares) + f", all <= {lag.get('all_within_ms')} ms"


def _app(r: dict[str, Any]) -> str:
    app = r.get("server_side") or {}
    shares = [
        f"<= {ms} ms {app['within_ms'][ms]:.2%}"
        for ms in ("100", "250", "500")
        if ms in app.get("within_ms", {})
    ]
    return ", ".join(shares) + f", all <= {app.get('all_within_ms')} ms"
