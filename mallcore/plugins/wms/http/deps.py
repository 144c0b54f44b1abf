"""What the WMS handlers declare besides the kernel's own dependencies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, TypeAlias

from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

if TYPE_CHECKING:
    from .. import WmsCenter

# ``wms: Wms`` in a handler receives the center (``center_router`` provides it);
# ``wms.kernel`` is the rest.
Wms: TypeAlias = NamedDependency["WmsCenter"]

Limit = Annotated[int, QueryParameter(ge=1, le=500)]
# Ids beyond a 64-bit integer are refused (400), never sent to the database.
MAX_ID = 2**63 - 1
OrderId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
IdCursor = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]
