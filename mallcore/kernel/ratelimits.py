"""The kernel's rate-limit counters: one ``limits`` storage per kernel, shared by
every kind of limit (requests per IP and per caller in :mod:`.http.limits`,
failed token attempts in :mod:`.auth`), in memory or in Redis across workers."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import cast

import structlog
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import STRATEGIES, RateLimiter

from .config import LimitsConfig

log = structlog.get_logger("mallcore.limits")


class Limiter:
    """Counters in one ``limits`` storage, shared by every category of limit of a kernel."""

    def __init__(self, config: LimitsConfig) -> None:
        self.config = config
        # the sync storage (storage_from_string's type covers the async ones too)
        self.storage: Storage = cast(Storage, storage_from_string(config.storage, key_prefix="mallcore"))
        self.strategy: RateLimiter = STRATEGIES[config.strategy](self.storage)
        # A remote storage is called from a worker thread, never on the event loop.
        self.remote = not config.storage.startswith("memory://")
        self.per_ip = self.rules(config.per_ip)
        self.per_principal = self.rules(config.per_principal)
        self.per_webhook = self.rules(config.per_webhook)
        self._failing_since: float | None = None

    @staticmethod
    def rules(text: str) -> list[RateLimitItem]:
        """``"120/minute;10/second"`` as ``limits`` items (empty text: no limit)."""
        return list(parse_many(text)) if text.strip() else []

    def hit(self, category: str, key: str, rules: Sequence[RateLimitItem]) -> int | None:
        """Count one request of ``key``; ``None`` if it is within every rule, else the seconds to wait.

        A storage that fails lets the request through (and is logged once a minute).
        """
        try:
            for rule in rules:
                if not self.strategy.hit(rule, category, key):
                    reset, _ = self.strategy.get_window_stats(rule, category, key)
                    return max(1, math.ceil(reset - time.time()))
            self._failing_since = None
            return None
        except Exception as exc:
            now = time.monotonic()
            if self._failing_since is None or now - self._failing_since > 60:
                self._failing_since = now
                log.warning("limits.storage_failed", storage=_safe(self.config.storage), error=str(exc))
            return None

    async def count(self, category: str, key: str, rules: Sequence[RateLimitItem]) -> int | None:
        """:meth:`hit` from the event loop: a remote storage is called from a worker thread."""
        if self.remote:
            return await asyncio.to_thread(self.hit, category, key, rules)
        return self.hit(category, key, rules)

    def check(self) -> str | None:
        """``None`` when the storage answers, else why not (for ``/ready``)."""
        try:
            return None if self.storage.check() else "rate-limit storage unreachable"
        except Exception as exc:
            return f"rate-limit storage unreachable: {type(exc).__name__}"


def _safe(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
