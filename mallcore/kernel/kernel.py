"""The kernel: config, centers, plugin manager, database and services, per instance.

There is no module-level global: two kernels in one process (tests, a host
app mounting two shops) never share a plugin manager, a center instance or a
database engine.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import pluggy
import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError

from . import tables
from .auth import Auth, DefaultIdentity
from .config import Config, load_config, validate_settings
from .db import Database
from .errors import ConfigError, PluginError
from .events import EventBus
from .facts import parse_networks
from .idempotency import Idempotency
from .jobs import Job, JobRunner
from .orders import OrderService
from .plugins import (
    HookCalls,
    default_enabled,
    installed_centers,
    load_centers,
    make_plugin_manager,
    order_centers,
)
from .refunds import RefundService
from .shops import ShopService


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
        enabled = config.enabled_centers
        if enabled is None:
            enabled = default_enabled(installed_centers())
        self.centers: dict[str, Any] = {c.name: c for c in order_centers(load_centers(enabled, centers))}
        self._check_config_sections()
        self.trusted_proxies = parse_networks(config.http.trusted_proxies, "http.trusted_proxies")
        self.db = Database(config.database, engine=engine)
        self.auth = Auth(self)
        self.pm: pluggy.PluginManager = make_plugin_manager(
            list(self.centers.values()), internal=[("mallcore.identity", DefaultIdentity(self.auth))]
        )
        self.hook = self.pm.hook
        # What the kernel itself calls hooks through (see HookCalls).
        self.calls = HookCalls(self.pm)
        schemas = self.call_each("center_settings")
        for name, center in self.centers.items():
            settings = validate_settings(name, schemas.get(name), config.center_settings(name), config.source)
            if hasattr(center, "bind"):
                center.bind(self, settings)
            else:
                center.kernel, center.settings = self, settings
        self.metadatas: dict[str, sa.MetaData] = {"kernel": tables.metadata}
        self._collect_tables()
        self.shops = ShopService(self)
        self.idempotency = Idempotency(self)
        self.orders = OrderService(self)
        self.refunds = RefundService(self)
        self.events = EventBus(
            self,
            [
                (center, pattern, handler)
                for center, subs in self.call_each("center_subscriptions", kernel=self).items()
                for pattern, handler in subs or ()
            ],
        )
        jobs = [
            Job(
                "kernel.idempotency_purge",
                3600,
                lambda k: k.idempotency.purge(),
                "forget old Idempotency-Keys",
            )
        ]
        for center_jobs in self.call_each("center_jobs", kernel=self).values():
            jobs.extend(center_jobs or ())
        self.jobs = JobRunner(self, jobs)
        self.mount_path = ""
        self._secret: str | None = config.auth.secret
        self._started = False

    # -- composition -----------------------------------------------------------

    def call_each(self, hook_name: str, **kwargs: Any) -> dict[str, Any]:
        """Call a hook on each center separately, in center order; results by center."""
        impls = {i.plugin_name: i.function for i in getattr(self.hook, hook_name).get_hookimpls()}
        return {name: impls[name](**kwargs) for name in self.centers if name in impls}

    def _check_config_sections(self) -> None:
        installed = set(installed_centers()) | set(self.centers)
        for key in self.config.centers:
            if key != "enabled" and key not in installed:
                raise ConfigError(
                    f"{self.config.source}: config key 'centers.{key}': no center named '{key}' is installed"
                )

    def _collect_tables(self) -> None:
        owner = {name: "kernel" for name in tables.metadata.tables}
        for center, metadata in self.call_each("center_tables").items():
            if metadata is None:
                continue
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
        self.secret()

    def upgrade(self) -> None:
        """Apply the migrations of the kernel and enabled centers (``mallcore db upgrade``)."""
        from .migrate import upgrade

        upgrade(self)
        self.secret()

    def secret(self) -> str:
        """The signing secret: from config, else generated once and kept in the database."""
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

    def tracking_url(self, order_id: int) -> str:
        base = self.config.http.base_url.rstrip("/")
        return f"{base}{self.mount_path}/track/{order_id}?token={self.auth.tracking_token(order_id)}"

    # -- life ------------------------------------------------------------------

    def startup(self, *, jobs: bool | None = None) -> None:
        if self._started:
            return
        self._started = True
        self.secret()
        self.call_each("center_startup", kernel=self)
        if self.config.jobs.enabled if jobs is None else jobs:
            self.jobs.start()

    def shutdown(self) -> None:
        if not self._started:
            return
        self._started = False
        self.jobs.stop()
        impls = {i.plugin_name: i.function for i in self.hook.center_shutdown.get_hookimpls()}
        for name in reversed(self.centers):
            if name in impls:
                try:
                    impls[name](kernel=self)
                except Exception:
                    self.log.exception("center.shutdown_failed", center=name)

    def close(self) -> None:
        self.shutdown()
        self.db.dispose()

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
