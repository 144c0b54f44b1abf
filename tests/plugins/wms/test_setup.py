"""Migrations, demo data and settings of the WMS center."""

from __future__ import annotations

import pytest

from mallcore.kernel import ConfigError, StartupError
from mallcore.kernel.demo import seed
from tests.kernel.test_migrations import diff

from .helpers import check_invariants, stock_levels


def test_migrations_build_the_declared_tables(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "wms"], migrate=True)
    assert diff(kernel) == []


def test_demo_stocks_every_sku_in_three_regions_and_can_run_twice(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "wms"])
    lines = seed(kernel)
    assert any(line.strip().startswith("wms: warehouses SH") for line in lines)
    levels = stock_levels(kernel)
    skus = {sku for sku, _ in levels}
    assert {"SH", "GZ", "BJ"} == {wh for _, wh in levels}
    assert len(skus) * 3 == len(levels) and len(skus) >= 3
    seed(kernel)
    assert levels == stock_levels(kernel)
    check_invariants(kernel)


@pytest.mark.parametrize(
    "bad",
    [{"reserve_on": "ship"}, {"unpaid_hold_minutes": -1}, {"max_split": 0}, {"colour": "red"}],
)
def test_bad_settings_stop_start_up(mallcore, bad):
    with pytest.raises((ConfigError, StartupError)) as err:
        mallcore.kernel(centers=["catalog", "payment", "wms"], settings={"wms": bad})
    assert "wms" in str(err.value)
