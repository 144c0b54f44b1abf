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
