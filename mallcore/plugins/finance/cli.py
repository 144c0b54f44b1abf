"""``mallcore finance ...``: reconcile a statement file, check the books."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from mallcore.kernel import MallcoreError, pass_kernel

from . import tables as t
from .reconcile import parse


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return max(0, sum(1 for _ in f) - 1)


@click.command("reconcile")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--provider", default="sandbox", show_default=True, help="The provider whose statement it is.")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The statement's day (default: the days of its lines).",
)
@click.option("--by", "by", default="cli", show_default=True, help="Who runs it (recorded on the run).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@pass_kernel
def reconcile(kernel: Any, file: Path, provider: str, day: datetime | None, by: str, quiet: bool) -> None:
    """Match a provider statement CSV against the journal and queue every mismatch."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    center = kernel.centers["finance"]
    console = Console(stderr=True, quiet=quiet)
    total = _count_lines(file)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=quiet,
    ) as progress:
        reading = progress.add_task("reading", total=total)
        try:
            with file.open(encoding="utf-8-sig", newline="") as f:
                lines = list(parse(f, progress=lambda n: progress.advance(reading, n)))
            matching = progress.add_task("matching", total=len({line.reference for line in lines}))
            run_id = center.reconciler.run(
                provider=provider,
                lines=lines,
                created_by=by,
                day=day.date() if day else None,
                filename=file.name,
                progress=lambda n: progress.advance(matching, n),
            )
        except MallcoreError as exc:
            raise click.ClickException(f"{exc.code}: {exc.detail}") from None
    with kernel.db.transaction(write=False) as conn:
        run = conn.execute(sa.select(t.recon_runs).where(t.recon_runs.c.id == run_id)).one()
        found = conn.execute(
            sa.select(t.mismatches).where(t.mismatches.c.run_id == run_id).order_by(t.mismatches.c.id)
        ).all()
    click.echo(
        f"run {run.id}: {provider} {run.day_from}..{run.day_to}, {run.rows} lines, "
        f"{run.matched} matched, {run.mismatches} mismatches"
    )
    for m in found:
        click.echo(f"  {m.kind:<15} {m.reference:<28} {m.detail}")
    if found:
        raise SystemExit(1)


@click.command("check")
@pass_kernel
def check(kernel: Any) -> None:
    """Verify that every journal entry balances, and print the trial balance."""
    p = t.postings.c
    with kernel.db.transaction(write=False) as conn:
        off = conn.execute(
            sa.select(p.entry_id, p.currency, sa.func.sum(p.amount))
            .group_by(p.entry_id, p.currency)
            .having(sa.func.sum(p.amount) != 0)
        ).all()
        balances = conn.execute(
            sa.select(p.account, p.currency, sa.func.sum(p.amount))
            .group_by(p.account, p.currency)
            .order_by(p.account)
        ).all()
    for account, currency, balance in balances:
        click.echo(f"{account:<40} {currency} {balance:>16}")
    if off:
        for entry_id, currency, amount in off:
            click.echo(f"entry {entry_id} does not balance: {currency} {amount:+d}", err=True)
        raise SystemExit(1)
    click.echo(f"{len(balances)} account(s); every entry balances")


def commands() -> list[click.Command]:
    return [reconcile, check]
