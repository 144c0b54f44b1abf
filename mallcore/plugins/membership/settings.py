"""``[centers.membership]``: the program's rules and its levels, checked at start-up.

Levels are platform-wide and come from config: ``levels`` lists their codes
lowest first, and each has a ``[centers.membership.level.<code>]`` table with
its growth threshold and benefits::

    [centers.membership]
    levels = ["normal", "silver", "gold", "platinum"]

    [centers.membership.level.gold]
    name = "Gold"
    zh = "黄金会员"
    growth = 5000                 # 成长值 needed (growth_unit minor units paid = 1)
    member_discount_bp = 500      # member price: 5% off eligible SKUs
    free_shipping_per_month = 2   # free-shipping vouchers
    points_multiplier_percent = 150
    upgrade_coupon = 12           # promotion center coupon template granted on reaching it
    birthday_coupon = 13
    fast_refund_below = 20000     # refund-only cases below ¥200 approved at once (极速退款)

A level table whose code is not in ``levels``, a code of ``levels`` with no
table, a first level above zero growth or thresholds that do not increase
stop start-up with the key named (:func:`check`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from mallcore.kernel import ConfigError

BasisPoints = Annotated[int, Meta(ge=0, le=10_000)]
NonNegative = Annotated[int, Meta(ge=0)]
Positive = Annotated[int, Meta(ge=1)]
CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

# Above this a points figure is refused outright (a 32-bit column ends at 2**31 - 1).
MAX_POINTS = 1_000_000_000


class Level(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    zh: str = ""
    # Growth value (成长值) needed; the first level needs 0.
    growth: NonNegative = 0
    # Member price: this many basis points off each eligible line, after promotions (500 = 5% off).
    member_discount_bp: BasisPoints = 0
    # Free-shipping vouchers per calendar month (in ``timezone``).
    free_shipping_per_month: NonNegative = 0
    # Points earned = base rate x this / 100.
    points_multiplier_percent: NonNegative = 100
    # Promotion-center coupon templates granted on reaching the level / on the birthday.
    upgrade_coupon: int | None = None
    birthday_coupon: int | None = None
    # Refund-only cases below this amount (minor units) are approved at once; 0: off.
    fast_refund_below: NonNegative = 0

    def label(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" and self.zh else self.name


DEFAULT_ORDER = ["normal", "silver", "gold", "platinum"]
DEFAULT_LEVELS: dict[str, Level] = {
    "normal": Level(name="Member", zh="普通会员"),
    "silver": Level(
        name="Silver",
        zh="白银会员",
        growth=1_000,
        member_discount_bp=200,
        free_shipping_per_month=1,
        points_multiplier_percent=120,
    ),
    "gold": Level(
        name="Gold",
        zh="黄金会员",
        growth=5_000,
        member_discount_bp=500,
        free_shipping_per_month=2,
        points_multiplier_percent=150,
    ),
    "platinum": Level(
        name="Platinum",
        zh="铂金会员",
        growth=20_000,
        member_discount_bp=800,
        free_shipping_per_month=4,
        points_multiplier_percent=200,
        fast_refund_below=50_000,
    ),
}


class MembershipSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Level codes, lowest first; each needs a [centers.membership.level.<code>] table.
    levels: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_ORDER))
    # Each level's table (checked into a Level by :func:`check`, which names the key at fault).
    level: dict[str, Any] = msgspec.field(
        default_factory=lambda: {code: msgspec.to_builtins(lv) for code, lv in DEFAULT_LEVELS.items()}
    )
    # The currency points are worth money in; orders in another currency neither earn nor
    # spend points. Empty: the kernel's [orders] currency.
    currency: str = ""
    # One point is worth this many minor units of ``currency`` (1: 100 points = ¥1).
    point_value: Positive = 1
    # Points earned per ``earn_unit`` minor units paid for goods (after discounts and
    # refunds, never freight), before the level's multiplier; rounded down per order.
    earn_points: NonNegative = 1
    earn_unit: Positive = 100
    # Growth value: one per ``growth_unit`` minor units paid for goods, rounded down per order.
    growth_unit: Positive = 100
    # Points pay at most this share of the goods after discounts (5000 = half).
    spend_cap_bp: BasisPoints = 5_000
    # Points are spent in multiples of this (100: whole yuan only).
    spend_multiple: Positive = 1
    # Points expire this many days after they were earned, oldest first; 0: never.
    expire_after_days: NonNegative = 365
    # Levels are re-evaluated this often per member: the growth of the period just ended
    # decides the level of the next, which may be lower; growth starts again from 0.
    reevaluate_every_days: Positive = 365
    # Who pays for the member price (the adjustments' funded_by). Points and vouchers are
    # the platform's.
    member_price_funded_by: Literal["shop", "platform"] = "shop"
    # Whether a shop with no program of its own (PUT /membership/shops/{shop}) takes part.
    shops_join_by_default: bool = True
    # Months (vouchers) and birthdays are counted in this time zone.
    timezone: str = "Asia/Shanghai"
    # Other workers' shop-program changes are noticed within this many seconds.
    program_recheck_seconds: Annotated[float, Meta(ge=0)] = 5.0
    # How often the jobs (expiry, re-evaluation, birthdays) run inside ``mallcore serve``.
    job_interval_seconds: Annotated[float, Meta(gt=0)] = 3_600.0
    # Members handled per job transaction.
    job_batch: Positive = 500


def check(settings: MembershipSettings, source: str) -> dict[str, Level]:
    """The levels, in order; level tables that do not fit together stop start-up naming the key."""
    key = "centers.membership"
    if not settings.levels:
        raise ConfigError(f"{source}: config key '{key}.levels': at least one level is needed")
    seen: set[str] = set()
    for code in settings.levels:
        if not CODE.match(code):
            raise ConfigError(
                f"{source}: config key '{key}.levels': level code {code!r} must be 1-32 lower-case "
                "letters, digits or '_', starting with a letter"
            )
        if code in seen:
            raise ConfigError(f"{source}: config key '{key}.levels': level '{code}' is listed twice")
        seen.add(code)
    for code in settings.level:
        if code not in seen:
            raise ConfigError(
                f"{source}: config key '{key}.level.{code}': unknown level '{code}'; "
                f"'{key}.levels' lists {', '.join(settings.levels)}"
            )
    levels: dict[str, Level] = {}
    previous: tuple[str, int] | None = None
    for code in settings.levels:
        raw = settings.level.get(code)
        if raw is None:
            raise ConfigError(
                f"{source}: config key '{key}.levels': level '{code}' has no [{key}.level.{code}] table"
            )
        level = levels[code] = _level(raw, f"{key}.level.{code}", source)
        if previous is None and level.growth != 0:
            raise ConfigError(
                f"{source}: config key '{key}.level.{code}.growth': the first level is where every "
                f"member starts, so its growth must be 0 (got {level.growth})"
            )
        if previous is not None and level.growth <= previous[1]:
            raise ConfigError(
                f"{source}: config key '{key}.level.{code}.growth': {level.growth} is not above "
                f"'{previous[0]}' ({previous[1]}); thresholds must increase in the order of '{key}.levels'"
            )
        previous = (code, level.growth)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(settings.timezone)
    except Exception:
        raise ConfigError(
            f"{source}: config key '{key}.timezone': unknown time zone {settings.timezone!r}"
        ) from None
    return levels


_AT = re.compile(r" - at `\$((?:\.[A-Za-z0-9_]+)*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def _level(raw: Any, key: str, source: str) -> Level:
    if isinstance(raw, Level):
        return raw
    try:
        return msgspec.convert(raw, Level)
    except msgspec.ValidationError as exc:
        message = str(exc)
        at = _AT.search(message)
        if at:
            key += at.group(1)
            message = message[: at.start()]
        unknown = _UNKNOWN.search(message)
        if unknown:
            key, message = f"{key}.{unknown.group(1)}", "unknown key"
        raise ConfigError(f"{source}: config key '{key}': {message}") from None
