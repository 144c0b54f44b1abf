"""Rule conditions in CEL (Common Expression Language), checked before they are saved.

Conditions are compiled and run by ``common-expression-language`` (Python
bindings of the Rust ``cel-interpreter``): a CEL program reads the values it
is given and calls CEL's own functions, and nothing else; there is no way to
reach Python from it. On top of that a condition is refused when saved
(422, naming what is wrong) when:

- it does not parse (``rule_syntax_error``);
- it names a variable or attribute that is not a fact or signal
  (``rule_unknown_attribute``: ``order.totl``, ``order.__class__``), or a
  function outside the allowed list (``rule_unknown_function``);
- it is longer than ``max_condition_length`` characters, nests brackets
  deeper than 12 or comprehensions (``exists``, ``all``, ``map``...) deeper
  than 2 (``rule_too_complex``): this bounds what one evaluation can cost,
  since CEL has no loops or recursion and its regular expressions run in
  linear time (an oversized pattern is an error, not a hang);
- run once on sample facts it fails, takes longer than ``max_rule_ms`` or
  is not true or false (``rule_invalid`` / ``rule_too_complex``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import cel as _cel
import msgspec

from mallcore.kernel import InvalidInput

# Every fact a condition may read, with a sample value of its type.
FACTS: dict[str, dict[str, Any]] = {
    "order": {
        "id": 0,
        "shop": "",
        "total": 0,
        "subtotal": 0,
        "discount": 0,
        "shipping": 0,
        "currency": "",
        "lines": 0,
        "quantity": 0,
        "skus": [""],
        "coupons": 0,
        "points": 0,
        "paid": 0,
        "status": "",
    },
    "customer": {
        "id": "",
        "credit": 0,
        "age_days": 0,
        "new": False,
        "completed_orders": 0,
        "rejected_reviews": 0,
        "chargebacks": 0,
    },
    "request": {"ip": "", "device": "", "user_agent": "", "region": ""},
    "address": {"fingerprint": "", "region": "", "province": "", "phone": ""},
    "case": {"id": 0, "type": "", "reason": "", "units": 0},
    "refund": {"id": 0, "amount": 0, "source": "", "reason": ""},
}
SCALARS: dict[str, Any] = {"stage": ""}
# Signals that are not counters (the counters' names depend on the configured windows).
SIGNALS: dict[str, Any] = {
    "new_account_large_order": False,
    "region_mismatch": False,
    "refund_rate": 0,
    "paid_orders": 0,
    "refunded_orders": 0,
    "refund_only_cases": 0,
}
FUNCTIONS = frozenset(
    {"size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string", "max", "min"}
)
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
MAX_BRACKETS = 12
MAX_COMPREHENSIONS = 2

Ref = tuple[str, str | None]


class RuleError(InvalidInput):
    """A condition refused when saved; ``code`` says why, ``extra`` names the culprit."""


class Condition(msgspec.Struct, frozen=True):
    """A checked, compiled condition and the facts it reads."""

    source: str
    program: Any
    refs: frozenset[Ref]
    # ``refs`` in a fixed order, when each names one attribute or a scalar: the inputs
    # the result depends on (None when the condition reads a whole fact, ``order``).
    inputs: tuple[Ref, ...] | None = None
    # inputs -> True, False or the error it raised (see :meth:`decide`)
    memo: dict[tuple[Any, ...], bool | str] = msgspec.field(default_factory=dict)

    def run(self, context: Any) -> bool:
        """True or False on ``context`` (a dict or a ``cel.Context``); raises what CEL
        raises (a type error, division by zero...)."""
        result = self.program.execute(context)
        if not isinstance(result, bool):
            raise TypeError(f"the condition gave {type(result).__name__}, not true or false")
        return result

    def decide(self, values: Mapping[Ref, Any], facts: Mapping[str, Any], signals: Mapping[str, Any]) -> bool:
        """:meth:`run` on the values it reads (``values``: by reference, from
        :func:`inputs_of`); raises :class:`RuleFailed`.

        A condition is a pure function of its inputs: CEL has no clock, no I/O and
        no state, and the functions a condition may call (:data:`FUNCTIONS`) are
        pure. So each result is remembered for its inputs (up to
        :data:`MEMO_SIZE` of them), and an evaluation whose inputs recur costs a
        dictionary read instead of handing CEL a fresh context, which costs
        microseconds per value handed over.
        """
        if self.inputs is None:
            return self._run(context_for(self.refs, facts, signals))
        key = tuple([values[ref] for ref in self.inputs])
        known = self.memo.get(key)
        if known is None:
            try:
                known = self._run(context_for(self.inputs, facts, signals))
            except RuleFailed as exc:
                known = str(exc)
            if len(self.memo) >= MEMO_SIZE:
                self.memo.clear()
            self.memo[key] = known
        if isinstance(known, str):
            raise RuleFailed(known)
        return known

    def _run(self, context: dict[str, Any]) -> bool:
        try:
            return self.run(_cel.Context(context))
        except Exception as exc:
            raise RuleFailed(str(exc)[:300]) from None


class RuleFailed(Exception):
    """A condition failed on real values (a type mismatch, a division by zero): it does
    not fire, and the failure is kept with the decision."""


MEMO_SIZE = 4096


def inputs_of(refs: Iterable[Ref], facts: Mapping[str, Any], signals: Mapping[str, Any]) -> dict[Ref, Any]:
    """The value of each reference that names one attribute or a scalar (lists as
    tuples), as the memo of :meth:`Condition.decide` keys them."""
    out: dict[Ref, Any] = {}
    for ref in refs:
        root, attr = ref
        if root in SCALARS:
            value = facts.get(root, SCALARS[root])
        elif attr is None:
            continue
        else:
            source = signals if root == "signals" else facts.get(root) or {}
            value = source.get(attr)
            if value is None:
                value = _default(root, attr)
        out[ref] = tuple(value) if isinstance(value, list) else value
    return out


# -- tokens ------------------------------------------------------------------------------


def _tokens(source: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: ident, string, number, op. Enough to find names and nesting;
    the grammar itself is CEL's (compile() refuses what does not parse)."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        if ch.isalpha() or ch == "_":
            j = i
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            word = source[i:j]
            if j < n and source[j] in "'\"" and word.lower() in ("r", "b", "rb", "br"):
                i = _skip_string(source, j, raw="r" in word.lower())
                out.append(("string", source[j:i]))
                continue
            out.append(("ident", word))
            i = j
        elif ch in "'\"":
            j = _skip_string(source, i, raw=False)
            out.append(("string", source[i + 1 : j - 1]))
            i = j
        elif ch.isdigit():
            j = i
            while j < n and (source[j].isalnum() or source[j] == "."):
                j += 1
            out.append(("number", source[i:j]))
            i = j
        else:
            two = source[i : i + 2]
            if two in ("&&", "||", "==", "!=", "<=", ">="):
                out.append(("op", two))
                i += 2
            else:
                out.append(("op", ch))
                i += 1
    return out


def _skip_string(source: str, i: int, *, raw: bool) -> int:
    quote = source[i : i + 3] if source[i : i + 3] in ("'''", '"""') else source[i]
    j = i + len(quote)
    while j < len(source):
        if not raw and source[j] == "\\":
            j += 2
            continue
        if source.startswith(quote, j):
            return j + len(quote)
        j += 1
    return len(source)


