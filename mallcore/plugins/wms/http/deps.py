"""What the WMS handlers share: the center as a dependency, paging parameters, row views."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar

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

View = TypeVar("View")


def view_of(kind: type[View], row: Any) -> View:
    """A response Struct filled from the row's columns of the same names."""
    return kind(**{f: getattr(row, f) for f in kind.__struct_fields__})  # type: ignore[attr-defined]
