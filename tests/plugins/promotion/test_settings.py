"""Settings are checked at start-up, naming the key; the benchmark scenario runs."""

from __future__ import annotations

import pytest

from mallcore.bench import promotion
from mallcore.bench.scenarios import Target
from mallcore.kernel import ConfigError


@pytest.mark.parametrize(
    ("promotion", "key"),
    [
        ({"return_coupons_on_full_refund": "yes"}, "centers.promotion.return_coupons_on_full_refund"),
        ({"campaign_recheck_seconds": -1}, "centers.promotion.campaign_recheck_seconds"),
        ({"max_batch_codes": 0}, "centers.promotion.max_batch_codes"),
        ({"coupon_policy": "x"}, "coupon_policy"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_key(mallcore, promotion, key):
    with pytest.raises(ConfigError) as stopped:
        mallcore.kernel(centers=["catalog", "payment", "promotion"], settings={"promotion": promotion})
    assert key in str(stopped.value)


def test_the_bench_scenario_compares_placement_with_and_without_promotion(tmp_path):
    target = Target("sqlite", "", tmp_path)
    p = promotion.in_process(target, tmp_path, orders=40, rounds=1)
    # three campaigns and a coupon fired on every order
    assert [code.split(":")[0] for code, _, _ in p["sample_order"]["adjustments"]] == ["campaign"] * 3 + [
        "coupon"
    ]
    statements = p["statements_per_placement"]
    assert p["extra_statements"] == statements["with"] - statements["without"] > 0
    assert p["cpu_us_per_order"]["with"] > 0 and p["orders"] == 80
    http = {"without": {"per_second": 10.0}, "with": {"per_second": 9.0}, "slower": 0.111}
    assert "+11.1% time per order" in promotion.line({"http": http, "in_process": p})
