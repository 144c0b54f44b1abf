"""What the membership handlers declare besides the kernel's own dependencies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from mallcore.kernel import pick_language

if TYPE_CHECKING:
    from .. import MembershipCenter

# ``membership: Membership`` in a handler receives the center (``center_router`` provides it).
Membership: TypeAlias = NamedDependency["MembershipCenter"]

Limit = Annotated[int, QueryParameter(ge=1, le=200)]


def lang(request: Request[Any, Any, Any]) -> str:
    """``zh`` or ``en``, from the request's Accept-Language."""
    return pick_language(request.headers.get("accept-language"))
