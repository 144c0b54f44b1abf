"""The after-sale pages of the staff console: the merchant's workbench and the warehouse's receiving.

- ``/console/after-sales``: cases sorted by SLA due time (the soonest first),
  filtered by type and state, a page at a time (keyset on due time and id);
- ``/console/after-sales/{id}``: one case with its lines, return waybill and its
  carrier events, pickup, inspections and timeline, and the forms of the steps the
  signed-in role may take now: approve or reject with a note (merchant), receive and
  inspect per unit (warehouse);
- ``/console/receiving``: type or scan a return waybill and land on its case.

Every step goes through ``cases.step``, the code the API's
``POST /after-sales/{id}/<step>`` runs, so the rules (who, which shop, which
state) and the answers (404 elsewhere, 409 in the wrong state) are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from mallcore.kernel import Caller, NotFound, Principal, columns, require, visible_to
from mallcore.kernel import tables as kt
from mallcore.kernel.console import (
    ConsolePage,
    Tile,
    base_path,
    form_body,
    language,
    read_cursor,
    render,
    write_cursor,
)
from mallcore.kernel.http import roles

from . import tables as t
from .cases.steps import STEPS
from .routes import RefundDep
from .schemas import Decision, Receive, Rejection
from .states import LABELS, TERMINAL, TYPE_LABELS, CaseStatus
from .tracking import PARCEL_STATUS

if TYPE_CHECKING:
    from . import RefundCenter

STAFF = ("merchant", "warehouse", "finance")
TYPES = ("refund_only", "return_refund", "exchange", "repair")
GRADES = ("A", "B", "C", "D")
DISPOSITIONS = ("restock", "b_grade", "quarantine", "scrap", "send_back")
# The states in which the goods may be received at the warehouse.
RECEIVABLE = ("awaiting_return", "return_shipped", "pickup_requested", "return_in_transit")
# The states in which the merchant decides (a request, or a case finance sent back).
DECIDABLE = ("requested", "inspected")
PAGE = 50
# "Due soon" on the home page: timers that fire within these hours.
DUE_SOON_HOURS = 4
DUE_SOON = timedelta(hours=DUE_SOON_HOURS)
# Cases without a timer sort after every timed one, in one keyset order.
NEVER = datetime(9999, 1, 1, tzinfo=UTC)
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def pages(center: RefundCenter) -> list[ConsolePage]:
    def tiles(principal: Principal, lang: str) -> list[Tile]:
        return case_tiles(center, principal, lang)

    return [
        ConsolePage(
            path="/after-sales",
            label="After-sale",
            label_zh="售后工作台",
            handlers=[CasePages],
            roles=STAFF,
            order=20,
            tiles=tiles,
        ),
        ConsolePage(
            path="/receiving",
            label="Receiving",
            label_zh="退货收货",
            handlers=[ReceivingPage],
            roles=("warehouse",),
            order=25,
        ),
    ]


def case_tiles(center: RefundCenter, principal: Principal, lang: str) -> list[Tile]:
    """Open cases by state, and the SLA timers due within the next hours."""
    c = t.cases.c
    soon = center.clock() + DUE_SOON
    due_soon = sa.func.coalesce(sa.func.sum(sa.case((c.due_at <= soon, 1), else_=0)), 0)
    with center.kernel.db.transaction(write=False) as conn:
        # one statement: the open cases by state, and how many of each are due soon
        rows = conn.execute(
            sa.select(c.status, sa.func.count(), due_soon)
            .where(visible_to(principal, c.shop), c.status.not_in(TERMINAL))
            .group_by(c.status)
            .order_by(c.status)
        ).all()
    by_state = [(status, n) for status, n, _ in rows]
    due = sum(int(d) for _, _, d in rows)
    return [
        Tile(
            label="Open after-sale cases",
            label_zh="进行中的售后",
            value=str(sum(n for _, n in by_state)),
            href="/after-sales",
            rows=[(status, str(n)) for status, n in by_state],
        ),
        Tile(
            label=f"SLA timers due in {DUE_SOON_HOURS} h",
            label_zh=f"{DUE_SOON_HOURS} 小时内到期的时效",
            value=str(due),
            href="/after-sales",
            tone="warn" if due else "",
        ),
    ]


class CasePages(Controller):
    path = "/after-sales"
    guards = [roles(*STAFF)]

    @get("/", sync_to_thread=True)
    def workbench(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        refund: RefundDep,
        type: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
    ) -> Template:
        """Cases by SLA due time, soonest first; cases with no timer after them, newest first."""
        c = t.cases.c
        due = sa.func.coalesce(c.due_at, sa.literal(NEVER, columns.Time())).label("due_sort")
        o = kt.orders.c
        stmt = (
            sa.select(
                c.id,
                c.order_id,
                c.type,
                c.status,
                c.customer,
                c.shop,
                c.refund_amount,
                o.currency,
                c.due_at,
                c.timer,
                c.hold,
                due,
            )
            .join(kt.orders, o.id == c.order_id)
            .where(visible_to(principal, c.shop))
        )
        if type:
            stmt = stmt.where(c.type == type)
        if status == "open" or not status:
            stmt = stmt.where(c.status.not_in(TERMINAL))
        elif status != "all":
            stmt = stmt.where(c.status == status)
        if cursor := read_cursor(after):
            at, last = sa.literal(cursor[0], columns.Time()), sa.literal(cursor[1])
            stmt = stmt.where(sa.or_(due > at, sa.and_(due == at, c.id > last)))
        stmt = stmt.order_by(due, c.id).limit(PAGE + 1)
        with refund.kernel.db.transaction(write=False) as conn:
            rows = conn.execute(stmt).all()
        more = None
        if len(rows) > PAGE:
            rows = rows[:PAGE]
            more = write_cursor(rows[-1].due_sort, rows[-1].id)
        return render(
            request,
            "refund/console/cases.html",
            rows=rows,
            more=more,
            type=type or "",
            status=status or "open",
            types=TYPES,
            states=[s.value for s in CaseStatus],
            now=refund.clock(),
            labels=_labels(language(request)),
        )

    @get("/{case_id:int}", sync_to_thread=True)
    def case(
        self, request: Request[Any, Any, Any], case_id: FromPath[int], principal: Caller, refund: RefundDep
    ) -> Template:
        view = refund.cases.reading.get(principal, case_id, language(request))  # 404 unless visible
        order = refund.kernel.order_views.get(principal, view.order_id)
        parcels = [p for p in order.extra.get("after_sale_parcels", []) if p.get("case_id") == case_id]
        lines = {line.id: line for line in order.lines}
        may = {
            "decide": view.status in DECIDABLE and principal.can_act_for_shop(view.shop, "merchant"),
            "receive": view.status in RECEIVABLE and principal.can_act_for_shop(view.shop, "warehouse"),
        }
        return render(
            request,
            "refund/console/case.html",
            case=view,
            order=order,
            parcels=parcels,
            order_lines=lines,
            may=may,
            grades=GRADES,
            dispositions=DISPOSITIONS,
            done=request.query_params.get("done"),
            timeline=list(reversed(view.timeline)),
            parcel_status=_parcel_status(view, language(request)),
            labels=_labels(language(request)),
        )

    @post("/{case_id:int}/{step:str}", sync_to_thread=True)
    def take(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[int],
        step: FromPath[str],
        principal: Caller,
        refund: RefundDep,
        data: Form,
    ) -> Response[Any]:
        """A step from its form: the API's body, its role rule (``STEPS``) and ``cases.step``."""
        if step not in FORMS:
            raise NotFound(f"no step '{step[:20]}' in the console", code="step_unknown")
        require(principal, *STEPS[step].who)  # 403 role_required, as the API's guard
        refund.cases.step(principal, case_id, step, FORMS[step](data), lang=language(request))
        return Redirect(f"{base_path(request)}/after-sales/{case_id}?done={step}", status_code=303)


