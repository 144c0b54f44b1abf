"""What the TMS handlers declare besides the kernel's own dependencies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, TypeAlias

from litestar.di import NamedDependency
from litestar.params import QueryParameter

if TYPE_CHECKING:
    from .. import TmsCenter

# ``tms: Tms`` in a handler receives the center (``center_router`` provides it);
# ``tms.kernel`` is the rest.
Tms: TypeAlias = NamedDependency["TmsCenter"]

Limit = Annotated[int, QueryParameter(ge=1, le=500)]
