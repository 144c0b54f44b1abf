"""``mallcore membership ...``: run the jobs by hand, check the ledger."""

from __future__ import annotations

import json
from typing import Any

import click

from mallcore.kernel import pass_kernel


def commands() -> list[click.Command]:
    @click.command("expire")
    @pass_kernel
    def expire(kernel: Any) -> None:
        """Expire points past their age now (oldest lots first)."""
        click.echo(f"{kernel.centers['membership'].expiry.run()} points expired")

    @click.command("reevaluate")
    @pass_kernel
    def reevaluate(kernel: Any) -> None:
        """Re-evaluate the levels of members whose period ended."""
        click.echo(f"{kernel.centers['membership'].levels.reevaluate()} members re-evaluated")

    @click.command("check")
    @pass_kernel
    def check(kernel: Any) -> None:
        """Check that every member's balance and held points equal their ledger's sums."""
        with kernel.db.transaction(write=False) as conn:
            bad = kernel.centers["membership"].ledger.check(conn)
        if bad:
            click.echo(json.dumps(bad, indent=2))
            raise SystemExit(1)
        click.echo("every member's balance equals the sum of their ledger")

    return [expire, reevaluate, check]
