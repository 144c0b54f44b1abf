"""库存中心 + 调度中心 WMS and dispatch: warehouses, stock, reservations, warehouse choice.

Work in progress: see the issue for this center.
"""

from __future__ import annotations

from mallcore.kernel import Center


class WmsCenter(Center):
    name = "wms"
    requires = ("catalog",)
    after = ("payment",)
    description = "库存中心 + 调度中心 WMS and dispatch"
