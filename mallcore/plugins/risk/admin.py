"""Managing lists and rules: who may, and the writes (each bumps its cache version).

Risk staff of no shop (and admins) manage the platform's lists and rules;
risk staff of a shop manage that shop's. Merchants read their shop's list.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import cel as _cel
import msgspec
import sqlalchemy as sa

from mallcore.kernel import Conflict, InvalidInput, NotFound, Principal, require_platform, utcnow, visible_to
from mallcore.kernel.http import Reply

from . import normalize
from . import tables as t
from .cel import compile_condition, context_for
from .schemas import DryRunHit, DryRunIn, DryRunView, ListEntryView, ListIn, RuleIn, RulePatch, RuleView
from .versions import bump

if TYPE_CHECKING:
    from . import RiskCenter


def may_manage(principal: Principal, shop: str | None) -> None:
    """403 ``platform_only`` for the platform's lists and rules unless platform risk
    staff or admin; 404 for a shop that is not the caller's."""
    if shop is None:
        require_platform(principal, "risk")
    elif not principal.can_act_for_shop(shop, "risk"):
        raise NotFound(f"no shop '{shop}'", code="shop_not_found")


def entry_view(row: Any, now: datetime) -> ListEntryView:
    return ListEntryView(
        id=row.id,
        kind=row.kind,
        value=row.value,
        label=row.label,
        action=row.action,
        shop=row.shop,
        reason=row.reason,
        source=row.source,
        report_id=row.report_id,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        removed_by=row.removed_by,
        removed_at=row.removed_at,
        active=row.removed_at is None and (row.expires_at is None or row.expires_at > now),
    )


def add_entry(
    conn: sa.Connection,
    principal: Principal,
    data: ListIn,
    *,
    source: str = "staff",
    report_id: int | None = None,
) -> Any:
    """Insert a list entry in ``conn``'s transaction; its row. 409 when the same live entry exists."""
    now = utcnow()
    value = normalize.list_value(data.kind, data.value)
    if data.expires_at is not None and data.expires_at <= now:
        raise InvalidInput("expires_at is in the past", code="expires_in_past")
    c = t.lists.c
    shop_is = c.shop.is_(None) if data.shop is None else c.shop == data.shop
    same = conn.execute(
        sa.select(t.lists).where(
            c.kind == data.kind, c.value == value, shop_is, c.action == data.action, c.removed_at.is_(None)
        )
    ).first()
    if same is not None and (same.expires_at is None or same.expires_at > now):
        raise Conflict(
            f"{data.kind} {value} is on that {data.action} list already (entry {same.id})",
            code="list_entry_exists",
            extra={"id": same.id},
        )
    entry_id = conn.execute(
        t.lists.insert()
        .values(
            kind=data.kind,
            value=value,
            label=data.value.strip()[:300] if value != data.value.strip() else None,
            action=data.action,
            shop=data.shop,
            reason=data.reason,
            source=source,
            report_id=report_id,
            created_by=principal.subject,
            created_at=now,
            expires_at=data.expires_at,
        )
        .returning(t.lists.c.id)
    ).scalar_one()
    bump(conn, "lists")
    return conn.execute(sa.select(t.lists).where(c.id == entry_id)).one()


