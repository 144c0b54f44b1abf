"""``mallcore bench --scenario overload``: twice the saturating load on the write path.

One mallcore server (catalog, payment, wms) with the admission line
(``[http.overload]``) set to ``max_writes_in_flight`` = the saturating
clients per worker (or ``--overload-in-flight``), ``max_wait_ms`` =
``--overload-wait-ms`` and ``line`` = ``--overload-line``. After a warm-up,
``--rounds`` times in turn (so that a shared machine whose other load
changes weighs on both phases alike; the figures pool the slices):

1. **Saturating load**: ``clients`` connections place ``requests / rounds``
   orders as fast as answers come (the place scenario's load). This gives
   the saturating rate R and the unloaded p99.
2. **Twice that**, for ``--overload-seconds / rounds``. ``--overload-load
   open`` (the default): new orders arrive at 2R a second whatever the
   server answers (:func:`load.run_open`), as shoppers do; with
   ``--overload-retries N`` one answered 503 or 429 is sent again after its
   ``Retry-After``, at most N times, as a polite client does. ``closed``: ``2 * clients`` connections, each sending
   at most one order per ``clients / R`` seconds and waiting for its answer
   first; that offers no more than the server takes once answers slow down
   (the line then sees little to shed), so it is kept for comparison only.

Reported: every status seen, the 5xx other than 503 (must be 0), the longest
any request waited for its answer (and the longest 503), the p99 of the
admitted orders (201) against the unloaded p99 (the goal: within 2x), and
the rate of orders placed under overload against R; each slice's two ratios
too; and the server's own histograms for the overloaded phases (the line's
waits, the time in the app, the event loop's lateness).
"""

from __future__ import annotations

