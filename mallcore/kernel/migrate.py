"""Migrations: one Alembic branch per center, applied for the enabled ones.

Each center keeps its revisions in its own folder (``migrations/`` beside
its module) with the center's name as branch label; its first revision
depends on the kernel's. ``mallcore db upgrade`` points Alembic at the
kernel's folder plus the enabled centers' and upgrades every head, so a
disabled center's tables are never created. On PostgreSQL an advisory lock
lets several workers start at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

if TYPE_CHECKING:
    from .db import Database

HERE = Path(__file__).parent / "migrations"
LOCK_ID = 0x6D616C6C  # "mall"


class Migratable(Protocol):
    """What migrations need of a kernel: its database, enabled centers and their tables."""

    @property
    def db(self) -> Database: ...
    @property
    def centers(self) -> Mapping[str, Any]: ...
    @property
    def metadatas(self) -> Mapping[str, sa.MetaData]: ...


def version_locations(kernel: Migratable) -> dict[str, Path]:
    locations = {"kernel": HERE / "versions"}
    for name, center in kernel.centers.items():
        path = center.migrations_path() if hasattr(center, "migrations_path") else None
        if path is not None:
            locations[name] = Path(path)
    return locations


def alembic_config(kernel: Migratable, connection: sa.Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_locations", " ".join(str(p) for p in version_locations(kernel).values()))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["kernel"] = kernel
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(kernel: Migratable, target: str = "heads") -> None:
    with kernel.db.engine.connect() as conn:
        if not kernel.db.is_sqlite:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_ID})
            conn.commit()
        try:
            command.upgrade(alembic_config(kernel, conn), target)
            conn.commit()
        finally:
            if not kernel.db.is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_ID})
                conn.commit()


def current(kernel: Migratable) -> list[str]:
    from alembic.runtime.migration import MigrationContext

    with kernel.db.engine.connect() as conn:
        return sorted(MigrationContext.configure(conn).get_current_heads())


def pending(kernel: Migratable) -> list[str]:
    """Heads of the enabled branches the database has not reached (empty when current)."""
    from alembic.script import ScriptDirectory

    wanted = set(ScriptDirectory.from_config(alembic_config(kernel)).get_heads())
    return sorted(wanted - set(current(kernel)))


def revision(kernel: Migratable, center: str, message: str) -> None:
    """Autogenerate a revision for one center's branch (developers' tool)."""
    locations = version_locations(kernel)
    if center not in locations:
        raise SystemExit(f"center '{center}' has no migrations folder; create {center}/migrations/ first")
    cfg = alembic_config(kernel)
    cfg.attributes["only"] = center
    existing = _branch_head(cfg, center)
    kernel_head = None if center == "kernel" or existing else _branch_head(cfg, "kernel")
    command.revision(
        cfg,
        message=message,
        autogenerate=True,
        head=f"{center}@head" if existing else "base",
        branch_label=None if existing else center,
        version_path=str(locations[center]),
        depends_on=kernel_head,
    )


def _branch_head(cfg: AlembicConfig, branch: str) -> str | None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(cfg)
    try:
        rev = script.get_revision(f"{branch}@head")
    except Exception:
        return None
    return None if rev is None else rev.revision
