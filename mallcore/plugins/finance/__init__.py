"""财务管理 finance: journal, refund review, reconciliation, settlement.

Work in progress: see the issue for this center.
"""

from __future__ import annotations

from mallcore.kernel import Center


class FinanceCenter(Center):
    name = "finance"
    requires = ("payment",)
    after = ("catalog",)
    description = "财务管理 finance"
