"""A small HTTP/1.1 load generator: keep-alive connections on asyncio streams.

It costs far less per request than a general client (httpx, aiohttp), which
matters on a two-core machine where the load generator shares the CPU with
the server under test. Both the baseline and mallcore are measured with it,
in the same run, so its own cost cancels out of the ratios.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable

import msgspec


class Result(msgspec.Struct, kw_only=True):
    requests: int
    seconds: float
    statuses: dict[int, int]
    latencies: list[float]
    # completion time (since start) of each response, by status
    done_at: dict[int, list[float]]
    # latency of each response, by status
    by_status: dict[int, list[float]] = {}

    def rate(self, status: int | None = None) -> float:
        if status is None:
            return self.requests / self.seconds if self.seconds else 0.0
        times = self.done_at.get(status, [])
        return len(times) / max(times) if times else 0.0

    def percentile(self, p: float, status: int | None = None) -> float:
        latencies = self.latencies if status is None else self.by_status.get(status, [])
        if not latencies:
            return 0.0
        ordered = sorted(latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def merge(results: list[Result]) -> Result:
    """Several runs' results as one (their seconds added up; completion times kept per run)."""
    statuses: Counter[int] = Counter()
    by_status: dict[int, list[float]] = {}
    done_at: dict[int, list[float]] = {}
    for r in results:
        statuses.update(r.statuses)
        for status, values in r.by_status.items():
            by_status.setdefault(status, []).extend(values)
        for status, values in r.done_at.items():
            done_at.setdefault(status, []).extend(values)
    return Result(
        requests=sum(r.requests for r in results),
        seconds=sum(r.seconds for r in results),
        statuses=dict(statuses),
        latencies=[x for r in results for x in r.latencies],
        done_at=done_at,
        by_status=by_status,
    )


def request_bytes(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _worker(
    host: str,
    port: int,
    next_request: Callable[[], bytes | None],
    statuses: Counter[int],
    latencies: list[float],
    done_at: dict[int, list[float]],
    by_status: dict[int, list[float]],
    start: float,
    interval: float,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            raw = next_request()
            if raw is None:
                return
            sent = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            if length:
                await reader.readexactly(length)
            now = time.perf_counter()
            latencies.append(now - sent)
            statuses[status] += 1
            done_at.setdefault(status, []).append(now - start)
            by_status.setdefault(status, []).append(now - sent)
            if interval and now - sent < interval:
                await asyncio.sleep(interval - (now - sent))
    finally:
        writer.close()


def run(
    host: str,
    port: int,
    requests: list[bytes],
    concurrency: int,
    *,
    interval: float = 0.0,
    seconds: float | None = None,
) -> Result:
    """Send every request once over ``concurrency`` keep-alive connections.

    With ``seconds``, send the requests over and over until that time is up;
    with ``interval``, a connection sends at most one request per
    ``interval`` seconds (a paced, open load rather than as fast as answers come).
    """

    async def main() -> Result:
        queue = iter(requests) if seconds is None else itertools.cycle(requests)
        start = time.perf_counter()
        deadline = None if seconds is None else start + seconds

        def next_request() -> bytes | None:
            if deadline is not None and time.perf_counter() >= deadline:
                return None
            return next(queue, None)

        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        done_at: dict[int, list[float]] = {}
        by_status: dict[int, list[float]] = {}
        await asyncio.gather(
            *(
                _worker(host, port, next_request, statuses, latencies, done_at, by_status, start, interval)
                for _ in range(concurrency)
            )
        )
        return Result(
            requests=len(latencies),
            seconds=time.perf_counter() - start,
            statuses=dict(statuses),
            latencies=latencies,
            done_at=done_at,
            by_status=by_status,
        )

    return asyncio.run(main())


class OpenResult(msgspec.Struct, kw_only=True):
    """An open load's figures: every attempt's answer (a retry is an attempt of its own)."""

    result: Result
    # arrivals offered (new orders, not counting retries) and per second
    offered: int
    offered_per_second: float
    # attempts sent again after a 503 or 429 with Retry-After; orders that were still refused
    # after ``retries`` of them; arrivals the generator could not send (every connection busy)
    retried: int
    gave_up: int
    not_sent: int


def run_open(
    host: str,
    port: int,
    request: bytes,
    rate: float,
    seconds: float,
    *,
    connections: int = 512,
    retries: int = 2,
) -> OpenResult:
    """An open load: new requests arrive at ``rate`` a second for ``seconds``, whatever the
    server answers, as shoppers do (a closed load, where each connection waits for its answer
    before the next, offers no more than the server takes). Each arrival is sent on an idle
    keep-alive connection (up to ``connections`` of them). A 503 or 429 with ``Retry-After``
    is sent again that many seconds later, at most ``retries`` times (after the load's end
    too, until answered), as a polite client does."""

    async def main() -> OpenResult:
        loop = asyncio.get_running_loop()
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        opened = 0
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        done_at: dict[int, list[float]] = {}
        by_status: dict[int, list[float]] = {}
        counts = {"retried": 0, "gave_up": 0, "not_sent": 0, "due": 0}
        pending: set[asyncio.Task[None]] = set()
        start = time.perf_counter()

        async def attempt(left: int) -> None:
            nonlocal opened
            if idle:
                reader, writer = idle.pop()
            elif opened < connections:
                opened += 1
                reader, writer = await asyncio.open_connection(host, port)
            else:
                counts["not_sent"] += 1
                return
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, retry_after = 0, None
            for line in head.split(b"\r\n"):
                name = line[:15].lower()
                if name == b"content-length:":
                    length = int(line[15:])
                elif line[:12].lower() == b"retry-after:":
                    retry_after = float(line[12:])
            if length:
                await reader.readexactly(length)
            now = time.perf_counter()
            idle.append((reader, writer))
            latencies.append(now - sent)
            statuses[status] += 1
            done_at.setdefault(status, []).append(now - start)
            by_status.setdefault(status, []).append(now - sent)
            if status in (429, 503) and retry_after is not None:
                if left > 0:
                    counts["retried"] += 1
                    counts["due"] += 1
                    loop.call_later(retry_after, retry, left - 1)
                else:
                    counts["gave_up"] += 1

        def retry(left: int) -> None:
            counts["due"] -= 1
            spawn(left)

        def spawn(left: int) -> None:
            task = loop.create_task(attempt(left))
            pending.add(task)
            task.add_done_callback(pending.discard)

        offered = 0
        while (elapsed := time.perf_counter() - start) < seconds:
            due = int(elapsed * rate) + 1
            while offered < due:
                offered += 1
                spawn(retries)
            await asyncio.sleep(max(0.0, offered / rate - (time.perf_counter() - start)))
        # the retries scheduled last, and every answer still on its way
        while pending or counts["due"]:
            await asyncio.sleep(0.05)
        for _, writer in idle:
            writer.close()
        result = Result(
            requests=len(latencies),
            seconds=time.perf_counter() - start,
            statuses=dict(statuses),
            latencies=latencies,
            done_at=done_at,
            by_status=by_status,
        )
        return OpenResult(
            result=result,
            offered=offered,
            offered_per_second=round(offered / seconds, 1),
            retried=counts["retried"],
            gave_up=counts["gave_up"],
            not_sent=counts["not_sent"],
        )

    return asyncio.run(main())
