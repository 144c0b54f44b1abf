"""``[centers.risk]``: every setting of the risk center, validated at start-up."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Action = Literal["allow", "review", "block"]
Stage = Literal["place", "pay", "after_sale", "refund"]


class RuleSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[centers.risk.rules]]``: a rule kept in config (read-only through the API)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    condition: str
    action: Action = "review"
    stages: list[Stage] = msgspec.field(default_factory=lambda: ["place"])
    score: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    shop: str | None = None


class CounterSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "memory" (this process only) or a limits storage URI: "redis://127.0.0.1:6379/0",
    # "rediss://...", "redis+sentinel://..." (needs the redis package: pip install mallcore[redis]);
    # not Redis Cluster (a placement is counted by one script on one server).
    storage: str = "memory"
    # Keys in a shared storage start with this (one deployment per prefix).
    prefix: str = "mallcore-risk"
    # Orders per customer / IP / device / address over these windows: signals
    # customer_orders_1h, ip_orders_24h... (add "1m" or "10m" for bursts: each
    # window is four more counters on every placement).
    order_windows: list[str] = msgspec.field(default_factory=lambda: ["1h", "24h"])
    # Distinct customers per address / phone / IP / device: address_customers_24h...
    customer_windows: list[str] = msgspec.field(default_factory=lambda: ["24h"])
    # Coupon claims per customer / device (the promotion center's events): device_coupon_claims_24h...
    coupon_windows: list[str] = msgspec.field(default_factory=lambda: ["24h"])


class DecisionSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[centers.risk.decisions]``: how allowed placements' decisions are written
    (see :mod:`mallcore.plugins.risk.decisions`)."""

    # A writer thread writes them at most this many milliseconds after the placement,
    # in batches; 0 writes each in its placement's transaction (nothing to lose in a
    # crash; measured, a quarter to a half more on what risk costs a placement).
    flush_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 200
    # ... or as soon as this many wait.
    batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    # Beyond this many waiting (the database refusing the writer), placements write
    # their own decision again.
    max_pending: Annotated[int, msgspec.Meta(ge=1)] = 20_000


class CreditSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """信用分: where a customer starts, its bounds, and what moves it."""

    initial: int = 600
    minimum: int = 350
    maximum: int = 950
    order_completed: int = 5
    review_rejected: int = -50
    abusive_refund: int = -30
    chargeback: int = -100
    report_confirmed: int = -50


class RiskSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Proxies whose X-Forwarded-For risk believes; empty: the kernel's http.trusted_proxies.
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    counters: CounterSettings = msgspec.field(default_factory=CounterSettings)
    rules: list[RuleSettings] = msgspec.field(default_factory=list)
    decisions: DecisionSettings = msgspec.field(default_factory=DecisionSettings)
    credit: CreditSettings = msgspec.field(default_factory=CreditSettings)
    # A customer risk first saw less than this many days ago is new (customer.new).
    new_account_days: Annotated[int, msgspec.Meta(ge=0)] = 7
    # signals.new_account_large_order: a new customer's order of at least this (minor units).
    large_order_amount: Annotated[int, msgspec.Meta(ge=0)] = 100_000
    # The window of signals.refund_rate, paid_orders, refunded_orders, refund_only_cases.
    refund_window_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90
    # A CSV file of "network,region" lines (region: the address's region code or its
    # first digits, e.g. 31 for Shanghai): request.region and signals.region_mismatch.
    geoip: str | None = None
    # Other workers' list and rule changes are seen within this many seconds (0: at once).
    cache_recheck_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    # Limits on conditions (see mallcore.plugins.risk.cel).
    max_condition_length: Annotated[int, msgspec.Meta(ge=20, le=10_000)] = 1000
    max_rule_ms: Annotated[float, msgspec.Meta(gt=0)] = 50.0
    # Dry runs look at most this many past decisions.
    dry_run_limit: Annotated[int, msgspec.Meta(ge=1)] = 10_000
