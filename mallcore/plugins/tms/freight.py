"""Freight templates (运费模板): how much a consignment costs to a region.

The rule, in one place:

- A template prices **by piece** or **by weight** (grams). A rule charges
  ``first_fee`` for the first ``first`` units and ``additional_fee`` for each
  started step of ``additional`` units beyond them (rounding up: 2.1 kg with
  a 1 kg first weight and 1 kg steps is first + 2 steps).
- The destination's region code picks the rule: the regional rule with the
  **longest matching prefix** wins; ties go to the rule listed first; no
  match uses the default rule. ``not_delivered`` prefixes take part in the
  same contest: when the longest match (or a tie) is a not-delivered prefix,
  the template does not deliver there (placement is refused with
  ``region_not_delivered``), so ``not_delivered = ["65"]`` with a rule for
  ``"6501"`` delivers to Urumqi only.
- Free shipping (包邮) rules are chosen the same way (longest matching
  prefix, an empty region list matching everywhere at length 0); among the
  most specific, any rule whose conditions hold (``min_amount`` on the goods
  at list price, ``min_quantity`` in pieces; both when both are set) makes
  the consignment free.
- Goods sharing a template travel as one consignment (units pooled, one
  first unit); goods of different templates are separate consignments,
  each priced on its own, and the order's freight is their sum.

Which template prices a SKU leaving warehouse W: the one bound to the SKU
for W, else bound to the SKU for any warehouse, else the shop's default for
W, else the shop's default for any warehouse, else any template bound to the
SKU (or any default), first by origin code. At placement the warehouse is not
known yet, so the SKU's any-warehouse binding (else its first), then the
shop's any-warehouse default (else the first) is used. SKUs with no template
ship free.

Templates are stored by :func:`save_template` (which refuses clashing names
and bindings) and read back for the routes by :func:`load_templates`;
pricing reads them through the per-process :class:`TemplateCache`, which a
change notices through the shop's version row (:func:`bump_version`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import Conflict, InvalidInput, utcnow

from . import tables as t
from .schemas import Charge, FreeRule, RegionRule, TemplateSpec, TemplateView, view_of

X = "\u00d7"  # the multiplication sign, as in "2 kg x ¥3"
SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "HKD": "HK$", "JPY": "¥"}


def money(amount: int, currency: str = "CNY") -> str:
    """``¥8`` for 800 fen, ``¥8.50`` for 850."""
    symbol = SYMBOLS.get(currency, f"{currency} ")
    whole, cents = divmod(amount, 100)
    return f"{symbol}{whole}" if cents == 0 else f"{symbol}{whole}.{cents:02d}"


def units_text(units: int, mode: str, *, zh: bool = False) -> str:
    if mode == "piece":
        if zh:
            return f"{units}件"
        return f"{units} pc" if units == 1 else f"{units} pcs"
    if units % 1000 == 0:
        return f"{units // 1000} kg" if not zh else f"{units // 1000}kg"
    if units > 1000:
        return f"{units / 1000:g} kg" if not zh else f"{units / 1000:g}kg"
    return f"{units} g" if not zh else f"{units}g"


class NotDelivered(Exception):
    def __init__(self, template: Template, region: str) -> None:
        super().__init__(f"template {template.name} does not deliver to {region}")
        self.template = template
        self.region = region


def rules_of(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """A stored template's ``spec`` column as the rules it holds (``default_rule``, ``rules``...)."""
    spec = spec or {}
    return {
        "default_rule": msgspec.convert(spec.get("default_rule") or {"first_fee": 0}, Charge),
        "rules": msgspec.convert(spec.get("rules") or [], list[RegionRule]),
        "free": msgspec.convert(spec.get("free") or [], list[FreeRule]),
        "not_delivered": list(spec.get("not_delivered") or []),
    }


class Rule(msgspec.Struct, frozen=True):
    """A resolved rule: units filled in, a name to show."""

    name: str
    first: int
    first_fee: int
    additional: int
    additional_fee: int


