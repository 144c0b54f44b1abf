import time

import jwt
import pytest

from mallcore.kernel import Center, Principal, hookimpl
from tests.helpers import order_body

SECRET = "s3cret-for-tests-only-32-bytes-long!"


def test_static_tokens_from_config(mallcore):
    kernel = mallcore.kernel(
        config={"auth": {"tokens": {"tok-merchant": {"subject": "m1", "roles": ["merchant"], "shop": "s1"}}}}
    )
    client = mallcore.client(kernel, None)
    me = client.get("/me", headers={"Authorization": "Bearer tok-merchant"}).json()
    assert me == {"subject": "m1", "roles": ["merchant"], "shop": "s1", "platform": False}
    assert client.get("/me", headers={"Authorization": "Basic abc"}).json()["code"] == "unauthenticated"


def test_issued_tokens_are_stored_hashed_and_can_be_revoked(mallcore):
    import sqlalchemy as sa

    from mallcore.kernel import tables as t

    kernel = mallcore.kernel(config={"auth": {"token_cache_seconds": 0}})
    token = kernel.auth.issue_token("carol", ["customer"], label="test")
    client = mallcore.client(kernel, None)
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).json()["subject"] == "carol"
    with kernel.db.transaction() as conn:
        stored = conn.execute(sa.select(t.api_tokens.c.token_hash)).scalars().all()
        assert token not in stored and len(stored) == 1
        conn.execute(t.api_tokens.update().values(revoked_at=sa.func.now()))
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def jwt_kernel(mallcore):
    return mallcore.kernel(config={"auth": {"jwt": {"secret": SECRET, "issuer": "idp", "audience": "shop"}}})


def mint(**claims):
    base = {"sub": "dave", "roles": ["customer"], "iss": "idp", "aud": "shop", "exp": int(time.time()) + 60}
    base.update(claims)
    return jwt.encode(base, SECRET, algorithm="HS256")


def test_a_jwt_verifier_serves_production(mallcore):
    kernel = jwt_kernel(mallcore)
    client = mallcore.client(kernel, None)
    me = client.get("/me", headers={"Authorization": f"Bearer {mint(roles=['merchant'], shop='s9')}"})
    assert me.json() == {"subject": "dave", "roles": ["merchant"], "shop": "s9", "platform": False}
    for bad in (
        mint(exp=int(time.time()) - 600),
        mint(iss="evil"),
        mint(aud="other"),
        jwt.encode(
            {"sub": "x", "exp": int(time.time()) + 60, "iss": "idp", "aud": "shop"},
            "wrong-secret-wrong-secret-wrong-secret",
            algorithm="HS256",
        ),
    ):
        assert client.get("/me", headers={"Authorization": f"Bearer {bad}"}).status_code == 401


class HostIdentity(Center):
    name = "hostid"

    @hookimpl
    def resolve_principal(self, kernel, token, request):
        if token.startswith("host:"):
            return Principal(token[5:], frozenset({"customer"}))
        return None


