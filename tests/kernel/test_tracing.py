"""With OpenTelemetry configured, each stage is a span and each hook call inside it a child
span (run in a fresh interpreter: the tracer provider is global and set once)."""

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("opentelemetry.sdk")

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from litestar.testing import TestClient
    from mallcore.kernel import Kernel, load_config
    from mallcore.kernel.http.app import create_app

    config = load_config(env={}, overrides={
        "database": {"url": "sqlite:///" + sys.argv[1]},
        "centers": {"enabled": ["catalog", "payment", "wms"]},
        "jobs": {"enabled": False},
        "logging": {"level": "warning"},
        "auth": {"tokens": {"a": {"subject": "admin", "roles": ["admin"]},
                            "c": {"subject": "alice", "roles": ["customer"]}}},
    })
    kernel = Kernel(config)
    kernel.create_schema()
    with TestClient(create_app(kernel, lifecycle=False)) as client:
        admin = {"Authorization": "Bearer a"}
        client.post("/catalog/products", headers=admin,
                    json={"name": "T", "shop": "s1", "skus": [{"code": "SKU-1", "price": 100}]})
        client.post("/wms/warehouses", headers=admin, json={"code": "W", "name": "W", "region": "310000"})
        client.post("/wms/inbound", headers=admin, json={"warehouse": "W", "sku": "SKU-1", "quantity": 5})
        exporter.clear()
        body = {"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": 1}],
                "address": {"name": "A", "phone": "13800000000", "region": "310000", "detail": "x"}}
        order = client.post("/orders", headers={"Authorization": "Bearer c"}, json=body).json()
        client.post("/orders/%d/cancel" % order["id"], headers={"Authorization": "Bearer c"}, json={})
        client.post("/orders/%d/cancel" % order["id"], headers={"Authorization": "Bearer c"}, json={})
    spans = [
        {"name": s.name, "id": s.context.span_id, "parent": s.parent.span_id if s.parent else None,
         "attributes": dict(s.attributes), "error": not s.status.is_ok}
        for s in exporter.get_finished_spans()
    ]
    print(json.dumps(spans, default=list))
    """
)


def test_stages_and_their_hooks_are_spans(tmp_path):
    import json

    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "t.db")], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    spans = json.loads(run.stdout.strip().splitlines()[-1])
    stages = [s for s in spans if s["name"].startswith("stage ")]
    assert [s["name"] for s in stages] == ["stage place", "stage cancel", "stage cancel"]
    place = stages[0]
    hooks = {s["name"] for s in spans if s["parent"] == place["id"]}
    assert {"hook order_pre_validate", "hook order_price", "hook order_reserve"} <= hooks
    reserve = next(s for s in spans if s["name"] == "hook order_reserve" and s["parent"] == place["id"])
    assert "wms" in reserve["attributes"]["mallcore.centers"]
    ok_cancel, refused = stages[1], stages[2]
    assert ok_cancel["attributes"]["mallcore.order_id"] == refused["attributes"]["mallcore.order_id"]
    assert not ok_cancel["error"] and refused["error"]  # the second cancel was refused (409)
