"""物流中心 TMS: freight templates, carriers, shipments, tracking, return parcels, pickups.

Work in progress: see the issue for this center.
"""

from __future__ import annotations

from mallcore.kernel import Center


class TmsCenter(Center):
    name = "tms"
    requires = ()
    after = ("catalog", "wms")
    description = "物流中心 TMS"
