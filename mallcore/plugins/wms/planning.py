"""Which warehouse(s) ship an order: pure functions, no database.

Nearness of a warehouse to a delivery region is read off the region codes
(GB/T 2260 style: 2 digits province, 4 city, 6 county; the first digit is
the macro-region, e.g. 3 = East China). :func:`distance` is a tier::

    0  same code
    1  same city          (first 4 characters shared)
    2  same province      (first 2 shared)
    3  same macro-region  (first 1 shared)
    4  anything else, or an unknown region

Ties between equally near warehouses go to the lower ``priority``, then the
code, so the choice is the same on every worker.

The rule for an order (:func:`plans`):

1. one warehouse that can fill every line, the nearest first;
2. otherwise a split across the fewest warehouses; among the splits with
   that many warehouses the caller may compare freight (TMS) and takes the
   cheapest; the plans come ordered by total distance, so without a quote
   the nearest split wins. Within a split each SKU is taken from the
   warehouses that already hold it for the order first, then the nearest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import combinations

import msgspec

FAR = 4

# (sku, warehouse) -> units
Units = Mapping[tuple[str, str], int]


class Site(msgspec.Struct, frozen=True):
    """An active warehouse as the planner sees it (cached per process)."""

    code: str
    name: str
    region: str
    priority: int = 0


class Plan(msgspec.Struct, kw_only=True):
    """Units of each SKU taken from each warehouse."""

    take: dict[tuple[str, str], int]
    warehouses: tuple[str, ...]
    rule: str  # "single" | "split"
    distance: int = 0
    freight: int | None = None

    def rows(self) -> list[tuple[str, str, int]]:
        """(sku, warehouse, units), sorted so concurrent writers lock rows in one order."""
        return sorted((sku, wh, q) for (sku, wh), q in self.take.items() if q > 0)


@lru_cache(maxsize=4096)
def distance(a: str | None, b: str | None) -> int:
    if not a or not b:
        return FAR
    if a == b:
        return 0
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    if shared >= 4:
        return 1
    if shared >= 2:
        return 2
    if shared >= 1:
        return 3
    return FAR


def rank(sites: Iterable[Site], region: str | None) -> tuple[Site, ...]:
    """Sites nearest ``region`` first (then priority, then code)."""
    return tuple(sorted(sites, key=lambda s: (distance(s.region, region), s.priority, s.code)))


def split_plans(
    need: Mapping[str, int],
    avail: Units,
    ranked: Sequence[Site],
    region: str | None,
    held: Units | None = None,
    *,
    max_warehouses: int = 4,
    max_sites: int = 12,
    limit: int = 16,
) -> list[Plan]:
    """Plans over the fewest warehouses that together fill ``need``, nearest first.

    Only warehouses holding some of the SKUs count; at most ``max_sites`` of
    them (the nearest) are combined, at most ``max_warehouses`` at a time.
    Returns ``[]`` when no such split exists.
    """
    held = held or {}
    useful = [s for s in ranked if any(avail.get((sku, s.code), 0) > 0 for sku in need)][:max_sites]
    dist = {s.code: distance(s.region, region) for s in useful}
    position = {s.code: i for i, s in enumerate(useful)}
    for k in range(2, min(max_warehouses, len(useful)) + 1):
        found = []
        for combo in combinations(useful, k):
            codes = [s.code for s in combo]
            if all(sum(avail.get((sku, c), 0) for c in codes) >= q for sku, q in need.items()):
                found.append(_allocate(need, avail, codes, held, dist, position))
        if found:
            found.sort(key=lambda p: (p.distance, [position[c] for c in p.warehouses]))
            return found[:limit]
    return []


def _allocate(
    need: Mapping[str, int],
    avail: Units,
    codes: Sequence[str],
    held: Units,
    dist: Mapping[str, int],
    position: Mapping[str, int],
) -> Plan:
    take: dict[tuple[str, str], int] = {}
    for sku, q in need.items():
        left = q
        # Held units first (no move), then nearest.
        for code in sorted(codes, key=lambda c: (-held.get((sku, c), 0), dist[c], position[c])):
            if left == 0:
                break
            got = min(left, avail.get((sku, code), 0))
            if got:
                take[(sku, code)] = got
                left -= got
    used = tuple(sorted({wh for (_, wh), q in take.items() if q}, key=lambda c: position[c]))
    return Plan(take=take, warehouses=used, rule="split", distance=sum(dist[c] for c in used))


def plans(
    need: Mapping[str, int],
    avail: Units,
    ranked: Sequence[Site],
    region: str | None,
    held: Units | None = None,
    *,
    max_warehouses: int = 4,
) -> list[Plan]:
    """Single-warehouse plans if any exist (nearest first), else the fewest-warehouse splits.

    ``ranked`` are the active warehouses as :func:`rank` orders them for
    ``region``. ``held`` (units the order already holds per sku and warehouse)
    puts, among equally near single warehouses, the one holding everything
    first, so dispatch does not move a reservation for nothing.
    """
    held = held or {}
    singles = [
        Plan(
            take={(sku, site.code): q for sku, q in need.items()},
            warehouses=(site.code,),
            rule="single",
            distance=distance(site.region, region),
        )
        for site in ranked
        if all(avail.get((sku, site.code), 0) >= q for sku, q in need.items())
    ]
    if singles:
        if held and len(singles) > 1:
            position = {p.warehouses[0]: i for i, p in enumerate(singles)}

            def moves(p: Plan) -> bool:
                return not all(held.get(k, 0) >= q for k, q in p.take.items())

            singles.sort(key=lambda p: (p.distance, moves(p), position[p.warehouses[0]]))
        return singles
    return split_plans(need, avail, ranked, region, held, max_warehouses=max_warehouses)


def shortfall(need: Mapping[str, int], avail: Units) -> dict[str, int]:
    """SKUs whose total available units fall short of ``need``: sku -> units available."""
    total: dict[str, int] = {}
    for (sku, _), q in avail.items():
        if q > 0:
            total[sku] = total.get(sku, 0) + q
    return {sku: total.get(sku, 0) for sku, q in need.items() if total.get(sku, 0) < q}
