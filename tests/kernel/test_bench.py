"""The benchmark command's hot-SKU scenario reports what was sold, and never oversells."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mallcore.bench import bench


def test_hot_scenario_sells_exactly_the_stock_on_both_sides_and_reports_a_ratio(tmp_path):
    out = tmp_path / "hot.json"
    result = CliRunner().invoke(
        bench,
        [
            "--db", "sqlite", "--scenario", "hot", "--hot-attempts", "60", "--hot-clients", "8",
            "--rounds", "1", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    hot = json.loads(out.read_text())["sqlite"]["hot"]
    assert hot["stock"] == 30
    for side in ("raw", "mallcore"):
        assert hot[side]["sold"] == 30, hot[side]
        assert hot[side]["statuses"].get("409") == 30, hot[side]
        assert hot[side]["reserved"] == 30 and hot[side]["on_hand"] == 30
        assert hot["oversold"][side] is False
        assert len(hot["runs"][side]) == 1
    assert hot["ratio"] > 0


def test_overload_scenario_answers_503_not_other_5xx_and_reports_its_figures(tmp_path):
    out = tmp_path / "overload.json"
    result = CliRunner().invoke(
        bench,
        [
            "--db", "sqlite", "--scenario", "overload", "--requests", "200", "--clients", "4",
            "--overload-seconds", "3", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    r = json.loads(out.read_text())["sqlite"]["overload"]
    assert r["other_5xx"] == 0, r["overloaded"]["statuses"]
    assert set(r["overloaded"]["statuses"]) <= {"201", "503"}
    assert r["overloaded"]["statuses"].get("201", 0) > 0
    assert r["settings"]["max_writes_in_flight"] == 4 and r["p99_unloaded_ms"] > 0
    # the server's own count of writes through the admission line (from /metrics)
    assert r["admission_waits"]["count"] >= sum(r["overloaded"]["statuses"].values())
    # an open load: orders arrived on schedule (2R a second for 3 s), every one answered or
    # counted as not sent (every connection busy); the server's CPU per answer is reported
    o = r["overloaded"]
    assert r["settings"]["load"] == "open" and o["offered"] > 0
    assert o["offered"] >= 0.5 * o["target_per_second"] * 3
    assert sum(o["statuses"].values()) + o["not_sent"] + o["lost"] == o["offered"] + o["retried"]
    assert r["overloaded"]["cpu_ms_per_request"] > 0
