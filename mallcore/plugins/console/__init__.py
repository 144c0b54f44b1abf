"""后台 the staff console: the back office in the browser, server-rendered.

Merchants, warehouse staff, finance and the platform sign in with their API
token and work in pages that every center contributes through the
``console_pages`` hook (:mod:`mallcore.kernel.console`): the console itself
brings the frame (:mod:`.web`: session, CSRF, sign-in, language, error pages),
the home page (:mod:`.home`) and the orders pages (:mod:`.orders`, the
kernel's orders); after-sale, finance, WMS, TMS, promotion, membership and
risk bring theirs from their own packages. Pages call the same services as
the API, behind the same guards and visibility rules.

Described in docs/centers/console.md.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.static_files import create_static_files_router

from mallcore.kernel import Center, Kernel, hookimpl
from mallcore.kernel.console import ConsolePage
from mallcore.kernel.http import BuiltRouter, center_router

from . import home, orders
from . import tables as console_tables
from .home import HomePage
from .orders import OrderPages
from .session import Sessions, derive, random_secret
from .web import ERROR_PAGES, PUBLIC, SignInController, menu_of, session_middleware, signed_in

STATIC = Path(__file__).parent / "static"


class ConsoleSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Where the console is served.
    path: str = "/console"
    # Signs session cookies and CSRF tokens, before the ``[secrets] sessions`` keys
    # (the first key signs, every one verifies); with neither, ``[auth] secret``;
    # else a random key per process (sessions end when it restarts; set one when
    # several workers serve the console).
    secret: str | None = None
    session_hours: float = 8.0
    # The time zone staff read times in, and whose midnight starts "today"
    # (default: the shops' time zone, ``[shop] timezone``).
    timezone: str | None = None
    # Mark cookies Secure: None = when the request came over https.
    secure_cookies: bool | None = None


class ConsoleCenter(Center):
    name = "console"
    description = "后台 the staff console: every center's pages in the browser"
    # Last in call order: it serves the others' pages and changes no order.
    after = ("catalog", "payment", "wms", "tms", "refund", "finance", "risk", "promotion", "membership")
    Settings = ConsoleSettings
    tables = console_tables.metadata

    pages: list[ConsolePage]
    sessions: Sessions

    def __init__(self) -> None:
        super().__init__()
        # Orders placed on a day that is over, per (viewer scope, time zone, day): see home.chart_days.
        self.day_counts: dict[tuple[str, str, date], int] = {}

    def remember_day(self, key: tuple[str, str, date], count: int) -> None:
        if len(self.day_counts) > 50_000:
            self.day_counts.clear()
        self.day_counts[key] = count

    @property
    def base(self) -> str:
        return self.kernel.mount_path + "/" + self.settings.path.strip("/")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone or self.kernel.config.shop.timezone)

    def secure(self, request: Request[Any, Any, Any]) -> bool:
        if self.settings.secure_cookies is not None:
            return bool(self.settings.secure_cookies)
        return request.url.scheme == "https"

    def _secrets(self) -> list[str]:
        """The session keys: the first signs, every one verifies (rotation)."""
        keys = [self.settings.secret] if self.settings.secret else []
        keys += [k for k in self.kernel.config.secrets.sessions if k not in keys]
        if not keys and self.kernel.config.auth.secret:
            keys = [self.kernel.config.auth.secret]
        if not keys:
            self.log.warning(
                "console.ephemeral_secret",
                detail="no [centers.console] secret, [secrets] sessions nor [auth] secret: "
                "sessions end when this process stops",
            )
            keys = [random_secret()]
        return keys

    @hookimpl
    def center_demo(self, kernel: Kernel, demo: Any) -> None:
        demo.notes.append(
            f"console: open {self.base}/ on the server in your browser and sign in with a staff token "
            "printed below (merchant, warehouse, finance)"
        )

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        secrets = self._secrets()
        self.sessions = Sessions(
            kernel.db,
            kernel.auth,
            [derive(key, "session") for key in secrets],
            self.settings.session_hours,
            kernel.config.auth.token_cache_seconds,
        )
        contributed = kernel.call_each("console_pages", kernel=kernel)
        self.pages = menu_of([(self.name, [home.page(), orders.page()]), *contributed])
        path = "/" + self.settings.path.strip("/")
        csrf = CSRFConfig(
            secret=derive(secrets[0], "csrf").hex(),
            cookie_name="mallcore_csrf",
            cookie_path=self.base,
            cookie_httponly=True,
            cookie_samesite="lax",
            cookie_secure=bool(self.settings.secure_cookies),
        )
        static = create_static_files_router(path="/static", directories=[STATIC], opt={PUBLIC: True})
        handlers: list[Any] = [SignInController, static, HomePage, OrderPages]
        for center, pages in contributed:
            # Each center's handlers receive the center as on its API routes (``fee: Fee``).
            owned = [h for page in pages or () for h in page.handlers]
            if owned:
                handlers.append(center_router(kernel.centers[center], owned, path="/"))
        return [
            BuiltRouter(
                path=path,
                route_handlers=handlers,
                dependencies={"console": Provide(lambda: self, sync_to_thread=False)},
                signature_namespace={"ConsoleCenter": ConsoleCenter},
                middleware=[session_middleware(self), DefineMiddleware(CSRFMiddleware, config=csrf)],
                guards=[signed_in],
                exception_handlers=ERROR_PAGES,
                include_in_schema=False,
            )
        ]
