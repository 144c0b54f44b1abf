"""What a center's click commands use to reach the kernel: :func:`pass_kernel`.

The ``mallcore`` command (:mod:`mallcore.cli`) keeps an object on its root
click context whose ``kernel()`` builds the kernel from ``--config`` on first
use; a command decorated with :func:`pass_kernel` receives that kernel as its
first argument. Commands that never ask for it never build one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def pass_kernel(fn: F) -> F:
    """Decorate a click command to receive the kernel as first argument.

    Example (a center's ``center_commands``)::

        @click.command("expire")
        @pass_kernel
        def expire(kernel: Kernel) -> None:
            click.echo(f"cancelled {jobs.expire_unpaid(kernel)} unpaid order(s)")
    """

    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        source = ctx.find_root().obj
        if not callable(getattr(source, "kernel", None)):
            raise click.UsageError("this command runs under the `mallcore` command, which builds the kernel")
        return ctx.invoke(fn, source.kernel(), *args, **kwargs)

    return update_wrapper(wrapper, fn)  # type: ignore[return-value]
