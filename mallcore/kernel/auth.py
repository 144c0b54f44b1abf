"""Who is asking, and what they may see.

A bearer token becomes a :class:`Principal` through the ``resolve_principal``
hook; the kernel's own implementation (registered last) reads static tokens
from config, then verifies a JWT if ``[auth.jwt]`` is set, then looks the
token up among those issued by ``mallcore token create`` (stored hashed).

Visibility, in one place (:meth:`Principal.can_see`): an admin sees all; a
customer sees their own orders; staff (merchant, warehouse, finance, risk) see
their shop's, or every shop's when they belong to no shop (platform staff).
Anything else answers 404 as if it did not exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any, TypeAlias

import jwt
import msgspec
import sqlalchemy as sa
from litestar.di import NamedDependency

from . import tables as t
from .context import utcnow
from .errors import NotFound, Unauthenticated
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from litestar import Request

    from .kernel import Kernel

ROLES = frozenset({"customer", "merchant", "warehouse", "finance", "risk", "admin"})
STAFF_ROLES = frozenset({"merchant", "warehouse", "finance", "risk"})


class Principal(msgspec.Struct, frozen=True):
    subject: str
    roles: frozenset[str]
    shop: str | None = None

    def has(self, *roles: str) -> bool:
        return "admin" in self.roles or not self.roles.isdisjoint(roles)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_platform(self) -> bool:
        """Admins, and staff of no one shop: they act for the whole platform."""
        return "admin" in self.roles or (self.shop is None and not self.roles.isdisjoint(STAFF_ROLES))

    def can_see(self, shop: str, owner: str | None = None) -> bool:
        """May this principal see an object of ``shop`` owned by ``owner``?"""
        if "admin" in self.roles:
            return True
        if owner is not None and owner == self.subject and "customer" in self.roles:
            return True
        if not self.roles.isdisjoint(STAFF_ROLES):
            return self.shop is None or self.shop == shop
        return False

    def can_act_for_shop(self, shop: str, *roles: str) -> bool:
        """Staff with one of ``roles`` in ``shop`` (or platform-wide), or admin."""
        if "admin" in self.roles:
            return True
        if self.roles.isdisjoint(roles):
            return False
        return self.shop is None or self.shop == shop


SYSTEM = Principal("system", frozenset({"admin", "system"}))

# Declare ``principal: Caller`` in a route handler to require a bearer token
# and receive its principal (401 without one).
Caller: TypeAlias = NamedDependency[Principal]


def require_visible(principal: Principal, shop: str, owner: str | None, what: str) -> None:
    if not principal.can_see(shop, owner):
        raise NotFound(f"{what} not found")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        cfg = kernel.config.auth
        self.static: dict[str, Principal] = {
            token: Principal(tc.subject, frozenset(tc.roles), tc.shop) for token, tc in cfg.tokens.items()
        }
        for token, tc in cfg.tokens.items():
            bad = set(tc.roles) - ROLES
            if bad:
                from .errors import ConfigError

                raise ConfigError(
                    f"{kernel.config.source}: config key 'auth.tokens.{token[:4]}…roles': unknown role(s) "
                    f"{', '.join(sorted(bad))} (known: {', '.join(sorted(ROLES))})"
                )
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._cache_lock = threading.Lock()
        self._link_key: bytes | None = None

    # -- tokens -------------------------------------------------------------

    def resolve(self, token: str, request: Request[Any, Any, Any] | None = None) -> Principal:
        principal = self.kernel.hook.resolve_principal(kernel=self.kernel, token=token, request=request)
        if principal is None:
            raise Unauthenticated("unknown or expired token", code="invalid_token")
        return principal

    def from_header(self, header: str | None, request: Request[Any, Any, Any] | None = None) -> Principal:
        if not header:
            raise Unauthenticated("send Authorization: Bearer <token>", code="unauthenticated")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send Authorization: Bearer <token>", code="unauthenticated")
        return self.resolve(token.strip(), request)

    def lookup_database_token(self, token: str) -> Principal | None:
        key = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.kernel.db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(t.api_tokens.c.subject, t.api_tokens.c.roles, t.api_tokens.c.shop).where(
                    t.api_tokens.c.token_hash == key, t.api_tokens.c.revoked_at.is_(None)
                )
            ).first()
        principal = None if row is None else Principal(row.subject, frozenset(row.roles), row.shop)
        with self._cache_lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self.kernel.config.auth.token_cache_seconds, principal)
        return principal

    def issue_token(
        self, subject: str, roles: list[str], shop: str | None = None, label: str | None = None
    ) -> str:
        bad = set(roles) - ROLES
        if bad:
            raise ValueError(f"unknown role(s): {', '.join(sorted(bad))}")
        token = "mc_" + secrets.token_urlsafe(24)
        with self.kernel.db.transaction() as conn:
            conn.execute(
                t.api_tokens.insert().values(
                    token_hash=hash_token(token),
                    subject=subject,
                    roles=sorted(roles),
                    shop=shop,
                    label=label,
                    created_at=utcnow(),
                )
            )
        return token

    def verify_jwt(self, token: str) -> Principal | None:
        cfg = self.kernel.config.auth.jwt
        if cfg is None or token.count(".") != 2:
            return None
        key = cfg.public_key or cfg.secret
        if not key:
            return None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=cfg.algorithms,
                issuer=cfg.issuer,
                audience=cfg.audience,
                leeway=cfg.leeway_seconds,
                options={"require": ["sub", "exp"]},
            )
        except jwt.PyJWTError:
            return None
        roles = claims.get(cfg.roles_claim) or []
        if isinstance(roles, str):
            roles = roles.split()
        return Principal(
            str(claims["sub"]), frozenset(r for r in roles if r in ROLES), claims.get(cfg.shop_claim)
        )

    # -- signed links -------------------------------------------------------

    # A customer's tracking link carries HMAC-SHA256("track:<order id>") under
    # a key derived from the deployment secret (128 bits, URL-safe base64).
    # Placement puts one in every response, so it must cost microseconds.

    def tracking_token(self, order_id: int) -> str:
        if self._link_key is None:
            self._link_key = hashlib.sha256(b"mallcore.track\0" + self.kernel.secret().encode()).digest()
        mac = hmac.new(self._link_key, b"track:%d" % order_id, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def check_tracking_token(self, order_id: int, token: str) -> bool:
        # Bytes: compare_digest refuses non-ASCII text, and a token is whatever the URL carried.
        return hmac.compare_digest(self.tracking_token(order_id).encode(), token.encode("utf-8", "replace"))


class DefaultIdentity:
    """The kernel's own ``resolve_principal``: config tokens, JWT, issued tokens."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    @hookimpl(trylast=True)
    def resolve_principal(self, kernel: Kernel, token: str, request: Any) -> Principal | None:
        principal = self.auth.static.get(token)
        if principal is not None:
            return principal
        principal = self.auth.verify_jwt(token)
        if principal is not None:
            return principal
        if kernel.config.auth.database_tokens:
            return self.auth.lookup_database_token(token)
        return None
