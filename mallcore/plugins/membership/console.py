"""The membership page of the staff console: members by level and their points, through the
API's services (``members.search``, ``members.view``, ``members.points``) and visibility."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from mallcore.kernel import Caller
from mallcore.kernel.console import ConsolePage, language, render
from mallcore.kernel.http import roles

from .http.deps import Membership

STAFF = ("merchant", "finance", "risk")  # as the API's /membership/members
PAGE = 50


def pages() -> list[ConsolePage]:
    return [
        ConsolePage(
            path="/membership",
            label="Members",
            label_zh="会员",
            handlers=[MemberPages],
            roles=STAFF,
            order=80,
        )
    ]


class MemberPages(Controller):
    path = "/membership"
    guards = [roles(*STAFF)]

    @get("/", sync_to_thread=True)
    def members(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        membership: Membership,
        level: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
    ) -> Template:
        with membership.kernel.db.transaction(write=False) as conn:
            found = membership.members.search(
                conn,
                principal,
                level=level or None,
                q=q or None,
                after=after,
                limit=PAGE,
                lang=language(request),
            )
        return render(request, "membership/console/members.html", page=found, level=level or "", q=q or "")

    @get("/{customer:str}", sync_to_thread=True)
    def member(
        self,
        request: Request[Any, Any, Any],
        customer: FromPath[str],
        principal: Caller,
        membership: Membership,
        before: FromQuery[int | None] = None,
    ) -> Template:
        with membership.kernel.db.transaction(write=False) as conn:
            membership.members.check_visible(conn, principal, customer)
            view = membership.members.view(conn, customer, language(request))
            ledger = membership.members.points(conn, customer, before=before, limit=PAGE + 1)
        more = ledger[PAGE - 1].id if len(ledger) > PAGE else None
        return render(request, "membership/console/member.html", member=view, ledger=ledger[:PAGE], more=more)
