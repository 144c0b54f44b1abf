"""The ``mallcore`` command. Every command takes ``--config PATH`` (or ``MALLCORE_CONFIG``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar

import click
import msgspec

from .config import Config, load_config
from .errors import StartupError

F = TypeVar("F", bound=Callable[..., Any])


class State:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._kernel: Any = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def kernel(self) -> Any:
        if self._kernel is None:
            from .kernel import Kernel
            from .logs import configure_logging

            configure_logging(self.config.logging)
            self._kernel = Kernel(self.config)
        return self._kernel


def pass_kernel(fn: F) -> F:
    """Decorate a center's click command to receive the kernel as first argument."""

    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        state = ctx.find_object(State)
        assert state is not None
        return ctx.invoke(fn, state.kernel(), *args, **kwargs)

    return update_wrapper(wrapper, fn)  # type: ignore[return-value]


def _preparse_config(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return os.environ.get("MALLCORE_CONFIG")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="MALLCORE_CONFIG",
    type=click.Path(dir_okay=False),
    help="TOML config file (default: none, a demo shop on SQLite).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """mallcore: a pluggable commerce kernel."""
    ctx.obj = State(config_path)


# -- serve -----------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
@click.option(
    "--migrate/--no-migrate",
    default=None,
    help="Apply migrations first (default: database.migrate_on_start).",
)
@click.pass_obj
def serve(state: State, host: str, port: int, workers: int, migrate: bool | None) -> None:
    """Serve the HTTP API with uvicorn (uvloop, httptools)."""
    import uvicorn

    kernel = state.kernel()
    if kernel.config.database.migrate_on_start if migrate is None else migrate:
        kernel.upgrade()
    kernel.close()
    if state.config_path:
        os.environ["MALLCORE_CONFIG"] = os.path.abspath(state.config_path)
    click.echo(
        f"mallcore serving on http://{host}:{port} ({workers} worker(s)); OpenAPI at /schema", err=True
    )
    uvicorn.run(
        "mallcore.kernel.http.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
    )


# -- database ----------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database migrations (one Alembic branch per center)."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(state: State) -> None:
    """Apply the migrations of the kernel and every enabled center."""
    from .migrate import current

    kernel = state.kernel()
    kernel.upgrade()
    click.echo(f"database at {', '.join(current(kernel))}")


@db.command("current")
@click.pass_obj
def db_current(state: State) -> None:
    """Show the applied revision of each branch."""
    from .migrate import current

    for head in current(state.kernel()):
        click.echo(head)


@db.command("revision")
@click.argument("center")
@click.option("-m", "--message", required=True)
@click.pass_obj
def db_revision(state: State, center: str, message: str) -> None:
    """Autogenerate a migration for one center's branch (for developers)."""
    from .migrate import revision

    revision(state.kernel(), center, message)


# -- centers -------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def centers(state: State, as_json: bool) -> None:
    """Installed and enabled centers, their order and what each contributes."""
    from .plugins import installed_centers

    installed = installed_centers()
    kernel = state.kernel()
    info = kernel.describe()
    if as_json:
        data = {
            "installed": {name: ep.value for name, ep in sorted(installed.items())},
            "enabled": [c["name"] for c in info],
            "centers": info,
        }
        click.echo(msgspec.json.encode(data).decode())
        return
    click.echo("installed:")
    for name, ep in sorted(installed.items()):
        mark = "on " if name in kernel.centers else "off"
        click.echo(f"  [{mark}] {name:<12} {ep.value}")
    click.echo("enabled, in call order:")
    for i, c in enumerate(info, 1):
        click.echo(f"  {i}. {c['name']}  {c['description']}")
        if c["requires"] or c["after"]:
            click.echo(
                f"     requires: {', '.join(c['requires']) or '-'}   after: {', '.join(c['after']) or '-'}"
            )
        click.echo(f"     hooks: {', '.join(c['hooks']) or '-'}")
        click.echo(f"     tables: {', '.join(c['tables']) or '-'}")
        if c["jobs"]:
            click.echo(f"     jobs: {', '.join(c['jobs'])}")


# -- jobs ----------------------------------------------------------------------


@cli.group()
def jobs() -> None:
    """Periodic jobs (also run inside `serve` unless jobs.enabled = false)."""


@jobs.command("list")
@click.pass_obj
def jobs_list(state: State) -> None:
    for job in state.kernel().jobs.jobs.values():
        click.echo(f"{job.name:<40} every {job.interval:>6.0f}s  {job.description}")


@jobs.command("run")
@click.argument("names", nargs=-1)
@click.pass_obj
def jobs_run(state: State, names: tuple[str, ...]) -> None:
    """Run jobs once now (all, or those named). Safe alongside running servers."""
    kernel = state.kernel()
    unknown = [n for n in names if n not in kernel.jobs.jobs]
    if unknown:
        raise click.UsageError(f"unknown job(s): {', '.join(unknown)}; see `mallcore jobs list`")
    for name in names or tuple(kernel.jobs.jobs):
        result = kernel.jobs.run(name)
        click.echo(f"{name}: {result if result is not None else 'done'}")


# -- tokens --------------------------------------------------------------------


@cli.group()
def token() -> None:
    """API tokens stored (hashed) in the database."""


@token.command("create")
@click.option("--subject", required=True)
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="customer, merchant, warehouse, finance, risk, admin",
)
@click.option("--shop", default=None, help="The shop of a staff member.")
@click.option("--label", default=None)
@click.pass_obj
def token_create(
    state: State, subject: str, roles: tuple[str, ...], shop: str | None, label: str | None
) -> None:
    """Issue a token; it is printed once and stored only as a hash."""
    click.echo(state.kernel().auth.issue_token(subject, list(roles), shop, label))