class Quote(msgspec.Struct, kw_only=True):
    """The price of one consignment under one template, and why."""

    amount: int
    template_id: int
    template: str
    rule: str
    mode: str
    units: int
    quantity: int
    goods: int
    free: bool = False
    steps: int = 0
    en: str = ""
    zh: str = ""


class Template(msgspec.Struct, kw_only=True):
    id: int
    shop: str
    name: str
    mode: str
    origin: str
    split: str
    default_rule: Charge
    rules: list[RegionRule]
    free: list[FreeRule]
    not_delivered: list[str]
    active: bool = True

    @classmethod
    def from_row(cls, row: Any) -> Template:
        return cls(
            id=row.id,
            shop=row.shop,
            name=row.name,
            mode=row.mode,
            origin=row.origin or "",
            split=row.split,
            active=row.active,
            **rules_of(row.spec),
        )

    def _resolve(self, name: str, charge: Charge) -> Rule:
        unit = 1 if self.mode == "piece" else 1000
        return Rule(
            name=name,
            first=charge.first or unit,
            first_fee=charge.first_fee,
            additional=charge.additional or unit,
            additional_fee=charge.additional_fee,
        )

    def rule_for(self, region: str | None) -> Rule:
        """The rule for ``region`` (longest prefix), or raise :class:`NotDelivered`."""
        if not region:
            return self._resolve("default", self.default_rule)
        best: tuple[int, Rule | None] | None = None  # (prefix length, rule or None = not delivered)
        for prefix in self.not_delivered:
            if region.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), None)
        for rule in self.rules:
            for prefix in rule.regions:
                # Strictly longer: a tie keeps the earlier rule, and a
                # not-delivered prefix wins a tie against any rule.
                if region.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), self._resolve(rule.name or ",".join(rule.regions), rule))
        if best is None:
            return self._resolve("default", self.default_rule)
        if best[1] is None:
            raise NotDelivered(self, region)
        return best[1]

    def free_rule(self, region: str | None, quantity: int, goods: int) -> FreeRule | None:
        """The free-shipping rule that applies, if any."""
        best_len = -1
        best: list[FreeRule] = []
        for rule in self.free:
            length = -1
            if not rule.regions:
                length = 0
            elif region:
                length = max((len(p) for p in rule.regions if region.startswith(p)), default=-1)
            if length < 0:
                continue
            if length > best_len:
                best_len, best = length, [rule]
            elif length == best_len:
                best.append(rule)
        for rule in best:
            if rule.min_amount is None and rule.min_quantity is None:
                continue
            if rule.min_amount is not None and goods < rule.min_amount:
                continue
            if rule.min_quantity is not None and quantity < rule.min_quantity:
                continue
            return rule
        return None

    def quote(
        self, region: str | None, *, quantity: int, weight: int, goods: int, currency: str = "CNY"
    ) -> Quote:
        """Price one consignment: ``quantity`` pieces weighing ``weight`` g worth ``goods``."""
        rule = self.rule_for(region)
        units = quantity if self.mode == "piece" else weight
        where = f"template {self.name}, rule {rule.name}"
        where_zh = f"模板 {self.name},规则 {rule.name}"
        base = Quote(
            amount=0,
            template_id=self.id,
            template=self.name,
            rule=rule.name,
            mode=self.mode,
            units=units,
            quantity=quantity,
            goods=goods,
        )
        free = self.free_rule(region, quantity, goods)
        if free is not None:
            why, why_zh = [], []
            if free.min_amount is not None:
                why.append(f"goods {money(goods, currency)} ≥ {money(free.min_amount, currency)}")
                why_zh.append(f"满{money(free.min_amount, currency)}")
            if free.min_quantity is not None:
                why.append(f"{quantity} pcs ≥ {free.min_quantity}")
                why_zh.append(f"满{free.min_quantity}件")
            base.free = True
            base.en = f"free shipping, {' and '.join(why)} ({where})"
            base.zh = f"包邮:{'且'.join(why_zh)}({where_zh})"
            return base
        extra = max(0, units - rule.first)
        steps = -(-extra // rule.additional)
        base.steps = steps
        base.amount = rule.first_fee + steps * rule.additional_fee
        en = f"first {units_text(rule.first, self.mode)} {money(rule.first_fee, currency)}"
        zh_head = "首件" if self.mode == "piece" else "首重"
        zh_more = "续件" if self.mode == "piece" else "续重"
        zh = f"{zh_head}{units_text(rule.first, self.mode, zh=True)} {money(rule.first_fee, currency)}"
        if steps:
            fee = money(rule.additional_fee, currency)
            if rule.additional == (1 if self.mode == "piece" else 1000):
                en += f" + {units_text(steps * rule.additional, self.mode)} {X} {fee}"
                zh += f" + {zh_more}{units_text(steps * rule.additional, self.mode, zh=True)} {X} {fee}"
            else:
                step = units_text(rule.additional, self.mode)
                en += f" + {steps} {X} {step} {X} {fee}"
                zh += f" + {zh_more}{steps} {X} {units_text(rule.additional, self.mode, zh=True)} {X} {fee}"
        base.en = f"{en} ({where})"
        base.zh = f"{zh}({where_zh})"
        return base


class ShopTemplates:
    """One shop's templates and bindings as loaded at ``version``."""

    __slots__ = ("by_sku", "checked", "defaults", "templates", "version")

    def __init__(self, version: int, templates: Iterable[Template], binding_rows: Iterable[Any]) -> None:
        self.version = version
        self.checked = time.monotonic()
        self.templates = {tpl.id: tpl for tpl in templates if tpl.active}
        self.by_sku: dict[str, dict[str, Template]] = {}
        self.defaults: dict[str, Template] = {}
        for row in binding_rows:
            tpl = self.templates.get(row.template_id)
            if tpl is None:
                continue
            if row.sku:
                self.by_sku.setdefault(row.sku, {})[row.origin] = tpl
            else:
                self.defaults[row.origin] = tpl

    @property
    def empty(self) -> bool:
        return not self.templates

    def template_for(self, sku: str, origin: str | None) -> Template | None:
        bound = self.by_sku.get(sku) or {}
        defaults = self.defaults
        steps: tuple[tuple[dict[str, Template], str | None], ...]
        if origin is None:
            steps = ((bound, ""), (bound, None), (defaults, ""), (defaults, None))
        else:
            steps = (
                (bound, origin),
                (bound, ""),
                (defaults, origin),
                (defaults, ""),
                (bound, None),
                (defaults, None),
            )
        for choices, key in steps:
            if not choices:
                continue
            if key is None:
                return choices[min(choices)]
            if key in choices:
                return choices[key]
        return None


class TemplateCache:
    """Templates cached per process, per shop.

    Changes made through this process drop the shop's entry at once. Other
    processes notice within ``recheck_seconds``: after that long an order
    reads the shop's version row (one indexed read) and reloads only when it
    moved. Within the interval pricing costs no query at all.
    """

    def __init__(self, recheck_seconds: float) -> None:
        self.recheck = recheck_seconds
        self._entries: dict[str, ShopTemplates] = {}
        self._lock = threading.Lock()
        v = t.versions.c
        self._version = sa.select(v.version).where(v.shop == sa.bindparam("shop"))
        self._templates = sa.select(t.templates).where(t.templates.c.shop == sa.bindparam("shop"))
        self._bindings = sa.select(t.bindings).where(t.bindings.c.shop == sa.bindparam("shop"))

    def get(self, conn: sa.Connection, shop: str) -> ShopTemplates:
        entry = self._entries.get(shop)
        now = time.monotonic()
        if entry is not None and now - entry.checked < self.recheck:
            return entry
        version = conn.execute(self._version, {"shop": shop}).scalar() or 0
        if entry is not None and entry.version == version:
            entry.checked = now
            return entry
        if version == 0:
            entry = ShopTemplates(0, (), ())
        else:
            entry = ShopTemplates(
                version,
                [Template.from_row(r) for r in conn.execute(self._templates, {"shop": shop})],
                conn.execute(self._bindings, {"shop": shop}).all(),
            )
        with self._lock:
            self._entries[shop] = entry
        return entry

    def invalidate(self, shop: str) -> None:
        with self._lock:
            self._entries.pop(shop, None)


def bump_version(conn: sa.Connection, shop: str) -> None:
    """Mark the shop's templates changed (in the changing transaction)."""
    v = t.versions.c
    updated = conn.execute(t.versions.update().where(v.shop == shop).values(version=v.version + 1)).rowcount
    if not updated:
        conn.execute(t.versions.insert().values(shop=shop, version=1))


# -- templates as stored ------------------------------------------------------------


def save_template(
    conn: sa.Connection, data: TemplateSpec, actor: str, template_id: int | None, shop: str | None = None
) -> int:
    """Insert (``template_id`` None) or replace a template and its bindings, in the caller's
    transaction; ``shop`` defaults to ``data.shop`` (a :class:`TemplateIn`).

    Refuses a free-shipping rule without a condition (422 ``free_rule_invalid``), a
    name the shop uses already (409 ``template_name_taken``) and a SKU or default
    bound to another template for the same origin (409 ``template_binding_taken``).
    The caller bumps the shop's template version (:func:`bump_version`).
    """
    for rule in data.free:
        if rule.min_amount is None and rule.min_quantity is None:
            raise InvalidInput(
                "a free-shipping rule needs min_amount or min_quantity", code="free_rule_invalid"
            )
    shop = shop or getattr(data, "shop", None)
    assert shop
    tp, b = t.templates.c, t.bindings.c
    origin = data.origin or ""
    taken = conn.execute(
        sa.select(tp.id).where(tp.shop == shop, tp.name == data.name, tp.id != (template_id or 0))
    ).first()
    if taken is not None:
        raise Conflict(f"shop {shop} already has a template named {data.name}", code="template_name_taken")
    skus = list(dict.fromkeys(data.skus))
    wanted = skus + ([""] if data.default else [])
    if wanted:
        clash = conn.execute(
            sa.select(b.sku, b.template_id).where(
                b.shop == shop, b.origin == origin, b.sku.in_(wanted), b.template_id != (template_id or 0)
            )
        ).all()
        if clash:
            skus_taken = sorted(r.sku for r in clash if r.sku)
            what = ", ".join(skus_taken) if skus_taken else "the shop default"
            if skus_taken and any(not r.sku for r in clash):
                what += " and the shop default"
            raise Conflict(
                f"already bound to another template for this origin: {what}",
                code="template_binding_taken",
                extra={"skus": skus_taken, "default": any(not r.sku for r in clash)},
            )
    now = utcnow()
    unit = 1 if data.mode == "piece" else 1000

    def filled(rule: Any) -> Any:
        # Store the units the rule means, so what is shown is what is charged.
        return msgspec.structs.replace(rule, first=rule.first or unit, additional=rule.additional or unit)

    spec = {
        "default_rule": msgspec.to_builtins(filled(data.default_rule)),
        "rules": msgspec.to_builtins([filled(rule) for rule in data.rules]),
        "free": msgspec.to_builtins(data.free),
        "not_delivered": list(dict.fromkeys(data.not_delivered)),
    }
    values = {
        "name": data.name,
        "mode": data.mode,
        "origin": origin,
        "split": data.split,
        "spec": spec,
        "active": data.active,
        "updated_at": now,
    }
    if template_id is None:
        template_id = conn.execute(
            t.templates.insert()
            .values(shop=shop, created_by=actor, created_at=now, **values)
            .returning(tp.id)
        ).scalar_one()
    else:
        conn.execute(t.templates.update().where(tp.id == template_id).values(**values))
        conn.execute(t.bindings.delete().where(b.template_id == template_id))
    if wanted:
        conn.execute(
            t.bindings.insert(),
            [{"shop": shop, "sku": sku, "origin": origin, "template_id": template_id} for sku in wanted],
        )
    return template_id


def load_templates(conn: sa.Connection, where: Any, limit: int = 200) -> list[TemplateView]:
    """The templates matching ``where``, by id, with their bound SKUs and default flag."""
    tp, b = t.templates.c, t.bindings.c
    rows = conn.execute(sa.select(t.templates).where(where).order_by(tp.id).limit(limit)).all()
    if not rows:
        return []
    bound: dict[int, list[str]] = {}
    default: set[int] = set()
    for r in conn.execute(
        sa.select(b.template_id, b.sku).where(b.template_id.in_([row.id for row in rows])).order_by(b.sku)
    ):
        if r.sku:
            bound.setdefault(r.template_id, []).append(r.sku)
        else:
            default.add(r.template_id)
    return [
        view_of(
            TemplateView,
            row,
            origin=row.origin or None,
            default=row.id in default,
            skus=bound.get(row.id, []),
            **rules_of(row.spec),
        )
        for row in rows
    ]


class Consignment(msgspec.Struct, kw_only=True):
    template: Template
    quantity: int = 0
    weight: int = 0
    goods: int = 0


def group(
    book: ShopTemplates,
    items: Iterable[tuple[str, int, int, int]],
    origin: str | None,
) -> list[Consignment]:
    """Group ``(sku, quantity, unit weight g, unit price)`` items by template, in first-seen order."""
    out: dict[int, Consignment] = {}
    for sku, quantity, weight, price in items:
        tpl = book.template_for(sku, origin)
        if tpl is None or quantity <= 0:
            continue
        c = out.get(tpl.id)
        if c is None:
            c = out[tpl.id] = Consignment(template=tpl)
        c.quantity += quantity
        c.weight += weight * quantity
        c.goods += price * quantity
    return list(out.values())


def quote_parcels(
    book: ShopTemplates,
    region: str | None,
    lines: Mapping[int, tuple[str, int, int]],
    parcels: Sequence[Any],
    currency: str = "CNY",
) -> int | None:
    """Freight of shipping ``parcels`` (``aftersale.Parcel``); sets each ``parcel.freight``.

    ``lines`` maps line id to ``(sku, unit weight, unit price)``. Goods of a
    ``split = "once"`` template are pooled over every parcel that carries
    them and charged once (to the first such parcel); a ``per_parcel``
    template charges each parcel on its own. ``None`` when a template does
    not deliver to ``region`` from a parcel's warehouse.
    """
    per_parcel = [0] * len(parcels)
    pooled: dict[int, tuple[int, Consignment]] = {}
    try:
        for i, parcel in enumerate(parcels):
            items = [
                (lines[line_id][0], qty, lines[line_id][1], lines[line_id][2])
                for line_id, qty in parcel.lines
                if line_id in lines
            ]
            for c in group(book, items, parcel.warehouse):
                if c.template.split == "per_parcel":
                    per_parcel[i] += c.template.quote(
                        region, quantity=c.quantity, weight=c.weight, goods=c.goods, currency=currency
                    ).amount
                elif c.template.id in pooled:
                    into = pooled[c.template.id][1]
                    into.quantity += c.quantity
                    into.weight += c.weight
                    into.goods += c.goods
                else:
                    pooled[c.template.id] = (i, c)
        for i, c in pooled.values():
            per_parcel[i] += c.template.quote(
                region, quantity=c.quantity, weight=c.weight, goods=c.goods, currency=currency
            ).amount
    except NotDelivered:
        return None
    for parcel, amount in zip(parcels, per_parcel, strict=True):
        parcel.freight = amount
    return sum(per_parcel)
