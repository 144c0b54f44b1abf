"""The one exception hierarchy of mallcore.

::

    MallcoreError                 code, detail, status: what an HTTP client sees
    ├── InvalidInput       400/422  bad input, nothing written
    ├── Unauthenticated    401      no or unknown credentials
    ├── Forbidden          403      known caller, role not allowed
    ├── NotFound           404      absent, or not visible to the caller
    ├── Conflict           409      state does not allow it (transition, duplicate)
    │   └── OutOfStock     409      code "out_of_stock"
    ├── Rejected           422      a center refused the order (risk, catalog...)
    └── PaymentFailed      402      the provider declined
    StartupError                    configuration or plugin composition is wrong;
    ├── ConfigError                 raised before any request is served
    └── PluginError

Any ``MallcoreError`` raised inside a stage rolls the stage's transaction
back; the HTTP layer renders it as ``{"code": ..., "detail": ...}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MallcoreError(Exception):
    """Base of every error a client may see; carries a stable ``code``."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        if status is not None:
            self.status = status  # type: ignore[misc]
        self.extra = extra or {}
        # Response headers that go with the error (``Retry-After``...).
        self.headers: dict[str, str] = {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "detail": self.detail}
        if self.extra:
            body.update(self.extra)
        return body


class InvalidInput(MallcoreError):
    status = 422
    default_code = "invalid_input"


class Unauthenticated(MallcoreError):
    status = 401
    default_code = "unauthenticated"


class Forbidden(MallcoreError):
    status = 403
    default_code = "forbidden"


class NotFound(MallcoreError):
    status = 404
    default_code = "not_found"


class Conflict(MallcoreError):
    status = 409
    default_code = "conflict"


class OutOfStock(Conflict):
    default_code = "out_of_stock"


class Rejected(MallcoreError):
    """A center refuses the order or step; ``code`` says why (e.g. ``sku_unknown``)."""

    status = 422
    default_code = "rejected"


class PaymentFailed(MallcoreError):
    status = 402
    default_code = "payment_failed"


class RateLimited(MallcoreError):
    """429: the caller or its address sent too many requests; wait ``retry_after`` seconds."""

    status = 429
    default_code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.headers["Retry-After"] = str(retry_after)


class TooManyAttempts(RateLimited):
    """429 ``too_many_attempts``: too many failed token attempts from one client."""

    default_code = "too_many_attempts"


class Overloaded(MallcoreError):
    """503: too many writes are waiting already (or, with another ``code``, the request could not
    be done now); nothing was written, try again after ``retry_after`` s."""

    status = 503
    default_code = "overloaded"

    def __init__(self, detail: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.headers["Retry-After"] = str(retry_after)


class StartupError(Exception):
    """Raised while building a kernel; the message names the key or center at fault."""


class ConfigError(StartupError):
    pass


class PluginError(StartupError):
    def __init__(self, message: str, *, center: str | None = None) -> None:
        super().__init__(message)
        self.center = center
