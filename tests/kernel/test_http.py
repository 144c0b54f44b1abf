import structlog
from litestar import Litestar, get
from litestar.testing import TestClient

from mallcore.kernel.http.app import MallcorePlugin, create_app
from tests.helpers import order_body


def test_openapi_is_served_at_schema_with_the_contract_paths(mallcore):
    kernel = mallcore.kernel()
    schema = mallcore.client(kernel, None).get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/orders",
        "/orders/{order_id}",
        "/orders/{order_id}/payments",
        "/orders/{order_id}/cancel",
        "/orders/{order_id}/timeline",
        "/catalog/products",
    ):
        assert path in paths, path
    params = {p["name"] for p in paths["/orders"]["post"]["parameters"]}
    assert "Idempotency-Key" in params


def test_every_response_carries_a_request_id_and_logs_bind_it_with_the_order(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    with structlog.testing.capture_logs() as logs:
        r = alice.post("/orders", json=order_body(), headers={"X-Request-ID": "req-42"})
    assert r.headers["x-request-id"] == "req-42"
    placed = [e for e in logs if e["event"] == "order.placed"]
    assert placed and placed[0]["order_id"] == r.json()["id"]
    assert alice.get("/me").headers["x-request-id"]


def test_request_ids_made_by_the_server_are_unique_also_across_forked_workers(mallcore):
    """A request without ``X-Request-ID`` gets 32 hex digits, never the same twice, and a
    worker forked from a process that already served requests does not repeat its ids."""
    import os
    import re

    kernel = mallcore.kernel()
    alice = mallcore.client(kernel, "customer", "alice")
    ids = [alice.get("/me").headers["x-request-id"] for _ in range(3)]
    assert len(set(ids)) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)

    from mallcore.kernel.http import middleware

    parent = [middleware._new_request_id() for _ in range(3)]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first ids, to the parent
        try:
            os.write(write, " ".join(middleware._new_request_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 1000).decode().split()
    os.waitpid(pid, 0)
    assert len(child) == 3 and not set(child) & set(parent)
    assert {c[:16] for c in child}.isdisjoint({p[:16] for p in parent})  # another random half


def test_the_kernel_mounts_into_a_host_app_beside_its_own_routes(mallcore):
    kernel = mallcore.kernel()

    @get("/health", sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    host = Litestar(route_handlers=[health], plugins=[MallcorePlugin(kernel, path="/shop", lifecycle=False)])
    token = mallcore.token(kernel, "admin", "root")
    alice = mallcore.token(kernel, "customer", "alice")
    with TestClient(host) as client:
        assert client.get("/health").json() == {"status": "ok"}
        made = client.post(
            "/shop/catalog/products",
            json={"name": "Tea", "shop": "s1", "skus": [{"code": "TEA", "price": 2500}]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201
        order = client.post(
            "/shop/orders", json=order_body(lines=[("TEA", 1)]), headers={"Authorization": f"Bearer {alice}"}
        ).json()
        assert order["tracking_url"].startswith(f"/shop/track/{order['id']}?token=")
        # mallcore's error format applies to its routes; the host's 404 stays the host's
        assert (
            client.get("/shop/orders/999", headers={"Authorization": f"Bearer {alice}"}).json()["code"]
            == "order_not_found"
        )
        assert client.get("/orders").status_code == 404


def test_the_served_app_freezes_its_start_up_heap_and_a_mounted_one_does_not(mallcore, tmp_path, monkeypatch):
    """``mallcore serve`` (``app_from_environment``) puts what start-up made out of the
    collector's sight: a full collection no longer walks the app and kernel (a 60 ms
    pause per pass); an app built with ``create_app`` or mounted leaves the host's alone."""
    import gc

    from mallcore.kernel import Kernel, load_config
    from mallcore.kernel.http.app import app_from_environment

    config = tmp_path / "mallcore.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "shop.db"}"\n[jobs]\nenabled = false\n')
    monkeypatch.setenv("MALLCORE_CONFIG", str(config))
    # The factory configures logging for its process: not for the rest of this test run's.
    monkeypatch.setattr("mallcore.kernel.logs.configure_logging", lambda config: None)
    schema = Kernel(load_config(config, env={}))
    schema.upgrade()
    schema.close()
    gc.unfreeze()
    try:
        with TestClient(create_app(mallcore.kernel(), lifecycle=False)) as client:
            assert client.get("/health").status_code == 200
            assert gc.get_freeze_count() == 0
        app = app_from_environment()
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200
            frozen = gc.get_freeze_count()
        assert frozen > 10_000
        tracked = {id(o) for o in gc.get_objects()}  # the collector's generations, not the frozen
        assert id(app) not in tracked and id(app.state["mallcore"]) not in tracked
    finally:
        gc.unfreeze()
