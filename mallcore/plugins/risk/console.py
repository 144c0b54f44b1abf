"""The risk pages of the staff console: the review queue with each review's facts, fired
rules and matched list entries, released or rejected through ``Reviews.decide`` (the code
behind ``POST /risk/reviews/{id}/release|reject``); the lists (add, remove) and the rules
(add, edit, disable) through ``Admin``, the code behind ``/risk/lists`` and ``/risk/rules``:
a condition is checked when saved and its error (``rule_unknown_attribute``...) shown on the
form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from mallcore.kernel import Caller, NotFound, Principal
from mallcore.kernel.console import (
    STATE_KEY,
    ConsolePage,
    FormError,
    base_path,
    form_body,
    form_fields,
    local_time,
    render,
    submit,
)
from mallcore.kernel.http import Reply, roles

from .admin import Admin
from .reviews import Reviews
from .routes import Risk
from .schemas import ListIn, ReviewNote, RuleIn, RulePatch

if TYPE_CHECKING:
    from . import RiskCenter

PAGE = 50
VERDICTS = {"release": "released", "reject": "rejected"}
KINDS = ("customer", "phone", "address", "ip", "cidr", "device")
ACTIONS = ("allow", "review", "block")
STAGES = ("place", "pay", "after_sale", "refund")
# What a person reads for the API's codes on these forms (English, Chinese).
MESSAGES = {
    "rule_syntax_error": ("The condition is not valid CEL.", "条件不是合法的 CEL 表达式。"),
    "rule_unknown_attribute": ("The condition names a fact that does not exist.", "条件引用了不存在的字段。"),
    "rule_unknown_function": (
        "The condition calls a function that does not exist.",
        "条件调用了不存在的函数。",
    ),
    "rule_invalid": (
        "The condition does not give true or false on sample orders.",
        "条件在样例订单上不能得出真或假。",
    ),
    "rule_too_complex": (
        "The condition is too costly to run on every order.",
        "条件过于复杂,无法在每笔订单上运行。",
    ),
    "list_value_invalid": ("This value is not valid for the kind of entry.", "该值不符合名单类型。"),
    "list_entry_exists": ("This entry is already on the list.", "名单中已有此条目。"),
    "expires_in_past": ("The expiry is in the past.", "到期时间早于现在。"),
    "platform_only": (
        "Only platform risk staff may change the platform's lists and rules.",
        "仅平台风控可修改平台名单和规则。",
    ),
    "shop_unknown": ("No such shop.", "店铺不存在。"),
    "invalid_input": ("Some fields are missing or not valid.", "有字段缺失或填写有误。"),
}
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def pages() -> list[ConsolePage]:
    return [
        ConsolePage(
            path="/risk",
            label="Risk review",
            label_zh="风控审核",
            handlers=[RiskPages, RiskAdminPages],
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


class RiskAdminPages(Controller):
    """Lists and rules, as ``/risk/lists`` and ``/risk/rules`` manage them (risk staff)."""

    path = "/risk"
    guards = [roles("risk")]

    # -- lists ----------------------------------------------------------------------------

    @get("/lists", sync_to_thread=True)
    def lists(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        risk: Risk,
        kind: FromQuery[str | None] = None,
        value: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
    ) -> Template:
        return self._lists_page(request, principal, risk, kind, value, before)

    def _lists_page(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        risk: RiskCenter,
        kind: str | None,
        value: str | None,
        before: int | None,
        error: FormError | None = None,
        form: dict[str, Any] | None = None,
        failed: int | None = None,
    ) -> Template:
        entries = Admin(risk).entries(
            principal,
            kind=kind if kind in KINDS else None,
            value=value or None,
            action=None,
            shop=None,
            active=True,
            before=before,
            limit=PAGE + 1,
        )
        more = entries[PAGE - 1].id if len(entries) > PAGE else None
        return render(
            request,
            "risk/console/lists.html",
            entries=entries[:PAGE],
            more=more,
            kind=kind or "",
            value=value or "",
            kinds=KINDS,
            actions=ACTIONS,
            error=error,
            form=form or {},
            failed=failed,
            done=request.query_params.get("done"),
        )

    @post("/lists", sync_to_thread=True)
    def add_entry(
        self, request: Request[Any, Any, Any], principal: Caller, risk: Risk, data: Form
    ) -> Response[Any]:
        """``Admin.add``, the work of ``POST /risk/lists``."""
        fields = form_fields(data)
        if not principal.is_platform:
            fields["shop"] = principal.shop  # a shop's risk staff keep their shop's list

        def work() -> str:
            zone = request.scope["state"][STATE_KEY]["zone"]
            body = form_body({**fields, "expires_at": local_time(fields.get("expires_at"), zone)}, ListIn)
            Admin(risk).add(principal, body, Reply())
            return "/risk/lists?done=added"

        return submit(
            request,
            work,
            lambda e: self._lists_page(request, principal, risk, None, None, None, e, fields),
            MESSAGES,
            not_found_on_page=True,
        )

    @post("/lists/{entry_id:int}/remove", sync_to_thread=True)
    def remove_entry(
        self, request: Request[Any, Any, Any], entry_id: FromPath[int], principal: Caller, risk: Risk
    ) -> Response[Any]:
        """``Admin.remove``, the work of ``DELETE /risk/lists/{id}``."""

        def work() -> str:
            Admin(risk).remove(principal, entry_id, Reply())
            return "/risk/lists?done=removed"

        return submit(
            request,
            work,
            lambda e: self._lists_page(request, principal, risk, None, None, None, e, failed=entry_id),
            MESSAGES,
        )

    # -- rules ----------------------------------------------------------------------------

    @get("/rules", sync_to_thread=True)
    def rules(self, request: Request[Any, Any, Any], principal: Caller, risk: Risk) -> Template:
        return self._rules_page(request, principal, risk)

    def _rules_page(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        risk: RiskCenter,
        error: FormError | None = None,
        form: dict[str, Any] | None = None,
    ) -> Template:
        return render(
            request,
            "risk/console/rules.html",
            rules=Admin(risk).rules(principal),
            actions=ACTIONS,
            stages=STAGES,
            error=error,
            form=form or {"stages": ["place"], "action": "review", "enabled": True},
            done=request.query_params.get("done"),
        )

    @post("/rules", sync_to_thread=True)
    def add_rule(
        self, request: Request[Any, Any, Any], principal: Caller, risk: Risk, data: Form
    ) -> Response[Any]:
        """``Admin.add_rule``, the work of ``POST /risk/rules``: the condition is checked first."""
        fields = form_fields(data, lists=["stages"], flags=["enabled"])
        if not principal.is_platform:
            fields["shop"] = principal.shop

        def work() -> str:
            Admin(risk).add_rule(principal, form_body(fields, RuleIn), Reply())
            return "/risk/rules?done=added"

        return submit(
            request,
            work,
            lambda e: self._rules_page(request, principal, risk, e, fields),
            MESSAGES,
            not_found_on_page=True,
        )

    @get("/rules/{rule_id:int}", sync_to_thread=True)
    def rule(
        self, request: Request[Any, Any, Any], rule_id: FromPath[int], principal: Caller, risk: Risk
    ) -> Template:
        return self._rule_page(request, principal, risk, rule_id)

    def _rule_page(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        risk: RiskCenter,
        rule_id: int,
        error: FormError | None = None,
        form: dict[str, Any] | None = None,
    ) -> Template:
        rule = Admin(risk).rule(principal, rule_id)
        return render(
            request,
            "risk/console/rule.html",
            rule=rule,
            actions=ACTIONS,
            stages=STAGES,
            error=error,
            form=form
            or {f: getattr(rule, f) for f in ("name", "condition", "action", "stages", "score", "enabled")},
            done=request.query_params.get("done"),
        )

    @post("/rules/{rule_id:int}", sync_to_thread=True)
    def change_rule(
        self,
        request: Request[Any, Any, Any],
        rule_id: FromPath[int],
        principal: Caller,
        risk: Risk,
        data: Form,
    ) -> Response[Any]:
        """``Admin.change_rule``, the work of ``PATCH /risk/rules/{id}`` (untick "enabled" to disable)."""
        fields = form_fields(data, lists=["stages"], flags=["enabled"])

        def work() -> str:
            Admin(risk).change_rule(principal, rule_id, form_body(fields, RulePatch), Reply())
            return f"/risk/rules/{rule_id}?done=saved"

        return submit(
            request, work, lambda e: self._rule_page(request, principal, risk, rule_id, e, fields), MESSAGES
        )
