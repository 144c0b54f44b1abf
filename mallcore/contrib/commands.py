"""``mallcore outbox relay``: contrib's command, registered in the ``mallcore.commands`` entry points.

This module imports only click: ``mallcore --help`` loads it to list the
command; the relay (and the kernel) load when it runs.
"""

from __future__ import annotations

from typing import Any

import click


@click.group()
def outbox() -> None:
    """The transactional outbox: relay events to a broker."""


@outbox.command("relay")
@click.option(
    "--nats", "nats_url", default="nats://127.0.0.1:4222", show_default=True, help="NATS server (JetStream)."
)
@click.option("--stream", default="MALLCORE", show_default=True)
@click.option("--prefix", default="mallcore", show_default=True, help="Subjects are <prefix>.<topic>.")
@click.option("--settle", default=5.0, show_default=True, help="Only relay events older than this (seconds).")
@click.option("--batch", default=500, show_default=True, help="Events published per transaction.")
@click.option("--once", is_flag=True, help="Relay what is there and stop.")
@click.pass_context
def relay(
    ctx: click.Context, nats_url: str, stream: str, prefix: str, settle: float, batch: int, once: bool
) -> None:
    """Publish outbox events to NATS JetStream, at least once, deduplicated by message id."""
    import asyncio

    from mallcore.kernel import pass_kernel

    from .nats_relay import NatsRelay

    @pass_kernel
    def run(kernel: Any) -> None:
        nats = NatsRelay(kernel, nats_url, stream=stream, prefix=prefix, settle_seconds=settle, batch=batch)

        async def go() -> None:
            if once:
                total = 0
                try:
                    while (n := await nats.relay_once()) > 0:
                        total += n
                finally:
                    await nats.close()
                click.echo(f"relayed {total} event(s)")
            else:
                await nats.run()

        asyncio.run(go())

    ctx.invoke(run)
