from importlib.metadata import EntryPoint

import pytest
import sqlalchemy as sa
from litestar import get

from mallcore.kernel import Center, Job, Kernel, PluginError, hookimpl, load_config
from mallcore.kernel.config import FIRST_PARTY_CENTERS
from mallcore.kernel.http.app import create_app
from mallcore.kernel.plugins import ENTRY_POINT_GROUP, default_enabled, installed_centers, order_centers


def make(name, requires=(), after=(), conflicts=()):
    return type(
        name.title(), (Center,), {"name": name, "requires": requires, "after": after, "conflicts": conflicts}
    )


def kernel_with(tmp_path, enabled, extra=()):
    config = load_config(
        overrides={"database": {"url": f"sqlite:///{tmp_path}/k.db"}, "centers": {"enabled": enabled}}, env={}
    )
    return Kernel(config, centers=extra)


def test_order_follows_requires_and_after_then_name_never_install_order():
    a, b, c, d = (
        make("alpha"),
        make("beta", after=("delta",)),
        make("gamma", requires=("alpha",)),
        make("delta"),
    )
    names = [x.name for x in order_centers([c(), b(), a(), d()])]
    assert names == ["alpha", "delta", "beta", "gamma"]
    assert names == [x.name for x in order_centers([d(), a(), b(), c()])]


def test_hooks_are_called_in_center_order(mallcore):
    calls = []

    def recorder(name, **kw):
        def order_price(self, ctx):
            calls.append(self.name)

        return type(name.title(), (Center,), {"name": name, "order_price": hookimpl(order_price), **kw})

    kernel = mallcore.kernel(extra=[recorder("zeta"), recorder("eta", after=("zeta",)), recorder("aleph")])
    mallcore.product(kernel)
    alice = mallcore.client(kernel, "customer", "alice")
    assert (
        alice.post("/orders", json={"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": 1}]}).status_code
        == 201
    )
    assert calls == ["aleph", "zeta", "eta"]


def test_a_required_center_that_is_not_enabled_stops_start_up(tmp_path):
    needy = make("needy", requires=("catalog", "ghost"))
    with pytest.raises(PluginError, match="'needy' requires center 'ghost'"):
        kernel_with(tmp_path, ["catalog", "payment", "needy"], [needy])


def test_an_unknown_center_name_stops_start_up_listing_installed_ones(tmp_path):
    with pytest.raises(
        PluginError, match=r"'warehouse9' is enabled in config but not installed \(installed: .*catalog"
    ):
        kernel_with(tmp_path, ["catalog", "payment", "warehouse9"])


def test_conflicting_centers_and_cycles_stop_start_up(tmp_path):
    one, two = make("one", conflicts=("two",)), make("two")
    with pytest.raises(PluginError, match="conflict"):
        kernel_with(tmp_path, ["one", "two"], [one, two])
    p, q = make("p", after=("q",)), make("q", after=("p",))
    with pytest.raises(PluginError, match="cycle"):
        kernel_with(tmp_path, ["p", "q"], [p, q])


def test_a_misspelt_hook_is_refused_naming_the_center(tmp_path):
    typo = type("Typo", (Center,), {"name": "typo", "order_prise": hookimpl(lambda self, ctx: None)})
    with pytest.raises(PluginError, match="'typo' implements 'order_prise'"):
        kernel_with(tmp_path, ["catalog", "payment", "typo"], [typo])


def test_tables_must_carry_the_center_prefix_and_not_collide(tmp_path):
    md = sa.MetaData()
    sa.Table("orders_extra", md, sa.Column("id", sa.Integer, primary_key=True))
    sloppy = type("Sloppy", (Center,), {"name": "sloppy", "tables": md})
    with pytest.raises(PluginError, match="'sloppy_"):
        kernel_with(tmp_path, ["catalog", "payment", "sloppy"], [sloppy])


def test_two_centers_claiming_one_route_stop_start_up_naming_both(tmp_path):
    def routes(self, kernel):
        @get("/catalog/products", sync_to_thread=False)
        def clash() -> dict:
            return {}

        return [clash]

    thief = type("Thief", (Center,), {"name": "thief", "center_routes": hookimpl(routes)})
    kernel = kernel_with(tmp_path, ["catalog", "payment", "thief"], [thief])
    with pytest.raises(PluginError, match="'catalog' and 'thief' both route GET /catalog/products"):
        create_app(kernel)


