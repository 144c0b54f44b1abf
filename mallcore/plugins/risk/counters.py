"""Velocity counters shared by every worker: orders per customer, IP, device and
address in sliding windows, and distinct customers per address, phone, IP and
device (刷单 rings: many accounts, one address or device).

Storage is in this process by default (``storage = "memory"``: each worker
counts its own orders), or Redis through the ``limits`` library (``storage =
"redis://..."``: its storage, connection handling and atomic
increment-with-expiry script), so every ``mallcore serve`` worker on one
Redis counts the same orders.

**Sliding windows** are estimated from two fixed buckets the length of the
window, as ``limits``' sliding-window strategy does: the current bucket's
count plus the previous bucket's, weighted by the share of the previous
bucket the window still covers (rounded down). The current bucket is
incremented with ``limits``' atomic increment, and the count it returns is the
one the order sees, so concurrent orders see distinct counts and a rule
"more than 5 in a minute" lets exactly five through, on one worker or many.

**Distinct customers** of a value (an address, a device...): a (value,
customer) pair is counted once per bucket (its own counter reaching 1 makes
it new); the estimate is the current bucket's distinct customers plus the
previous bucket's that have not been seen again, weighted as above.

Each placement takes one batch on memory storage (under one lock, so a
batch is atomic within the process) and two pipelined round trips on Redis
(the increments, then the distinct counts that depend on them). Previous
buckets no longer change, so their values are cached in the process.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

from mallcore.kernel import ConfigError

_WINDOW = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ORDER_DIMENSIONS = ("customer", "ip", "device", "address")
DISTINCT_DIMENSIONS = ("address", "phone", "ip", "device")
COUPON_DIMENSIONS = ("customer", "device")


def window_seconds(text: str, key: str) -> int:
    """``"1m"`` → 60; a bad window names the config ``key``."""
    match = _WINDOW.match(text)
    if match is None:
        raise ConfigError(f"config key '{key}': window {text!r} is not like 30s, 10m, 1h or 7d")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if not 10 <= seconds <= 90 * 86400:
        raise ConfigError(f"config key '{key}': window {text!r} must be between 10s and 90d")
    return seconds


class Backend:
    """One batch of increments and reads against a ``limits`` storage."""

    def batch(self, incrs: Sequence[tuple[str, int]], gets: Sequence[str]) -> tuple[list[int], list[int]]:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError


class MemoryBackend(Backend):
    """Counters in this process: a dictionary of (count, expiry), under one lock.

    ``limits``' own memory storage keeps the same counters but starts a timer
    thread every 10 ms that walks every key to expire old ones; measured on the
    placement path (``mallcore bench --scenario risk``) that thread alone cost
    more than the whole of the rest of risk. Here expired keys are dropped on
    touch and swept once per ``sweep_every`` increments, so a batch costs a few
    dictionary operations. The lock makes a batch atomic within the process.
    """

    def __init__(self, clock: Any = time.monotonic, sweep_every: int = 50_000) -> None:
        self.values: dict[str, list[float]] = {}  # key -> [count, expires at]
        self.lock = threading.Lock()
        self.clock = clock
        self.sweep_every = sweep_every
        self._since_sweep = 0

    def batch(self, incrs: Sequence[tuple[str, int]], gets: Sequence[str]) -> tuple[list[int], list[int]]:
        now = self.clock()
        values = self.values
        counted: list[int] = []
        read: list[int] = []
        with self.lock:
            for key, expiry in incrs:
                held = values.get(key)
                if held is None or held[1] <= now:
                    values[key] = [1, now + expiry]
                    counted.append(1)
                else:
                    held[0] += 1
                    counted.append(int(held[0]))
            for key in gets:
                held = values.get(key)
                read.append(0 if held is None or held[1] <= now else int(held[0]))
            self._since_sweep += len(incrs)
            if self._since_sweep >= self.sweep_every:
                self._since_sweep = 0
                for key in [k for k, v in values.items() if v[1] <= now]:
                    del values[key]
        return counted, read

    def clear(self) -> None:
        with self.lock:
            self.values.clear()


class RedisBackend(Backend):
    def __init__(self, uri: str, prefix: str) -> None:
        from limits.storage import storage_from_string

        # limits' Redis storage (the sync one: storage_from_string's type covers async too)
        self.storage: Any = cast(Any, storage_from_string(uri, key_prefix=prefix))
        self.client: Any = self.storage.get_connection()

    def batch(self, incrs: Sequence[tuple[str, int]], gets: Sequence[str]) -> tuple[list[int], list[int]]:
        if not incrs and not gets:
            return [], []
        storage = self.storage
        pipe = self.client.pipeline(transaction=False)
        for key, expiry in incrs:
            # limits' own atomic increment-with-expiry script, sent in one round trip
            storage.lua_incr_expire([storage.prefixed_key(key)], [expiry, 1], client=pipe)
        for key in gets:
            pipe.get(storage.prefixed_key(key))
        out = pipe.execute()
        n = len(incrs)
        return [int(v) for v in out[:n]], [int(v or 0) for v in out[n:]]

    def clear(self) -> None:
        self.storage.reset()


class Counters:
    """The center's counters (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        order_windows: Iterable[tuple[str, int]],
        customer_windows: Iterable[tuple[str, int]],
        coupon_windows: Iterable[tuple[str, int]],
        clock: Any = time.time,
    ) -> None:
        self.backend = backend
        self.order_windows = tuple(order_windows)
        self.customer_windows = tuple(customer_windows)
        self.coupon_windows = tuple(coupon_windows)
        self.clock = clock
        self._previous: dict[str, int] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Every signal name the counters can produce."""
        out = [f"{d}_orders_{w}" for d in ORDER_DIMENSIONS for w, _ in self.order_windows]
        out += [f"{d}_customers_{w}" for d in DISTINCT_DIMENSIONS for w, _ in self.customer_windows]
        out += [f"{d}_coupon_claims_{w}" for d in COUPON_DIMENSIONS for w, _ in self.coupon_windows]
        return out

    # -- previous buckets (immutable once the window moved on) -------------------------

    def _cached(self, keys: Sequence[str]) -> tuple[dict[str, int], list[str]]:
        known, missing = {}, []
        previous = self._previous
        for key in keys:
            value = previous.get(key)
            if value is None:
                missing.append(key)
            else:
                known[key] = value
        return known, missing

    def _remember(self, keys: Sequence[str], values: Sequence[int]) -> None:
        with self._lock:
            if len(self._previous) > 200_000:
                self._previous.clear()
            self._previous.update(zip(keys, values, strict=True))

    # -- an order ----------------------------------------------------------------------

    def observe(self, values: dict[str, str], customer: str) -> dict[str, int]:
        """Count one order with these normalised ``values`` (dimension → value; "" when
        unknown) by ``customer``; return the signals it sees (its own order included)."""
        now = self.clock()
        incrs: list[tuple[str, int]] = []
        prev_keys: list[str] = []
        orders: list[tuple[str, float]] = []  # (signal, weight) in the order of incrs
        windows = [
            (name, seconds, int(now // seconds), 1 - (now % seconds) / seconds)
            for name, seconds in self.order_windows
        ]
        for dim in ORDER_DIMENSIONS:
            value = values.get(dim, "")
            if not value:
                continue
            for name, seconds, b, weight in windows:
                head = f"o:{dim}:{seconds}:"
                incrs.append((f"{head}{b}:{value}", 2 * seconds))
                prev_keys.append(f"{head}{b - 1}:{value}")
                orders.append((f"{dim}_orders_{name}", weight))
        distinct: list[tuple[str, str, str, float]] = []
        for dim in DISTINCT_DIMENSIONS:
            value = values.get(dim, "")
            if not value or not customer:
                continue
            for name, seconds in self.customer_windows:
                b = int(now // seconds)
                base = f"{dim}:{seconds}"
                incrs.append((f"p:{base}:{b}:{value}:{customer}", 2 * seconds))
                prev_keys.append(f"p:{base}:{b - 1}:{value}:{customer}")
                prev_keys.append(f"d:{base}:{b - 1}:{value}")
                weight = 1 - (now % seconds) / seconds
                distinct.append(
                    (f"{dim}_customers_{name}", f"d:{base}:{b}:{value}", f"x:{base}:{b}:{value}", weight)
                )
        known, missing = self._cached(prev_keys)
        counted, read = self.backend.batch(incrs, missing)
        if missing:
            self._remember(missing, read)
            known.update(zip(missing, read, strict=True))
        signals: dict[str, int] = {}
        for i, (signal, weight) in enumerate(orders):
            signals[signal] = counted[i] + int(known[prev_keys[i]] * weight)
        if not distinct:
            return signals
        # Second step: each distinct counter moves only if its pair was new.
        offset = len(orders)
        step_incrs: list[tuple[str, int]] = []
        step_gets: list[str] = []
        plan = []
        for j, (signal, d_key, x_key, weight) in enumerate(distinct):
            i = offset + j
            pair_new = counted[i] == 1
            seen_before = known[prev_keys[offset + 2 * j]] > 0
            d_prev = known[prev_keys[offset + 2 * j + 1]]
            expiry = incrs[i][1]
            plan.append((signal, pair_new, pair_new and seen_before, d_prev, weight))
            if pair_new:
                step_incrs.append((d_key, expiry))
            else:
                step_gets.append(d_key)
            if pair_new and seen_before:
                step_incrs.append((x_key, expiry))
            else:
                step_gets.append(x_key)
        got_incr, got_read = self.backend.batch(step_incrs, step_gets)
        ai = bi = 0
        for signal, d_from_incr, x_from_incr, d_prev, weight in plan:
            if d_from_incr:
                d_cur, ai = got_incr[ai], ai + 1
            else:
                d_cur, bi = got_read[bi], bi + 1
            if x_from_incr:
                overlap, ai = got_incr[ai], ai + 1
            else:
                overlap, bi = got_read[bi], bi + 1
            signals[signal] = d_cur + int(max(d_prev - overlap, 0) * weight)
        return signals

    # -- coupon claims (from the promotion center's events) -------------------------------

    def claim(self, customer: str, device: str) -> None:
        now = self.clock()
        incrs = []
        for dim, value in (("customer", customer), ("device", device)):
            if not value:
                continue
            for _, seconds in self.coupon_windows:
                b = int(now // seconds)
                incrs.append((f"c:{dim}:{seconds}:{b}:{value}", 2 * seconds))
        self.backend.batch(incrs, [])

    def coupon_claims(self, customer: str, device: str) -> dict[str, int]:
        now = self.clock()
        gets: list[str] = []
        plan: list[tuple[str, float]] = []
        for dim, value in (("customer", customer), ("device", device)):
            for name, seconds in self.coupon_windows:
                if not value:
                    continue
                bucket, weight = divmod(now, seconds)
                b = int(bucket)
                gets += [f"c:{dim}:{seconds}:{b}:{value}", f"c:{dim}:{seconds}:{b - 1}:{value}"]
                plan.append((f"{dim}_coupon_claims_{name}", 1 - weight / seconds))
        _, read = self.backend.batch([], gets)
        out = {f"{d}_coupon_claims_{name}": 0 for d in COUPON_DIMENSIONS for name, _ in self.coupon_windows}
        for i, (signal, weight) in enumerate(plan):
            out[signal] = read[2 * i] + int(read[2 * i + 1] * weight)
        return out
