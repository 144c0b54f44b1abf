"""``mallcore bench``: order placement against a raw-SQL baseline, in one run.

Scenarios (all by default):

- ``place``: 3-line orders over HTTP from concurrent clients, mallcore
  (kernel + catalog + payment + wms) against the raw baseline of
  :mod:`mallcore.bench.raw`, both served by uvicorn (uvloop, httptools) with
  the same worker count; orders/s, p50/p99 latency and the ratio.
- ``hot``: many concurrent buyers of one SKU with limited stock, mallcore's
  ``POST /orders`` against a raw conditional UPDATE, each server warmed up on
  another SKU first; successful decrements per second (up to the moment
  stock ran out) of the median run of each side, and an oversell check over
  every run.
- ``statements``: SQL statements per placement for 1, 3 and 10 lines
  (executemany counts once: one round trip).
- ``plugins``: placement time with ten no-op centers implementing every
  lifecycle hook against none (in process, interleaved, best of rounds).
- ``risk``: placement with the risk center on against off (:mod:`.risk`).
- ``promotion``: placement with three live campaigns and a coupon on every
  order against promotion off (:mod:`.promotion`).
- ``membership``: placement by a Gold member spending points on every order
  against the same placement with membership off (:mod:`.membership`).
- ``console``: the server time of each staff console page with 100,000
  orders seeded (``--console-orders``), against a 150 ms target (:mod:`.console`).
)
@click.option(
- ``overload``: twice the saturating load on ``POST /orders`` for a bounded
  time, with the admission line on: 5xx other than 503, the longest wait,
  p99 of the admitted orders against the unloaded p99 (:mod:`.overload`).

Every figure is measured in the same run as its baseline; only ratios are
meant to be compared across machines.
"""

from __future__ import annotations

import os
from typing import Any

import click

# Imports stay inside the command: ``mallcore --help`` lists it without loading the benchmark.

# Scenarios of the centers: name -> module of this package with
# ``scenario(target, folder, *, requests, clients, workers, rounds, console_orders)``
# returning the scenario's figures, and ``line(figures)`` printing them.
CENTER_SCENARIOS = ("risk", "promotion", "membership", "console")
# Every scenario that lives in a module of its own, with the same ``scenario`` and ``line``.
MODULE_SCENARIOS = (*CENTER_SCENARIOS, "overload")
SCENARIOS = ("place", "hot", "statements", "plugins", *MODULE_SCENARIOS)
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@click.command("bench")
@click.option(
    "--db", "dbs", type=click.Choice(["sqlite", "postgres", "both"]), default="both", show_default=True
)
@click.option(
    "--pg-url", default=lambda: os.environ.get("MALLCORE_BENCH_PG", DEFAULT_PG), show_default=DEFAULT_PG
)
@click.option("--scenario", "scenarios", type=click.Choice(SCENARIOS), multiple=True, help="Default: all.")
@click.option("--requests", "n", default=3000, show_default=True, help="Measured orders per run.")
@click.option("--clients", default=16, show_default=True, help="Concurrent connections.")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="uvicorn workers for both sides [default: 1 on SQLite, which serialises writers in one process; "
    "2 on PostgreSQL, where workers run side by side].",
)
@click.option(
    "--rounds",
    default=2,
    show_default=True,
    help="Runs per side (place, hot): the median runs give the ratio; every run is kept.",
)
@click.option("--hot-attempts", default=2000, show_default=True)
@click.option("--hot-clients", default=32, show_default=True)
@click.option(
    "--console-orders", default=100_000, show_default=True, help="Orders seeded for the console scenario."
)
@click.option(
    "--overload-seconds", default=30.0, show_default=True, help="overload: how long the 2x load runs."
)
@click.option(
    "--overload-wait-ms",
    default=50,
    show_default=True,
    help="overload: the server's http.overload.max_wait_ms (longest wait in the admission line).",
)
@click.option(
    "--overload-in-flight",
    default=0,
    show_default=True,
    help="overload: http.overload.max_writes_in_flight per worker [default 0: clients / workers].",
)
@click.option(
    "--overload-line",
    type=click.Choice(["adaptive", "fixed"]),
    default="adaptive",
    show_default=True,
    help="overload: http.overload.line (adaptive: waits cut to target_wait_ms under sustained overload).",
)
@click.option(
    "--overload-load",
    type=click.Choice(["open", "closed"]),
    default="open",
    show_default=True,
    help="overload: open (orders arrive at 2x the saturating rate whatever the answers) or closed "
    "(2x the connections, each waiting for its answer).",
)
@click.option(
    "--overload-retries",
    default=0,
    show_default=True,
    help="overload, open load: times an order answered 503 or 429 is sent again after its Retry-After.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False), default="bench-results/latest.json", show_default=True
)
def bench(**options: Any) -> None:
    """Benchmark order placement against a raw-SQL baseline measured in the same run."""
    from .scenarios import run

    run(**options)
