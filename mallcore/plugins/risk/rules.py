"""The rule book: rules from config and from the API, compiled once, evaluated per stage.

A rule is a CEL condition (see :mod:`.cel`), an action (``allow``,
``review``, ``block``), a score and the stages it applies at (``place``,
``pay``, ``after_sale``, ``refund``); a shop's rule applies to that shop's
orders only. The book is rebuilt when the rules' version moves
(:mod:`.versions`); each condition is compiled once per process.

At one evaluation each applicable condition runs on the facts and signals it
reads, and no others (its result remembered for those values: see
:meth:`.cel.Condition.decide`). A condition that fails at run time (a type
mismatch on real data, a division by zero) does not fire; the failure is
kept with the decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
import structlog

from . import tables as t
from .cel import Condition, Ref, RuleError, RuleFailed, compile_condition, inputs_of

STAGES = ("place", "pay", "after_sale", "refund")
ACTIONS = ("allow", "review", "block")
log = structlog.get_logger("mallcore").bind(center="risk")


class Rule(msgspec.Struct, frozen=True):
    id: int | None  # None for a rule from config
    name: str
    shop: str | None
    condition: Condition
    action: str
    score: int
    stages: frozenset[str]

    def brief(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "action": self.action, "score": self.score}


class Outcome(msgspec.Struct):
    fired: list[Rule] = msgspec.field(default_factory=list)
    errors: list[dict[str, Any]] = msgspec.field(default_factory=list)


REFUND_SIGNALS = frozenset({"paid_orders", "refunded_orders", "refund_rate", "refund_only_cases"})


class Reads(msgspec.Struct, frozen=True):
    """What the rules of one stage read that costs something to find out."""

    signals: bool  # any signal (a later stage reads the placement's from its decision)
    refund_signals: bool  # refund behaviour (three queries)
    coupon_signals: bool  # coupon claims (a counter read)


class RuleBook:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)
        self.by_stage: dict[str, list[Rule]] = {s: [r for r in self.rules if s in r.stages] for s in STAGES}
        self.refs: dict[str, frozenset[Ref]] = {
            s: frozenset(ref for r in rs for ref in r.condition.refs) for s, rs in self.by_stage.items()
        }
        self.reads_at = {
            s: Reads(
                signals=self.reads(s, "signals"),
                refund_signals=any(self.reads(s, "signals", name) for name in REFUND_SIGNALS),
                coupon_signals=any(
                    r == "signals" and (a is None or "_coupon_claims_" in a) for r, a in self.refs[s]
                ),
            )
            for s in STAGES
        }

    def reads(self, stage: str, root: str, attr: str | None = None) -> bool:
        """Does some rule of ``stage`` read ``root`` (``.attr``)?"""
        return any(r == root and (attr is None or a in (None, attr)) for r, a in self.refs[stage])

    def evaluate(
        self, stage: str, shop: str, facts: Mapping[str, Any], signals: Mapping[str, Any]
    ) -> Outcome:
        outcome = Outcome()
        rules = self.by_stage[stage]
        if not rules:
            return outcome
        values = inputs_of(self.refs[stage], facts, signals)  # once for every rule of the stage
        for rule in rules:
            if rule.shop is not None and rule.shop != shop:
                continue
            try:
                if rule.condition.decide(values, facts, signals):
                    outcome.fired.append(rule)
            except RuleFailed as exc:
                outcome.errors.append({"id": rule.id, "name": rule.name, "error": str(exc)})
        return outcome


def compile_rule(
    spec: Any, signals: Sequence[str], *, rule_id: int | None, max_length: int, max_ms: float
) -> Rule:
    return Rule(
        id=rule_id,
        name=spec.name,
        shop=spec.shop,
        condition=compile_condition(spec.condition, signals, max_length=max_length, max_ms=max_ms),
        action=spec.action,
        score=spec.score,
        stages=frozenset(spec.stages),
    )


class BookLoader:
    """Builds the book from config rules (checked at start-up) and the table."""

    def __init__(self, configured: Sequence[Rule], signals: Sequence[str], max_length: int, max_ms: float):
        self.configured = list(configured)
        self.signals = list(signals)
        self.max_length = max_length
        self.max_ms = max_ms
        self._compiled: dict[tuple[int, str], Condition] = {}

    def __call__(self, conn: sa.Connection) -> RuleBook:
        c = t.rules.c
        rows = conn.execute(
            sa.select(t.rules).where(c.removed_at.is_(None), c.enabled.is_(True)).order_by(c.id)
        ).all()
        rules = list(self.configured)
        for row in rows:
            key = (row.id, row.condition)
            condition = self._compiled.get(key)
            if condition is None:
                try:
                    condition = compile_condition(
                        row.condition, self.signals, max_length=10**6, max_ms=self.max_ms * 10
                    )
                except RuleError as exc:
                    # e.g. a signal whose window was taken out of the config since
                    log.error("risk.rule_unusable", rule=row.id, name=row.name, error=exc.detail)
                    continue
                self._compiled[key] = condition
            rules.append(
                Rule(
                    id=row.id,
                    name=row.name,
                    shop=row.shop,
                    condition=condition,
                    action=row.action,
                    score=row.score,
                    stages=frozenset(row.stages or ()),
                )
            )
        return RuleBook(rules)