def test_hook_resolve_principal_lets_a_host_bring_its_own_identity(mallcore):
    kernel = mallcore.kernel(extra=[HostIdentity])
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    client = mallcore.client(kernel, None)
    r = client.post("/orders", json=order_body(), headers={"Authorization": "Bearer host:erin"})
    assert (r.status_code, r.json()["customer"]) == (201, "erin")
    # the kernel's own resolution still answers for other tokens
    assert client.get("/me", headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize(
    ("principal", "shop", "owner", "visible"),
    [
        (Principal("a", frozenset({"customer"})), "s1", "a", True),
        (Principal("a", frozenset({"customer"})), "s1", "b", False),
        (Principal("m", frozenset({"merchant"}), "s1"), "s1", "b", True),
        (Principal("m", frozenset({"merchant"}), "s1"), "s2", "b", False),
        (Principal("f", frozenset({"finance"}), platform=True), "s2", "b", True),
        (Principal("root", frozenset({"admin"})), "s2", "b", True),
        (Principal("w", frozenset({"warehouse"}), "s1"), "s2", None, False),
        (Principal("w", frozenset({"warehouse"})), "s1", None, False),  # no scope: nothing
    ],
)
def test_visibility_rule(principal, shop, owner, visible):
    assert principal.can_see(shop, owner) is visible


class ScopelessIdentity(Center):
    """A host identity that forgets to say where its staff work."""

    name = "scopeless"

    @hookimpl
    def resolve_principal(self, kernel, token, request):
        return Principal("m", frozenset({"merchant"})) if token == "host:scopeless" else None


def test_a_staff_token_that_names_neither_a_shop_nor_the_platform_is_refused_everywhere(mallcore):
    from mallcore.kernel import ConfigError

    # config: refused at start
    with pytest.raises(ConfigError, match="platform"):
        mallcore.kernel(config={"auth": {"tokens": {"t": {"subject": "m", "roles": ["merchant"]}}}})
    with pytest.raises(ConfigError, match="not both"):
        mallcore.kernel(
            config={
                "auth": {
                    "tokens": {"t": {"subject": "m", "roles": ["merchant"], "shop": "s1", "platform": True}}
                }
            }
        )
    kernel = jwt_kernel(mallcore)
    # issued: refused at issue time
    with pytest.raises(ValueError, match="platform"):
        kernel.auth.issue_token("m", ["finance"])
    platform = kernel.auth.issue_token("pf", ["finance"], platform=True)
    client = mallcore.client(kernel, None)
    me = client.get("/me", headers={"Authorization": f"Bearer {platform}"}).json()
    assert (me["shop"], me["platform"]) == (None, True)
    # a JWT: refused at every request
    r = client.get("/me", headers={"Authorization": f"Bearer {mint(roles=['merchant'])}"})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")
    ok = client.get("/me", headers={"Authorization": f"Bearer {mint(roles=['merchant'], platform=True)}"})
    assert ok.json()["platform"] is True
    # customers and admins need neither
    assert client.get("/me", headers={"Authorization": f"Bearer {mint()}"}).status_code == 200
    assert client.get("/me", headers={"Authorization": f"Bearer {mint(roles=['admin'])}"}).status_code == 200


def test_a_host_identity_cannot_hand_out_scopeless_staff(mallcore):
    kernel = mallcore.kernel(extra=[ScopelessIdentity])
    r = mallcore.client(kernel, None).get("/orders", headers={"Authorization": "Bearer host:scopeless"})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")


def test_a_revoked_token_stops_working_within_a_second(mallcore, monkeypatch):
    import sqlalchemy as sa

    from mallcore.kernel import auth as auth_module
    from mallcore.kernel import tables as t

    kernel = mallcore.kernel()  # the default cache: at most one second
    assert kernel.config.auth.token_cache_seconds <= 1
    token = kernel.auth.issue_token("carol", ["customer"])
    client = mallcore.client(kernel, None)
    me = {"Authorization": f"Bearer {token}"}
    clock = [1000.0]
    monkeypatch.setattr(auth_module.time, "monotonic", lambda: clock[0])
    assert client.get("/me", headers=me).status_code == 200
    with kernel.db.transaction() as conn:  # revoked by another worker
        conn.execute(t.api_tokens.update().values(revoked_at=sa.func.now()))
    clock[0] += 1.01
    assert client.get("/me", headers=me).status_code == 401


def test_a_cache_longer_than_a_second_is_refused_at_start(mallcore):
    from mallcore.kernel import ConfigError

    with pytest.raises(ConfigError, match="token_cache_seconds"):
        mallcore.kernel(config={"auth": {"token_cache_seconds": 30}})


def test_failed_lookups_do_not_push_good_tokens_out_of_the_cache(mallcore, monkeypatch):
    from mallcore.kernel import auth as auth_module

    monkeypatch.setattr(auth_module.time, "monotonic", lambda: 1000.0)  # the clock stands still
    kernel = mallcore.kernel()
    good = kernel.auth.issue_token("carol", ["customer"])
    assert kernel.auth.lookup_database_token(good) is not None
    calls = []
    real = kernel.db.transaction
    kernel.db.transaction = lambda *a, **k: (calls.append(1), real(*a, **k))[1]  # count lookups
    for i in range(kernel.auth.cache_size + 1):  # more misses than the cache holds
        assert kernel.auth.lookup_database_token(f"mc_bad_{i}") is None
    calls.clear()
    assert kernel.auth.lookup_database_token(good) is not None
    assert calls == []  # still cached: answered without the database


def test_repeated_bad_tokens_from_one_client_are_refused_with_retry_after(mallcore):
    kernel = mallcore.kernel(config={"auth": {"bad_token_limit": "3/minute"}})
    good = mallcore.token(kernel, "customer", "alice")
    client = mallcore.client(kernel, None)
    for i in range(3):
        r = client.get("/me", headers={"Authorization": f"Bearer guess-{i}"})
        assert (r.status_code, r.json()["code"]) == (401, "invalid_token")
    r = client.get("/me", headers={"Authorization": "Bearer guess-4"})
    assert (r.status_code, r.json()["code"]) == (429, "too_many_attempts")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # while refused, no token is even looked up: a right guess gains nothing
    assert client.get("/me", headers={"Authorization": f"Bearer {good}"}).status_code == 429
    # another client (another address) is not affected
    kernel.auth._client = lambda: "203.0.113.9"  # type: ignore[method-assign]
    assert client.get("/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200


@pytest.mark.skipif(
    __import__("socket").socket().connect_ex(("127.0.0.1", 6379)) != 0, reason="needs Redis on 127.0.0.1:6379"
)
def test_bad_token_counts_are_shared_by_workers_through_redis(mallcore):
    import uuid

    storage = "redis://127.0.0.1:6379"
    config = {"auth": {"bad_token_limit": "2/minute"}, "http": {"limits": {"storage": storage}}}
    one, two = mallcore.kernel(config=config), mallcore.kernel(config=config)
    client_id = f"test-{uuid.uuid4().hex}"  # a fresh client per run: runs share no counts
    for kernel in (one, two):
        kernel.auth._client = lambda: client_id  # type: ignore[method-assign]
    a, b = mallcore.client(one, None), mallcore.client(two, None)
    assert a.get("/me", headers={"Authorization": "Bearer x1"}).status_code == 401
    assert b.get("/me", headers={"Authorization": "Bearer x2"}).status_code == 401
    r = a.get("/me", headers={"Authorization": "Bearer x3"})
    assert (r.status_code, r.json()["code"]) == (429, "too_many_attempts")
