"""Secrets from config or environment, one key per purpose, rotation, expiring and revocable links."""

from __future__ import annotations

import time

import sqlalchemy as sa
from click.testing import CliRunner

from mallcore.kernel import signing
from mallcore.kernel import tables as t
from mallcore.kernel.config import load_config
from tests.helpers import order_body

KEYS = {"tracking": ["track-new"], "webhooks": ["hooks-new"], "sessions": ["sess-new"]}


def test_secret_new_prints_a_fresh_secret_each_time():
    from mallcore.cli import cli

    one, two = (CliRunner().invoke(cli, ["secret", "new"]).output.strip() for _ in range(2))
    assert one != two and len(one) >= 43


def test_keys_come_from_the_environment_newest_first():
    config = load_config(env={"MALLCORE_SECRET_TRACKING": "new, old", "MALLCORE_SECRET_WEBHOOKS": "w"})
    assert (config.secrets.tracking, config.secrets.webhooks, config.secrets.sessions) == (
        ["new", "old"],
        ["w"],
        [],
    )


def test_with_every_purpose_configured_no_secret_is_kept_in_the_database(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "tms"], config={"secrets": KEYS})
    with kernel.db.transaction(write=False) as conn:
        assert conn.execute(sa.select(t.kernel_meta).where(t.kernel_meta.c.key == "secret")).first() is None
    # one key per purpose: the tracking key does not sign the carrier's webhooks
    sandbox = kernel.centers["tms"].carriers["sandbox"]
    assert sandbox.secret and sandbox.secret not in ("hooks-new", "track-new")
    assert kernel.keyring("tracking").keys != kernel.keyring("webhooks").keys


def _track(client, order_id, token):
    return client.get(f"/track/{order_id}", params={"token": token}).status_code


def test_tracking_links_survive_a_rotation_for_its_grace_period_then_stop(mallcore):
    before = mallcore.kernel(config={"secrets": {"tracking": ["old"]}})
    mallcore.product(before, skus=[("SKU-1", 1000)])
    alice = mallcore.client(before, "customer", "alice")
    order = alice.post("/orders", json=order_body()).json()
    link = order["tracking_url"].partition("token=")[2]
    old_token = signing.tracking_token(before.keyring("tracking"), order["id"], 90)
    assert _track(alice, order["id"], link) == 200
    # the same database, a new key first and the old one kept: old links still work
    rotated_config = {"secrets": {"tracking": ["new", "old"]}}
    rotated = type(before)(load_config(overrides={**_db(before), **rotated_config}, env={}))
    assert rotated.auth.check_tracking_token(order["id"], old_token)
    new_token = rotated.auth.tracking_token(order["id"])
    assert new_token != old_token and rotated.auth.check_tracking_token(order["id"], new_token)
    # the grace period over, the old key is dropped: its links stop working
    dropped = type(before)(load_config(overrides={**_db(before), "secrets": {"tracking": ["new"]}}, env={}))
    assert not dropped.auth.check_tracking_token(order["id"], old_token)
    assert dropped.auth.check_tracking_token(order["id"], new_token)
    for kernel in (rotated, dropped):
        kernel.close()


def _db(kernel):
    url = kernel.db.engine.url.render_as_string(hide_password=False)
    schema = kernel.config.database.schema
    return {"database": {"url": url, **({"schema": schema} if schema else {})}, "jobs": {"enabled": False}}


def test_tracking_links_expire(mallcore):
    kernel = mallcore.kernel(config={"secrets": {"tracking": ["k"], "tracking_link_days": 7}})
    ring = kernel.keyring("tracking")
    now = time.time()
    made_long_ago = signing.tracking_token(ring, 5, 7, now=now - 8 * 86_400)
    made_lately = signing.tracking_token(ring, 5, 7, now=now - 6 * 86_400)
    assert not signing.tracking_token_valid(ring, 5, made_long_ago)
    assert signing.tracking_token_valid(ring, 5, made_lately)
    assert not signing.tracking_token_valid(ring, 6, made_lately)  # another order
    forged = made_lately.replace(made_lately.partition(".")[0], "ffffff")  # a later expiry, same mac
    assert not signing.tracking_token_valid(ring, 5, forged)
    assert not kernel.auth.check_tracking_token(5, made_long_ago)


def test_one_tracking_link_is_revoked_and_the_others_keep_working(mallcore):
    kernel = mallcore.kernel(config={"secrets": {"tracking": ["k"]}})
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body()).json()
    oid = order["id"]
    forwarded = order["tracking_url"].partition("token=")[2]
    other = signing.tracking_token(kernel.keyring("tracking"), oid, 30)  # made another day
    assert forwarded != other
    bob = mallcore.client(kernel, "customer", "bob")
    assert bob.post(f"/orders/{oid}/tracking-links/revoke", json={"token": forwarded}).status_code == 404
    elsewhere = mallcore.client(kernel, "merchant", "m2", shop="s2")
    assert (
        elsewhere.post(f"/orders/{oid}/tracking-links/revoke", json={"token": forwarded}).status_code == 404
    )
    r = alice.post(f"/orders/{oid}/tracking-links/revoke", json={"token": forwarded})
    assert (r.status_code, r.json()) == (200, {"revoked": True})
    assert _track(alice, oid, forwarded) == 404
    assert _track(alice, oid, other) == 200
    again = alice.post(f"/orders/{oid}/tracking-links/revoke", json={"token": forwarded})
    assert (again.status_code, again.json()["code"]) == (404, "tracking_link_not_found")
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    assert merchant.post(f"/orders/{oid}/tracking-links/revoke", json={"token": other}).status_code == 200
    assert _track(alice, oid, other) == 404


def test_the_sandbox_carrier_accepts_webhooks_signed_with_a_key_in_rotation(mallcore):
    old = mallcore.kernel(centers=["catalog", "payment", "tms"], config={"secrets": {"webhooks": ["old"]}})
    old_secret = old.centers["tms"].carriers["sandbox"].secret
    rotated = mallcore.kernel(
        centers=["catalog", "payment", "tms"], config={"secrets": {"webhooks": ["new", "old"]}}
    )
    carrier = rotated.centers["tms"].carriers["sandbox"]
    assert carrier.secret != old_secret and old_secret in carrier.secrets
    body = b'{"tracking_no": "SBX1", "status": "picked_up", "occurred_at": "2026-01-01T00:00:00Z"}'
    client = mallcore.client(rotated, None)
    for secret in (carrier.secret, old_secret):
        r = client.post(
            "/tms/webhooks/sandbox", content=body, headers={signing.HEADER: signing.sign(secret, body)}
        )
        assert r.status_code == 200, r.text
    r = client.post(
        "/tms/webhooks/sandbox", content=body, headers={signing.HEADER: signing.sign("forged", body)}
    )
    assert (r.status_code, r.json()["code"]) == (401, "signature_invalid")