import math
import statistics
import uuid
from functools import partial
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
    overload_load: str = "open",
    overload_retries: int = 0,
    rounds: int = 1,
    **_: Any,
) -> dict[str, Any]:
    from mallcore.kernel import Kernel, load_config

    from .scenarios import (
        SKUS,
        cpu_during,
        kernel_config,
        order_request,
        seed_kernel_http,
        server,
        summarize,
    )

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
    unloaded_parts: list[load.Result] = []
    loaded_parts: list[load.Result] = []
    opened: list[load.OpenResult] = []
    deltas: dict[str, dict[str, float]] = {}
    # the server's CPU seconds in each slice of each phase (None where /proc cannot tell)
    cpu: dict[str, list[float | None]] = {"unloaded": [], "overloaded": []}
    slices = max(1, rounds)
    with server("mallcore.kernel.http.app:app_from_environment", env, workers, log) as port:
        seed_kernel_http(port, SKUS)
        load.run("127.0.0.1", port, [request] * max(100, requests // 10), clients)
        # the two phases alternate, each time paced on the rate just measured, so that a
        # machine whose other load changes meanwhile weighs on both alike
        for _slice in range(slices):
            part, seconds = cpu_during(
                port, partial(load.run, "127.0.0.1", port, [request] * max(1, requests // slices), clients)
            )
            unloaded_parts.append(part)
            cpu["unloaded"].append(seconds)
            saturating = part.statuses.get(201, 0) / part.seconds if part.seconds else 0.0
            before = scrape(port)
            if overload_load == "open":
                opening, seconds = cpu_during(
                    port,
                    partial(
                        load.run_open,
                        "127.0.0.1",
                        port,
                        request,
                        2 * saturating,
                        overload_seconds / slices,
                        retries=overload_retries,
                    ),
                )
                opened.append(opening)
                loaded_parts.append(opening.result)
            else:
                closed, seconds = cpu_during(
                    port,
                    partial(
                        load.run,
                        "127.0.0.1",
                        port,
                        [request],
                        2 * clients,
                        interval=clients / saturating if saturating else 0.0,
                        seconds=overload_seconds / slices,
                    ),
                )
                loaded_parts.append(closed)
            cpu["overloaded"].append(seconds)
            after = scrape(port)
            for key, name, where in SERIES:
                for bound, n in _delta(before, after, name, where).items():
                    deltas.setdefault(key, {})[bound] = deltas.get(key, {}).get(bound, 0.0) + n
    unloaded, loaded = load.merge(unloaded_parts), load.merge(loaded_parts)
    rate = unloaded.statuses.get(201, 0) / unloaded.seconds if unloaded.seconds else 0.0
    waits = {
        **_shares(deltas.get("waits", {})),
        "admitted": _shares(deltas.get("admitted", {})),
    }
    in_app = _shares(deltas.get("app", {}))
    lag = _shares(deltas.get("lag", {}))
    other_5xx = sum(n for status, n in loaded.statuses.items() if status >= 500 and status != 503)
    p99_unloaded = unloaded.percentile(0.99)
    p99_admitted = loaded.percentile(0.99, 201)
    per_slice = [ratios(u, o) for u, o in zip(unloaded_parts, loaded_parts, strict=True)]
    return {
        "settings": {
            "clients": clients,
            "workers": workers,
            "max_writes_in_flight": per_worker,
            "max_wait_ms": overload_wait_ms,
            "line": overload_line,
            "load": overload_load,
            "retries": overload_retries,
            "seconds": overload_seconds,
            "slices": slices,
        },
        # with the server's CPU per answer: what a refusal costs beside an order
        "unloaded": summarize(unloaded, 201, _per_answer(cpu["unloaded"], unloaded)),
        "overloaded": {
            **summarize(loaded, 201, _per_answer(cpu["overloaded"], loaded)),
            # new orders offered a second (open load: retries not counted; closed: every request)
            "offered_per_second": (
                round(sum(o.offered for o in opened) / overload_seconds, 1)
                if opened
                else round(loaded.requests / loaded.seconds, 1)
                if loaded.seconds
                else 0.0
            ),
            "target_per_second": round(2 * rate, 1),
            **(
                {
                    "offered": sum(o.offered for o in opened),
                    "retried": sum(o.retried for o in opened),
                    "gave_up": sum(o.gave_up for o in opened),
                    "not_sent": sum(o.not_sent for o in opened),
                    "lost": sum(o.lost for o in opened),
                }
                if opened
                else {}
            ),
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
        "slices": per_slice,
        # robust to one slice that other programs' load spoilt
        "slices_median": {
            key: _median([x[key] for x in per_slice]) for key in ("p99_ratio", "goodput_ratio")
        },
    }


def _per_answer(seconds: list[float | None], result: load.Result) -> float | None:
    """Milliseconds of server CPU per answer, from each slice's CPU seconds."""
    if None in seconds or not result.requests:
        return None
    return round(sum(s for s in seconds if s is not None) * 1000 / result.requests, 3)


def ratios(unloaded: load.Result, loaded: load.Result) -> dict[str, float | None]:
    """One slice's admitted p99 and rate of orders placed, against its own unloaded phase."""
    p99 = unloaded.percentile(0.99)
    rate = unloaded.statuses.get(201, 0) / unloaded.seconds if unloaded.seconds else 0.0
    return {
        "p99_ratio": round(loaded.percentile(0.99, 201) / p99, 2) if p99 else None,
        "goodput_ratio": round(loaded.statuses.get(201, 0) / loaded.seconds / rate, 2) if rate else None,
    }


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


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


# (key, metric, label filter) of the server's histograms read around each overloaded slice: the
# admission line's waits (all, and the admitted ones alone); the time each order spent in the
# app (from the kernel's middleware to the answer, line included) against the clients' figures,
# which add the time outside the app (sockets, the server's and the load generator's own event
# loops waiting for a CPU); how late the event loop woke its timers.
SERIES = (
    ("waits", "mallcore_admission_wait_seconds", ""),
    ("admitted", "mallcore_admission_wait_seconds", 'outcome="admitted"'),
    ("app", "mallcore_http_request_duration_seconds", 'method="POST",route="/orders"'),
    ("lag", "mallcore_event_loop_lag_seconds", ""),
)


def _delta(before: str, after: str, name: str, where: str = "") -> dict[str, float]:
    then = histogram(before, name, where)
    return {bound: n - then.get(bound, 0.0) for bound, n in histogram(after, name, where).items()}


def line(r: dict[str, Any]) -> str:
    o = r["overloaded"]
    return (
        f"  overload  line {r['settings'].get('line', 'fixed')}; saturating {r['unloaded']['per_second']}/s (p99 {r['p99_unloaded_ms']} ms); "
        f"2x offered ({r['settings'].get('load', 'closed')} load) {o['offered_per_second']}/s for {r['settings']['seconds']} s"
        + (
            f" ({o['offered']} orders, {o['retried']} retries after Retry-After, {o['gave_up']} gave up, "
            f"{o['not_sent']} not sent, {o['lost']} lost)"
            if "offered" in o
            else ""
        )
        + f": statuses {o['statuses']}, "
        f"5xx other than 503: {r['other_5xx']}, max wait {r['max_wait_ms']} ms (503s {r['max_503_ms']} ms; "
        f"in the line: {_within(r)}; in the app: {_app(r)}; event loop late: {_lag(r)}), "
        f"p99 admitted {r['p99_admitted_ms']} ms = {r['p99_ratio']}x unloaded, "
        f"placed {o['per_second']}/s ({r['goodput_ratio']}x saturating); server CPU per answer "
        f"{r['unloaded']['cpu_ms_per_request']} ms unloaded, {o['cpu_ms_per_request']} ms overloaded; by slice (p99 / placed): "
        + ", ".join(f"{s['p99_ratio']}x / {s['goodput_ratio']}x" for s in r.get("slices", []))
        + f", median {r['slices_median']['p99_ratio']}x / {r['slices_median']['goodput_ratio']}x"
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