def _receipt(data: dict[str, Any]) -> Receive:
    """Receipt with one inspection per unit: ``unit-<n>-line``, ``-grade``, ``-disposition``, ``-passed``."""
    units = sorted({k.split("-")[1] for k in data if k.startswith("unit-") and k.endswith("-line")})
    inspections = [
        {
            "line_id": data.get(f"unit-{n}-line"),
            "quantity": 1,
            "grade": data.get(f"unit-{n}-grade") or "A",
            "disposition": data.get(f"unit-{n}-disposition") or None,
            "passed": data.get(f"unit-{n}-passed") == "yes",
            "note": data.get(f"unit-{n}-note", ""),
        }
        for n in units
    ]
    passed = all(i["passed"] for i in inspections) if inspections else data.get("passed") == "yes"
    return form_body(
        {"passed": passed, "note": data.get("note", ""), "inspections": inspections or None}, Receive
    )


# The steps staff take from the console, each from its form's fields to the API's body.
FORMS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "approve": lambda data: form_body({"note": data.get("note", "")}, Decision),
    "reject": lambda data: form_body({"reason": data.get("reason", "")}, Rejection),
    "receive": _receipt,
}


class ReceivingPage(Controller):
    path = "/receiving"
    guards = [roles("warehouse")]

    @get("/", sync_to_thread=True)
    def receiving(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        refund: RefundDep,
        waybill: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """Type or scan a return waybill: one case opens it; several are listed."""
        found: list[Any] = []
        waybill = (waybill or "").strip()
        if waybill:
            c = t.cases.c
            stmt = (
                sa.select(c.id, c.order_id, c.type, c.status, c.customer, c.return_parcel, c.pickup)
                .where(
                    visible_to(principal, c.shop),
                    sa.or_(
                        c.return_parcel["tracking_no"].as_string() == waybill,
                        c.pickup["tracking_no"].as_string() == waybill,
                    ),
                )
                .order_by(c.id.desc())
                .limit(PAGE)
            )
            with refund.kernel.db.transaction(write=False) as conn:
                found = list(conn.execute(stmt))
            if len(found) == 1:
                return Redirect(f"{base_path(request)}/after-sales/{found[0].id}#receive", status_code=303)
        return render(
            request,
            "refund/console/receiving.html",
            waybill=waybill,
            found=found,
            labels=_labels(language(request)),
        )


def _parcel_status(view: Any, lang: str) -> str | None:
    """The return parcel's status in the page's language, as the customer's tracking page says it."""
    parcel = view.return_parcel
    names = PARCEL_STATUS.get(parcel.status) if parcel is not None else None
    return None if names is None else names[1 if lang == "zh" else 0]


def _labels(lang: str) -> dict[str, dict[str, str]]:
    """A case's type and state in words, in the page's language (the customer's wording)."""
    pick = 1 if lang == "zh" else 0
    return {
        "types": {code: names[pick] for code, names in TYPE_LABELS.items()},
        "states": {str(state.value): names[pick] for state, names in LABELS.items()},
    }
