"""``/membership/members``: staff look members up; admins adjust points and set levels.

A customer may read their own member record here too (``/membership/me`` is
the same page); anyone else's answers 404, as does a member a shop's staff
may not see (see :mod:`..members`).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from mallcore.kernel import Caller
from mallcore.kernel.http import Idempotent, Reply, roles

from ..schemas import AdjustIn, HistoryRow, LevelIn, MemberPage, MemberView, PointsRow
from .deps import Limit, Membership, lang

STAFF = ("merchant", "finance", "risk")


class MemberController(Controller):
    path = "/members"
    guards = [roles("customer", *STAFF)]
    tags = ["membership"]

    @get("/", sync_to_thread=True, guards=[roles(*STAFF)], summary="Search members")
    def search(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        membership: Membership,
        level: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> MemberPage:
        """Search members by level or name (staff). A shop's staff see the members who ordered from their
        shop.
        """
        with membership.kernel.db.transaction(write=False) as conn:
            return membership.members.search(
                conn, principal, level=level, q=q, after=after, limit=limit, lang=lang(request)
            )

    @get("/{customer:str}", sync_to_thread=True, summary="A member's page")
    def member(
        self,
        request: Request[Any, Any, Any],
        customer: FromPath[str],
        principal: Caller,
        membership: Membership,
    ) -> MemberView:
        """A member's page (staff; a customer may read their own). A member the caller may not see answers
        404.
        """
        with membership.kernel.db.transaction(write=False) as conn:
            membership.members.check_visible(conn, principal, customer)
            return membership.members.view(conn, customer, lang(request))

    @get("/{customer:str}/points", sync_to_thread=True, summary="A member's points ledger")
    def member_points(
        self,
        customer: FromPath[str],
        principal: Caller,
        membership: Membership,
        before: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[PointsRow]:
        """A member's points ledger, newest first (staff; a customer their own). Not visible: 404."""
        with membership.kernel.db.transaction(write=False) as conn:
            membership.members.check_visible(conn, principal, customer)
            return membership.members.points(conn, customer, before=before, limit=limit)

    @get("/{customer:str}/history", sync_to_thread=True, summary="A member's level changes and coupons")
    def member_history(
        self,
        customer: FromPath[str],
        principal: Caller,
        membership: Membership,
        before: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[HistoryRow]:
        """A member's level changes and coupons, newest first (staff; a customer their own). Not visible:
        404.
        """
        with membership.kernel.db.transaction(write=False) as conn:
            membership.members.check_visible(conn, principal, customer)
            return membership.members.history(conn, customer, before=before, limit=limit)

    @post(
        "/{customer:str}/points",
        status_code=201,
        sync_to_thread=True,
        guards=[roles("admin")],
        summary="Adjust a member's points, with a reason",
    )
    def adjust_points(
        self,
        customer: FromPath[str],
        data: JSONBody[AdjustIn],
        principal: Caller,
        membership: Membership,
        idempotent: Idempotent,
    ) -> Response[PointsRow]:
        """Add or take points from a member, with a reason (admin); a balance may not go below zero.
        Honours `Idempotency-Key`.
        """

        def work(reply: Reply) -> None:
            with membership.kernel.db.transaction() as conn:
                row = membership.ledger.adjust(conn, customer, data.delta, data.reason, principal.subject)
                reply(conn, row, 201)

        return idempotent(data, work)

    @put(
        "/{customer:str}/level", sync_to_thread=True, guards=[roles("admin")], summary="Set a member's level"
    )
    def set_level(
        self,
        request: Request[Any, Any, Any],
        customer: FromPath[str],
        data: JSONBody[LevelIn],
        principal: Caller,
        membership: Membership,
        idempotent: Idempotent,
    ) -> Response[MemberView]:
        """Set a member's level by hand, with a reason (admin). Honours `Idempotency-Key`."""

        def work(reply: Reply) -> None:
            with membership.kernel.db.transaction() as conn:
                membership.levels.set_level(conn, customer, data.level, data.reason, principal.subject)
                reply(conn, membership.members.view(conn, customer, lang(request)), 200)

        return idempotent(data, work)
