"""The ``mallcore`` command.

Every command and subcommand takes ``--config PATH`` (before or after its
name; or ``MALLCORE_CONFIG``). Commands come from three places, none of which
this module imports until it is used:

- the built-in commands below (serve, db, centers, jobs, token, demo);
- the ``mallcore.commands`` entry-point group: a package registers a click
  command under its name (``bench = "mallcore.bench:bench"``), as Flask's
  ``flask.commands`` does; the module it names must import quickly, since
  ``mallcore --help`` loads it to show its help line;
- enabled centers, through the ``center_commands`` hook, as
  ``mallcore <center> ...``; their modules are imported only when such a
  command is asked for.

Nothing builds a kernel (or a database engine) until a command asks for one
through ``State.kernel()`` or :func:`mallcore.kernel.pass_kernel`, so
``mallcore --help`` answers without importing the kernel.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points
from typing import Any

import click

from . import __version__

COMMANDS_GROUP = "mallcore.commands"
CONFIG_HELP = "TOML config file (default: none, a demo shop on SQLite)."


class State:
    """What commands share: the config path, and the config and kernel made from it on first use."""

    def __init__(self, config_path: str | None = None) -> None:
        self.config_path = config_path
        self._config: Any = None
        self._kernel: Any = None
        self._center_commands: dict[str, list[click.Command]] | None = None

    def set_env(self, name: str, value: str) -> None:
        """Set a ``MALLCORE_...`` variable for this process and the workers it starts; forget
        the config and kernel made before, so the next use reads it."""
        os.environ[name] = value
        self._config = self._kernel = self._center_commands = None

    def use(self, config_path: str | None) -> None:
        if config_path and config_path != self.config_path:
            self.config_path = config_path
            self._config = self._kernel = self._center_commands = None

    @property
    def config(self) -> Any:
        if self._config is None:
            from .kernel.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def kernel(self) -> Any:
        if self._kernel is None:
            from .kernel import Kernel
            from .kernel.logs import configure_logging

            configure_logging(self.config.logging)
            self._kernel = Kernel(self.config)
        return self._kernel

    def center_commands(self) -> dict[str, list[click.Command]]:
        """Commands of the enabled centers, by center (imports them, builds no kernel)."""
        if self._center_commands is None:
            from .kernel.errors import StartupError
            from .kernel.plugins import commands_of_centers

            try:
                self._center_commands = commands_of_centers(self.config)
            except StartupError:
                self._center_commands = {}  # the built-in commands still work and report the error
        return self._center_commands


def _state(ctx: click.Context) -> State:
    return ctx.find_root().ensure_object(State)


def _take_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    _state(ctx).use(value)


def _config_option() -> click.Option:
    return click.Option(
        ["--config", "config_path"],
        type=click.Path(dir_okay=False),
        expose_value=False,
        is_eager=True,
        callback=_take_config,
        help=CONFIG_HELP,
    )


def _with_config_option(command: click.Command) -> click.Command:
    """Let ``--config`` follow ``command`` (and each of its subcommands) too."""
    if not any("--config" in getattr(p, "opts", ()) for p in command.params):
        command.params.append(_config_option())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_config_option(sub)
    return command


def _config_in(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


class MallcoreGroup(click.Group):
    """The root group: built-in commands, then entry-point commands, then the centers' groups."""

    def _registered(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._registered()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            ep = self._registered().get(cmd_name)
            if ep is not None:
                command = ep.load()
        if command is None:
            commands = _state(ctx).center_commands().get(cmd_name)
            if commands:
                command = click.Group(cmd_name, help=f"Commands of the {cmd_name} center.")
                for sub in commands:
                    command.add_command(sub)
        return None if command is None else _with_config_option(command)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # Which centers have commands depends on the config, and a --config after
        # the command's name has not been parsed yet: look for it first.
        _state(ctx).use(_config_in(args) or ctx.params.get("config_path"))
        return super().resolve_command(ctx, args)


@click.group(
    cls=MallcoreGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Enabled centers add their own commands as `mallcore <center> ...` "
    "(`mallcore centers` shows which implement center_commands).",
)
@click.option(
    "--config", "config_path", envvar="MALLCORE_CONFIG", type=click.Path(dir_okay=False), help=CONFIG_HELP
)
@click.version_option(__version__, "--version", prog_name="mallcore", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """mallcore: a pluggable commerce kernel."""
    state = _state(ctx)
    if state.config_path is None:
        state.use(config_path)


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
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        # Each worker counts its own requests; /metrics adds every worker's up (docs/deploy.md).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mallcore-metrics-")
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
    from .kernel.migrate import current

    kernel = state.kernel()
    kernel.upgrade()
    click.echo(f"database at {', '.join(current(kernel))}")


@db.command("current")
@click.pass_obj
def db_current(state: State) -> None:
    """Show the applied revision of each branch."""
    from .kernel.migrate import current

    for head in current(state.kernel()):
        click.echo(head)


@db.command("revision")
@click.argument("center")
@click.option("-m", "--message", required=True)
@click.pass_obj
def db_revision(state: State, center: str, message: str) -> None:
    """Autogenerate a migration for one center's branch (for developers)."""
    from .kernel.migrate import revision

    revision(state.kernel(), center, message)


# -- centers -------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def centers(state: State, as_json: bool) -> None:
    """Installed and enabled centers, their order and what each contributes."""
    from .kernel.plugins import installed_centers

    installed = installed_centers()
    kernel = state.kernel()
    info = kernel.describe()
    if as_json:
        data = {
            "installed": {name: ep.value for name, ep in sorted(installed.items())},
            "enabled": [c["name"] for c in info],
            "centers": info,
            "combine": kernel.combining(),
        }
        import msgspec

        click.echo(msgspec.json.encode(data).decode())
        return
    click.echo("installed:")
    for name, ep in sorted(installed.items()):
        mark = "on " if name in kernel.centers else "off"
        click.echo(f"  [{mark}] {name:<12} {ep.value}")
    combine = kernel.combining()
    state_ = f"on (at most {combine['max_batch']} orders a batch)" if combine["enabled"] else "off"
    click.echo(f"combined placements ([orders.combine]): {state_}")
    if combine["enabled"]:
        click.echo(f"  combined writes (order_reserve_batch): {', '.join(combine['batch_hook']) or '-'}")
        click.echo(f"  writer: {combine['writer']}, batches at once: {combine['batches_at_once']}")
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
@click.option("--platform", is_flag=True, help="Staff of the whole platform (staff need this or --shop).")
@click.option("--label", default=None)
@click.pass_obj
def token_create(
    state: State, subject: str, roles: tuple[str, ...], shop: str | None, platform: bool, label: str | None
) -> None:
    """Issue a token; it is printed once and stored only as a hash."""
    try:
        token = state.kernel().auth.issue_token(subject, list(roles), shop, label, platform=platform)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(token)


# -- secrets ---------------------------------------------------------------------


@cli.group()
def secret() -> None:
    """Secrets for ``[secrets]`` (tracking links, webhooks, console sessions)."""


@secret.command("new")
def secret_new() -> None:
    """Print a fresh random secret (256 bits) for ``[secrets]`` or ``MALLCORE_SECRET_*``."""
    from .kernel.signing import new_secret

    click.echo(new_secret())


# -- demo ------------------------------------------------------------------------


@cli.command()
@click.option("--serve/--no-serve", "then_serve", default=True, help="Start the server after seeding.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.pass_context
def demo(ctx: click.Context, then_serve: bool, host: str, port: int) -> None:
    """Seed a demo shop (products, stock, tokens for every role), then serve it."""
    from .kernel.demo import seed

    state: State = ctx.obj
    base_url = f"http://{host}:{port}"
    if not state.config.http.base_url:
        # Customers' tracking links (tracking_url) are absolute: they are sent to people.
        state.set_env("MALLCORE_HTTP__BASE_URL", base_url)
    from .kernel.plugins import enabled_centers

    if "tms" in enabled_centers(state.config) and "MALLCORE_CENTERS__TMS__SANDBOX_ROUTES" not in os.environ:
        # The demo plays the carrier by hand (POST /tms/sandbox/...); production leaves it off.
        state.set_env("MALLCORE_CENTERS__TMS__SANDBOX_ROUTES", "true")
    kernel = state.kernel()
    kernel.upgrade()
    for line in seed(kernel, base_url=base_url):
        click.echo(line)
    kernel.close()
    if then_serve:
        ctx.invoke(serve, host=host, port=port, workers=1, migrate=False)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="mallcore", standalone_mode=True)
    except Exception as exc:
        # A StartupError (bad config, a center that cannot load) can only come from a
        # kernel module already imported; nothing else needs the kernel imported here.
        errors = sys.modules.get("mallcore.kernel.errors")
        if errors is None or not isinstance(exc, errors.StartupError):
            raise
        click.echo(f"mallcore: {exc}", err=True)
        sys.exit(2)