def test_the_custom_center_is_discovered_when_enabled(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "fee"], settings={"fee": {"amount": 250}})
    assert "fee" in kernel.centers
    assert "fee_charges" in kernel.metadatas["fee"].tables
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    order = mallcore.client(kernel, "customer", "alice").post(
        "/orders", json={"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": 2}]}
    )
    assert order.status_code == 201
    assert order.json()["total"] == 2250
    assert order.json()["fees"] == 250
    charges = mallcore.client(kernel, "merchant", "m", shop="s1").get("/fee/charges")
    assert charges.status_code == 200
    assert charges.json() == [{"order_id": order.json()["id"], "shop": "s1", "amount": 250}]


def test_the_custom_center_is_absent_when_disabled(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment"])
    assert "fee" not in kernel.centers
    assert "fee" not in kernel.metadatas
    with kernel.db.transaction(write=False) as conn:
        assert "fee_charges" not in sa.inspect(conn).get_table_names()
    assert not [i for i in kernel.hook.order_price.get_hookimpls() if i.plugin_name == "fee"]
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    client = mallcore.client(kernel, "admin", "root")
    assert client.get("/fee/charges").status_code == 404
    order = mallcore.client(kernel, "customer", "alice").post(
        "/orders", json={"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": 2}]}
    )
    assert order.json()["total"] == 2000


def test_only_enabled_entry_points_are_imported(tmp_path):
    import sys

    sys.modules.pop("mallcore_fee", None)
    kernel = kernel_with(tmp_path, ["catalog", "payment"])
    kernel.close()
    assert "mallcore_fee" not in sys.modules
    kernel = kernel_with(tmp_path, ["catalog", "payment", "fee"])
    kernel.close()
    assert "mallcore_fee" in sys.modules


def test_each_kernel_has_its_own_plugin_manager_and_center_instances(mallcore):
    a = mallcore.kernel(centers=["catalog", "payment", "fee"], settings={"fee": {"amount": 1}})
    b = mallcore.kernel(centers=["catalog", "payment", "fee"], settings={"fee": {"amount": 2}})
    assert a.pm is not b.pm
    assert a.centers["fee"] is not b.centers["fee"]
    assert (a.centers["fee"].settings.amount, b.centers["fee"].settings.amount) == (1, 2)


def test_the_kernels_hook_calls_follow_pluggys_order_and_semantics(mallcore):
    calls = []

    def center(name, **hooks):
        return type(name.title(), (Center,), {"name": name, **hooks})

    first = center(
        "zz_first", order_price=hookimpl(tryfirst=True)(lambda self, ctx: calls.append("zz_first"))
    )
    last = center("aa_last", order_price=hookimpl(trylast=True)(lambda self, ctx: calls.append("aa_last")))
    plain = center("mm_plain", order_price=hookimpl(lambda self, ctx: calls.append("mm_plain")))
    kernel = mallcore.kernel(centers=[], extra=[first, last, plain])
    kernel.calls.order_price(ctx=None)
    fast = list(calls)
    calls.clear()
    kernel.hook.order_price(ctx=None)
    assert fast == calls == ["zz_first", "mm_plain", "aa_last"]


def test_the_kernels_hook_calls_pass_each_implementation_the_arguments_it_names(mallcore):
    got = []

    class Picky(Center):
        name = "picky"

        @hookimpl
        def order_pay(self, payment, ctx):  # both, in another order than the spec
            got.append(("both", payment, ctx))

    class OnlyPayment(Center):
        name = "only_payment"

        @hookimpl
        def order_pay(self, payment):
            got.append(("payment", payment))

    class Nothing(Center):
        name = "nothing"

        @hookimpl
        def order_pay(self):
            got.append(("nothing",))

    kernel = mallcore.kernel(centers=[], extra=[Picky, OnlyPayment, Nothing])
    kernel.calls.order_pay(ctx="the ctx", payment="the payment")
    fast = list(got)
    got.clear()
    kernel.hook.order_pay(ctx="the ctx", payment="the payment")
    assert fast == got  # pluggy's order, too
    assert sorted(fast) == [
        ("both", "the payment", "the ctx"),
        ("nothing",),
        ("payment", "the payment"),
    ]


def test_the_kernels_firstresult_hook_calls_stop_at_the_first_answer_as_pluggy_does(mallcore):
    from mallcore.kernel.types import Principal

    calls = []

    def center(name, answer, **opts):
        def resolve_principal(self, token):
            calls.append(name)
            return answer if token == "t" else None

        return type(
            name.title(), (Center,), {"name": name, "resolve_principal": hookimpl(**opts)(resolve_principal)}
        )

    host = Principal("from-host", frozenset({"customer"}))
    kernel = mallcore.kernel(
        centers=[],
        extra=[
            center("zz_silent", None, tryfirst=True),
            center("mm_host", host),
            center("aa_never", Principal("x", frozenset()), trylast=True),
        ],
    )
    assert kernel.calls.resolve_principal is not kernel.hook.resolve_principal  # the fast path
    fast = kernel.calls.resolve_principal(kernel=kernel, token="t", request=None)
    fast_calls = list(calls)
    calls.clear()
    slow = kernel.hook.resolve_principal(kernel=kernel, token="t", request=None)
    assert fast == slow == host
    assert fast_calls == calls == ["zz_silent", "mm_host"]  # the ones after the answer never run
    calls.clear()
    # no answer at all: every implementation asked (the kernel's own last), None
    assert kernel.calls.resolve_principal(kernel=kernel, token="unknown", request=None) is None
    assert calls == ["zz_silent", "mm_host", "aa_never"]


