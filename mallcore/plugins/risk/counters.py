"""Velocity counters shared by every worker: orders per customer, IP, device and
address in sliding windows, distinct customers per address, phone, IP and device
(刷单 rings: many accounts, one address or device), and coupon claims per
customer and device.

Storage is in this process by default (``storage = "memory"``: each worker
counts its own orders), or Redis (``storage = "redis://..."``, through the
``limits`` library's storage: its URI forms, Sentinel support and connection
handling), so every ``mallcore serve`` worker on one Redis counts the same
orders.

**Sliding windows** are estimated from two fixed buckets the length of the
window, as ``limits``' sliding-window strategy does: the current bucket's
count plus the previous bucket's, weighted by the share of the previous
bucket the window still covers (rounded down). The count an order sees is the
one its own increment returned, so concurrent orders see distinct counts and
a rule "more than 5 in a minute" lets exactly five through, on one worker or
many.

**Distinct customers** of a value (an address, a device...): a customer is
counted once per bucket; the estimate is the current bucket's distinct
customers plus the previous bucket's that have not been seen again, weighted
as above.

**One atomic step per placement.** Every counter of a placement is counted and
read in one step: on memory storage under one lock, on Redis in one round trip
(a Lua script, atomic on the server: a second worker's placement is counted
wholly before or after it). Keys live twice the window and expire by
themselves on Redis; in memory, expired values are swept every
``sweep_every`` placements.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from typing import Any, cast

import msgspec

from mallcore.kernel import ConfigError

_WINDOW = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ORDER_DIMENSIONS = ("customer", "ip", "device", "address")
DISTINCT_DIMENSIONS = ("address", "phone", "ip", "device")
COUPON_DIMENSIONS = ("customer", "device")

Window = tuple[str, int]  # (name as in the signal, "1h"; seconds)


def window_seconds(text: str, key: str) -> int:
    """``"1m"`` → 60; a bad window names the config ``key``."""
    match = _WINDOW.match(text)
    if match is None:
        raise ConfigError(f"config key '{key}': window {text!r} is not like 30s, 10m, 1h or 7d")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if not 10 <= seconds <= 90 * 86400:
        raise ConfigError(f"config key '{key}': window {text!r} must be between 10s and 90d")
    return seconds


class Plan:
    """Which counters exist: per dimension, its signals and their windows in seconds."""

    def __init__(
        self,
        order_windows: Iterable[Window],
        customer_windows: Iterable[Window],
        coupon_windows: Iterable[Window],
    ) -> None:
        def signals(dims: tuple[str, ...], kind: str, windows: Iterable[Window]) -> dict[str, tuple]:
            # shortest first: a record lives twice its last (longest) window
            ordered = sorted(windows, key=lambda w: w[1])
            return {d: tuple((f"{d}_{kind}_{name}", seconds) for name, seconds in ordered) for d in dims}

        self.orders = signals(ORDER_DIMENSIONS, "orders", order_windows)
        self.distinct = signals(DISTINCT_DIMENSIONS, "customers", customer_windows)
        self.coupons = signals(COUPON_DIMENSIONS, "coupon_claims", coupon_windows)

    def names(self) -> list[str]:
        groups = (self.orders, self.distinct, self.coupons)
        return [name for group in groups for windows in group.values() for name, _ in windows]


def _weight(now: float, seconds: int) -> float:
    """The share of the previous bucket a window ending now still covers."""
    return 1 - (now % seconds) / seconds


class Backend:
    """Where the counts live; every method is one atomic step (see the module docstring)."""

    plan: Plan

    def observe(self, values: dict[str, str], customer: str, now: float) -> dict[str, int]:
        raise NotImplementedError

    def claim(self, values: dict[str, str], now: float) -> None:
        raise NotImplementedError

    def claims(self, values: dict[str, str], now: float) -> dict[str, int]:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError


class MemoryBackend(Backend):
    """Counts in this process, one small record per (dimension, value), under one lock.

    ``limits``' own memory storage keeps counters as keys but starts a timer
    thread every 10 ms that walks every key to expire old ones; measured on the
    placement path (``mallcore bench --scenario risk``) that thread alone cost
    more than the rest of risk. Here a value's record holds every window's
    current and previous bucket, so a placement costs one dictionary read per
    dimension, and expired records are swept every ``sweep_every`` steps.
    """

    def __init__(self, sweep_every: int = 20_000) -> None:
        # (kind, dimension, value) -> [expires at, per window: [bucket, current, previous]]
        #   (distinct customers: [bucket, current set, previous set, customers in both])
        self.records: dict[tuple[str, str, str], list[Any]] = {}
        self.lock = threading.Lock()
        self.sweep_every = sweep_every
        self._steps = 0

    def _counts(self, kind: str, dim: str, value: str, windows: tuple, now: float, out: dict) -> None:
        """Count one more of ``value`` in every window (``windows``: (signal, seconds)) into ``out``."""
        record = self.records.get((kind, dim, value))
        if record is None:
            record = self.records[(kind, dim, value)] = [0.0] + [[-1, 0, 0] for _ in windows]
        record[0] = now + 2 * windows[-1][1]
        for i, (signal, seconds) in enumerate(windows, 1):
            bucket, state = int(now // seconds), record[i]
            if state[0] == bucket:
                state[1] += 1
            else:
                state[2] = state[1] if state[0] == bucket - 1 else 0
                state[0], state[1] = bucket, 1
            out[signal] = state[1] + int(state[2] * (1 - (now % seconds) / seconds)) if state[2] else state[1]

    def _read(self, kind: str, dim: str, value: str, windows: tuple, now: float, out: dict) -> None:
        record = self.records.get((kind, dim, value))
        for i, (signal, seconds) in enumerate(windows, 1):
            bucket = int(now // seconds)
            state = record[i] if record is not None else (-1, 0, 0)
            current = state[1] if state[0] == bucket else 0
            previous = state[2] if state[0] == bucket else state[1] if state[0] == bucket - 1 else 0
            out[signal] = current + int(previous * _weight(now, seconds))

    def _distinct(self, dim: str, value: str, customer: str, windows: tuple, now: float, out: dict) -> None:
        record = self.records.get(("d", dim, value))
        if record is None:
            record = self.records[("d", dim, value)] = [0.0] + [[-1, set(), set(), 0] for _ in windows]
        record[0] = now + 2 * windows[-1][1]
        for i, (signal, seconds) in enumerate(windows, 1):
            bucket, state = int(now // seconds), record[i]
            if state[0] != bucket:
                state[2] = state[1] if state[0] == bucket - 1 else set()
                state[0], state[1], state[3] = bucket, set(), 0
            current, previous = state[1], state[2]
            if customer not in current:
                current.add(customer)
                if customer in previous:
                    state[3] += 1
            left = len(previous) - state[3]
            out[signal] = len(current) + int(left * (1 - (now % seconds) / seconds)) if left else len(current)

    def observe(self, values: dict[str, str], customer: str, now: float) -> dict[str, int]:
        plan = self.plan
        out: dict[str, int] = {}
        with self.lock:
            for dim, windows in plan.orders.items():
                value = values.get(dim)
                if value and windows:
                    self._counts("o", dim, value, windows, now, out)
            if customer:
                for dim, windows in plan.distinct.items():
                    value = values.get(dim)
                    if value and windows:
                        self._distinct(dim, value, customer, windows, now, out)
            self._steps += 1
            if self._steps >= self.sweep_every:
                self._sweep(now)
        return out

    def claim(self, values: dict[str, str], now: float) -> None:
        ignored: dict[str, int] = {}
        with self.lock:
            for dim, windows in self.plan.coupons.items():
                value = values.get(dim)
                if value and windows:
                    self._counts("c", dim, value, windows, now, ignored)

    def claims(self, values: dict[str, str], now: float) -> dict[str, int]:
        out: dict[str, int] = {}
        with self.lock:
            for dim, windows in self.plan.coupons.items():
                self._read("c", dim, values.get(dim) or "", windows, now, out)
        return out

    def _sweep(self, now: float) -> None:
        self._steps = 0
        for key in [k for k, record in self.records.items() if record[0] <= now]:
            del self.records[key]

    def clear(self) -> None:
        with self.lock:
            self.records.clear()


# One placement's counting, atomic on the Redis server. ARGV[1] is JSON: the key
# prefix ``p``, the customer ``c``, the (dimension, value) pairs counted for orders
# ``o`` and for distinct customers ``d``, and the windows of each (``ow``, ``dw``:
# [seconds, current bucket, weight of the previous bucket, time to live]). Returns
# each estimate, in that order. (The keys are built here rather than passed in KEYS:
# the command stays a few bytes long, which is most of the client's cost; this rules
# out Redis Cluster, which the settings refuse.)
OBSERVE = """
local a = cjson.decode(ARGV[1])
local p, c, out = a.p, a.c, {}
local function incr(key, ttl)
  local v = redis.call('INCR', key)
  if v == 1 then redis.call('EXPIRE', key, ttl) end
  return v
