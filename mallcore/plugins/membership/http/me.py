"""``/membership/me``: the customer's own member page, points, history and wallet."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, put
from litestar.params import FromQuery, JSONBody

from mallcore.kernel import Caller
from mallcore.kernel.http import Idempotent, Reply, roles

from ..schemas import HistoryRow, MeIn, MemberView, PointsRow, WalletView
from .deps import Limit, Membership, lang


class MeController(Controller):
    path = "/me"
    guards = [roles("customer")]
    tags = ["membership"]

    @get("/", sync_to_thread=True, summary="My member page: level, growth, points, benefits")
    def me(self, request: Request[Any, Any, Any], principal: Caller, membership: Membership) -> MemberView:
        """The caller's member page (customer): level, growth towards the next level, points balance and
        the benefits of the level.
        """
        with membership.kernel.db.transaction(write=False) as conn:
            return membership.members.view(conn, principal.subject, lang(request))

    @put("/", sync_to_thread=True, summary="Tell us my birthday (once)")
    def update_me(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[MeIn],
        principal: Caller,
        membership: Membership,
        idempotent: Idempotent,
    ) -> Response[MemberView]:
        """Set the caller's birthday (customer), once; a second change answers 409. Honours `Idempotency-
        Key`.
        """

        def work(reply: Reply) -> None:
            with membership.kernel.db.transaction() as conn:
                membership.levels.set_birthday(conn, principal.subject, data.birthday, principal.subject)
                reply(conn, membership.members.view(conn, principal.subject, lang(request)), 200)

        return idempotent(data, work)

    @get("/points", sync_to_thread=True, summary="My points ledger, newest first")
    def my_points(
        self,
        principal: Caller,
        membership: Membership,
        before: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[PointsRow]:
        """The caller's points ledger (customer), newest first."""
        with membership.kernel.db.transaction(write=False) as conn:
            return membership.members.points(conn, principal.subject, before=before, limit=limit)

    @get("/history", sync_to_thread=True, summary="My level changes, growth and coupons, newest first")
    def my_history(
        self,
        principal: Caller,
        membership: Membership,
        before: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[HistoryRow]:
        """The caller's level changes, growth and coupons received (customer), newest first."""
        with membership.kernel.db.transaction(write=False) as conn:
            return membership.members.history(conn, principal.subject, before=before, limit=limit)

    @get("/wallet", sync_to_thread=True, summary="My card wallet (卡券包): coupons, vouchers, points")
    def my_wallet(
        self, request: Request[Any, Any, Any], principal: Caller, membership: Membership
    ) -> WalletView:
        """The caller's card wallet (customer): coupons, vouchers and points, ready to use."""
        with membership.kernel.db.transaction(write=False) as conn:
            return membership.members.wallet(conn, principal.subject, lang(request))
