"""structlog set-up: console lines for people, JSON lines for machines.

Every line carries the request id (bound by the HTTP middleware), and lines
written inside a stage carry the order id and stage (``ctx.log``) and, for a
center's own logger, the center's name.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec
import structlog

from .config import LoggingConfig


def configure_logging(config: LoggingConfig) -> None:
    level = getattr(logging, config.level.upper())
    json = config.format == "json" or (config.format == "auto" and not sys.stderr.isatty())
    if json:
        # msgspec renders a line in a few microseconds; bytes go straight to stderr.
        renderer: structlog.typing.Processor = structlog.processors.JSONRenderer(serializer=_json)
        stream = getattr(sys.stderr, "buffer", None)
        factory: Any = (
            structlog.BytesLoggerFactory(stream)
            if stream is not None
            else structlog.PrintLoggerFactory(sys.stderr)
        )
        if stream is None:
            renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def _json(obj: Any, **_: Any) -> bytes:
    return msgspec.json.encode(obj, enc_hook=str)
