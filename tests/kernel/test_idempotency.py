from concurrent.futures import ThreadPoolExecutor

from tests.helpers import count, order_body


def setup(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000), ("SKU-2", 500)])
    return kernel, mallcore.client(kernel, "customer", "alice")


def test_a_replay_returns_the_first_response_and_changes_nothing(mallcore):
    kernel, alice = setup(mallcore)
    first = alice.post("/orders", json=order_body(), headers={"Idempotency-Key": "abc"})
    again = alice.post("/orders", json=order_body(), headers={"Idempotency-Key": "abc"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(kernel, "orders") == 1
    # keys are per caller: bob's "abc" is his own
    bob = mallcore.client(kernel, "customer", "bob")
    assert (
        bob.post("/orders", json=order_body(), headers={"Idempotency-Key": "abc"}).json()["customer"] == "bob"
    )
    assert count(kernel, "orders") == 2


def test_the_same_key_with_another_body_or_endpoint_is_refused(mallcore):
    kernel, alice = setup(mallcore)
    order = alice.post("/orders", json=order_body(), headers={"Idempotency-Key": "k"}).json()
    other = alice.post("/orders", json=order_body(lines=[("SKU-2", 1)]), headers={"Idempotency-Key": "k"})
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    pay = alice.post(
        f"/orders/{order['id']}/payments", json={"method": "sandbox"}, headers={"Idempotency-Key": "k"}
    )
    assert pay.json()["code"] == "idempotency_key_reused"
    assert count(kernel, "orders") == 1
    assert count(kernel, "payment_payments") == 0


def test_a_failed_request_does_not_burn_the_key(mallcore):
    kernel, alice = setup(mallcore)
    bad = alice.post("/orders", json=order_body(lines=[("NOPE", 1)]), headers={"Idempotency-Key": "x"})
    assert bad.status_code == 422
    assert count(kernel, "idempotency_keys") == 0


def test_payment_replays_do_not_charge_twice(mallcore):
    kernel, alice = setup(mallcore)
    order = alice.post("/orders", json=order_body()).json()
    url = f"/orders/{order['id']}/payments"
    first = alice.post(url, json={"method": "sandbox"}, headers={"Idempotency-Key": "pay-1"})
    again = alice.post(url, json={"method": "sandbox"}, headers={"Idempotency-Key": "pay-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert count(kernel, "payment_payments") == 1


def test_a_declined_payment_replays_as_declined(mallcore):
    kernel, alice = setup(mallcore)
    order = alice.post("/orders", json=order_body()).json()
    body = {"method": "sandbox", "data": {"simulate": "decline"}}
    url = f"/orders/{order['id']}/payments"
    first = alice.post(url, json=body, headers={"Idempotency-Key": "d"})
    again = alice.post(url, json=body, headers={"Idempotency-Key": "d"})
    assert first.status_code == again.status_code == 402
    assert count(kernel, "payment_payments") == 1


def test_concurrent_duplicates_create_one_order(mallcore):
    kernel, alice = setup(mallcore)

    def attempt(_):
        return alice.post("/orders", json=order_body(), headers={"Idempotency-Key": "race"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(attempt, range(16)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert count(kernel, "orders") == 1


def test_an_overlong_key_is_bad_input(mallcore):
    kernel, alice = setup(mallcore)
    r = alice.post("/orders", json=order_body(), headers={"Idempotency-Key": "k" * 201})
    assert (r.status_code, r.json()["code"]) == (422, "idempotency_key_invalid")
    assert count(kernel, "orders") == 0
