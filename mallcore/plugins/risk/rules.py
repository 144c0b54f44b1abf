"""The rule book: rules from config and from the API, compiled once, evaluated per stage.

A rule is a CEL condition (see :mod:`.cel`), an action (``allow``,
``review``, ``block``), a score and the stages it applies at (``place``,
``pay``, ``after_sale``, ``refund``); a shop's rule applies to that shop's
orders only. The book is rebuilt when the rules' version moves
(:mod:`.versions`); each condition is compiled once per process.

At one evaluation every applicable condition runs against one CEL context
holding only the facts and signals some rule of that stage reads. A
condition that fails at run time (a type mismatch on real data, a division
by zero) does not fire; the failure is kept with the decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cel as _cel
import msgspec
import sqlalchemy as sa
import structlog

from . import tables as t
from .cel import Condition, Ref, RuleError, compile_condition, context_for

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


class RuleBook:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)
        self.by_stage: dict[str, list[Rule]] = {s: [r for r in self.rules if s in r.stages] for s in STAGES}
        self.refs: dict[str, frozenset[Ref]] = {
            s: frozenset(ref for r in rs for ref in r.condition.refs) for s, rs in self.by_stage.items()
        }

    def reads(self, stage: str, root: str, attr: str | None = None) -> bool:
        """Does some rule of ``stage`` read ``root`` (``.attr``)?"""
        return any(r == root and (attr is None or a in (None, attr)) for r, a in self.refs[stage])

    def evaluate(
        self, stage: str, shop: str, facts: Mapping[str, Any], signals: Mapping[str, Any]
    ) -> Outcome:
        outcome = Outcome()
        rules = [r for r in self.by_stage[stage] if r.shop is None or r.shop == shop]
        if not rules:
            return outcome
        context = _cel.Context(context_for(self.refs[stage], facts, signals))
        for rule in rules:
            try:
                if rule.condition.run(context):
                    outcome.fired.append(rule)
            except Exception as exc:
                outcome.errors.append({"id": rule.id, "name": rule.name, "error": str(exc)[:300]})
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
