"""OpenTelemetry spans of stages and hooks, when ``opentelemetry`` is importable.

Install the API (``pip install mallcore[otel]``) and configure an SDK and an
exporter as usual (``opentelemetry-instrument``, or your own
``TracerProvider``): every stage becomes a span ``stage <name>`` (with the
order id) and every hook call inside it a child span ``hook <name>`` (with
the centers called). Without the package, or without an SDK, nothing is
recorded and the cost is a no-op context manager per stage.
"""

from __future__ import annotations

import contextvars
from contextlib import AbstractContextManager, nullcontext
from typing import Any

try:  # optional: the otel extra
    from opentelemetry import context as otel_context
    from opentelemetry import trace
except ImportError:  # pragma: no cover - exercised where the package is missing
    trace = None  # type: ignore[assignment]
    otel_context = None  # type: ignore[assignment]

ENABLED = trace is not None
_open: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar("mallcore_hook_spans", default=())


def stage_span(name: str, order_id: int | None = None) -> AbstractContextManager[Any]:
    """A span around one stage (``nullcontext`` without OpenTelemetry)."""
    if trace is None:
        return nullcontext()
    attributes: dict[str, Any] = {"mallcore.stage": name}
    if order_id is not None:
        attributes["mallcore.order_id"] = order_id
    return trace.get_tracer("mallcore").start_as_current_span(f"stage {name}", attributes=attributes)


def configured() -> bool:
    """Whether an SDK has set a tracer provider (the API alone records nothing)."""
    return trace is not None and not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def trace_hooks(pm: Any) -> bool:
    """Wrap every hook call of ``pm`` in a span (pluggy's hook-call monitoring), when an SDK
    is configured: the wrapper costs a few microseconds a call, for nothing otherwise."""
    if trace is None or not configured():
        return False
    tracer = trace.get_tracer("mallcore")

    def before(hook_name: str, impls: Any, kwargs: Any) -> None:
        span = tracer.start_span(
            f"hook {hook_name}", attributes={"mallcore.centers": [impl.plugin_name for impl in impls]}
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        _open.set((*_open.get(), (span, token)))

    def after(outcome: Any, hook_name: str, impls: Any, kwargs: Any) -> None:
        stack = _open.get()
        if not stack:
            return
        (span, token), rest = stack[-1], stack[:-1]
        _open.set(rest)
        if outcome.exception is not None:
            span.record_exception(outcome.exception)
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(outcome.exception).__name__))
        span.end()
        otel_context.detach(token)

    pm.add_hookcall_monitoring(before, after)
    return True
