"""The HTTP app: a factory for a standalone app, and a plugin to mount into yours.

Standalone::

    app = create_app()                        # config from MALLCORE_CONFIG / defaults

Mounted beside a host's own routes (the host keeps its app, middleware and
auth; mallcore's routes get their own error handlers and body limit)::

    kernel = Kernel(load_config("mallcore.toml"))
    app = Litestar(route_handlers=[...], plugins=[MallcorePlugin(kernel, path="/shop")])
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from litestar import Controller, Litestar, Request, Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import InitPlugin

from ... import __version__
from .. import facts
from ..config import Config, load_config
from ..errors import PluginError
from ..kernel import Kernel
from ..types import Principal
from .bodies import JSONGateRequest
from .errors import HANDLERS
from .guards import KERNEL_OPT, principal_of
from .limits import principal_limit, traffic_middleware
from .middleware import request_middleware, stamp_arrival, unmatched_hook
from .openapi import BEARER, document
from .ops import ops_routes
from .orders import order_routes
from .replies import IdempotentWrite, idempotent_provider
from .routing import BuiltRouter
from .tracking import tracking_route


def _principal(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


def _kernel_provider(kernel: Kernel) -> Provide:
    def provide() -> Kernel:
        return kernel

    return Provide(provide, sync_to_thread=False)


def _facts_reader(kernel: Kernel) -> facts.FactsReader:
    return facts.FactsReader(kernel.trusted_proxies, kernel.config.http.device_header)


def _routes_of(item: Any, prefix: str = "") -> Iterable[tuple[str, str]]:
    """(method, path) pairs of a handler, controller or router, for conflict checks."""
    if isinstance(item, HTTPRouteHandler):
        for path in item.paths:
            for method in item.http_methods:
                yield method, (prefix.rstrip("/") + "/" + path.strip("/")).rstrip("/") or "/"
    elif isinstance(item, Router):
        for route in item.routes:
            for method in getattr(route, "methods", ()):
                if method != "OPTIONS":
                    yield method, (prefix.rstrip("/") + route.path).rstrip("/") or "/"
    elif isinstance(item, type) and issubclass(item, Controller):
        base = prefix.rstrip("/") + "/" + (getattr(item, "path", "") or "").strip("/")
        for name in dir(item):
            attr = getattr(item, name, None)
            if isinstance(attr, HTTPRouteHandler):
                yield from _routes_of(attr, base)


def collect_routes(kernel: Kernel) -> list[Any]:
    """The kernel's routes and every enabled center's, checked for collisions."""
    owners: dict[tuple[str, str], str] = {}
    handlers: list[Any] = []
    contributions = [
        ("kernel", [*order_routes(kernel), *ops_routes(kernel), tracking_route(kernel)]),
        *kernel.call_each("center_routes", kernel=kernel),
    ]
    for center, routes in contributions:
        for item in routes or ():
            for key in _routes_of(item):
                if key in owners:
                    raise PluginError(
                        f"centers '{owners[key]}' and '{center}' both route {key[0]} {key[1]}", center=center
                    )
                owners[key] = center
            handlers.append(item)
    return handlers


def build_router(kernel: Kernel, path: str = "/") -> BuiltRouter:
    kernel.mount_path = "" if path.strip("/") == "" else "/" + path.strip("/")
    traffic = traffic_middleware(kernel)
    limit = principal_limit(kernel)
    return BuiltRouter(
        path=path,
        route_handlers=collect_routes(kernel),
        dependencies={
            "principal": Provide(_principal, sync_to_thread=False),
            "kernel": _kernel_provider(kernel),
            "idempotent": idempotent_provider(kernel),
        },
        exception_handlers=HANDLERS,
        middleware=[
            request_middleware(
                _facts_reader(kernel), kernel.metrics, access_log=kernel.config.http.access_log
            ),
            *([traffic] if traffic is not None else []),
        ],
        guards=[limit] if limit is not None else [],
        request_max_body_size=kernel.config.http.max_body_bytes,
        request_class=JSONGateRequest,
        # A function, not the kernel: opt must stay copyable (Litestar deep-copies a plain router
        # it registers, and a host app may hold this one in a router of its own).
        opt={KERNEL_OPT: _kernel_provider(kernel).dependency},
        signature_namespace={"Principal": Principal, "Kernel": Kernel, "IdempotentWrite": IdempotentWrite},
        prepare=lambda made: document(made, kernel),
    )


class MallcorePlugin(InitPlugin):
    """Mount a kernel and its enabled centers into a Litestar app.

    ``lifecycle=True`` starts the kernel (center start-up hooks, jobs) with
    the app and stops it with the app.
    """

    def __init__(self, kernel: Kernel, *, path: str = "/", lifecycle: bool = True) -> None:
        self.kernel = kernel
        self.path = path
        self.lifecycle = lifecycle

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(build_router(self.kernel, self.path))
        # requests that match no route never reach the router's middleware (middleware.py)
        http = self.kernel.config.http
        app_config.before_send.append(
            unmatched_hook(self.kernel.metrics, access_log=http.access_log, mount_path=self.kernel.mount_path)
        )
        app_config.on_startup.append(stamp_arrival)
        if self.kernel.config.http.threads:
            app_config.on_startup.append(self._threads)
        if self.lifecycle:
            app_config.on_startup.append(self._startup)
            app_config.on_shutdown.append(self._shutdown)
        app_config.on_startup.append(self._watch_loop)
        app_config.on_shutdown.append(self._unwatch_loop)
        template_dirs = [
            d for d in (getattr(c, "template_dir", lambda: None)() for c in self.kernel.centers.values()) if d
        ]
        if template_dirs and app_config.template_config is None:
            from litestar.plugins.jinja import JinjaTemplateEngine
            from litestar.template.config import TemplateConfig

            app_config.template_config = TemplateConfig(directory=template_dirs, engine=JinjaTemplateEngine)
        return app_config

    async def _threads(self) -> None:
        # Sync handlers run on the loop's default executor: min(32, CPUs + 4) threads unless
        # set, six on two cores, which would cap a batch of combined placements at five.
        loop = asyncio.get_running_loop()
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=self.kernel.config.http.threads, thread_name_prefix="mallcore")
        )

    async def _watch_loop(self) -> None:
        # How late the loop wakes a timer: the wait every answer has, whatever the route.
        async def watch(metrics: Any, every: float = 0.05) -> None:
            loop = asyncio.get_running_loop()
            while True:
                due = loop.time() + every
                await asyncio.sleep(every)
                metrics.loop_lag.observe(max(0.0, loop.time() - due))

        self._lag_task = asyncio.get_running_loop().create_task(watch(self.kernel.metrics))

    async def _unwatch_loop(self) -> None:
        task = getattr(self, "_lag_task", None)
        if task is not None:
            task.cancel()

    def _startup(self) -> None:
        self.kernel.startup()

    def _shutdown(self) -> None:
        self.kernel.shutdown()


def create_app(
    kernel: Kernel | None = None, *, config: Config | None = None, debug: bool = False, lifecycle: bool = True
) -> Litestar:
    """A standalone Litestar app serving one kernel, OpenAPI at ``/schema``."""
    kernel = kernel or Kernel(config or load_config())
    openapi = OpenAPIConfig(
        title=kernel.config.http.title,
        version=__version__,
        path="/schema",
        use_handler_docstrings=True,
        # Each route that needs a caller requires the scheme itself (openapi.py).
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(type="http", scheme="bearer", description="API token or JWT")
            }
        ),
    )
    app = Litestar(
        plugins=[MallcorePlugin(kernel, lifecycle=lifecycle)],
        openapi_config=openapi,
        exception_handlers=HANDLERS,
        debug=debug,
        logging_config=None,
    )
    app.state["mallcore"] = kernel
    return app


def app_from_environment() -> Litestar:
    """Factory for ``uvicorn --factory`` (what ``mallcore serve`` runs in each worker)."""
    from ..logs import configure_logging

    config = load_config()
    configure_logging(config.logging)
    app = create_app(Kernel(config))
    app.on_startup.append(_freeze_heap)
    return app


def _freeze_heap() -> None:
    """Move everything alive once the app has started (the app, its routes, the kernel, its
    tables and caches: about 135,000 objects) out of the garbage collector's sight.

    They live as long as the process, and each full collection walked every one of them:
    about 60 ms with every request in flight waiting, which set the p99 of a hot SKU's
    orders and took a quarter of the server's CPU under that load (docs/benchmarks.md).
    Objects made later are collected as before. Only this factory does it: an app built
    with :func:`create_app` or mounted into a host's process leaves the host's collector alone.
    """
    gc.collect()
    gc.freeze()
