"""The warehouse planner on its own: nearness tiers, single nearest, fewest-warehouse splits."""

from __future__ import annotations

import pytest

from mallcore.plugins.wms.planning import Site, distance, plans, rank, shortfall

SH = Site("SH", "Shanghai", "310000")
HZ = Site("HZ", "Hangzhou", "330100")
GZ = Site("GZ", "Guangzhou", "440100")
SZ = Site("SZ", "Shenzhen", "440300")
BJ = Site("BJ", "Beijing", "110000")


@pytest.mark.parametrize(
    ("a", "b", "tier"),
    [
        ("440105", "440105", 0),  # same county
        ("440105", "440100", 1),  # same city
        ("440300", "440100", 2),  # same province
        ("330100", "310000", 3),  # same macro-region (East China)
        ("110000", "440100", 4),  # elsewhere
        ("", "440100", 4),  # unknown region: far from everything
        (None, "440100", 4),
    ],
)
def test_distance_tiers(a, b, tier):
    assert tier == distance(a, b)


def test_rank_nearest_first_then_priority_then_code():
    # SH, HZ and BJ are all "elsewhere" for Guangzhou: code decides.
    assert [s.code for s in rank([BJ, SH, HZ, SZ, GZ], "440105")] == ["GZ", "SZ", "BJ", "HZ", "SH"]
    near = Site("AA", "A", "440100", priority=5)
    assert [s.code for s in rank([near, GZ], "440105")] == ["GZ", "AA"]
    # No region: priority then code.
    assert [s.code for s in rank([SH, GZ, BJ], None)] == ["BJ", "GZ", "SH"]


def test_single_warehouse_nearest_that_fills_every_line():
    avail = {("TEE", "SH"): 5, ("MUG", "SH"): 5, ("TEE", "GZ"): 5, ("MUG", "GZ"): 5, ("TEE", "SZ"): 9}
    found = plans({"TEE": 2, "MUG": 1}, avail, rank([SH, GZ, SZ], "440105"), "440105")
    assert [p.warehouses[0] for p in found] == ["GZ", "SH"]
    assert {"single"} == {p.rule for p in found}
    assert found[0].take == {("TEE", "GZ"): 2, ("MUG", "GZ"): 1}


def test_a_warehouse_holding_the_order_wins_among_equally_near():
    avail = {("TEE", "GZ"): 5, ("TEE", "SZ"): 5}
    ranked = rank([GZ, SZ], "441900")  # Dongguan: same province as both
    assert plans({"TEE": 1}, avail, ranked, "441900")[0].warehouses[0] == "GZ"
    held = {("TEE", "SZ"): 1}
    assert plans({"TEE": 1}, avail, ranked, "441900", held)[0].warehouses[0] == "SZ"


def test_split_across_fewest_warehouses_nearest_first():
    avail = {
        ("TEE", "SH"): 2,
        ("MUG", "GZ"): 2,
        ("CAP", "GZ"): 2,
        ("TEE", "BJ"): 2,
        ("MUG", "BJ"): 1,
        ("CAP", "HZ"): 2,
    }
    found = plans({"TEE": 1, "MUG": 1, "CAP": 1}, avail, rank([SH, GZ, BJ, HZ], "310115"), "310115")
    assert found and all(p.rule == "split" and len(p.warehouses) == 2 for p in found)
    # SH+GZ (distance 2+4) beats BJ+GZ and BJ+HZ (both further).
    assert found[0].warehouses == ("SH", "GZ")
    assert found[0].take == {("TEE", "SH"): 1, ("MUG", "GZ"): 1, ("CAP", "GZ"): 1}


def test_a_line_may_be_split_when_no_warehouse_has_enough():
    avail = {("TEE", "SH"): 3, ("TEE", "GZ"): 4}
    (plan,) = plans({"TEE": 6}, avail, rank([SH, GZ], "440100"), "440100")
    assert plan.take == {("TEE", "GZ"): 4, ("TEE", "SH"): 2}
    assert plan.rows() == [("TEE", "GZ", 4), ("TEE", "SH", 2)]


def test_no_plan_when_stock_is_short_or_too_scattered():
    assert plans({"TEE": 9}, {("TEE", "SH"): 3, ("TEE", "GZ"): 4}, rank([SH, GZ], None), None) == []
    scattered = {("TEE", s.code): 1 for s in (SH, GZ, BJ)}
    ranked = rank([SH, GZ, BJ], None)
    assert plans({"TEE": 3}, scattered, ranked, None, max_warehouses=2) == []
    assert len(plans({"TEE": 3}, scattered, ranked, None, max_warehouses=3)) == 1
    assert shortfall({"TEE": 4, "MUG": 1, "CAP": 1}, {**scattered, ("CAP", "SH"): 1}) == {"TEE": 3, "MUG": 0}
