"""Settings are checked at start-up; carriers come from config."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mallcore.kernel import ConfigError, Kernel

from .support import WEIGHT_TEMPLATE
from .test_freight import W, template


@pytest.mark.parametrize(
    ("tms", "key"),
    [
        ({"default_carrier": "nobody"}, "centers.tms.default_carrier"),
        ({"carriers": {"bad code!": {}}}, "centers.tms.carriers.bad code!"),
        ({"carriers": {"sf": {"secret": "x"}}}, "secret': unknown key"),
        ({"auto_complete_after_hours": "soon"}, "centers.tms.auto_complete_after_hours"),
        # out of range: a job every 0 s, a window nothing passes, clocks already run out
        ({"job_interval_seconds": 0}, "centers.tms.job_interval_seconds"),
        ({"webhook_tolerance_seconds": -1}, "centers.tms.webhook_tolerance_seconds"),
        ({"auto_complete_after_hours": -1}, "centers.tms.auto_complete_after_hours"),
        ({"stale_return_after_hours": 0}, "centers.tms.stale_return_after_hours"),
        ({"template_recheck_seconds": -5}, "centers.tms.template_recheck_seconds"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_key(mallcore, tms, key):
    with pytest.raises(ConfigError) as stopped:
        mallcore.kernel(centers=["catalog", "payment", "tms"], settings={"tms": tms})
    assert key in str(stopped.value)


def test_configured_carriers_make_their_waybills(mallcore):
    kernel = mallcore.kernel(
        centers=["catalog", "payment", "tms"],
        settings={
            "tms": {
                "carriers": {"sf": {"webhook_secret": "s", "waybill_prefix": "SF"}, "yto": {}},
                "default_carrier": "sf",
            }
        },
    )
    carriers = kernel.centers["tms"].carriers
    assert carriers["sf"].waybill().startswith("SF") and len(carriers["sf"].waybill()) == 14
    assert carriers["yto"].waybill().startswith("YTO")
    # the sandbox's default secret is derived from the kernel's own secret: never a
    # public constant, the same for every worker on this database, another elsewhere
    sandbox = carriers["sandbox"].secret
    assert len(sandbox) == 64 and sandbox not in (kernel.secret(), "mallcore-sandbox-secret")
    assert (
        mallcore.kernel(centers=["catalog", "payment", "tms"]).centers["tms"].carriers["sandbox"].secret
        != sandbox
    )
    same_db = Kernel(kernel.config)
    same_db.startup(jobs=False)
    try:
        assert same_db.centers["tms"].carriers["sandbox"].secret == sandbox
    finally:
        same_db.shutdown()
        same_db.close()


NO_FREE = template({**WEIGHT_TEMPLATE, "free": []})
REGIONS = st.sampled_from(["310000", "330200", "330106", "540102", "650102", "110000", None])


@settings(max_examples=60, deadline=None)
@given(region=REGIONS, light=st.integers(0, 50_000), extra=st.integers(0, 50_000), pieces=st.integers(1, 50))
def test_heavier_never_costs_less(region, light, extra, pieces):
    cheap = NO_FREE.quote(region, quantity=pieces, weight=light, goods=0).amount
    dear = NO_FREE.quote(region, quantity=pieces, weight=light + extra, goods=0).amount
    assert 0 < cheap <= dear


@settings(max_examples=60, deadline=None)
@given(region=REGIONS, weight=st.integers(0, 50_000), goods=st.integers(0, 100_000))
def test_more_goods_never_lose_free_shipping(region, weight, goods):
    if W.quote(region, quantity=1, weight=weight, goods=goods).free:
        assert W.quote(region, quantity=1, weight=weight, goods=goods + 1).free
