"""The steps people take on a case from a request: who may take each one, and what it does.

``who`` names the roles that may take a step. The HTTP route declares them as
its guard (403 ``role_required`` before anything is read); :func:`authorize`
adds the rule that depends on the case itself: a customer step is for the
customer who opened the case (403 ``role_required`` for anyone else who can
see it), a staff step for staff of the case's shop (404 elsewhere, as for a
case one cannot see). Admins may take every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from mallcore.kernel import Forbidden, OrderContext, Principal

from ..schemas import StaffNote, Withdrawal
from .records import Case, case_not_found

if TYPE_CHECKING:
    from .service import Cases

CUSTOMER = ("customer",)


class Step(NamedTuple):
    who: tuple[str, ...]
    # (cases, the stage, the case, who asked, the request body) -> None
    take: Callable[[Cases, OrderContext, Case, Principal, Any], None]


STEPS: dict[str, Step] = {
    # approve the request (or, once inspected, redo its refund or replacement)
    "approve": Step(
        ("merchant",),
        lambda c, ctx, case, who, body: c.decisions.approve(ctx, case, actor=who.subject, decision=body),
    ),
    "reject": Step(
        ("merchant",),
        lambda c, ctx, case, who, body: c.decisions.reject(ctx, case, body.reason, actor=who.subject),
    ),
    "cancel": Step(
        CUSTOMER,
        lambda c, ctx, case, who, body: c.decisions.withdraw(ctx, case, (body or Withdrawal()).reason),
    ),
    "return-shipment": Step(CUSTOMER, lambda c, ctx, case, who, body: c.returns.file_return(ctx, case, body)),
    "pickup": Step(CUSTOMER, lambda c, ctx, case, who, body: c.returns.book_pickup(ctx, case, body)),
    "receive": Step(
        ("warehouse",),
        lambda c, ctx, case, who, body: c.receipt.receive(ctx, case, body, actor=who.subject),
    ),
    "repaired": Step(
        ("warehouse", "merchant"),
        lambda c, ctx, case, who, body: c.settlement.repaired(
            ctx, case, (body or StaffNote()).note, actor=who.subject
        ),
    ),
    "ship-back": Step(
        ("warehouse", "merchant"),
        lambda c, ctx, case, who, body: c.settlement.ship_back(ctx, case, body, actor=who.subject),
    ),
}


def authorize(principal: Principal, case: Case, who: tuple[str, ...]) -> None:
    """The part of a step's access rule that depends on the case (see the module docstring)."""
    if who == CUSTOMER:
        if principal.is_admin:
            return
        if case.customer != principal.subject or "customer" not in principal.roles:
            raise Forbidden("only the customer who opened the case can do this", code="role_required")
    elif not principal.can_act_for_shop(case.shop, *who):
        raise case_not_found(case.id)
