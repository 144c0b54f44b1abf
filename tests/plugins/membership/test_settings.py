"""Level config that does not fit together stops start-up, naming the key at fault."""

from __future__ import annotations

import pytest

from mallcore.kernel import ConfigError

LEVELS = {
    "levels": ["normal", "gold"],
    "level": {"normal": {"name": "Member"}, "gold": {"name": "Gold", "growth": 100}},
}


def start(mallcore, **membership):
    return mallcore.kernel(centers=["catalog", "payment", "membership"], settings={"membership": membership})


@pytest.mark.parametrize(
    ("membership", "key", "says"),
    [
        pytest.param(
            {**LEVELS, "level": {**LEVELS["level"], "diamond": {"name": "Diamond", "growth": 500}}},
            "centers.membership.level.diamond",
            "unknown level 'diamond'",
            id="a-level-table-not-in-levels",
        ),
        pytest.param(
            {**LEVELS, "levels": ["normal", "gold", "platinum"]},
            "centers.membership.levels",
            "level 'platinum' has no [centers.membership.level.platinum] table",
            id="a-level-without-its-table",
        ),
        pytest.param(
            {
                "levels": ["normal", "silver", "gold"],
                "level": {
                    "normal": {"name": "M"},
                    "silver": {"name": "S", "growth": 500},
                    "gold": {"name": "G", "growth": 500},
                },
            },
            "centers.membership.level.gold.growth",
            "500 is not above 'silver' (500)",
            id="thresholds-not-increasing",
        ),
        pytest.param(
            {**LEVELS, "level": {**LEVELS["level"], "normal": {"name": "Member", "growth": 10}}},
            "centers.membership.level.normal.growth",
            "the first level is where every member starts",
            id="a-first-level-above-zero",
        ),
        pytest.param(
            {**LEVELS, "levels": ["normal", "Gold"]},
            "centers.membership.levels",
            "level code 'Gold'",
            id="a-bad-level-code",
        ),
        pytest.param(
            {**LEVELS, "level": {**LEVELS["level"], "gold": {"name": "Gold", "growth": 100, "vip": True}}},
            "centers.membership.level.gold.vip",
            "unknown key",
            id="an-unknown-benefit",
        ),
        pytest.param(
            {**LEVELS, "level": {**LEVELS["level"], "gold": {"name": "Gold", "growth": "lots"}}},
            "centers.membership.level.gold.growth",
            "Expected `int`",
            id="a-threshold-that-is-not-a-number",
        ),
        pytest.param(
            {"timezone": "Mars/Olympus"}, "centers.membership.timezone", "unknown time zone", id="tz"
        ),
        pytest.param({"spend_cap_bp": 12_000}, "centers.membership.spend_cap_bp", "", id="cap-over-100%"),
    ],
)
def test_level_config_errors_stop_start_up_naming_the_key(mallcore, membership, key, says):
    with pytest.raises(ConfigError) as err:
        start(mallcore, **membership)
    assert f"'{key}'" in str(err.value)
    assert says in str(err.value)


def test_the_default_program_has_four_levels_with_rising_benefits(mallcore):
    kernel = start(mallcore)
    levels = mallcore.client(kernel, "customer", "alice").get("/membership/levels").json()
    assert [(lv["code"], lv["growth"]) for lv in levels] == [
        ("normal", 0),
        ("silver", 1_000),
        ("gold", 5_000),
        ("platinum", 20_000),
    ]
    zh = mallcore.client(kernel, "customer", "alice").get(
        "/membership/levels", headers={"Accept-Language": "zh-CN"}
    )
    assert [lv["name"] for lv in zh.json()] == ["普通会员", "白银会员", "黄金会员", "铂金会员"]
    platinum = {b["code"]: b["value"] for b in levels[-1]["benefits"]}
    assert platinum == {
        "member_price": 800,
        "free_shipping": 4,
        "points_multiplier": 200,
        "fast_refund": 50_000,
    }
