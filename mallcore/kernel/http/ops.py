"""Operations routes: ``/health`` (alive), ``/ready`` (can serve), ``/metrics`` (Prometheus).

- ``GET /health`` answers 200 while the process serves HTTP; it touches no
  database, so a slow database never gets a healthy worker restarted.
- ``GET /ready`` answers 200 when the database answers, its migrations are
  those of the enabled centers, and every center's ``center_ready`` hook
  says ready; else 503 ``not_ready`` with the failing checks. A load
  balancer sends traffic only to ready workers.
- ``GET /metrics``: the kernel's Prometheus metrics
  (:mod:`mallcore.kernel.metrics`), when ``[http.metrics] enabled``;
  with ``token`` set, only for ``Authorization: Bearer <token>``.

None of them needs an API token, none is rate limited or queued.
"""

from __future__ import annotations

import hmac
import threading
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from .. import migrate
from ..errors import Unauthenticated
from ..metrics import CONTENT_TYPE
from .limits import UNLIMITED, limiter

if TYPE_CHECKING:
    from ..kernel import Kernel


class Health(msgspec.Struct):
    status: str


class Ready(msgspec.Struct):
    status: str
    # check name -> "ok", or what is wrong
    checks: dict[str, str]


class NotReady(msgspec.Struct):
    code: str
    detail: str
    checks: dict[str, str]


NOT_READY = ResponseSpec(NotReady, description="Not ready: the failing checks")


class _Migrations:
    """Whether the database carries the enabled branches' heads; once current, it stays so."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.current = False
        self.lock = threading.Lock()

    def check(self) -> str | None:
        if self.current:
            return None
        with self.lock:
            missing = migrate.pending(self.kernel)
        if missing:
            return f"not applied: {', '.join(missing)} (run `mallcore db upgrade`)"
        self.current = True
        return None


def readiness(kernel: Kernel, migrations: _Migrations) -> dict[str, str]:
    """Every check's answer: ``"ok"`` or a reason."""
    checks: dict[str, str] = {}
    try:
        with kernel.db.transaction(write=False) as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        return checks
    try:
        checks["migrations"] = migrations.check() or "ok"
    except Exception as exc:
        checks["migrations"] = f"unknown: {exc}"
    limits = kernel.config.http.limits
    if limits.enabled and not limits.storage.startswith("memory://"):
        checks["limits"] = limiter(kernel).check() or "ok"
    for impl in kernel.hook.center_ready.get_hookimpls():
        try:
            result: Any = kernel.pm._hookexec("center_ready", [impl], {"kernel": kernel}, False)
            answer = result[0] if result else None
        except Exception as exc:
            answer = str(exc) or type(exc).__name__
        checks[impl.plugin_name] = answer or "ok"
    return checks


def _bearer(request: Request[Any, Any, Any]) -> str:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def ops_routes(kernel: Kernel) -> list[Any]:
    migrations = _Migrations(kernel)
    settings = kernel.config.http.metrics
    opt = {UNLIMITED: True}

    @get("/health", sync_to_thread=False, tags=["operations"], security=[], opt=opt)
    def health() -> Health:
        """Alive: the process answers HTTP. Touches no database."""
        return Health(status="alive")

    @get(
        "/ready",
        sync_to_thread=True,
        tags=["operations"],
        security=[],
        opt=opt,
        responses={503: NOT_READY},
    )
    def ready() -> Response[Any]:
        """Ready to serve: database reachable, migrations current, every center's own check.

        503 ``not_ready`` lists the failing checks.
        """
        checks = readiness(kernel, migrations)
        failing = {name: why for name, why in checks.items() if why != "ok"}
        if failing:
            body = NotReady(
                code="not_ready", detail="not ready: " + ", ".join(sorted(failing)), checks=failing
            )
            return Response(body, status_code=503, headers={"Retry-After": "5"})
        return Response(Ready(status="ready", checks=checks))

    @get("/metrics", sync_to_thread=True, tags=["operations"], security=[], opt=opt, media_type=CONTENT_TYPE)
    def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
        """Prometheus metrics (text format): requests, latency, orders, stage failures, jobs, outbox lag."""
        if settings.token and not hmac.compare_digest(_bearer(request), settings.token):
            raise Unauthenticated("the metrics token is required", code="metrics_token_required")
        return Response(kernel.metrics.render(), media_type=CONTENT_TYPE)

    return [health, ready, *([metrics] if settings.enabled else [])]
