"""The kernel: config, centers, plugin manager, database and services, per instance.

This is the one place where services are wired: each receives the few
collaborators it uses, never the kernel itself (see docs/architecture.md,
"Layers"). There is no module-level global: two kernels in one process
(tests, a host app mounting two shops) never share a plugin manager, a
center instance or a database engine.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import pluggy
import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError

from . import tables, tracing
from .auth import Auth, DefaultIdentity
from .combine import Combiner
from .config import Config, load_config, validate_settings
from .db import Database
from .errors import ConfigError, PluginError
from .events import EventBus
from .facts import parse_networks
from .idempotency import Idempotency
from .jobs import Job, JobRunner
from .metrics import Metrics
from .order_store import OrderStore
from .order_views import OrderViews
from .orders import OrderService
from .plugins import (
    HookCalls,
    call_each,
    enabled_centers,
    installed_centers,
    load_centers,
    make_plugin_manager,
    order_centers,
)
from .ratelimits import Limiter
from .refunds import RefundService
from .schemas import OrderView
from .shops import ShopService
from .signing import PURPOSES, Keyring, derive
from .types import Order


class Kernel:
    """Build one from config: ``Kernel(load_config("mallcore.toml"))``.

    ``centers`` adds center objects (or classes) that have no entry point,
    e.g. a temporary center in a test; they are enabled automatically.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        centers: Sequence[Any] = (),
        engine: sa.Engine | None = None,
    ) -> None:
        self.config = config = config or load_config()
        self.log = structlog.get_logger("mallcore")
        self.centers: dict[str, Any] = {
            c.name: c for c in order_centers(load_centers(enabled_centers(config), centers))
        }
        self._check_config_sections()
        self.trusted_proxies = parse_networks(config.http.trusted_proxies, "http.trusted_proxies")
        self.db = Database(config.database, engine=engine)
        self.auth = Auth(
            config.auth,
            source=config.source,
            db=self.db,
            resolve=self._resolve_principal,
            secret=self.secret,
            keys=self.keyring,
            link_days=config.secrets.tracking_link_days,
            legacy_links=not config.secrets.tracking,
            limiter=lambda: self.limiter,
        )
        self.pm: pluggy.PluginManager = make_plugin_manager(
            list(self.centers.values()), internal=[("mallcore.identity", DefaultIdentity(self.auth))]
        )
        self.hook = self.pm.hook
        # What the kernel itself calls hooks through (see HookCalls).
        self.calls = HookCalls(self.pm)
        # After HookCalls: its fast path steps aside once monitoring is on.
        tracing.trace_hooks(self.pm)
        schemas = dict(self.call_each("center_settings"))
        for name, center in self.centers.items():
            settings = validate_settings(name, schemas.get(name), config.center_settings(name), config.source)
            if hasattr(center, "bind"):
                center.bind(self, settings)
            else:
                center.kernel, center.settings = self, settings
        self.metadatas: dict[str, sa.MetaData] = {"kernel": tables.metadata}
        self._collect_tables()
        self.shops = ShopService(self.db, currency=config.orders.currency)
        self.idempotency = Idempotency(self.db, ttl_hours=config.http.idempotency_ttl_hours)
        self.events = EventBus(
            self.db,
            [
                (center, pattern, handler)
                for center, subs in self.call_each("center_subscriptions", kernel=self)
                for pattern, handler in subs or ()
            ],
            kernel=self,
            log=self.log,
        )
        self.metrics = Metrics()
        self.metrics.watch_outbox(lambda: self.events.outbox_lag(config.http.metrics.outbox_relays))
        self.refunds = RefundService(self.db, self.calls)
        store = OrderStore(self.db)
        self.order_views = OrderViews(
            self.db, store, on_render=self._order_view, tracking_url=self.tracking_url
        )
        self.orders = OrderService(
            self.db,
            store,
            self.order_views,
            self.calls,
            self.events,
            self.idempotency,
            self.shops,
            self.refunds,
            config=config.orders,
            log=self.log,
            metrics=self.metrics,
        )
        combine = config.orders.combine
        self.combiner = (
            Combiner(
                self.orders,
                max_batch=combine.max_batch,
                writer=self.writer(),
                batches_at_once=combine.batches_at_once,
            )
            if combine.enabled
            else None
        )
        self.orders.combined = self.combiner
        jobs = [
            Job(
                "kernel.idempotency_purge",
                3600,
                lambda k: k.idempotency.purge(),
                "forget old Idempotency-Keys",
            )
        ]
        for _, center_jobs in self.call_each("center_jobs", kernel=self):
            jobs.extend(center_jobs or ())
        self.jobs = JobRunner(
            self.db,
            jobs,
            kernel=self,
            log=self.log,
            tick_seconds=config.jobs.tick_seconds,
            metrics=self.metrics,
        )
        self.mount_path = ""
        self._secret: str | None = config.auth.secret
        self._keyrings: dict[str, Keyring] = {}
        # The database secret is made (and read) only while a purpose has no configured key.
        self._needs_db_secret = not all(getattr(config.secrets, p) for p in PURPOSES)
        self._started = False

    # -- composition -----------------------------------------------------------

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call each implementation of a hook separately, in center order: ``(center, result)`` pairs.

        A center that implements the hook more than once appears once per
        implementation (see :func:`~mallcore.kernel.plugins.call_each`).
        """
        return call_each(self.pm, hook_name, **kwargs)

    def _resolve_principal(self, token: str, request: Any) -> Any:
        return self.calls.resolve_principal(kernel=self, token=token, request=request)

    def _order_view(self, conn: sa.Connection, order: Order, view: OrderView) -> None:
        self.calls.order_view(kernel=self, conn=conn, order=order, view=view)

    def _check_config_sections(self) -> None:
        installed = set(installed_centers()) | set(self.centers)
        for key in self.config.centers:
            if key != "enabled" and key not in installed:
                raise ConfigError(
                    f"{self.config.source}: config key 'centers.{key}': no center named '{key}' is installed"
                )

    def _collect_tables(self) -> None:
        owner = {name: "kernel" for name in tables.metadata.tables}
        for center, metadata in self.call_each("center_tables"):
            if metadata is None:
                continue
            if center in self.metadatas:
                raise PluginError(f"center '{center}' declares its tables twice", center=center)
            for name in metadata.tables:
                if name != center and not name.startswith(f"{center}_"):
                    raise PluginError(
                        f"center '{center}' declares table '{name}'; a center's tables must be named "
                        f"'{center}_...'",
                        center=center,
                    )
                if name in owner:
                    raise PluginError(
                        f"centers '{owner[name]}' and '{center}' both declare table '{name}'", center=center
                    )
                owner[name] = center
            self.metadatas[center] = metadata

    # -- database --------------------------------------------------------------

    def create_schema(self) -> None:
        """Create every enabled center's tables directly (tests, throw-away databases)."""
        for metadata in self.metadatas.values():
            metadata.create_all(self.db.engine)
        self._ensure_secret()

    def upgrade(self) -> None:
        """Apply the migrations of the kernel and enabled centers (``mallcore db upgrade``)."""
        from .migrate import upgrade

        upgrade(self)
        self._ensure_secret()

    def _ensure_secret(self) -> None:
        if self._needs_db_secret:
            self.secret()

    def keyring(self, purpose: str) -> Keyring:
        """The keys of ``purpose`` (``tracking``, ``webhooks``, ``sessions``): from ``[secrets]``,
        else one derived from :meth:`secret` (logged once: set ``[secrets]`` in production)."""
        ring = self._keyrings.get(purpose)
        if ring is None:
            keys = list(getattr(self.config.secrets, purpose))
            if not keys:
                self.log.warning(
                    "secrets.derived",
                    purpose=purpose,
                    detail=f"no [secrets] {purpose} key: using one derived from the database secret; "
                    "set one (mallcore secret new) in production",
                )
                keys = [derive(purpose, self.secret())]
            ring = self._keyrings[purpose] = Keyring(purpose, keys)
        return ring

    def secret(self) -> str:
        """The fallback secret: ``auth.secret``, else generated once and kept in the database.

        Keys come from ``[secrets]``; this only backs a purpose that has none (a demo).
        """
        if self._secret is None:
            meta = tables.kernel_meta
            with self.db.transaction() as conn:
                value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "secret")).scalar()
                if value is None:
                    value = secrets.token_urlsafe(32)
                    try:
                        with conn.begin_nested():
                            conn.execute(meta.insert().values(key="secret", value=value))
                    except IntegrityError:
                        value = conn.execute(
                            sa.select(meta.c.value).where(meta.c.key == "secret")
                        ).scalar_one()
            self._secret = value
        return self._secret

    @cached_property
    def limiter(self) -> Limiter:
        """The rate-limit counters (``[http.limits]`` storage), made on first use and shared
        by the request limits and the failed-token limit."""
        return Limiter(self.config.http.limits)

    def tracking_url(self, order_id: int) -> str:
        base = self.config.http.base_url.rstrip("/")
        return f"{base}{self.mount_path}/track/{order_id}?token={self.auth.tracking_token(order_id)}"

    # -- life ------------------------------------------------------------------

    def startup(self, *, jobs: bool | None = None) -> None:
        if self._started:
            return
        self._started = True
        self._ensure_secret()
        self.call_each("center_startup", kernel=self)
        if self.config.jobs.enabled if jobs is None else jobs:
            self.jobs.start()

    def shutdown(self) -> None:
        if not self._started:
            return
        self._started = False
        self.jobs.stop()
        # Reverse call order, each on its own: one center's failure must not stop the others.
        for impl in self.hook.center_shutdown.get_hookimpls():
            try:
                self.pm._hookexec("center_shutdown", [impl], {"kernel": self}, False)
            except Exception:
                self.log.exception("center.shutdown_failed", center=impl.plugin_name)

    def close(self) -> None:
        self.shutdown()
        if self.combiner is not None:
            self.combiner.close()
        self.db.dispose()

    def writer(self) -> str:
        """Who runs a batch of combined placements (``[orders.combine] writer``, "auto" resolved)."""
        writer = self.config.orders.combine.writer
        if writer == "auto":
            return "async" if self.db.is_sqlite else "caller"
        return writer

    def combining(self) -> dict[str, Any]:
        """Whether concurrent placements are combined (``[orders.combine]``), and who writes per batch."""
        cfg = self.config.orders.combine
        batch = [impl.plugin_name for impl in self.hook.order_reserve_batch.get_hookimpls()]
        return {
            "enabled": self.combiner is not None,
            "max_batch": cfg.max_batch,
            "writer": self.writer(),
            "batches_at_once": cfg.batches_at_once,
            "batch_hook": batch,
        }

    def describe(self) -> list[dict[str, Any]]:
        """What each enabled center contributes (``mallcore centers``)."""
        hooks: dict[str, list[str]] = {name: [] for name in self.centers}
        for hook_name in sorted(n for n in dir(self.hook) if not n.startswith("_")):
            for impl in getattr(self.hook, hook_name).get_hookimpls():
                if impl.plugin_name in hooks and hook_name not in ("center_settings", "center_tables"):
                    hooks[impl.plugin_name].append(hook_name)
        out = []
        for name, center in self.centers.items():
            md = self.metadatas.get(name)
            out.append(
                {
                    "name": name,
                    "requires": list(getattr(center, "requires", ())),
                    "after": list(getattr(center, "after", ())),
                    "hooks": hooks[name],
                    "tables": sorted(md.tables) if md is not None else [],
                    "jobs": [j.name for j in self.jobs.jobs.values() if j.name.startswith(f"{name}.")],
                    "description": getattr(center, "description", ""),
                }
            )
        return out
