"""Freight templates (运费模板) under ``/tms/templates``.

Staff of the shop read them (platform staff and admins: every shop's);
merchants of the shop and admins write them. A change drops this process's
cached templates of the shop at once (other workers notice through the
shop's version row, see :mod:`..freight`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from litestar import Controller, Response, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from mallcore.kernel import Caller, Forbidden, NotFound, Principal, visible_to
from mallcore.kernel.http import Idempotent, Reply, roles

from .. import tables as t
from ..freight import bump_version, load_templates, save_template
from ..schemas import TemplateIn, TemplateSpec, TemplateView
from .deps import Tms

if TYPE_CHECKING:
    from .. import TmsCenter


def template_or_404(conn: sa.Connection, principal: Principal, template_id: int) -> TemplateView:
    found = load_templates(conn, t.templates.c.id == template_id, 1)
    if not found or not principal.can_see(found[0].shop):
        raise NotFound(f"template {template_id} not found", code="template_not_found")
    return found[0]


def _manage(principal: Principal, shop: str) -> None:
    if not principal.can_act_for_shop(shop, "merchant"):
        raise Forbidden(f"you do not manage shop {shop}", code="shop_forbidden")


def replace_template(
    tms: TmsCenter, principal: Principal, template_id: int, data: TemplateSpec, reply: Reply
) -> None:
    """Replace a template's rules and bindings (``PUT /tms/templates/{id}`` and the console):
    404 outside the caller's shops, 403 ``shop_forbidden`` unless they manage its shop."""
    with tms.kernel.db.transaction() as conn:
        current = template_or_404(conn, principal, template_id)
        _manage(principal, current.shop)
        save_template(conn, data, principal.subject, template_id, current.shop)
        bump_version(conn, current.shop)
        reply(conn, template_or_404(conn, principal, template_id), 200)
    tms.freight.invalidate(current.shop)


class TemplateController(Controller):
    path = "/templates"
    guards = [roles("merchant", "warehouse", "finance")]
    tags = ["tms"]

    @post("/", status_code=201, sync_to_thread=True, guards=[roles("merchant")])
    def create_template(
        self, data: JSONBody[TemplateIn], principal: Caller, tms: Tms, idempotent: Idempotent
    ) -> Response[TemplateView]:
        """Create a freight template (运费模板) for a shop."""

        def work(reply: Reply) -> None:
            _manage(principal, data.shop)
            tms.kernel.shops.get(data.shop)  # 422 shop_unknown: no template for a shop that does not exist
            with tms.kernel.db.transaction() as conn:
                template_id = save_template(conn, data, principal.subject, None)
                bump_version(conn, data.shop)
                reply(conn, template_or_404(conn, principal, template_id), 201)
            tms.freight.invalidate(data.shop)

        return idempotent(data, work)

    @get("/", sync_to_thread=True)
    def list_templates(
        self, principal: Caller, tms: Tms, shop: FromQuery[str | None] = None
    ) -> list[TemplateView]:
        """Freight templates of the caller's shop (platform staff: all)."""
        tp = t.templates.c
        where: list[Any] = [visible_to(principal, tp.shop)]
        if shop:
            where.append(tp.shop == shop)
        with tms.kernel.db.transaction(write=False) as conn:
            return load_templates(conn, sa.and_(*where), 500)

    @get("/{template_id:int}", sync_to_thread=True)
    def get_template(self, template_id: FromPath[int], principal: Caller, tms: Tms) -> TemplateView:
        """One freight template with its regional rules. Another shop's: 404."""
        with tms.kernel.db.transaction(write=False) as conn:
            return template_or_404(conn, principal, template_id)

    @put("/{template_id:int}", sync_to_thread=True, guards=[roles("merchant")])
    def replace_template(
        self,
        template_id: FromPath[int],
        data: JSONBody[TemplateSpec],
        principal: Caller,
        tms: Tms,
        idempotent: Idempotent,
    ) -> Response[TemplateView]:
        """Replace a template's rules and bindings (the shop cannot change)."""

        return idempotent(data, lambda reply: replace_template(tms, principal, template_id, data, reply))

    @delete("/{template_id:int}", status_code=204, sync_to_thread=True, guards=[roles("merchant")])
    def delete_template(self, template_id: FromPath[int], principal: Caller, tms: Tms) -> None:
        """Delete a freight template and its product bindings (the shop's merchant). Another shop's: 404."""
        with tms.kernel.db.transaction() as conn:
            current = template_or_404(conn, principal, template_id)
            _manage(principal, current.shop)
            conn.execute(t.bindings.delete().where(t.bindings.c.template_id == template_id))
            conn.execute(t.templates.delete().where(t.templates.c.id == template_id))
            bump_version(conn, current.shop)
        tms.freight.invalidate(current.shop)