# -- checking ------------------------------------------------------------------------------


def _error(code: str, detail: str, source: str, **extra: Any) -> RuleError:
    return RuleError(detail, code=code, extra={"condition": source, **extra})


def _references(source: str, tokens: list[tuple[str, str]], signals: Iterable[str]) -> frozenset[Ref]:
    known_signals = set(signals)
    bound: set[str] = set()
    depth = brackets = 0
    stack: list[bool] = []  # per open "(": does it open a comprehension?
    for k, (kind, text) in enumerate(tokens):
        if kind == "op" and text in "([{":
            opens = (
                text == "("
                and k >= 2
                and tokens[k - 1][0] == "ident"
                and tokens[k - 1][1] in MACROS
                and tokens[k - 2][1] == "."
            )
            stack.append(opens)
            brackets = max(brackets, len(stack))
            if opens:
                depth += 1
                if depth > MAX_COMPREHENSIONS:
                    raise _error(
                        "rule_too_complex",
                        f"comprehensions ({', '.join(sorted(MACROS))}) nest at most {MAX_COMPREHENSIONS} deep",
                        source,
                    )
                if k + 2 < len(tokens) and tokens[k + 1][0] == "ident" and tokens[k + 2][1] == ",":
                    bound.add(tokens[k + 1][1])
        elif kind == "op" and text in ")]}" and stack and stack.pop():
            depth -= 1
    if brackets > MAX_BRACKETS:
        raise _error("rule_too_complex", f"brackets nest at most {MAX_BRACKETS} deep", source)
    refs: set[Ref] = set()
    for k, (kind, name) in enumerate(tokens):
        if kind != "ident" or (k and tokens[k - 1][1] == "."):
            continue
        after = tokens[k + 1] if k + 1 < len(tokens) else ("", "")
        if after[1] == "(" or name in bound or name in ("true", "false", "null", "in"):
            continue
        if name in SCALARS:
            refs.add((name, None))
            continue
        if name not in FACTS and name != "signals":
            raise _error("rule_unknown_attribute", f"unknown attribute '{name}'", source, attribute=name)
        attrs = known_signals if name == "signals" else FACTS[name].keys()
        attr = None
        if after[1] == "." and k + 2 < len(tokens) and tokens[k + 2][0] == "ident":
            attr = tokens[k + 2][1]
        elif after[1] == "[":
            if k + 3 < len(tokens) and tokens[k + 2][0] == "string" and tokens[k + 3][1] == "]":
                attr = tokens[k + 2][1]
            else:
                raise _error(
                    "rule_unknown_attribute",
                    f"'{name}[...]' must name an attribute in quotes",
                    source,
                    attribute=name,
                )
        if attr is not None and attr not in attrs:
            raise _error(
                "rule_unknown_attribute",
                f"unknown attribute '{name}.{attr}'",
                source,
                attribute=f"{name}.{attr}",
            )
        # Facts are one level deep: root.attr.more names nothing (a method call is fine).
        rest = tokens[k + 3 : k + 6] if after[1] == "." else []
        if (
            len(rest) >= 2
            and rest[0][1] == "."
            and rest[1][0] == "ident"
            and (len(rest) < 3 or rest[2][1] != "(")
        ):
            path = f"{name}.{attr}.{rest[1][1]}"
            raise _error("rule_unknown_attribute", f"unknown attribute '{path}'", source, attribute=path)
        refs.add((name, attr))
    return frozenset(refs)


