"""The base class of a center: metadata as class attributes, behaviour in hooks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import sqlalchemy as sa
import structlog

from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .kernel import Kernel


class Center:
    """A business center. Subclass it, set the class attributes, add hooks.

    ``name`` is the one name of the center everywhere: entry-point name,
    ``[centers.<name>]`` config section, route prefix, table prefix, Alembic
    branch label and the ``center`` field in logs.

    - ``requires``: centers that must be enabled too; they run before this one.
    - ``after``: centers this one runs after when they are enabled.
    - ``conflicts``: centers that cannot be enabled together with this one.
    - ``Settings``: msgspec Struct validating ``[centers.<name>]``.
    - ``tables``: ``sqlalchemy.MetaData`` with the center's tables.
    - ``migrations``: folder of the center's Alembic branch; defaults to
      ``migrations/`` beside the module defining the class, when it exists.
    - ``templates``: folder of Jinja templates for HTML pages; defaults to
      ``templates/`` beside the module, when it exists.

    One instance is made per kernel; the kernel sets ``kernel``,
    ``settings`` and ``log`` before any hook runs.
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    conflicts: ClassVar[tuple[str, ...]] = ()
    Settings: ClassVar[type[msgspec.Struct] | None] = None
    tables: ClassVar[sa.MetaData | None] = None
    migrations: ClassVar[str | None] = None
    templates: ClassVar[str | None] = None
    description: ClassVar[str] = ""

    kernel: Kernel
    settings: Any
    log: structlog.stdlib.BoundLogger

    def __init__(self) -> None:
        self.settings = None
        self.log = structlog.get_logger("mallcore").bind(center=getattr(self, "name", "?"))

    def bind(self, kernel: Kernel, settings: Any) -> None:
        """Called by the kernel once, before any other hook of this instance."""
        self.kernel = kernel
        self.settings = settings

    @classmethod
    def _beside(cls, declared: str | None, default: str) -> Path | None:
        if declared:
            return Path(declared)
        module = __import__(cls.__module__, fromlist=["__file__"])
        folder = Path(module.__file__ or ".").parent / default
        return folder if folder.is_dir() else None

    @classmethod
    def migrations_path(cls) -> Path | None:
        """The center's Alembic versions folder (``migrations/`` beside its module)."""
        return cls._beside(cls.migrations, "migrations")

    @classmethod
    def template_dir(cls) -> Path | None:
        """The center's Jinja templates (``templates/`` beside its module)."""
        return cls._beside(cls.templates, "templates")

    @hookimpl
    def center_settings(self) -> type[msgspec.Struct] | None:
        return self.Settings

    @hookimpl
    def center_tables(self) -> sa.MetaData | None:
        return self.tables
