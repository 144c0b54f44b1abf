"""A center's routes as one Litestar router, with the center as a dependency."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from litestar import Router
from litestar.di import Provide


class BuiltRouter(Router):
    """A router built for the one place it is registered in: registering it does not copy it.

    Litestar deep-copies every router it registers, so that one router object can be
    registered in several places. The routers mallcore builds (a center's, the kernel's, the
    console's) are made afresh for each app, and that copy was a third of the time an app
    took to build (measured with every center on). The first registration takes this router
    itself; a second one gets a router built afresh from the same arguments, as a plain
    :class:`litestar.Router` would give a copy of itself as it was before any registration.
    """

    __slots__ = ("_made_with", "_registered")

    def __init__(self, *args: Any, prepare: Callable[[Router], None] | None = None, **kwargs: Any) -> None:
        """``prepare`` is called with the new router (and again with one built afresh)."""
        super().__init__(*args, **kwargs)
        self._made_with = (args, {**kwargs, "prepare": prepare})
        self._registered = False
        if prepare is not None:
            prepare(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> BuiltRouter:
        if not self._registered:
            self._registered = True
            return self
        # Registered already, so its handlers hold what the first owner resolved: build it afresh
        args, kwargs = self._made_with
        return type(self)(*args, **kwargs)


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
    return BuiltRouter(
        path=f"/{center.name}" if path is None else path,
        route_handlers=list(handlers),
        dependencies={center.name: Provide(provide, sync_to_thread=False)},
        signature_namespace={kind.__name__: kind},
        **options,
    )