def test_hooks_with_wrappers_go_through_pluggy(mallcore):
    seen = []

    class Wrapper(Center):
        name = "wrapping"

        @hookimpl(wrapper=True)
        def order_price(self, ctx):
            seen.append("before")
            result = yield
            seen.append("after")
            return result

    kernel = mallcore.kernel(extra=[Wrapper])
    assert kernel.calls.order_price is kernel.hook.order_price
    mallcore.product(kernel)
    mallcore.client(kernel, "customer", "a").post(
        "/orders", json={"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": 1}]}
    )
    assert seen == ["before", "after"]


def test_hook_monitoring_and_tracing_see_the_lifecycle_calls_of_a_placement(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel)
    alice = mallcore.client(kernel, "customer", "alice")
    body = {"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": 1}]}
    assert alice.post("/orders", json=body).status_code == 201  # the fast path is set up
    seen = []
    undo = kernel.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.append(name), lambda outcome, name, impls, kwargs: None
    )
    try:
        assert alice.post("/orders", json=body).status_code == 201
    finally:
        undo()
    assert [h for h in seen if h.startswith("order_")][:3] == [
        "order_pre_validate",
        "order_price",
        "order_reserve",
    ]
    traced: list[str] = []
    kernel.pm.trace.root.setwriter(traced.append)
    undo = kernel.pm.enable_tracing()
    try:
        assert alice.post("/orders", json=body).status_code == 201
    finally:
        undo()
    assert any("order_reserve" in line for line in traced)
    seen.clear()
    assert alice.post("/orders", json=body).status_code == 201
    assert seen == []  # monitoring removed: nothing more is reported


def test_an_optional_hook_without_a_spec_is_accepted(mallcore):
    class Early(Center):
        name = "early"

        @hookimpl(optionalhook=True)
        def promotion_campaigns(self):  # a hook another center may declare some day
            return []

    kernel = mallcore.kernel(extra=[Early])
    kernel.pm.check_pending()
    assert "early" in kernel.centers


def test_every_implementation_of_a_center_counts_not_only_its_last(mallcore):
    @get("/twice/first", sync_to_thread=False)
    def first() -> str:
        return "first"

    @get("/twice/last", sync_to_thread=False)
    def last() -> str:
        return "last"

    class Helper:
        @hookimpl
        def center_jobs(self, kernel):
            return [Job("twice.helper_job", 60, lambda k: None)]

    class Twice(Center):
        name = "twice"

        def bind(self, kernel, settings):
            super().bind(kernel, settings)
            kernel.pm.register(Helper(), name="twice.helper")

        @hookimpl(specname="center_routes", tryfirst=True)
        def routes_first(self, kernel):
            return [first]

        @hookimpl(specname="center_routes", trylast=True)
        def routes_last(self, kernel):
            return [last]

        @hookimpl
        def center_jobs(self, kernel):
            return [Job("twice.own_job", 60, lambda k: None)]

    kernel = mallcore.kernel(extra=[Twice])
    assert [
        (name, [path for r in routes for path in r.paths])
        for name, routes in kernel.call_each("center_routes", kernel=kernel)
        if name == "twice"
    ] == [("twice", ["/twice/first"]), ("twice", ["/twice/last"])]
    client = mallcore.client(kernel, None)
    assert (client.get("/twice/first").text, client.get("/twice/last").text) == ("first", "last")
    assert {"twice.own_job", "twice.helper_job"} <= set(kernel.jobs.jobs)


def test_only_mallcores_own_entry_points_are_enabled_by_default():
    installed = installed_centers()
    assert default_enabled(installed) == [n for n in FIRST_PARTY_CENTERS if n in installed and n != "fee"]
    # a third-party package registering a first-party name is not enabled by default
    squatter = EntryPoint("risk", "somebody_else:Risk", ENTRY_POINT_GROUP)
    assert "risk" not in default_enabled({**installed, "risk": squatter})
    # the example's "fee" is installed but not first-party
    assert "fee" in installed and "fee" not in default_enabled(installed)