class Admin:
    def __init__(self, center: RiskCenter) -> None:
        self.center = center

    @property
    def db(self) -> Any:
        return self.center.kernel.db

    # -- lists -------------------------------------------------------------------------

    def add(self, principal: Principal, data: ListIn, reply: Reply) -> None:
        may_manage(principal, data.shop)
        if data.shop is not None:
            self.center.kernel.shops.get(data.shop)  # 404 for a shop that does not exist
        with self.db.transaction() as conn:
            row = add_entry(conn, principal, data)
            reply(conn, entry_view(row, utcnow()), 201)
        self.center.changed("lists")

    def remove(self, principal: Principal, entry_id: int, reply: Reply) -> None:
        now = utcnow()
        with self.db.transaction() as conn:
            row = self._entry(conn, principal, entry_id)
            may_manage(principal, row.shop)
            if row.removed_at is None:
                conn.execute(
                    t.lists.update()
                    .where(t.lists.c.id == entry_id)
                    .values(removed_at=now, removed_by=principal.subject)
                )
                bump(conn, "lists")
                row = self._entry(conn, principal, entry_id)
            reply(conn, entry_view(row, now))
        self.center.changed("lists")

    def _entry(self, conn: sa.Connection, principal: Principal, entry_id: int) -> Any:
        c = t.lists.c
        row = conn.execute(sa.select(t.lists).where(c.id == entry_id, visible_to(principal, c.shop))).first()
        if row is None:
            raise NotFound(f"list entry {entry_id} not found", code="list_entry_not_found")
        return row

    def entry(self, principal: Principal, entry_id: int) -> ListEntryView:
        with self.db.transaction(write=False) as conn:
            return entry_view(self._entry(conn, principal, entry_id), utcnow())

    def entries(
        self,
        principal: Principal,
        *,
        kind: str | None,
        value: str | None,
        action: str | None,
        shop: str | None,
        active: bool | None,
        before: int | None,
        limit: int,
    ) -> list[ListEntryView]:
        """Newest first; ``before`` (an id) pages on."""
        now = utcnow()
        c = t.lists.c
        stmt = sa.select(t.lists).where(visible_to(principal, c.shop))
        if kind:
            stmt = stmt.where(c.kind == kind)
            if value:
                stmt = stmt.where(c.value == normalize.list_value(kind, value))
        elif value:
            stmt = stmt.where(c.value == value.strip())
        if action:
            stmt = stmt.where(c.action == action)
        if shop == "platform":
            stmt = stmt.where(c.shop.is_(None))
        elif shop:
            stmt = stmt.where(c.shop == shop)
        if active is True:
            stmt = stmt.where(c.removed_at.is_(None), sa.or_(c.expires_at.is_(None), c.expires_at > now))
        elif active is False:
            stmt = stmt.where(sa.or_(c.removed_at.is_not(None), c.expires_at <= now))
        if before:
            stmt = stmt.where(c.id < before)
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(stmt.order_by(c.id.desc()).limit(limit)).all()
        return [entry_view(r, now) for r in rows]

    # -- rules -------------------------------------------------------------------------

    def rules(self, principal: Principal) -> list[RuleView]:
        out = []
        if principal.is_platform:
            for spec in self.center.settings.rules:
                out.append(
                    RuleView(
                        id=None,
                        name=spec.name,
                        shop=spec.shop,
                        condition=spec.condition,
                        action=spec.action,
                        score=spec.score,
                        stages=list(spec.stages),
                        enabled=True,
                        source="config",
                    )
                )
        c = t.rules.c
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(t.rules).where(c.removed_at.is_(None), visible_to(principal, c.shop)).order_by(c.id)
            ).all()
        return out + [_rule_view(r) for r in rows]

    def _rule(self, conn: sa.Connection, principal: Principal, rule_id: int) -> Any:
        c = t.rules.c
        row = conn.execute(
            sa.select(t.rules).where(c.id == rule_id, c.removed_at.is_(None), visible_to(principal, c.shop))
        ).first()
        if row is None:
            raise NotFound(f"rule {rule_id} not found", code="rule_not_found")
        return row

    def rule(self, principal: Principal, rule_id: int) -> RuleView:
        with self.db.transaction(write=False) as conn:
            return _rule_view(self._rule(conn, principal, rule_id))

    def add_rule(self, principal: Principal, data: RuleIn, reply: Reply) -> None:
        may_manage(principal, data.shop)
        self.center.compile(data, rule_id=0)  # 422 naming what is wrong
        now = utcnow()
        with self.db.transaction() as conn:
            rule_id = conn.execute(
                t.rules.insert()
                .values(
                    name=data.name,
                    shop=data.shop,
                    condition=data.condition,
                    action=data.action,
                    score=data.score,
                    stages=list(dict.fromkeys(data.stages)),
                    enabled=data.enabled,
                    created_by=principal.subject,
                    created_at=now,
                    updated_at=now,
                )
                .returning(t.rules.c.id)
            ).scalar_one()
            bump(conn, "rules")
            reply(conn, _rule_view(self._rule(conn, principal, rule_id)), 201)
        self.center.changed("rules")

    def change_rule(self, principal: Principal, rule_id: int, data: RulePatch, reply: Reply) -> None:
        with self.db.transaction() as conn:
            row = self._rule(conn, principal, rule_id)
            may_manage(principal, row.shop)
            changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
            merged = RuleIn(
                name=changes.get("name", row.name),
                condition=changes.get("condition", row.condition),
                action=changes.get("action", row.action),
                stages=changes.get("stages", list(row.stages)),
                score=changes.get("score", row.score),
                shop=row.shop,
            )
            self.center.compile(merged, rule_id=rule_id)
            if "stages" in changes:
                changes["stages"] = list(dict.fromkeys(changes["stages"]))
            conn.execute(
                t.rules.update()
                .where(t.rules.c.id == rule_id)
                .values(**changes, updated_by=principal.subject, updated_at=utcnow())
            )
            bump(conn, "rules")
            reply(conn, _rule_view(self._rule(conn, principal, rule_id)))
        self.center.changed("rules")

    def remove_rule(self, principal: Principal, rule_id: int, reply: Reply) -> None:
        with self.db.transaction() as conn:
            row = self._rule(conn, principal, rule_id)
            may_manage(principal, row.shop)
            now = utcnow()
            conn.execute(
                t.rules.update()
                .where(t.rules.c.id == rule_id)
                .values(removed_at=now, enabled=False, updated_by=principal.subject, updated_at=now)
            )
            bump(conn, "rules")
            view = _rule_view(row)
            view.enabled = False
            reply(conn, view)
        self.center.changed("rules")

    def dry_run(self, principal: Principal, data: DryRunIn) -> DryRunView:
        """Which of the last ``data.last`` decisions (of ``data.stage``) the condition
        would have caught, from the facts and signals stored with each."""
        s = self.center.settings
        condition = compile_condition(
            data.condition,
            self.center.counters.names(),
            max_length=s.max_condition_length,
            max_ms=s.max_rule_ms,
        )
        d = t.decisions.c
        stmt = sa.select(
            d.id, d.order_id, d.shop, d.customer, d.action, d.created_at, d.facts, d.signals
        ).where(d.stage == data.stage, visible_to(principal, d.shop))
        if data.shop:
            stmt = stmt.where(d.shop == data.shop)
        stmt = stmt.order_by(d.id.desc()).limit(min(data.last, s.dry_run_limit))
        self.center.decisions.flush()
        hits, evaluated, errors = [], 0, 0
        with self.db.transaction(write=False) as conn:
            for row in conn.execute(stmt):
                evaluated += 1
                try:
                    caught = condition.run(_cel.Context(context_for(condition.refs, row.facts, row.signals)))
                except Exception:
                    errors += 1
                    continue
                if caught:
                    hits.append(
                        DryRunHit(
                            decision_id=row.id,
                            order_id=row.order_id,
                            shop=row.shop,
                            customer=row.customer,
                            action=row.action,
                            created_at=row.created_at,
                        )
                    )
        return DryRunView(
            condition=data.condition, evaluated=evaluated, matched=len(hits), errors=errors, orders=hits
        )


def _rule_view(row: Any) -> RuleView:
    return RuleView(
        id=row.id,
        name=row.name,
        shop=row.shop,
        condition=row.condition,
        action=row.action,
        score=row.score,
        stages=list(row.stages or []),
        enabled=row.enabled,
        source="api",
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )
