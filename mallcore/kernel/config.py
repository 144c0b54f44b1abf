"""Configuration: one TOML file, every key overridable from the environment.

The file path comes from ``--config`` or ``MALLCORE_CONFIG``; no file at all
gives a working demo shop on SQLite. Any key can be overridden by an
environment variable named ``MALLCORE_`` + the key path joined by double
underscores, upper-cased::

    MALLCORE_DATABASE__URL=postgresql+psycopg://root@127.0.0.1/test
    MALLCORE_CENTERS__ENABLED='["catalog", "payment"]'
    MALLCORE_CENTERS__WMS__UNPAID_HOLD_MINUTES=20

Values are read as TOML values when they parse as one (numbers, booleans,
arrays), else as strings. Everything is validated with msgspec at start-up;
an unknown key or a wrong type raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from .errors import ConfigError

ENV_PREFIX = "MALLCORE_"
ENV_SEPARATOR = "__"

# The first-party centers: with no ``centers.enabled`` in config, each of these
# that mallcore's own distribution has installed is enabled (see
# plugins.default_enabled). promotion, membership, risk and console are not
# shipped yet; their names are here so they are on as soon as they are installed.
FIRST_PARTY_CENTERS = (
    "catalog",
    "payment",
    "wms",
    "tms",
    "refund",
    "finance",
    "promotion",
    "membership",
    "risk",
    "console",
)


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class DatabaseConfig(_Section):
    url: str = "sqlite:///mallcore.db"
    echo: bool = False
    pool_size: int = 20
    max_overflow: int = 20
    # Apply the enabled centers' migrations when the server starts.
    migrate_on_start: bool = True
    # How long a SQLite writer waits for the lock before giving up.
    busy_timeout_ms: int = 30_000
    # PostgreSQL schema to use (search_path), e.g. one schema per deployment.
    schema: str | None = None


class TokenConfig(_Section):
    subject: str
    roles: list[str]
    # Staff work for one shop, or (platform = true) for the whole platform: one of the two.
    shop: str | None = None
    platform: bool = False


class JWTConfig(_Section):
    # HS* algorithms use ``secret``; RS*/ES* use ``public_key`` (PEM).
    secret: str | None = None
    public_key: str | None = None
    algorithms: list[str] = msgspec.field(default_factory=lambda: ["HS256"])
    issuer: str | None = None
    audience: str | None = None
    roles_claim: str = "roles"
    shop_claim: str = "shop"
    # A true claim makes staff platform staff (they need it or a shop).
    platform_claim: str = "platform"
    leeway_seconds: int = 30


class AuthConfig(_Section):
    # Legacy: what keys are derived from for a ``[secrets]`` purpose that has none
    # (generated and kept in the database when not set). Set ``[secrets]`` instead.
    secret: str | None = None
    tokens: dict[str, TokenConfig] = msgspec.field(default_factory=dict)
    jwt: JWTConfig | None = None
    # Tokens issued by ``mallcore token create`` (stored hashed).
    database_tokens: bool = True
    # How long a database token lookup is cached in each worker: a revoked token
    # stops working within this time everywhere (at most 1 second).
    token_cache_seconds: float = 1.0
    # Failed token lookups one client may make (a ``limits`` rate such as
    # "20/minute") before it is refused with 429 ``too_many_attempts``.
    bad_token_limit: str = "20/minute"


class MetricsConfig(_Section):
    # ``GET /metrics`` in the Prometheus text format.
    enabled: bool = True
    # When set, scrapers send ``Authorization: Bearer <token>``; else /metrics is open
    # (keep it on an internal network, or behind the proxy's rules).
    token: str | None = None
    # Relays expected to run (e.g. ["nats"]): one that never ran reports the oldest event's age.
    outbox_relays: list[str] = msgspec.field(default_factory=list)


class LimitsConfig(_Section):
    # Request rate limits, in the ``limits`` library's notation ("120/minute;10/second").
    enabled: bool = True
    # Per caller (the token's subject), for every route that needs a token.
    per_principal: str = "3000/minute;100/second"
    # Per client IP (behind trusted proxies, the forwarded address), for every request.
    per_ip: str = "6000/minute;200/second"
    # Per sending address, for webhook routes (payment providers, carriers) instead of ``per_ip``:
    # a provider's burst of callbacks neither uses up nor is refused by the clients' limit.
    per_webhook: str = "30000/minute;1000/second"
    # "memory://" counts in each process; "redis://host:6379/0" shares counts across processes
    # (these and the failed-token counts of ``auth.bad_token_limit``).
    storage: str = "memory://"
    # "moving-window", "sliding-window-counter" or "fixed-window".
    strategy: str = "sliding-window-counter"


class OverloadConfig(_Section):
    # Writes (POST, PUT, PATCH, DELETE) running at once in this process; 0 turns admission off.
    max_writes_in_flight: int = 64
    # How long a write waits for a place before it is answered 503 ``overloaded``.
    max_wait_ms: int = 1000
    # "adaptive": a line that stands (writes refused, or every write waiting longer than
    # ``target_wait_ms`` for ``interval_ms``) is overload, not a burst: waits are cut to
    # ``target_wait_ms`` until no write has been refused for ``interval_ms`` (CoDel-style), so
    # admitted writes do not each spend ``max_wait_ms`` in the line. "fixed": always up to
    # ``max_wait_ms`` (the line before 2026-12).
    line: Literal["adaptive", "fixed"] = "adaptive"
    # About one placement's time: long enough for waiters to refill places as they come free
    # (5 ms left the line half empty between bursts: docs/benchmarks.md), short beside 1 s.
    target_wait_ms: Annotated[int, msgspec.Meta(ge=0)] = 50
    interval_ms: Annotated[int, msgspec.Meta(ge=1)] = 500
    # The Retry-After of a 503 overloaded: 1 s for a burst; while the line keeps shedding it
    # grows by a second for every ``interval_ms`` * 4 of it, up to this, and is spread over
    # [n, 2n) so that refused clients do not all come back in the same second.
    max_retry_after_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 30


class HttpConfig(_Section):
    max_body_bytes: int = 1_048_576
    # Public address used in links sent to customers (tracking pages).
    base_url: str = ""
    title: str = "mallcore"
    idempotency_ttl_hours: int = 48
    # Proxies (addresses or CIDR ranges) whose X-Forwarded-For is believed when
    # working out a request's client IP; from anyone else the socket's peer is the client.
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    # The header a client app sends its device id in (risk counts orders per device).
    device_header: str = "X-Device-Id"
    # Threads per worker running the (synchronous) route handlers; 0 keeps asyncio's
    # default, min(32, CPUs + 4). Combined placements batch the requests waiting in them.
    threads: Annotated[int, msgspec.Meta(ge=0, le=1024)] = 64
    # One log line per request (method, path, status, duration, request id, caller).
    access_log: bool = True
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    overload: OverloadConfig = msgspec.field(default_factory=OverloadConfig)


class CombineConfig(_Section):
    # Group commit: placements waiting for the writer together run in one
    # transaction (docs/architecture.md, "Combined placements").
    enabled: bool = True
    # The most orders in one batch; a lone request is always placed at once.
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=256)] = 32
    # Who runs a batch: "caller", the first waiting request's own thread (no hand-off for
    # a lone order); "thread", one writer thread per process draining the queue;
    # "async", that writer thread with POST /orders handled on the event loop (no worker
    # thread per request; the loop is woken once per batch): the default, as measured
    # (docs/benchmarks.md); "auto" is "async" on SQLite, "caller" on PostgreSQL.
    writer: Literal["auto", "caller", "thread", "async"] = "async"
    # writer = "caller": batches running at once per process, each its own transaction
    # (1 on SQLite, which has one writer; more may help PostgreSQL's latency).
    batches_at_once: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1


class ShopConfig(_Section):
    # The time zone customers read times in (IANA name), for every shop...
    timezone: str = "Asia/Shanghai"
    # ...unless a shop has its own: shop code -> IANA name.
    timezones: dict[str, str] = msgspec.field(default_factory=dict)

    def zone(self, shop: str) -> ZoneInfo:
        """The time zone of ``shop``'s customer-facing pages."""
        return ZoneInfo(self.timezones.get(shop, self.timezone))

    def local_time(self, shop: str, value: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """``value`` as ``shop``'s customers read it (naive values are UTC), e.g. for timeline texts."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(self.zone(shop)).strftime(fmt)


class OrdersConfig(_Section):
    currency: str = "CNY"
    max_lines: int = 100
    max_quantity: int = 9_999
    combine: CombineConfig = msgspec.field(default_factory=CombineConfig)


class JobsConfig(_Section):
    # Run the centers' periodic jobs (expiry, SLA timers...) inside ``serve``.
    enabled: bool = True
    tick_seconds: float = 5.0


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    # "auto": JSON lines when the log stream (stderr) is not a terminal, else console lines.
    format: Literal["auto", "console", "json"] = "auto"


class SecretsConfig(_Section):
    # One list of keys per purpose: the first signs, every key listed verifies, so a
    # rotation puts the new key first and drops the old one after a grace period.
    # From the environment: MALLCORE_SECRET_TRACKING="new,old" (and _WEBHOOKS, _SESSIONS).
    # Make one with ``mallcore secret new``. A purpose with no key falls back to a key
    # derived from a secret generated and kept in the database (fine for a demo, not
    # for production: set all three).
    tracking: list[str] = msgspec.field(default_factory=list)  # customers' tracking links
    webhooks: list[str] = msgspec.field(default_factory=list)  # the sandbox carrier's webhooks
    sessions: list[str] = msgspec.field(default_factory=list)  # console sessions
    # A tracking link stops working this many days after it was made.
    tracking_link_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90


class Config(_Section):
    database: DatabaseConfig = msgspec.field(default_factory=DatabaseConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    orders: OrdersConfig = msgspec.field(default_factory=OrdersConfig)
    shop: ShopConfig = msgspec.field(default_factory=ShopConfig)
    jobs: JobsConfig = msgspec.field(default_factory=JobsConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    secrets: SecretsConfig = msgspec.field(default_factory=SecretsConfig)
    # ``[centers]``: ``enabled`` plus one raw table per center, validated
    # later against the schema each center declares.
    centers: dict[str, Any] = msgspec.field(default_factory=dict)
    # Where the file came from, for messages.
    source: str = "<defaults>"

    @property
    def enabled_centers(self) -> list[str] | None:
        enabled = self.centers.get("enabled")
        return None if enabled is None else list(enabled)

    def center_settings(self, name: str) -> dict[str, Any]:
        raw = self.centers.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{self.source}: [centers.{name}] must be a table, got {type(raw).__name__}")
        return raw


_PATH = re.compile(r"`\$((?:\.[A-Za-z0-9_\-]+|\[[^\]]*\])*)`")


def _where(err: msgspec.ValidationError) -> str:
    match = _PATH.search(str(err))
    if not match or not match.group(1):
        return ""
    # msgspec writes a table key it does not name as "[...]" and a list index as "[3]".
    return match.group(1).lstrip(".").replace("[...]", ".<key>").replace("][", "].[")


def _explain(err: msgspec.ValidationError, source: str, prefix: str = "") -> str:
    message = _PATH.sub("", str(err)).rstrip(" -")
    key = _where(err)
    unknown = re.search(r"unknown field `([^`]+)`", message)
    if unknown:
        key = ".".join(p for p in (key, unknown.group(1)) if p)
        message = "unknown key"
    key = ".".join(p for p in (prefix, key) if p)
    return f"{source}: config key '{key}': {message}" if key else f"{source}: {message}"


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


SECRET_ENV_PREFIX = "MALLCORE_SECRET_"


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    applied = []
    for name in sorted(env):
        if name.startswith(SECRET_ENV_PREFIX) and ENV_SEPARATOR not in name:
            # MALLCORE_SECRET_TRACKING="new,old": a purpose's keys, comma-separated
            purpose = name[len(SECRET_ENV_PREFIX) :].lower()
            keys = [k.strip() for k in env[name].split(",") if k.strip()]
            data.setdefault("secrets", {})[purpose] = keys
            applied.append(name)
            continue
        if not name.startswith(ENV_PREFIX) or ENV_SEPARATOR not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split(ENV_SEPARATOR)]
        if not all(path):
            raise ConfigError(f"environment variable {name}: empty key segment")
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name}: '{part}' is not a table")
            node = child
        node[path[-1]] = _parse_env_value(env[name])
        applied.append(name)
    return applied


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the TOML file (if any), apply environment overrides, validate."""
    env = os.environ if env is None else env
    path = path or env.get("MALLCORE_CONFIG") or None
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {file} does not exist")
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
        source = str(file)
    if overrides:
        _merge(data, overrides)
    _apply_env(data, env)
    data["source"] = source
    try:
        config = msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(exc, source)) from exc
    for key, name in [("shop.timezone", config.shop.timezone)] + [
        (f"shop.timezones.{code}", zone) for code, zone in config.shop.timezones.items()
    ]:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{source}: config key '{key}': unknown time zone '{name}'") from None
    enabled = config.centers.get("enabled")
    if enabled is not None and (
        not isinstance(enabled, list) or not all(isinstance(x, str) for x in enabled)
    ):
        raise ConfigError(f"{source}: config key 'centers.enabled': expected a list of center names")
    return config


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def validate_settings(
    center: str, schema: type[msgspec.Struct] | None, raw: dict[str, Any], source: str
) -> Any:
    """Validate ``[centers.<center>]`` against the center's declared Struct."""
    if schema is None:
        if raw:
            key = next(iter(raw))
            raise ConfigError(
                f"{source}: config key 'centers.{center}.{key}': unknown key ({center} takes no settings)"
            )
        return None
    # A center's Struct may not forbid unknown fields itself; the rule holds anyway.
    known = set(getattr(schema, "__struct_encode_fields__", ()) or ())
    unknown = sorted(set(raw) - known) if known else []
    if unknown:
        raise ConfigError(f"{source}: config key 'centers.{center}.{unknown[0]}': unknown key")
    try:
        return msgspec.convert(raw, schema)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(exc, source, prefix=f"centers.{center}")) from exc
