"""风控中心 Risk: block, hold for review or allow, at any stage, with the facts behind every decision.

Every placement is counted (orders per customer, IP, device and address in
sliding windows; distinct customers per address, phone, IP and device) and
judged against block / review / allow lists and operators' rules written in
CEL; every evaluation is stored with its facts, signals and what fired.
With no rules and no list entries nothing is ever held or refused.

Hooks:

- ``order_reserve`` (first): the placement's decision (see :mod:`.stages`).
- ``order_pay`` (first): the payment's, when ``pay`` rules or lists exist.
- ``order_after_sale`` at ``requested``: refuse or hold the case.
- ``order_refund`` (a wrapper): hold a refund for review, and refuse to pay
  it out while the review is open.
- ``order_complete``: a completed order raises the customer's credit score.
- ``center_subscriptions``: ``promotion.coupon_claimed`` events count coupon
  claims per customer and device.

Routes under ``/risk``: lists, rules (and their dry run), the review queue,
decisions, customers' credit, merchants' reports (see :mod:`.routes`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import sqlalchemy as sa

from mallcore.kernel import Center, ConfigError, Kernel, OrderContext, Payment, Refund, hookimpl
from mallcore.kernel.aftersale import AfterSaleCase

from . import console
from . import tables as t
from .cel import RuleError
from .counters import Counters, MemoryBackend, RedisBackend, window_seconds
from .decisions import DecisionLog
from .engine import Engine
from .geoip import GeoIP
from .lists import ListIndex, load_index
from .normalize import networks
from .profiles import Profiles
from .rules import BookLoader, Rule, RuleBook, compile_rule
from .settings import RiskSettings
from .stages import Stages
from .versions import Versioned


class RiskCenter(Center):
    name = "risk"
    after = ("catalog",)
    description = "风控中心 risk: lists, velocity, CEL rules, reviews, credit score"
    tables = t.metadata
    Settings = RiskSettings

    counters: Counters
    decisions: DecisionLog
    profiles: Profiles
    geoip: GeoIP | None
    trusted_proxies: tuple[Any, ...]
    _lists: Versioned[ListIndex]
    _book: Versioned[RuleBook]

    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine(self)
        self.stages = Stages(self)

    def bind(self, kernel: Kernel, settings: Any) -> None:
        super().bind(kernel, settings)
        s: RiskSettings = settings
        self.trusted_proxies = networks(s.trusted_proxies, "centers.risk.trusted_proxies")
        c = s.counters
        windows = {
            name: [(w, window_seconds(w, f"centers.risk.counters.{name}")) for w in getattr(c, name)]
            for name in ("order_windows", "customer_windows", "coupon_windows")
        }
        self.counters = Counters(
            self._backend(c.storage, c.prefix),
            windows["order_windows"],
            windows["customer_windows"],
            windows["coupon_windows"],
        )
        self.geoip = GeoIP.load(s.geoip) if s.geoip else None
        self.profiles = Profiles(s.credit, s.cache_recheck_seconds, kernel)
        self.decisions = DecisionLog(kernel, s.decisions)
        configured = []
        for i, spec in enumerate(s.rules):
            try:
                configured.append(self.compile(spec, rule_id=None))
            except RuleError as exc:
                raise ConfigError(
                    f"{kernel.config.source}: config key 'centers.risk.rules[{i}].condition' "
                    f"(rule '{spec.name}'): {exc.detail}"
                ) from None
        self._lists = Versioned("lists", load_index, s.cache_recheck_seconds)
        self._book = Versioned(
            "rules",
            BookLoader(configured, self.counters.names(), s.max_condition_length, s.max_rule_ms),
            s.cache_recheck_seconds,
        )

    @staticmethod
    def _backend(storage: str, prefix: str) -> Any:
        if storage in ("memory", "memory://"):
            return MemoryBackend()
        scheme = storage.split(":", 1)[0]
        if scheme == "redis+cluster":
            # a placement's counters are counted by one script, on one server
            raise ConfigError(
                "config key 'centers.risk.counters.storage': Redis Cluster is not supported; "
                "use one Redis server (redis://, rediss://) or Sentinel (redis+sentinel://)"
            )
        if scheme not in ("redis", "rediss", "redis+sentinel"):
            raise ConfigError(
                f"config key 'centers.risk.counters.storage': {storage!r} is not 'memory' or a redis:// URI"
            )
        try:
            return RedisBackend(storage, prefix)
        except Exception as exc:  # the redis package missing, a malformed URI
            raise ConfigError(f"config key 'centers.risk.counters.storage': {exc}") from None

    # -- what the hot path reads ---------------------------------------------------------

    def compile(self, spec: Any, *, rule_id: int | None) -> Rule:
        s = self.settings
        return compile_rule(
            spec,
            self.counters.names(),
            rule_id=rule_id,
            max_length=s.max_condition_length,
            max_ms=s.max_rule_ms,
        )

    def book(self, conn: sa.Connection) -> RuleBook:
        return self._book.get(conn)

    def list_index(self, conn: sa.Connection) -> ListIndex:
        return self._lists.get(conn)

    def changed(self, what: str) -> None:
        """This process changed lists or rules: forget its cache at once."""
        (self._lists if what == "lists" else self._book).invalidate()

    # -- hooks -----------------------------------------------------------------------------

    @hookimpl(tryfirst=True)
    def order_reserve(self, ctx: OrderContext) -> None:
        self.stages.place(ctx)

    @hookimpl(tryfirst=True)
    def order_pay(self, ctx: OrderContext, payment: Payment) -> None:
        self.stages.pay(ctx, payment)

    @hookimpl
    def order_after_sale(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        self.stages.after_sale(ctx, case)

    @hookimpl(wrapper=True)
    def order_refund(self, ctx: OrderContext, refund: Refund) -> Generator[None, Any, Any]:
        return (yield from self.stages.refund(ctx, refund))

    @hookimpl
    def order_complete(self, ctx: OrderContext) -> None:
        self.stages.complete(ctx)

    @hookimpl
    def center_subscriptions(self, kernel: Kernel) -> list[tuple[str, Any]]:
        def claimed(kernel: Kernel, event: Any) -> None:
            payload = event.payload or {}
            device = payload.get("device_id") or payload.get("device") or ""
            self.counters.claim(str(payload.get("customer") or ""), str(device))

        return [("promotion.coupon_claimed", claimed)]

    @hookimpl
    def console_pages(self, kernel: Kernel) -> list[Any]:
        return console.pages()

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        from .routes import routes

        return routes(self)

    @hookimpl
    def center_shutdown(self, kernel: Kernel) -> None:
        self.decisions.close()

    @hookimpl
    def center_demo(self, kernel: Kernel, demo: Any) -> None:
        from .demo import seed

        seed(self, kernel, demo)


__all__ = ["RiskCenter", "RiskSettings"]
