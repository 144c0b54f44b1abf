"""Rate limits (429 rate_limited, per IP and per caller, in memory or Redis) and the
write admission line (503 overloaded instead of a timeout)."""

import socket
import threading
import uuid
from typing import Any

import pytest
import structlog

from mallcore.kernel import Center, hookimpl
from mallcore.kernel.http.limits import limiter
from tests.helpers import order_body, snapshot


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def limits(**values):
    return {"http": {"limits": {"enabled": True, **values}}}


def test_per_ip_limit_answers_429_with_retry_after(mallcore):
    kernel = mallcore.kernel(config=limits(per_ip="3/minute", per_principal=""))
    anonymous = mallcore.client(kernel, None)
    assert [anonymous.get("/catalog/products").status_code for _ in range(3)] == [200] * 3
    r = anonymous.get("/catalog/products")
    assert r.status_code == 429
    assert r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # operations probes are never limited
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/metrics").status_code == 200


def test_per_principal_limit_counts_each_caller_apart(mallcore):
    kernel = mallcore.kernel(config=limits(per_ip="", per_principal="2/minute"))
    alice = mallcore.client(kernel, "customer", "alice")
    bob = mallcore.client(kernel, "customer", "bob")
    assert [alice.get("/orders").status_code for _ in range(2)] == [200, 200]
    r = alice.get("/orders")
    assert r.status_code == 429 and r.json()["code"] == "rate_limited" and r.headers["retry-after"]
    assert bob.get("/orders").status_code == 200
    # a bad token is the route's business (401), not counted against anyone
    stranger = mallcore.client(kernel, None)
    for _ in range(3):
        assert stranger.get("/orders", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_webhooks_count_in_their_own_bucket_not_the_per_ip_limit(mallcore):
    """A provider's burst of callbacks is neither refused because the address's clients used up
    ``per_ip`` nor uses it up for them; past ``per_webhook`` it hears 429 with Retry-After."""
    import msgspec

    from mallcore.kernel.signing import sign

    secret = "test-webhook-secret"
    kernel = mallcore.kernel(
        ("catalog", "payment", "wms", "tms"),
        settings={"payment": {"webhook_secrets": {"sandbox": secret}}},
        config=limits(per_ip="3/minute", per_principal="", per_webhook="5/minute"),
    )
    client = mallcore.client(kernel, None)

    def callback(n, route="/payment/webhooks/sandbox"):
        body = msgspec.json.encode({"id": f"evt-{n}", "type": "payment.refreshed", "reference": "r"})
        headers = {"X-Mallcore-Signature": sign(secret, body), "Content-Type": "application/json"}
        return client.post(route, content=body, headers=headers)

    # the address's clients use up per_ip...
    assert [client.get("/catalog/products").status_code for _ in range(4)] == [200, 200, 200, 429]
    # ...the provider's callbacks still get through, up to their own bucket (carriers' too)
    answers = [callback(n).status_code for n in range(4)] + [callback(9, "/tms/webhooks/sandbox").status_code]
    assert 429 not in answers, answers
    r = callback(10)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # and the clients' count was not touched by the callbacks: still exactly refused, not more
    assert client.get("/catalog/products").status_code == 429


def test_a_rate_limited_write_writes_nothing(mallcore):
    kernel = mallcore.kernel(config=limits(per_ip="", per_principal="100/minute"))
    mallcore.product(kernel)
    alice = mallcore.client(kernel, "customer", "alice")
    limiter(kernel).per_principal = limiter(kernel).rules("1/minute")
    assert alice.post("/orders", json=order_body()).status_code == 201
    before = snapshot(kernel)
    r = alice.post("/orders", json=order_body())
    assert r.status_code == 429
    assert snapshot(kernel) == before


@pytest.mark.skipif(not redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_limits_in_redis_hold_across_processes(mallcore):
    # two kernels stand for two worker processes: each has its own app and limiter
    config = limits(per_ip="", per_principal="3/minute", storage="redis://127.0.0.1:6379/0")
    one, two = mallcore.kernel(config=config), mallcore.kernel(config=config)
    subject = f"carol-{uuid.uuid4().hex[:8]}"
    first, second = mallcore.client(one, "customer", subject), mallcore.client(two, "customer", subject)
    answers = [c.get("/orders").status_code for c in (first, second, first, second)]
    assert answers == [200, 200, 200, 429]
    assert mallcore.client(one, None).get("/ready").json()["checks"].get("limits") in (None, "ok")


def test_an_unreachable_limit_storage_lets_requests_through_and_is_not_ready(mallcore):
    config = limits(per_ip="1/minute", per_principal="1/minute", storage="redis://127.0.0.1:1/0")
    kernel = mallcore.kernel(config=config, migrate=True)
    alice = mallcore.client(kernel, "customer", "alice")
    assert [alice.get("/orders").status_code for _ in range(3)] == [200] * 3
    r = mallcore.client(kernel, None).get("/ready")
    assert r.status_code == 503 and "unreachable" in r.json()["checks"]["limits"]


class Gate(Center):
    """Holds every placement until released."""

    name = "gate"

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def order_pre_validate(self, ctx):
        self.entered.set()
        assert self.release.wait(10)


def test_writes_past_the_admission_line_get_503_overloaded_at_once(mallcore):
    gate = Gate()
    kernel = mallcore.kernel(
        extra=[gate], config={"http": {"overload": {"max_writes_in_flight": 1, "max_wait_ms": 50}}}
    )
    mallcore.product(kernel)
    alice = mallcore.client(kernel, "customer", "alice")
    held: list = []
    first = threading.Thread(target=lambda: held.append(alice.post("/orders", json=order_body())))
    first.start()
    try:
        assert gate.entered.wait(10)
        before = snapshot(kernel)
        with structlog.testing.capture_logs() as logs:
            r = alice.post("/orders", json=order_body())
        assert r.status_code == 503
        assert r.json()["code"] == "overloaded" and r.headers["retry-after"] == "1"
        # shedding load is the line working, not an error: its access log line is a warning
        (line,) = [e for e in logs if e["event"] == "http.request"]
        assert (line["code"], line["log_level"]) == ("overloaded", "warning")
        assert snapshot(kernel) == before
        # reads are not queued
        assert alice.get("/orders").status_code == 200
    finally:
        gate.release.set()
        first.join(10)
    assert held[0].status_code == 201
    assert alice.post("/orders", json=order_body()).status_code == 201
    assert kernel.metrics.admission_wait.collect()[0].samples  # waits are measured


def test_a_write_woken_after_the_wait_bound_is_refused_not_admitted_late():
    """On a machine short of CPU the event loop runs late: a place freed while the loop was
    blocked wakes the waiter after ``max_wait_ms``. It is refused (and the place handed on),
    so no admitted write has waited in the line longer than the bound."""
    import asyncio
    import time

    from mallcore.kernel.config import OverloadConfig
    from mallcore.kernel.http.limits import Admission

    seen: list[tuple[float, str]] = []
    line = Admission(OverloadConfig(max_writes_in_flight=1, max_wait_ms=50), lambda s, o: seen.append((s, o)))

    async def run():
        assert await line.enter()  # the one place
        waiter = asyncio.create_task(line.enter())
        await asyncio.sleep(0)  # the waiter is in line
        time.sleep(0.12)  # the loop is starved past the bound...
        line.leave()  # ...and the place comes free before its timer could fire
        late = await waiter
        # the place was handed on: the next write gets it at once
        again = await line.enter()
        return late, again

    late, again = asyncio.run(run())
    assert late is False and again is True
    assert [o for _, o in seen] == ["admitted", "refused", "admitted"]
    assert seen[1][0] > 0.05
    assert all(s <= 0.05 for s, o in seen if o == "admitted")


def test_a_write_that_finds_a_place_free_is_admitted_even_if_the_process_pauses(monkeypatch):
    """A whole-process pause (a long garbage collection, a CPU-starved host) between reading
    the clock twice is not a wait in the line: a write that found a place free takes it and is
    never refused as "woken late" (CI saw a lone payment answered 503 that way)."""
    import asyncio
    import itertools

    from mallcore.kernel.config import OverloadConfig
    from mallcore.kernel.http import limits

    clock = itertools.count(0.0, 2.0)  # every reading of the clock is 2 s after the one before
    monkeypatch.setattr(limits.time, "perf_counter", lambda: next(clock))
    seen: list[tuple[float, str]] = []
    line = limits.Admission(
        OverloadConfig(max_writes_in_flight=2, max_wait_ms=50), lambda s, o: seen.append((s, o))
    )

    async def run():
        return [await line.enter(), await line.enter()]

    assert asyncio.run(run()) == [True, True]
    assert [o for _, o in seen] == ["admitted", "admitted"]


def test_the_adaptive_line_lets_a_burst_wait_but_cuts_waits_under_sustained_overload():
    """The controller, driven with made-up times (seconds): ``max_wait_ms`` while the line
    drains, ``target_wait_ms`` once it stands (a write refused, or every admitted write waiting
    past the target for an interval), and back to ``max_wait_ms`` an interval after the last
    refusal."""
    from mallcore.kernel.config import OverloadConfig
    from mallcore.kernel.http.limits import Shedding

    line = Shedding(OverloadConfig(max_wait_ms=1000, target_wait_ms=5, interval_ms=100))
    assert line.bound(0.0) == 1.0
    # a burst: long waits, but the line drains (a short wait) within every interval
    for t in (0.00, 0.05, 0.09):
        line.waited(0.3, True, t)
    line.waited(0.001, True, 0.12)
    for t in (0.15, 0.20):
        line.waited(0.3, True, t)
    assert not line.shedding(0.21) and line.bound(0.21) == 1.0
    # the line stands: every admitted write waited past the target for a whole interval
    line.waited(0.3, True, 0.26)
    assert line.shedding(0.26) and line.bound(0.26) == 0.005
    # writes refused at the target keep it shedding...
    line.waited(0.005, False, 0.30)
    line.waited(0.005, False, 0.38)
    assert line.bound(0.47) == 0.005
    # ...and an interval without a refusal ends it
    assert not line.shedding(0.48) and line.bound(0.48) == 1.0
    # one refusal (a write that waited max_wait_ms in vain) is overload at once
    line.waited(1.0, False, 2.0)
    assert line.bound(2.0) == 0.005 and line.bound(2.1) == 1.0


def test_the_fixed_line_always_waits_max_wait_ms():
    from mallcore.kernel.config import OverloadConfig
    from mallcore.kernel.http.limits import Shedding

    line = Shedding(OverloadConfig(max_wait_ms=50, line="fixed"))
    line.waited(0.05, False, 1.0)
    for t in (1.0, 1.1, 1.2):
        line.waited(0.04, True, t)
    assert not line.shedding(1.2) and line.bound(1.2) == 0.05
    # a target above the wait is the wait
    assert Shedding(OverloadConfig(max_wait_ms=3, target_wait_ms=5)).target == 0.003


def made_up_line(monkeypatch: Any, config: Any) -> tuple[list[float], list[float], list[Any], Any]:
    """An admission line on a made-up clock (``now[0]``, seconds) whose waits never time out
    by themselves (the test decides who waits how long): (now, the bound of every wait
    started, every (wait, outcome) observed, the line)."""
    import asyncio

    from mallcore.kernel.http import limits

    now = [0.0]
    monkeypatch.setattr(limits.time, "perf_counter", lambda: now[0])
    bounds: list[float] = []
    real_timeout = asyncio.timeout

    def timeout(delay):
        bounds.append(delay)
        return real_timeout(None)

    monkeypatch.setattr(limits.asyncio, "timeout", timeout)
    seen: list[tuple[float, str]] = []
    return now, bounds, seen, limits.Admission(config, lambda s, o: seen.append((s, o)))


def test_the_admission_line_waits_the_controllers_bound(monkeypatch):
    """Wired up: after a refusal the next writes wait ``target_wait_ms``, not ``max_wait_ms``; one
    the loop wakes with a place after the target but within ``max_wait_ms`` takes it (refusing
    it would leave the place empty), one woken after ``max_wait_ms`` does not. The clock is made
    up; no test timing."""
    import asyncio

    from mallcore.kernel.config import OverloadConfig

    now, bounds, seen, line = made_up_line(
        monkeypatch,
        OverloadConfig(max_writes_in_flight=1, max_wait_ms=1000, target_wait_ms=5, interval_ms=100),
    )

    async def run():
        assert await line.enter()  # the one place
        first = asyncio.create_task(line.enter())
        await asyncio.sleep(0)  # waiting, bound max_wait_ms
        now[0] = 1.5  # the place comes free after the bound: refused, handed on
        line.leave()
        assert await first is False
        assert await line.enter()  # the place handed on is free: taken
        second = asyncio.create_task(line.enter())
        await asyncio.sleep(0)  # waiting, bound target_wait_ms (the line sheds)
        now[0] = 1.504  # within the target: admitted
        line.leave()
        assert await second is True
        third = asyncio.create_task(line.enter())
        await asyncio.sleep(0)
        now[0] = 1.54  # woken late, past the target but within max_wait_ms: admitted
        line.leave()
        assert await third is True
        now[0] = 1.575  # (the last place came free 36 ms after the one before: the next is due now)
        fourth = asyncio.create_task(line.enter())
        await asyncio.sleep(0)
        now[0] = 2.6  # woken after max_wait_ms: refused though a place came free
        line.leave()
        return await fourth

    assert asyncio.run(run()) is False
    assert bounds == [1.0, 0.005, 0.005, 0.005]
    assert [o for _, o in seen] == ["admitted", "refused", "admitted", "admitted", "admitted", "refused"]


def test_a_write_that_could_not_get_a_place_within_the_wait_is_refused_at_once(monkeypatch):
    """Under overload the line knows how fast places come free to waiting writes: a write that
    joins so far back that it could not get one within the wait is refused at once, without a
    timer or a wait (each costs the busy event loop, and the client learns sooner). Once the
    line has drained, nothing is assumed of it. The clock is made up; no test timing."""
    import asyncio

    from mallcore.kernel.config import OverloadConfig

    now, timers, seen, line = made_up_line(
        monkeypatch, OverloadConfig(max_writes_in_flight=1, max_wait_ms=100, line="fixed")
    )

    async def run():
        assert await line.enter()  # the one place
        waiting = [asyncio.create_task(line.enter()) for _ in range(3)]
        await asyncio.sleep(0)
        assert len(timers) == 3  # nothing is known of the line yet: all three wait
        now[0] = 0.03
        line.leave()  # to the first waiter
        now[0] = 0.06
        line.leave()  # to the second: a place every 30 ms
        assert [await w for w in waiting[:2]] == [True, True]
        # one write waits (the third); a new one would be second in line: 60 ms, it waits
        fourth = asyncio.create_task(line.enter())
        await asyncio.sleep(0)
        assert len(timers) == 4
        # third in line (90 ms) still waits; fourth in line (120 ms > 100) is refused at once
        fifth = asyncio.create_task(line.enter())
        await asyncio.sleep(0)
        assert len(timers) == 5
        assert await line.enter() is False
        assert len(timers) == 5 and seen[-1] == (0.0, "refused")
        for _ in range(3):  # the line drains: each waiter in turn, then the place is free
            line.leave()
        assert [await waiting[2], await fourth, await fifth] == [True, True, True]
        line.leave()
        # drained: a burst starts unknown again, whatever the last estimate was
        assert await line.enter()
        burst = [asyncio.create_task(line.enter()) for _ in range(5)]
        await asyncio.sleep(0)
        assert len(timers) == 10
        for _ in range(5):
            line.leave()
        return [await b for b in burst]

    assert asyncio.run(run()) == [True] * 5


def test_retry_after_grows_while_the_line_keeps_refusing_and_is_spread():
    """A burst's refusals say 1 s. While writes keep being refused (no interval without one),
    Retry-After grows by a second every four intervals, up to ``max_retry_after_s``, spread
    over [n, 2n) so that refused clients do not all come back in the same second; once an
    interval passes without a refusal it is 1 s again. Made-up times (seconds)."""
    from mallcore.kernel.config import OverloadConfig
    from mallcore.kernel.http.limits import Shedding

    line = Shedding(OverloadConfig(interval_ms=500, max_retry_after_s=5))
    assert line.retry_after(0.0) == 1  # nothing refused yet
    t = 0.0
    line.waited(0.05, False, t)
    assert line.retry_after(t) == 1  # a burst's first refusal
    while t < 4.0:  # refused every 100 ms for 4 s: 2 s now, n = 1 + 4 // 2 = 3
        t += 0.1
        line.waited(0.05, False, t)
    assert sorted({line.retry_after(t) for _ in range(6)}) == [3, 4, 5]
    while t < 30.0:
        t += 0.1
        line.waited(0.05, False, t)
    assert {line.retry_after(t) for _ in range(6)} == {5}  # capped
    # an interval without a refusal: the flood is over, a burst starts from 1 s again
    assert line.retry_after(t + 0.6) == 1
    line.waited(0.05, False, t + 0.6)
    assert line.retry_after(t + 0.6) == 1
