"""The risk page of the staff console: the review queue with each review's facts, fired
rules and matched list entries, released or rejected through ``Reviews.decide`` (the code
behind ``POST /risk/reviews/{id}/release|reject``)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from mallcore.kernel import Caller, NotFound
from mallcore.kernel.console import ConsolePage, base_path, form_body, render
from mallcore.kernel.http import Reply, roles

from .reviews import Reviews
from .routes import Risk
from .schemas import ReviewNote

PAGE = 50
VERDICTS = {"release": "released", "reject": "rejected"}
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def pages() -> list[ConsolePage]:
    return [
        ConsolePage(
            path="/risk",
            label="Risk review",
            label_zh="风控审核",
            handlers=[RiskPages],
            roles=("risk",),
            order=60,
        )
    ]


class RiskPages(Controller):
    path = "/risk"
    guards = [roles("risk")]

    @get("/", sync_to_thread=True)
    def queue(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        risk: Risk,
        status: FromQuery[str] = "open",
        after: FromQuery[int | None] = None,
    ) -> Template:
        views = Reviews(risk).queue(
            principal, status=status, kind=None, shop=None, order_id=None, after=after, limit=PAGE + 1
        )
        more = views[PAGE - 1].id if len(views) > PAGE else None
        return render(request, "risk/console/queue.html", reviews=views[:PAGE], more=more, status=status)

    @get("/{review_id:int}", sync_to_thread=True)
    def review(
        self, request: Request[Any, Any, Any], review_id: FromPath[int], principal: Caller, risk: Risk
    ) -> Template:
        view = Reviews(risk).get(principal, review_id)
        return render(request, "risk/console/review.html", review=view, done=request.query_params.get("done"))

    @post("/{review_id:int}/{verdict:str}", sync_to_thread=True)
    def decide(
        self,
        request: Request[Any, Any, Any],
        review_id: FromPath[int],
        verdict: FromPath[str],
        principal: Caller,
        risk: Risk,
        data: Form,
    ) -> Response[Any]:
        if verdict not in VERDICTS:
            raise NotFound(f"no verdict '{verdict[:20]}'", code="verdict_unknown")
        note = form_body({"note": data.get("note", "")}, ReviewNote)
        Reviews(risk).decide(principal, review_id, VERDICTS[verdict], note.note, Reply())
        return Redirect(f"{base_path(request)}/risk/{review_id}?done={VERDICTS[verdict]}", status_code=303)