end
local function get(key)
  return tonumber(redis.call('GET', key) or '0')
end
for _, dv in ipairs(a.o) do
  for _, w in ipairs(a.ow) do
    local base = p .. 'o:' .. dv[1] .. ':' .. w[1] .. ':'
    local now = incr(base .. w[2] .. ':' .. dv[2], w[4])
    out[#out + 1] = now + math.floor(get(base .. (w[2] - 1) .. ':' .. dv[2]) * w[3])
  end
end
for _, dv in ipairs(a.d) do
  for _, w in ipairs(a.dw) do
    local tail = ':' .. dv[1] .. ':' .. w[1] .. ':'
    local here, before = tail .. w[2] .. ':' .. dv[2], tail .. (w[2] - 1) .. ':' .. dv[2]
    local new = incr(p .. 'p' .. here .. ':' .. c, w[4]) == 1
    local d, both
    if new then d = incr(p .. 'd' .. here, w[4]) else d = get(p .. 'd' .. here) end
    if new and get(p .. 'p' .. before .. ':' .. c) > 0 then
      both = incr(p .. 'x' .. here, w[4])
    else
      both = get(p .. 'x' .. here)
    end
    local left = get(p .. 'd' .. before) - both
    if left < 0 then left = 0 end
    out[#out + 1] = d + math.floor(left * w[3])
  end
end
return out
"""


class RedisBackend(Backend):
    """Counts in Redis, shared by every worker; one round trip per placement."""

    def __init__(self, uri: str, prefix: str) -> None:
        from limits.storage import storage_from_string

        # limits' Redis storage (the sync one: storage_from_string's type covers async too)
        self.storage: Any = cast(Any, storage_from_string(uri, key_prefix=prefix))
        self.client: Any = self.storage.get_connection()
        self.script = self.client.register_script(OBSERVE)
        self.prefix = self.storage.prefixed_key("")

    def _key(self, *parts: object) -> str:
        return cast(str, self.storage.prefixed_key(":".join(map(str, parts))))

    def observe(self, values: dict[str, str], customer: str, now: float) -> dict[str, int]:
        plan = self.plan
        orders = [(dim, values[dim]) for dim in plan.orders if values.get(dim)]
        distinct = [(dim, values[dim]) for dim in plan.distinct if values.get(dim)] if customer else []
        order_windows = next(iter(plan.orders.values()), ())
        distinct_windows = next(iter(plan.distinct.values()), ())
        if not (orders and order_windows) and not (distinct and distinct_windows):
            return {}

        def spec(windows: tuple) -> list[tuple[int, int, float, int]]:
            return [(s, int(now // s), _weight(now, s), 2 * s) for _, s in windows]

        payload = {
            "p": self.prefix,
            "c": customer,
            "o": orders if order_windows else [],
            "ow": spec(order_windows),
            "d": distinct if distinct_windows else [],
            "dw": spec(distinct_windows),
        }
        got = iter(self.script(keys=[], args=[msgspec.json.encode(payload)]))
        out: dict[str, int] = {}
        for group, pairs in ((plan.orders, payload["o"]), (plan.distinct, payload["d"])):
            for dim, _ in pairs:
                for signal, _ in group[dim]:
                    out[signal] = int(next(got))
        return out

    def claim(self, values: dict[str, str], now: float) -> None:
        storage, pipe = self.storage, self.client.pipeline(transaction=False)
        for dim, windows in self.plan.coupons.items():
            value = values.get(dim)
            if not value:
                continue
            for _, seconds in windows:
                # limits' own atomic increment-with-expiry script
                key = self._key("c", dim, seconds, int(now // seconds), value)
                storage.lua_incr_expire([key], [2 * seconds, 1], client=pipe)
        pipe.execute()

    def claims(self, values: dict[str, str], now: float) -> dict[str, int]:
        keys: list[str] = []
        plan: list[tuple[str, float]] = []
        out: dict[str, int] = {}
        for dim, windows in self.plan.coupons.items():
            value = values.get(dim)
            for signal, seconds in windows:
                out[signal] = 0
                if value:
                    b = int(now // seconds)
                    keys += [
                        self._key("c", dim, seconds, b, value),
                        self._key("c", dim, seconds, b - 1, value),
                    ]
                    plan.append((signal, _weight(now, seconds)))
        if keys:
            got = [int(v or 0) for v in self.client.mget(keys)]
            for i, (signal, w) in enumerate(plan):
                out[signal] = got[2 * i] + int(got[2 * i + 1] * w)
        return out

    def clear(self) -> None:
        self.storage.reset()


class Counters:
    """The center's counters: a :class:`Plan` on a :class:`Backend`."""

    def __init__(
        self,
        backend: Backend,
        order_windows: Iterable[Window],
        customer_windows: Iterable[Window],
        coupon_windows: Iterable[Window],
        clock: Any = time.time,
    ) -> None:
        self.plan = Plan(order_windows, customer_windows, coupon_windows)
        self.backend = backend
        backend.plan = self.plan
        self.clock = clock

    def names(self) -> list[str]:
        """Every signal name the counters can produce."""
        return self.plan.names()

    def observe(self, values: dict[str, str], customer: str) -> dict[str, int]:
        """Count one order with these normalised ``values`` (dimension → value; "" when
        unknown) by ``customer``; the signals it sees (its own order included)."""
        return self.backend.observe(values, customer, self.clock())

    def claim(self, customer: str, device: str) -> None:
        """Count one coupon claim (the promotion center's ``promotion.coupon_claimed``)."""
        self.backend.claim({"customer": customer, "device": device}, self.clock())

    def coupon_claims(self, customer: str, device: str) -> dict[str, int]:
        """Claims by ``customer`` and on ``device`` in each coupon window."""
        return self.backend.claims({"customer": customer, "device": device}, self.clock())
