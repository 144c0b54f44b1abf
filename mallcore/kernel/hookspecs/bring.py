"""What a center brings (settings, tables, routes, subscriptions, jobs, commands) and its life (start-up, shut-down, demo data)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .markers import hookspec

__all__ = [
    "center_commands",
    "center_demo",
    "center_jobs",
    "center_ready",
    "center_routes",
    "center_settings",
    "center_shutdown",
    "center_startup",
    "center_subscriptions",
    "center_tables",
]

if TYPE_CHECKING:  # pragma: no cover - names for annotations only
    import click
    import msgspec
    import sqlalchemy as sa

    from ..jobs import Job
    from ..kernel import Kernel


# -- What a center brings: called once per kernel while it is built ----------------------


@hookspec
def center_settings() -> type[msgspec.Struct] | None:
    """Return the msgspec Struct that validates ``[centers.<name>]``.

    Called once per center while the kernel is built, before anything else
    of the center runs, outside any transaction. The validated instance
    becomes ``center.settings``. The :class:`Center` base class returns its
    ``Settings`` class attribute.

    :returns: the Struct class, or ``None`` for a center without settings
        (then any key under ``[centers.<name>]`` is refused).
    :raises: any exception stops start-up; so do unknown keys and wrong
        types in the section, with the key named.

    Example::

        @hookimpl
        def center_settings(self):
            return FeeSettings
    """


@hookspec
def center_tables() -> sa.MetaData | None:
    """Return the SQLAlchemy ``MetaData`` holding the center's tables.

    Called once per center while the kernel is built, outside any
    transaction. Table names must start with the center's name; ``mallcore
    db upgrade`` applies the migrations of the center's Alembic branch, and
    test kernels create the tables directly. The :class:`Center` base class
    returns its ``tables`` class attribute.

    :returns: the ``MetaData``, or ``None``.
    :raises: any exception stops start-up; so do two centers declaring one
        table, and a table without the center's prefix.

    Example::

        @hookimpl
        def center_tables(self):
            return metadata
    """


@hookspec
def center_routes(kernel: Kernel) -> Sequence[Any]:
    """Return the center's Litestar route handlers, controllers or routers.

    Called once per kernel when its HTTP app (or the mounting plugin) is
    built, outside any transaction. Routes conventionally live under
    ``/<center name>/``.

    :param kernel: the kernel the routes serve.
    :returns: handlers, controllers or routers; every implementation's are
        mounted.
    :raises: any exception stops start-up; so do two centers claiming the
        same method and path, naming both.

    Example::

        @hookimpl
        def center_routes(self, kernel):
            return [list_charges]
    """


@hookspec
def center_subscriptions(kernel: Kernel) -> Sequence[tuple[str, Callable[..., None]]]:
    """Return ``(topic pattern, handler)`` pairs for outbox events.

    Called once while the kernel is built, outside any transaction. After a
    stage commits, each of its events (``ctx.emit(topic, payload)``) is
    passed to every handler whose pattern matches the topic (``fnmatch``:
    ``"order.*"``), as ``handler(kernel, event)``, in the committing thread,
    after the transaction. Delivery in process is best effort; the outbox
    table is the durable record that relays (``mallcore outbox relay``)
    deliver at least once.

    :param kernel: the kernel.
    :returns: the pairs; every implementation's are subscribed.
    :raises: a raise here stops start-up; a raise in a handler is logged
        and affects neither the stage nor the other handlers.

    Example::

        @hookimpl
        def center_subscriptions(self, kernel):
            return [("order.paid", self.on_paid)]
    """


@hookspec
def center_jobs(kernel: Kernel) -> Sequence[Job]:
    """Return periodic jobs (:class:`~mallcore.kernel.Job`).

    Called once while the kernel is built, outside any transaction. Jobs
    run inside ``mallcore serve`` (on one worker at a time, through a lease
    in the database) and from ``mallcore jobs run``. Each run must be safe
    when two runners race: use conditional updates.

    :param kernel: the kernel.
    :returns: the jobs; every implementation's are run.
    :raises: a raise here stops start-up; a raise in a job is logged, and
        the job runs again at its next interval.

    Example::

        @hookimpl
        def center_jobs(self, kernel):
            return [Job("fee.sweep", 3600, lambda k: sweep(k), "forget old charges")]
    """


@hookspec
def center_commands() -> Sequence[click.Command]:
    """Return click commands added under ``mallcore <center name> ...``.

    Called when the ``mallcore`` command is asked for one of the center's
    commands, for enabled centers only, outside any transaction and before
    any kernel or database is set up (the centers are loaded, not bound: no
    ``self.kernel`` or ``self.settings`` yet). Commands get the kernel with
    :func:`mallcore.kernel.pass_kernel`.

    :returns: click commands or groups.
    :raises: any exception stops the ``mallcore`` command with the error.

    Example::

        @hookimpl
        def center_commands(self):
            return [click.Command("sweep", callback=pass_kernel(sweep))]
    """


# -- A center's life: start-up, shut-down, demo data -------------------------------------


@hookspec
def center_startup(kernel: Kernel) -> None:
    """Prepare the center once the database is ready (caches, clients).

    Called once when the app starts (or ``kernel.startup()`` is called),
    outside any transaction, in center order.

    :param kernel: the kernel.
    :returns: nothing; every implementation is called.
    :raises: any exception stops start-up.

    Example::

        @hookimpl
        def center_startup(self, kernel):
            self.client = ProviderClient(self.settings.url)
    """


@hookspec
def center_shutdown(kernel: Kernel) -> None:
    """Release what :func:`center_startup` acquired.

    Called once when the app (or ``kernel.shutdown()``) stops, outside any transaction, in reverse order.

    :param kernel: the kernel.
    :returns: nothing; every implementation is called.
    :raises: a raise is logged and does not stop the other centers from
        shutting down.

    Example::

        @hookimpl
        def center_shutdown(self, kernel):
            self.client.close()
    """


@hookspec
def center_ready(kernel: Kernel) -> str | None:
    """Say whether the center can serve traffic now (``GET /ready``).

    Called on every ``GET /ready`` (a load balancer's or orchestrator's
    probe, every few seconds), in a worker thread, outside any transaction:
    open a short read one with ``kernel.db.transaction(write=False)`` if the
    check needs the database. Keep it fast (a ping, a cached flag): the
    probe waits for every center.

    :param kernel: the kernel.
    :returns: ``None`` when ready, else a short reason for people
        (``"redis unreachable"``); ``/ready`` then answers 503 with it under
        ``checks.<center>``.
    :raises: a raise counts as not ready, with the exception's message as the
        reason; the other centers are still asked.

    Example::

        @hookimpl
        def center_ready(self, kernel):
            return None if self.client.ping() else "provider unreachable"
    """


@hookspec
def center_demo(kernel: Kernel, demo: Any) -> None:
    """Add the center's sample data for ``mallcore demo``.

    Called once per ``mallcore demo`` run, in center order (so the catalog
    has created ``demo.skus`` before WMS stocks them), outside any
    transaction: open your own with ``kernel.db.transaction()``. Must be
    safe to run twice.

    :param kernel: the kernel.
    :param demo: ``shop`` (the demo shop's code), ``skus`` (codes created so
        far) and ``notes`` (lines printed to the user).
    :returns: nothing; every implementation is called.
    :raises: any exception stops ``mallcore demo`` with the error; what
        earlier centers seeded stays.

    Example::

        @hookimpl
        def center_demo(self, kernel, demo):
            demo.notes.append(f"fee: {self.settings.amount} on every order of {demo.shop}")
    """
