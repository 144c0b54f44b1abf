"""TMS's mutating routes take ``Idempotency-Key``: a replay returns the first
response, marked ``Idempotent-Replayed: true``, and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from .support import PIECE_TEMPLATE, order_status, paid_order, rows, shop_kernel, signed, snapshot


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def _dispatched(mallcore: Any) -> tuple[Any, int, dict[str, Any], Any]:
    kernel = shop_kernel(mallcore)
    order = paid_order(mallcore, kernel, [("A", 1)])
    warehouse = mallcore.client(kernel, "warehouse", "w1", shop="s1")
    view = warehouse.post(f"/orders/{order['id']}/dispatch").json()
    return kernel, order["id"], view["shipments"][0], warehouse


def test_a_retried_staff_event_records_one_event(mallcore: Any) -> None:
    kernel, oid, shipment, warehouse = _dispatched(mallcore)
    path = f"/tms/shipments/{shipment['id']}/events"
    body = {"status": "picked_up", "description": "Handed over at the dock"}  # no time: "now"
    first = warehouse.post(path, json=body, headers=key("evt-1"))
    assert first.status_code == 201, first.text
    assert first.json()["result"] == "applied"
    before = snapshot(kernel)
    again = warehouse.post(path, json=body, headers=key("evt-1"))
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert snapshot(kernel) == before
    assert [e.status for e in rows(kernel, "tms_events")] == ["picked_up"]
    assert order_status(kernel, oid) == "shipped"
    # the same key for another event is refused, writing nothing
    r = warehouse.post(path, json={"status": "in_transit"}, headers=key("evt-1"))
    assert (r.status_code, r.json()["code"]) == (422, "idempotency_key_reused")
    assert snapshot(kernel) == before
    # without a key each call is its own event (a hand-posted event defaults to "now")
    for _ in range(2):
        assert warehouse.post(path, json={"status": "in_transit"}).status_code == 201
    assert [e.status for e in rows(kernel, "tms_events")] == ["picked_up", "in_transit", "in_transit"]


def test_a_retried_sandbox_advance_moves_the_parcel_once(mallcore: Any) -> None:
    kernel, oid, shipment, _ = _dispatched(mallcore)
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    path = f"/tms/sandbox/{shipment['tracking_no']}/advance"
    first = merchant.post(path, headers=key("adv-1"))
    assert (first.status_code, first.json()["status"]) == (200, "picked_up")
    again = merchant.post(path, headers=key("adv-1"))
    assert (again.status_code, again.json()) == (200, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [e.status for e in rows(kernel, "tms_events")] == ["picked_up"]
    assert merchant.post(path, headers=key("adv-2")).json()["status"] == "in_transit"


def test_template_create_and_update_replay_their_first_response(mallcore: Any) -> None:
    kernel = shop_kernel(mallcore)
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    body = {"shop": "s1", **PIECE_TEMPLATE}
    first = merchant.post("/tms/templates", json=body, headers=key("tpl-1"))
    assert first.status_code == 201, first.text
    again = merchant.post("/tms/templates", json=body, headers=key("tpl-1"))
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(rows(kernel, "tms_templates")) == 1
    # without the key the same body is a second template: refused by name, as before
    assert merchant.post("/tms/templates", json=body).status_code == 409

    template_id = first.json()["id"]
    spec = {k: v for k, v in body.items() if k != "shop"}
    cheaper = {**spec, "default_rule": {"first_fee": 800, "additional_fee": 400}}
    dearer = {**spec, "default_rule": {"first_fee": 1200, "additional_fee": 600}}
    put = merchant.put(f"/tms/templates/{template_id}", json=cheaper, headers=key("tpl-put-1"))
    assert put.status_code == 200, put.text
    assert put.json()["default_rule"]["first_fee"] == 800
    assert merchant.put(f"/tms/templates/{template_id}", json=dearer).status_code == 200
    # a late retry of the first update answers as it did and does not undo the second
    replay = merchant.put(f"/tms/templates/{template_id}", json=cheaper, headers=key("tpl-put-1"))
    assert (replay.status_code, replay.json()) == (200, put.json())
    assert replay.headers["Idempotent-Replayed"] == "true"
    now = merchant.get(f"/tms/templates/{template_id}").json()
    assert now["default_rule"]["first_fee"] == 1200


def test_unknown_event_retry_and_dismiss_replay(mallcore: Any) -> None:
    kernel = shop_kernel(mallcore)
    admin = mallcore.client(kernel, "admin", "root")
    carrier = mallcore.client(kernel, None)
    when = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    secret = kernel.centers["tms"].carriers["sandbox"].secret
    for no in ("SBX000000000001", "SBX000000000002"):
        event = {"tracking_no": no, "status": "in_transit", "occurred_at": when}
        assert signed(carrier, "sandbox", event, secret=secret).json()["result"] == "kept_for_review"
    first_id, second_id = sorted(k["id"] for k in admin.get("/tms/unknown-events").json())

    dismissed = admin.post(f"/tms/unknown-events/{first_id}/dismiss", json={"note": "x"}, headers=key("d-1"))
    assert dismissed.status_code == 200, dismissed.text
    again = admin.post(f"/tms/unknown-events/{first_id}/dismiss", json={"note": "x"}, headers=key("d-1"))
    assert (again.status_code, again.json()) == (200, dismissed.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    # without the key a second dismissal is refused, as before
    r = admin.post(f"/tms/unknown-events/{first_id}/dismiss", json={"note": "x"})
    assert (r.status_code, r.json()["code"]) == (409, "event_resolved")

    # the waybill of the second turns up (a customer's order ships with it): retry applies it
    order = paid_order(mallcore, kernel, [("A", 1)])
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    no = merchant.post(f"/orders/{order['id']}/dispatch").json()["shipments"][0]["tracking_no"]
    t = kernel.metadatas["tms"].tables["tms_unknown_events"]
    with kernel.db.transaction() as conn:
        conn.execute(t.update().where(t.c.id == second_id).values(tracking_no=no))
    retried = admin.post(f"/tms/unknown-events/{second_id}/retry", headers=key("r-1"))
    assert retried.status_code == 200, retried.text
    assert retried.json()["result"] == "applied"
    before = snapshot(kernel)
    again = admin.post(f"/tms/unknown-events/{second_id}/retry", headers=key("r-1"))
    assert (again.status_code, again.json()) == (200, retried.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert snapshot(kernel) == before
    assert order_status(kernel, order["id"]) == "shipped"


def test_an_event_that_lost_the_race_to_its_copy_answers_duplicate_and_its_key_replays_it(
    mallcore: Any, monkeypatch: Any
) -> None:
    kernel, _oid, shipment, warehouse = _dispatched(mallcore)
    when = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    event = {"status": "picked_up", "occurred_at": when, "description": "Collected", "location": "Dock 3"}
    carrier = mallcore.client(kernel, None)
    copy = signed(carrier, "sandbox", {"tracking_no": shipment["tracking_no"], **event})
    assert copy.json()["result"] == "applied"

    def lost_the_race(*args: Any, **kwargs: Any) -> Any:
        # The carrier's copy committed between our check for it and our insert.
        raise IntegrityError("INSERT INTO tms_events ...", {}, Exception("unique constraint"))

    monkeypatch.setattr(kernel.centers["tms"].tracker, "apply", lost_the_race)
    path = f"/tms/shipments/{shipment['id']}/events"
    first = warehouse.post(path, json=event, headers=key("late-1"))
    assert (first.status_code, first.json()) == (
        201,
        {
            "result": "duplicate",
            "shipment_id": shipment["id"],
            "status": None,
            "event_id": copy.json()["event_id"],
        },
    )
    monkeypatch.undo()
    before = snapshot(kernel)
    again = warehouse.post(path, json=event, headers=key("late-1"))
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert snapshot(kernel) == before


def test_the_openapi_schema_documents_the_key_on_each_route_that_takes_it(mallcore: Any) -> None:
    kernel = shop_kernel(mallcore)
    paths = mallcore.client(kernel, "admin", "root").get("/schema/openapi.json").json()["paths"]
    for method, path in [
        ("post", "/tms/templates"),
        ("put", "/tms/templates/{template_id}"),
        ("post", "/tms/shipments/{shipment_id}/events"),
        ("post", "/tms/sandbox/{tracking_no}/advance"),
        ("post", "/tms/unknown-events/{event_id}/retry"),
        ("post", "/tms/unknown-events/{event_id}/dismiss"),
    ]:
        assert "Idempotency-Key" in [p["name"] for p in paths[path][method]["parameters"]], path
    # the carrier signs its webhook instead: no key, no bearer token
    webhook = paths["/tms/webhooks/{carrier}"]["post"]
    assert [p["name"] for p in webhook["parameters"]] == ["carrier"]