def sample(signals: Iterable[str]) -> dict[str, Any]:
    """Facts of every name with a value of its type, for trying a condition."""
    out: dict[str, Any] = {root: dict(attrs) for root, attrs in FACTS.items()}
    out.update(SCALARS)
    # the counters (configured windows) are numbers; the others keep their own type (a
    # condition that is one of the yes/no signals alone must try as true or false)
    out["signals"] = {**{name: 0 for name in signals}, **SIGNALS}
    return out


def compile_condition(
    source: str, signals: Iterable[str], *, max_length: int = 1000, max_ms: float = 50.0
) -> Condition:
    """Check and compile ``source`` (see the module docstring); raises :class:`RuleError`."""
    signals = [*SIGNALS, *signals]
    if not source.strip():
        raise _error("rule_syntax_error", "the condition is empty", source)
    if len(source) > max_length:
        raise _error("rule_too_complex", f"a condition has at most {max_length} characters", source)
    try:
        program = _cel.compile(source)
    except Exception as exc:
        raise _error("rule_syntax_error", f"syntax error: {exc}", source) from None
    refs = _references(source, _tokens(source), signals)
    for name in program.functions():
        if name[0] in "_@!-" or name in FUNCTIONS or name in MACROS:
            continue
        raise _error("rule_unknown_function", f"unknown function '{name}'", source, function=name)
    whole = any(attr is None and root not in SCALARS for root, attr in refs)
    inputs = None if whole else tuple(sorted(refs, key=lambda r: (r[0], r[1] or "")))
    condition = Condition(source=source, program=program, refs=refs, inputs=inputs)
    facts = sample(signals)
    started = time.perf_counter()
    try:
        condition.run(facts)
    except Exception as exc:
        raise _error("rule_invalid", f"the condition fails on sample facts: {exc}", source) from None
    if (time.perf_counter() - started) * 1000 > max_ms:
        raise _error("rule_too_complex", f"the condition took longer than {max_ms:g} ms to evaluate", source)
    return condition


def context_for(refs: Iterable[Ref], facts: Mapping[str, Any], signals: Mapping[str, Any]) -> dict[str, Any]:
    """The CEL variables a set of references needs, and no more: handing CEL a value
    costs in proportion to its size, so each attribute is passed only if read."""
    out: dict[str, Any] = {}
    for root, attr in refs:
        source = signals if root == "signals" else facts.get(root)
        if root in SCALARS:
            out[root] = facts.get(root, SCALARS[root])
        elif attr is None:
            out[root] = dict(source or {})
        else:
            out.setdefault(root, {})[attr] = (source or {}).get(attr, _default(root, attr))
    return out


def _default(root: str, attr: str) -> Any:
    if root == "signals":
        return SIGNALS.get(attr, 0)
    return FACTS.get(root, {}).get(attr, 0)
