"""Request body examples for the OpenAPI document, made from the body's type.

Litestar can generate examples itself (``create_examples``), with random
factories: with every center's routes the document then took about a minute
to build. Here an example is made once per body type, walking its msgspec
type (:func:`msgspec.inspect.type_info`): every required field (every field
of a type without required ones), values that keep each constraint (length,
range, pattern, literal), with realistic values for the fields the API
names alike everywhere (``shop``, ``sku``, ``warehouse``, ``currency``,
``phone``...). A body type whose fields depend on each other (balanced
postings, a campaign's rules for its type) or whose ``code`` names something
new (a shop, a SKU, a warehouse) gives its own as a class constant,
``EXAMPLE: ClassVar[dict[str, Any]]`` (or a function returning one, for an
example that depends on the day: a pickup window in the coming days); a
route that gives its own (``Body(examples=[...])``) keeps it.

Every example is valid against the body's schema (a test walks the document
and checks each one), and it works against the demo shop: the values name what
``mallcore demo`` seeds (the shop ``demo``, SKU ``TEE-WHITE-M``, warehouses ``SH``
and ``GZ``, the sandbox carrier, the customers alice and bob, the ``gold``
level), and a body that names an object by id names the first of its kind on a
fresh demo (``order_id`` 1, ``line_id`` 1: the first order, once paid and
delivered). ``tests/kernel/test_examples_run.py`` seeds the demo and sends
every example unchanged, as someone the route lets in: all succeed but two,
whose body carries a random secret no fixed example can know (a tracking
link's token, a coupon code); the test lists them with the 404 they answer.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import msgspec.inspect as mi

from ..demo import DEMO_SHOP

# Candidate values by field name, tried in order; the first that keeps the field's
# constraints wins, else a generic value of the type. Where a field names something
# ``mallcore demo`` seeds, the value is the demo's (its shop, the catalog's
# ``DEMO_PRODUCTS``, the WMS ``DEMO_WAREHOUSES``, the sandbox carrier, the customers
# alice and bob, the membership ladder): tests/kernel/test_examples_run.py sends every
# example to a seeded demo and fails when one of these drifts from what it seeds.
_STR_HINTS: dict[str, tuple[str, ...]] = {
    "shop": (DEMO_SHOP,),
    "sku": ("TEE-WHITE-M",),
    "skus": ("TEE-WHITE-M",),
    "excluded_skus": ("MUG-350",),
    "code": ("EAST-1",),
    "currency": ("CNY",),
    "name": ("Alice",),
    "phone": ("13800000000",),
    "region": ("310000",),
    "province": ("Zhejiang",),
    "city": ("Hangzhou",),
    "district": ("Xihu",),
    "street": ("1 West Lake Rd",),
    "detail": ("1 West Lake Rd",),
    "contact": ("After-sales desk",),
    "carrier": ("sandbox",),
    "tracking_no": ("SB1234567890",),
    "warehouse": ("SH",),
    "from_warehouse": ("SH",),
    "to_warehouse": ("GZ",),
    "origin": ("SH",),
    "customer": ("alice",),
    "level": ("gold",),
    "account": ("cash",),
    "condition": ("order.total >= 100000",),
    "reason": ("changed my mind",),
    "note": ("checked with the customer",),
    "memo": ("checked with the customer",),
    "reason_text": ("the box arrived crushed",),
    "description": ("A cotton shirt",),
    "value": ("alice",),
    "location": ("Hangzhou hub",),
    "stacking_group": ("store",),
    "token": ("tok_123",),
    "method": ("sandbox",),
    "reference": ("BANK-20260105-001",),
}
_INT_HINTS: dict[str, int] = {
    "amount": 1000,
    "price": 1999,
    "quantity": 1,
    "count": 10,
    "counted": 10,
    "delta": 100,
    "total": 1000,
    "value": 500,
    "priority": 10,
    "score": 80,
    "weight_grams": 500,
    "first_fee": 800,
    "additional_fee": 200,
    "min_spend": 10000,
    "per_customer": 1,
    "valid_days": 30,
    "points": 100,
}
_GENERIC_STR = ("sample", "A1", "1", "sample-text")
_DATE = date(2026, 1, 1)
_DATETIME = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
_MAX_DEPTH = 6


def example_of(tp: Any) -> Any:
    """A JSON-ready example of a request body of type ``tp`` (``None`` when it has no shape to show)."""
    return _example(_info(tp), "", 0)


@cache
def _info(tp: Any) -> mi.Type:
    return mi.type_info(tp)


def _fits(value: str, t: mi.StrType) -> bool:
    if t.min_length is not None and len(value) < t.min_length:
        return False
    if t.max_length is not None and len(value) > t.max_length:
        return False
    return t.pattern is None or re.search(t.pattern, value) is not None


def _string(t: mi.StrType, name: str) -> str:
    for candidate in (*_STR_HINTS.get(name, ()), *_GENERIC_STR):
        if _fits(candidate, t):
            return candidate
    # a constrained string none of the candidates fits: the shortest run of "A" or "1" that does
    size = max(t.min_length or 1, 1)
    for letter in ("A", "1", "a"):
        if _fits(letter * size, t):
            return letter * size
    return "A" * size


def _integer(t: mi.IntType | mi.FloatType, name: str) -> int:
    low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else None)
    high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else None)
    value = _INT_HINTS.get(name, 1)
    if low is not None and value < low:
        value = int(low)
    if high is not None and value > high:
        value = int(high)
    return int(value)


def _example(t: mi.Type, name: str, depth: int) -> Any:
    if isinstance(t, mi.Metadata):
        return _example(t.type, name, depth)
    if isinstance(t, mi.UnionType):
        kinds = [x for x in t.types if not isinstance(x, mi.NoneType)]
        return _example(kinds[0], name, depth) if kinds else None
    if isinstance(t, mi.StructType | mi.DataclassType | mi.TypedDictType):
        given = getattr(t.cls, "EXAMPLE", None)
        if callable(given):  # an example that depends on the day (a window in the coming days)
            given = given()
        if isinstance(given, dict):
            return dict(given)
        if depth >= _MAX_DEPTH:
            return {}
        fields = [f for f in t.fields if f.required] or list(t.fields)
        return {f.encode_name: _example(f.type, f.name, depth + 1) for f in fields}
    if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        size = min(max(t.min_length or 1, 1), t.max_length if t.max_length is not None else 1)
        return [_example(t.item_type, name, depth + 1) for _ in range(size)]
    if isinstance(t, mi.DictType):
        if not t.min_length:
            return {}
        return {str(_example(t.key_type, "key", depth + 1)): _example(t.value_type, name, depth + 1)}
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    if isinstance(t, mi.EnumType):
        return next(iter(t.cls)).value
    if isinstance(t, mi.StrType):
        return _string(t, name)
    if isinstance(t, mi.BoolType):
        return True
    if isinstance(t, mi.IntType | mi.FloatType):
        return _integer(t, name)
    if isinstance(t, mi.DateTimeType):
        return _DATETIME.isoformat().replace("+00:00", "Z")
    if isinstance(t, mi.DateType):
        return _DATE.isoformat()
    return None
