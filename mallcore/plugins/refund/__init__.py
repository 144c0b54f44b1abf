"""客服 after-sale: returns, refunds, exchanges, repairs, tracking page.

Work in progress: see the issue for this center.
"""

from __future__ import annotations

from mallcore.kernel import Center


class RefundCenter(Center):
    name = "refund"
    requires = ("payment",)
    after = ("catalog", "wms", "tms", "finance")
    description = "客服 after-sale"
