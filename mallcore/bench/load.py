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


class _Tally:
    """The answers of one load as they come: statuses, latencies, completion times."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.done_at: dict[int, list[float]] = {}
        self.by_status: dict[int, list[float]] = {}

    def answered(self, status: int, sent: float) -> float:
        """Note an answer to a request sent at ``sent``; the time now."""
        now = time.perf_counter()
        self.latencies.append(now - sent)
        self.statuses[status] += 1
        self.done_at.setdefault(status, []).append(now - self.start)
        self.by_status.setdefault(status, []).append(now - sent)
        return now

    def result(self) -> Result:
        return Result(
            requests=len(self.latencies),
            seconds=time.perf_counter() - self.start,
            statuses=dict(self.statuses),
            latencies=self.latencies,
            done_at=self.done_at,
            by_status=self.by_status,
        )


async def _answer(reader: asyncio.StreamReader) -> tuple[int, float | None]:
    """Read one answer: its status and its ``Retry-After`` (seconds), if any."""
    head = await reader.readuntil(b"\r\n\r\n")
    length, retry_after = 0, None
    for line in head.split(b"\r\n"):
        name = line[:15].lower()
        if name == b"content-length:":
            length = int(line[15:])
        elif name[:12] == b"retry-after:":
            retry_after = float(line[12:])
    if length:
        await reader.readexactly(length)
    return int(head[9:12]), retry_after


async def _worker(
    host: str, port: int, next_request: Callable[[], bytes | None], tally: _Tally, interval: float
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            raw = next_request()
            if raw is None:
                return
            sent = time.perf_counter()
            writer.write(raw)
            status, _ = await _answer(reader)
            now = tally.answered(status, sent)
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
        deadline = None if seconds is None else time.perf_counter() + seconds

        def next_request() -> bytes | None:
            if deadline is not None and time.perf_counter() >= deadline:
                return None
            return next(queue, None)

        tally = _Tally()
        await asyncio.gather(
            *(_worker(host, port, next_request, tally, interval) for _ in range(concurrency))
        )
        return tally.result()

    return asyncio.run(main())


class OpenResult(msgspec.Struct, kw_only=True):
    """An open load's figures: every attempt's answer (a retry is an attempt of its own)."""

    result: Result
    # arrivals offered (new orders, not counting retries)
    offered: int
    # attempts sent again after a 503 or 429 with Retry-After; orders that were still refused
    # after ``retries`` of them; arrivals the generator could not send (every connection busy)
    retried: int
    gave_up: int
    not_sent: int
    # requests sent on a new connection that closed without an answer
    lost: int


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
        tally = _Tally()
        counts = {"retried": 0, "gave_up": 0, "not_sent": 0, "lost": 0, "due": 0}
        pending: set[asyncio.Task[None]] = set()

        async def attempt(left: int) -> None:
            nonlocal opened
            reused = bool(idle)
            if reused:
                reader, writer = idle.pop()
            elif opened < connections:
                opened += 1
                reader, writer = await asyncio.open_connection(host, port)
            else:
                counts["not_sent"] += 1
                return
            while True:
                sent = time.perf_counter()
                try:
                    writer.write(request)
                    status, retry_after = await _answer(reader)
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    writer.close()
                    if not reused:
                        counts["lost"] += 1  # a new connection closed without an answer
                        opened -= 1
                        return
                    # the server closed a connection idle past its keep-alive: a client opens
                    # another and sends again
                    reused = False
                    reader, writer = await asyncio.open_connection(host, port)
            tally.answered(status, sent)
            idle.append((reader, writer))
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
        while rate > 0 and (elapsed := time.perf_counter() - tally.start) < seconds:
            due = int(elapsed * rate) + 1
            while offered < due:
                offered += 1
                spawn(retries)
            await asyncio.sleep(max(0.0, offered / rate - (time.perf_counter() - tally.start)))
        # the retries scheduled last, and every answer still on its way
        while pending or counts["due"]:
            await asyncio.sleep(0.05)
        for _, writer in idle:
            writer.close()
        return OpenResult(
            result=tally.result(),
            offered=offered,
            retried=counts["retried"],
            gave_up=counts["gave_up"],
            not_sent=counts["not_sent"],
            lost=counts["lost"],
        )

    return asyncio.run(main())
