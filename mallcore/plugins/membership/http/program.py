"""``/membership/levels``, ``/membership/shops`` and ``/membership/stats``.

- Levels: everyone signed in reads the level table and its benefits.
- Shops: each shop's part in the program; its merchants (and admins) set
  it, its staff read it, platform staff read every shop's.
- Stats: members per level and the points outstanding, for admins and
  platform staff.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, Response, get, put
from litestar.params import FromPath, JSONBody

from mallcore.kernel import Caller, NotFound, Principal, visible_to
from mallcore.kernel.http import Idempotent, Reply, platform, roles

from .. import tables as t
from ..programs import Program, load, save
from ..schemas import LevelView, ProgramIn, ProgramView, Stats
from .deps import Membership, lang

SHOP_STAFF = ("merchant", "finance", "risk")


def _view(program: Program) -> ProgramView:
    return ProgramView(
        shop=program.shop,
        enabled=program.enabled,
        points=program.points,
        member_price=program.member_price,
        excluded_skus=sorted(program.excluded_skus),
        custom=program.custom,
    )


def _visible_shop(principal: Principal, shop: str) -> None:
    if not principal.can_see(shop):
        raise NotFound(f"shop {shop} not found", code="shop_not_found")


class LevelController(Controller):
    path = "/levels"
    tags = ["membership"]

    @get("/", sync_to_thread=False, summary="The levels and their benefits")
    def levels(
        self, request: Request[Any, Any, Any], principal: Caller, membership: Membership
    ) -> list[LevelView]:
        """The member levels, the growth each needs and their benefits. Any caller."""
        return membership.members.levels(lang(request))


class ProgramController(Controller):
    path = "/shops"
    guards = [roles(*SHOP_STAFF)]
    tags = ["membership"]

    @get("/", sync_to_thread=True, summary="Shops that set their own program")
    def programs(self, principal: Caller, membership: Membership) -> list[ProgramView]:
        """The shops that set their own part in the member program, as the caller's shop staff (platform
        staff: all).
        """
        p = t.programs.c
        with membership.kernel.db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(p.shop).where(visible_to(principal, p.shop)).order_by(p.shop)
            ).scalars()
            return [_view(membership.programs.get(conn, shop)) for shop in rows]

    @get("/{shop:str}", sync_to_thread=True, summary="A shop's part in the program")
    def program(self, shop: FromPath[str], principal: Caller, membership: Membership) -> ProgramView:
        """A shop's part in the member program (points rate, member prices). Another shop: 404."""
        _visible_shop(principal, shop)
        with membership.kernel.db.transaction(write=False) as conn:
            # Read through, not from the cache: staff see what they saved a moment ago.
            return _view(load(conn, shop, membership.settings.shops_join_by_default))

    @put(
        "/{shop:str}",
        sync_to_thread=True,
        guards=[roles("merchant")],
        summary="Set a shop's part in the program",
    )
    def set_program(
        self,
        shop: FromPath[str],
        data: JSONBody[ProgramIn],
        principal: Caller,
        membership: Membership,
        idempotent: Idempotent,
    ) -> Response[ProgramView]:
        """Set the caller's shop's part in the member program (merchant). Another shop: 404. Honours
        `Idempotency-Key`.
        """

        def work(reply: Reply) -> None:
            if not principal.can_act_for_shop(shop, "merchant"):
                raise NotFound(f"shop {shop} not found", code="shop_not_found")
            membership.kernel.shops.get(shop)  # 422 for a shop that does not exist
            program = Program(
                shop=shop,
                enabled=data.enabled,
                points=data.points,
                member_price=data.member_price,
                excluded_skus=frozenset(data.excluded_skus),
                custom=True,
            )
            with membership.kernel.db.transaction() as conn:
                save(conn, program, principal.subject)
                reply(conn, _view(program), 200)
            membership.programs.invalidate()

        return idempotent(data, work)


class StatsController(Controller):
    path = "/stats"
    guards = [platform(*SHOP_STAFF)]
    tags = ["membership"]

    @get("/", sync_to_thread=True, summary="Members per level, points outstanding")
    def stats(self, request: Request[Any, Any, Any], membership: Membership) -> Stats:
        """Members per level and points outstanding (platform staff)."""
        with membership.kernel.db.transaction(write=False) as conn:
            return membership.members.stats(conn, lang(request))
