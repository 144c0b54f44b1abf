"""Alembic environment for mallcore: run by ``mallcore db upgrade``.

The kernel passes itself in ``config.attributes["kernel"]``; the target
metadata is the kernel's plus each enabled center's, and only tables of
those metadatas are compared, so one center's autogenerate never proposes to
drop another center's tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from mallcore.kernel import columns

config = context.config
kernel = config.attributes["kernel"]
only = config.attributes.get("only")  # autogenerate for one branch
metadatas = [md for name, md in kernel.metadatas.items() if only is None or name == only]
known = {name for md in metadatas for name in md.tables}


def include_name(name, type_, parent_names):
    if type_ == "table":
        return name in known
    return True


def render_item(type_, obj, autogen_context):
    """Render mallcore's column types by name, so revisions read like the tables."""
    if type_ != "type":
        return False
    variants = getattr(obj, "_variant_mapping", {})
    if isinstance(obj, columns.UTCDateTime):
        name = "columns.Time()"
    elif isinstance(obj, sa.JSON) and "postgresql" in variants:
        name = "columns.JSON"
    elif isinstance(obj, sa.BigInteger) and "sqlite" in variants:
        name = "columns.Id"
    else:
        return False
    autogen_context.imports.add("from mallcore.kernel import columns")
    return name


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    with kernel.db.engine.connect() as conn:
        _configure(conn)
        conn.commit()


def _configure(conn) -> None:
    context.configure(
        connection=conn,
        target_metadata=metadatas,
        include_name=include_name,
        render_as_batch=conn.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
