"""The after-sale service: its parts wired together once, and requests run as stages.

Each part does one job and is handed the few collaborators it uses:

==============  ==============================================================
``records``     loading and writing case rows (:mod:`.records`)
``lifecycle``   the one way a case changes state: row, timeline, hook (:mod:`.lifecycle`)
``eligibility`` what an order still offers: window, units no case holds (:mod:`.eligibility`)
``opening``     opening a case (:mod:`.opening`)
``decisions``   approve, reject, withdraw; a cancelled order closes its cases (:mod:`.decisions`)
``holds``       a reacting center's hold or fast track on a new request, and the hold's end (:mod:`.holds`)
``returns``     return waybills, pickups, carrier events (:mod:`.returns`)
``receipt``     receiving and inspecting the goods (:mod:`.receipt`)
``settlement``  refund, replacement order, repair shipped back (:mod:`.settlement`)
``reading``     a case as its reader sees it, and the list (:mod:`.reading`)
==============  ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mallcore.kernel import OrderContext, Principal
from mallcore.kernel.http import Reply

from ..schemas import CaseView, OpenCase, RefundSettings
from .decisions import Decisions
from .eligibility import Eligibility
from .holds import Holds
from .lifecycle import Lifecycle
from .opening import Opening
from .reading import Reading
from .receipt import Receipt
from .records import Case, CaseRecords, case_not_found
from .returns import Returns
from .settlement import Settlement
from .steps import STEPS, authorize

if TYPE_CHECKING:
    from mallcore.kernel import Kernel


class Cases:
    records: CaseRecords
    lifecycle: Lifecycle
    eligibility: Eligibility
    settlement: Settlement
    decisions: Decisions
    holds: Holds
    opening: Opening
    returns: Returns
    receipt: Receipt
    reading: Reading

    def __init__(self, kernel: Kernel, settings: RefundSettings, clock: Callable[[], datetime]) -> None:
        self.orders = kernel.orders
        self.records = CaseRecords(kernel.db)
        self.lifecycle = Lifecycle(self.records, settings, clock, kernel.hook)
        self.eligibility = Eligibility(self.records, kernel.refunds, settings, self.lifecycle.now)
        self.settlement = Settlement(self.lifecycle, self.records, kernel.refunds, kernel.orders, settings)
        self.returns = Returns(self.lifecycle, self.records, kernel.order_views, settings, kernel.config)
        self.decisions = Decisions(
            self.lifecycle, self.settlement, self.records, settings, self.returns.expected_warehouse
        )
        self.holds = Holds(self.lifecycle, self.decisions, self.records, settings)
        self.opening = Opening(
            self.lifecycle,
            self.eligibility,
            self.holds,
            self.records,
            settings,
            kernel.hook,
            kernel.orders,
        )
        self.receipt = Receipt(self.lifecycle, self.settlement, self.records, settings)
        self.reading = Reading(self.records, self.settlement, kernel, settings.return_warehouse)

    def open(self, principal: Principal, req: OpenCase, *, lang: str, reply: Reply | None = None) -> CaseView:
        """Open a case in its order's stage; ``reply`` gets the 201 answer in the stage."""
        with self.orders.stage("after_sale", req.order_id, principal) as ctx:
            case = self.opening.open(ctx, req)
            return self._answer(ctx, case, lang, reply, 201)

    def step(
        self,
        principal: Principal,
        case_id: int,
        name: str,
        body: Any,
        *,
        lang: str,
        reply: Reply | None = None,
    ) -> CaseView:
        """Take the step ``name`` (a key of :data:`.steps.STEPS`) on a case the principal may see."""
        step = STEPS[name]
        order_id = self.records.locate(principal, case_id)
        with self.orders.stage("after_sale", order_id, principal) as ctx:
            case = self.records.load(ctx.conn, case_id)
            if case is None:
                raise case_not_found(case_id)
            authorize(principal, case, step.who)
            step.take(self, ctx, case, principal, body)
            return self._answer(ctx, case, lang, reply, 200)

    def _answer(self, ctx: OrderContext, case: Case, lang: str, reply: Reply | None, status: int) -> CaseView:
        """The case as the caller sees it, with what this stage wrote; stored for the request's key."""
        view = self.reading.view(ctx.conn, case, ctx.principal, lang, order=ctx.order, pending=ctx)
        (reply or Reply())(ctx.conn, view, status)
        return view
