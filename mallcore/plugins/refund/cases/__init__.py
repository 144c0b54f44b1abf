"""After-sale cases: opening them and every step after, each inside an order stage.

:class:`Cases` wires the parts (see :mod:`.service`); :class:`Case` is a case
as stored.
"""

from .records import Case
from .service import Cases

__all__ = ["Case", "Cases"]
