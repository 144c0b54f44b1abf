"""A center's routes as one Litestar router, with the center as a dependency."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Router
from litestar.di import Provide


def center_router(center: Any, handlers: Sequence[Any], *, path: str | None = None, **options: Any) -> Router:
    """The center's controllers and handlers under ``/<center name>`` (or ``path``).

    Handlers receive the center instance by declaring a parameter named
    after the center, marked as a dependency
    (``tms: NamedDependency[TmsCenter]``, usually through an alias in the
    routes module), beside the kernel's own dependencies (``principal:
    Caller``, ``idempotent: Idempotent``); the center's ``kernel`` attribute
    gives the rest (``db``, ``orders``...). The class is put in
    the router's signature namespace, so a routes module may import it for
    type checking only. ``options`` go to :class:`litestar.Router`
    (``guards``, ``tags``...).
    """

    def provide() -> Any:
        return center

    kind = type(center)
    return Router(
        path=f"/{center.name}" if path is None else path,
        route_handlers=list(handlers),
        dependencies={center.name: Provide(provide, sync_to_thread=False)},
        signature_namespace={kind.__name__: kind},
        **options,
    )
