"""The bench scenario ``risk`` runs (small) and reports both sides of every figure."""

from __future__ import annotations

from mallcore.bench.risk import line, scenario_risk
from mallcore.bench.scenarios import Target


def test_the_risk_scenario_measures_placement_with_risk_off_and_on(tmp_path):
    r = scenario_risk(Target("sqlite", "", tmp_path), tmp_path, 20, 5, customers=12, entries=60)
    assert (r["customers"], r["list_entries"], r["rules"]) == (12, 60, 5)
    assert {"off", "on", "on, decision in the stage"} <= set(r["us_per_order"]) <= set(r["cpu_us_per_order"])
    assert set(r["overhead"]) == set(r["cpu_overhead"]) == set(r["us_per_order"]) - {"off"}
    statements = r["statements_per_placement"]
    # risk adds no statement to a returning customer's placement; a first order writes their profile
    assert statements["on"] == statements["off"]
    assert statements["on, a customer's first order"] > statements["on"]
    assert "risk   in process" in line(r)
