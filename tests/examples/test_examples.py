"""The examples run as their READMEs say."""

import shutil
from pathlib import Path

from litestar.testing import TestClient

from mallcore.kernel import Kernel, load_config
from mallcore.kernel.http.app import create_app

ROOT = Path(__file__).resolve().parents[2]


def test_minimal_example_plays_its_readme(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "examples/minimal/mallcore.toml", tmp_path / "mallcore.toml")
    kernel = Kernel(load_config(tmp_path / "mallcore.toml", env={}))
    assert list(kernel.centers) == ["catalog", "payment"]
    kernel.upgrade()
    with TestClient(create_app(kernel, lifecycle=False)) as c:
        merchant = {"Authorization": "Bearer minimal-merchant"}
        alice = {"Authorization": "Bearer minimal-alice"}
        r = c.post(
            "/catalog/products",
            headers=merchant,
            json={
                "name": "Tea",
                "shop": "shop1",
                "skus": [{"code": "TEA-1", "price": 2500, "weight_grams": 250}],
            },
        )
        assert r.status_code == 201, r.text
        order = c.post(
            "/orders", headers=alice, json={"shop": "shop1", "lines": [{"sku": "TEA-1", "quantity": 2}]}
        ).json()
        assert order["total"] == 5000
        pay = c.post(
            f"/orders/{order['id']}/payments", headers=alice, json={"method": "sandbox", "amount": 5000}
        )
        assert pay.json()["order_status"] == "paid"
        kinds = [e["kind"] for e in c.get(f"/orders/{order['id']}/timeline", headers=alice).json()]
        assert kinds == ["order.placed", "order.paid"]
    kernel.close()


def test_mount_example_serves_host_and_shop_routes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from examples.mount.app import create_host_app

    app = create_host_app(ROOT / "examples/mount/mallcore.toml")
    with TestClient(app) as c:
        assert c.get("/health").json() == {"status": "ok"}
        admin = {"Authorization": "Bearer host-admin"}
        r = c.post(
            "/shop/catalog/products",
            headers=admin,
            json={"name": "Cup", "shop": "s1", "skus": [{"code": "CUP", "price": 900}]},
        )
        assert r.status_code == 201
        assert c.get("/shop/catalog/products").json()[0]["skus"][0]["code"] == "CUP"
        order = c.post(
            "/shop/orders",
            headers={"Authorization": "Bearer host-alice"},
            json={"shop": "s1", "lines": [{"sku": "CUP", "quantity": 1}]},
        ).json()
        assert order["tracking_url"].startswith(f"http://127.0.0.1:8000/shop/track/{order['id']}?token=")
    assert (tmp_path / "mount-example.db").exists()


def test_the_custom_centers_migrations_create_its_table(mallcore, tmp_path):
    # As an operator runs it: `mallcore db upgrade` with the fee center enabled
    # applies the kernel's branch and the center's own (labelled "fee").
    from alembic.script import ScriptDirectory
    from click.testing import CliRunner

    from mallcore import cli
    from mallcore.kernel.migrate import alembic_config, current
    from tests.kernel.test_migrations import diff

    database = mallcore.database()
    config = tmp_path / "fee.toml"
    schema = f'schema = "{database["schema"]}"\n' if "schema" in database else ""
    config.write_text(
        f'[database]\nurl = "{database["url"]}"\n{schema}[centers]\nenabled = ["catalog", "payment", "fee"]\n'
    )
    result = CliRunner().invoke(cli.cli, ["db", "upgrade", "--config", str(config)], env={})
    assert result.exit_code == 0, result.output
    kernel = mallcore.kernel(
        centers=["catalog", "payment", "fee"], config={"database": database}, migrate=True
    )
    fee_head = ScriptDirectory.from_config(alembic_config(kernel)).get_revision("fee@head")
    assert fee_head is not None and fee_head.revision in current(kernel)
    assert diff(kernel) == []  # the revision builds exactly the table the center declares