# -- outbox ------------------------------------------------------------------------


@cli.group()
def outbox() -> None:
    """The transactional outbox: relay events to a broker."""


@outbox.command("relay")
@click.option(
    "--nats", "nats_url", default="nats://127.0.0.1:4222", show_default=True, help="NATS server (JetStream)."
)
@click.option("--stream", default="MALLCORE", show_default=True)
@click.option("--prefix", default="mallcore", show_default=True, help="Subjects are <prefix>.<topic>.")
@click.option("--settle", default=5.0, show_default=True, help="Only relay events older than this (seconds).")
@click.option("--once", is_flag=True, help="Relay what is there and stop.")
@click.pass_obj
def outbox_relay(state: State, nats_url: str, stream: str, prefix: str, settle: float, once: bool) -> None:
    """Publish outbox events to NATS JetStream, at least once, deduplicated by message id."""
    import asyncio

    from ..contrib.nats_relay import NatsRelay

    relay = NatsRelay(state.kernel(), nats_url, stream=stream, prefix=prefix, settle_seconds=settle)

    async def go() -> None:
        if once:
            total = 0
            try:
                while (n := await relay.relay_once()) > 0:
                    total += n
            finally:
                await relay.close()
            click.echo(f"relayed {total} event(s)")
        else:
            await relay.run()

    asyncio.run(go())


# -- demo ------------------------------------------------------------------------


@cli.command()
@click.option("--serve/--no-serve", "then_serve", default=True, help="Start the server after seeding.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.pass_context
def demo(ctx: click.Context, then_serve: bool, host: str, port: int) -> None:
    """Seed a demo shop (products, stock, tokens for every role), then serve it."""
    from .demo import seed

    state: State = ctx.obj
    kernel = state.kernel()
    kernel.upgrade()
    for line in seed(kernel, base_url=f"http://{host}:{port}"):
        click.echo(line)
    kernel.close()
    if then_serve:
        ctx.invoke(serve, host=host, port=port, workers=1, migrate=False)


def _center_commands(config_path: str | None) -> None:
    """Add ``mallcore <center> ...`` groups for enabled centers that bring commands."""
    try:
        config = load_config(config_path)
        from .kernel import Kernel

        kernel = Kernel(config)
    except StartupError:
        return  # the core commands still work and will report the error
    for name, commands in kernel.call_each("center_commands").items():
        if not commands or name in cli.commands:
            continue
        group = click.Group(name, help=f"Commands of the {name} center.")
        for command in commands:
            group.add_command(command)
        cli.add_command(group)
    kernel.db.dispose()


def main(argv: list[str] | None = None) -> None:
    from ..bench import bench

    cli.add_command(bench)
    argv = sys.argv[1:] if argv is None else argv
    _center_commands(_preparse_config(argv))
    try:
        cli.main(args=argv, prog_name="mallcore", standalone_mode=True)
    except StartupError as exc:
        click.echo(f"mallcore: {exc}", err=True)
        sys.exit(2)
