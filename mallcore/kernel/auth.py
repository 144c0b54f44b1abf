"""Who is asking, and what they may see.

A bearer token becomes a :class:`Principal` through the ``resolve_principal``
hook; the kernel's own implementation (registered last) reads static tokens
from config, then verifies a JWT if ``[auth.jwt]`` is set, then looks the
token up among those issued by ``mallcore token create`` (stored hashed).

Visibility, in one place (:meth:`~mallcore.kernel.types.Principal.can_see`): an admin sees all; a
customer sees their own orders; staff (merchant, warehouse, finance, risk) see
their shop's, or every shop's when they are platform staff (``platform``).
Anything else answers 404 as if it did not exist. A staff token that names
neither a shop nor the platform is refused (401 ``invalid_token``): scope is
never implied by a missing field.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any, TypeAlias

import jwt
import limits
import sqlalchemy as sa
import structlog
from litestar.di import NamedDependency

from . import facts, signing
from . import tables as t
from .access import scope_problem
from .config import LimitsConfig
from .errors import ConfigError, TooManyAttempts, Unauthenticated
from .hookspecs import hookimpl
from .ratelimits import Limiter
from .types import ROLES, Principal, utcnow

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Request

    from .config import AuthConfig
    from .db import Database

    # The ``resolve_principal`` hook, called with the token and the request.
    Resolver = Callable[[str, Request[Any, Any, Any] | None], Principal | None]


log = structlog.get_logger("mallcore")

# Declare ``principal: Caller`` in a route handler to require a bearer token
# and receive its principal (401 without one).
Caller: TypeAlias = NamedDependency[Principal]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    """Tokens to principals, issued tokens, and customers' signed tracking links.

    ``resolve`` is the ``resolve_principal`` hook; ``secret`` gives the
    deployment's signing secret (read from the database on first use).
    """

    def __init__(
        self,
        config: AuthConfig,
        *,
        source: str,
        db: Database,
        resolve: Resolver,
        secret: Callable[[], str],
        keys: Callable[[str], signing.Keyring],
        link_days: int = 90,
        legacy_links: bool = True,
        limiter: Callable[[], Limiter] | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self._resolve = resolve
        self._secret = secret
        self._keys = keys
        self._link_days = link_days
        self._legacy_links = legacy_links
        if not 0 <= config.token_cache_seconds <= 1:
            raise ConfigError(
                f"{source}: config key 'auth.token_cache_seconds': at most 1 (a revoked token must stop "
                f"working within a second), got {config.token_cache_seconds}"
            )
        try:
            self._bad_token_rate = limits.parse(config.bad_token_limit)
        except ValueError as exc:
            raise ConfigError(f"{source}: config key 'auth.bad_token_limit': {exc}") from None
        # the kernel's limiter (made on first use: only failures are counted)
        self._limiter = limiter or (lambda: Limiter(LimitsConfig()))
        # clients refused until (monotonic time), learnt from the shared counts
        self._blocked: dict[str, float] = {}
        self.static: dict[str, Principal] = {
            token: Principal(tc.subject, frozenset(tc.roles), tc.shop, tc.platform)
            for token, tc in config.tokens.items()
        }
        for token, tc in config.tokens.items():
            bad = set(tc.roles) - ROLES
            if bad:
                raise ConfigError(
                    f"{source}: config key 'auth.tokens.{token[:4]}…roles': unknown role(s) "
                    f"{', '.join(sorted(bad))} (known: {', '.join(sorted(ROLES))})"
                )
            problem = scope_problem(self.static[token])
            if problem:
                raise ConfigError(f"{source}: config key 'auth.tokens.{token[:4]}…': {problem}")
        # Good tokens only: a failed lookup is never cached, so no flood of bad tokens
        # can push good ones out (bad tokens are rate limited instead).
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._cache_lock = threading.Lock()
        self.cache_size = 10_000

    # -- tokens -------------------------------------------------------------

    def _client(self) -> str:
        current = facts.current()
        return current.ip if current is not None and current.ip else "unknown"

    def _refuse_if_blocked(self, client: str) -> None:
        until = self._blocked.get(client)
        if until is not None:
            left = until - time.monotonic()
            if left > 0:
                raise TooManyAttempts(
                    "too many failed token attempts from this client; wait before trying again",
                    retry_after=max(1, math.ceil(left)),
                )
            self._blocked.pop(client, None)

    def _count_failure(self, client: str) -> None:
        """Count a failed attempt in the shared storage (only failures talk to it); past the
        limit, the client is refused here until its window frees up."""
        # the storage being down lets the attempt through, as the request limits do
        wait = self._limiter().hit("bad-token", client, [self._bad_token_rate])
        if wait is None:
            return
        if len(self._blocked) >= 10_000:
            now = time.monotonic()
            for stale in [c for c, until in self._blocked.items() if until <= now]:
                del self._blocked[stale]
        self._blocked[client] = time.monotonic() + wait
        self._refuse_if_blocked(client)

    def resolve(self, token: str, request: Request[Any, Any, Any] | None = None) -> Principal:
        client = self._client()
        # A client that failed too often is refused before its token is even looked up:
        # guessing stops paying, whatever the guess. (A good request costs a dict lookup;
        # only failures are counted in the shared storage, so a worker that has not yet
        # seen a blocked client lets it fail once more before refusing it too.)
        self._refuse_if_blocked(client)
        principal = self._resolve(token, request)
        if principal is None:
            self._count_failure(client)
            raise Unauthenticated("unknown or expired token", code="invalid_token")
        problem = scope_problem(principal)
        if problem:
            # Fail closed: a staff token that does not say where it works opens nothing.
            raise Unauthenticated(problem, code="invalid_token")
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
        ttl = self.config.token_cache_seconds
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(
                    t.api_tokens.c.subject, t.api_tokens.c.roles, t.api_tokens.c.shop, t.api_tokens.c.platform
                ).where(t.api_tokens.c.token_hash == key, t.api_tokens.c.revoked_at.is_(None))
            ).first()
        if row is None:
            return None
        principal = Principal(row.subject, frozenset(row.roles), row.shop, bool(row.platform))
        if ttl > 0:
            with self._cache_lock:
                if len(self._cache) >= self.cache_size:
                    # drop what expired; if still full, the oldest entry
                    for stale in [k for k, (until, _) in self._cache.items() if until <= now]:
                        del self._cache[stale]
                    if len(self._cache) >= self.cache_size:
                        del self._cache[next(iter(self._cache))]
                self._cache[key] = (now + ttl, principal)
        return principal

    def issue_token(
        self,
        subject: str,
        roles: list[str],
        shop: str | None = None,
        label: str | None = None,
        *,
        platform: bool = False,
    ) -> str:
        """A new token (stored hashed); staff need ``shop`` or ``platform=True`` (``ValueError``)."""
        bad = set(roles) - ROLES
        if bad:
            raise ValueError(f"unknown role(s): {', '.join(sorted(bad))}")
        problem = scope_problem(Principal(subject, frozenset(roles), shop, platform))
        if problem:
            raise ValueError(problem)
        token = "mc_" + secrets.token_urlsafe(24)
        with self.db.transaction() as conn:
            conn.execute(
                t.api_tokens.insert().values(
                    token_hash=hash_token(token),
                    subject=subject,
                    roles=sorted(roles),
                    shop=shop,
                    platform=platform,
                    label=label,
                    created_at=utcnow(),
                )
            )
        return token

    def verify_jwt(self, token: str) -> Principal | None:
        cfg = self.config.jwt
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
            str(claims["sub"]),
            frozenset(r for r in roles if r in ROLES),
            claims.get(cfg.shop_claim),
            claims.get(cfg.platform_claim) is True,
        )

    # -- signed links -------------------------------------------------------

    # A customer's tracking link (kernel/signing.py has the format): signed with the
    # ``tracking`` keys, good for ``secrets.tracking_link_days``, revocable one by one.
    # Placement puts one in every response, so it must cost microseconds.

    def tracking_token(self, order_id: int) -> str:
        return signing.tracking_token(self._keys("tracking"), order_id, self._link_days)

    def check_tracking_token(self, order_id: int, token: str) -> bool:
        """A live link for ``order_id``: signed by a tracking key, not expired, not revoked."""
        if not token.isascii():
            return False
        if "." not in token:
            if not self._legacy_links:
                return False
            # A link made before links expired (no "."): good while no tracking key is configured.
            key = hashlib.sha256(b"mallcore.track\0" + self._secret().encode()).digest()
            mac = hmac.new(key, b"track:%d" % order_id, hashlib.sha256).digest()[:16]
            expected = base64.urlsafe_b64encode(mac).rstrip(b"=")
            valid = hmac.compare_digest(expected, token.encode())
        else:
            valid = signing.tracking_token_valid(self._keys("tracking"), order_id, token)
        if not valid:
            return False
        r = t.tracking_revocations.c
        with self.db.transaction(write=False) as conn:
            revoked = conn.execute(
                sa.select(r.order_id).where(r.token_hash == signing.token_hash(token))
            ).first()
        return revoked is None

    def revoke_tracking_token(self, order_id: int, token: str, by: str) -> bool:
        """Revoke one link of ``order_id``; ``False`` if it is not one of its live links."""
        if not self.check_tracking_token(order_id, token):
            return False
        with self.db.transaction() as conn:
            conn.execute(
                t.tracking_revocations.insert().values(
                    token_hash=signing.token_hash(token),
                    order_id=order_id,
                    revoked_by=by,
                    revoked_at=utcnow(),
                )
            )
        return True


class DefaultIdentity:
    """The kernel's own ``resolve_principal``: config tokens, JWT, issued tokens."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    @hookimpl(trylast=True)
    def resolve_principal(self, token: str) -> Principal | None:
        principal = self.auth.static.get(token)
        if principal is not None:
            return principal
        principal = self.auth.verify_jwt(token)
        if principal is not None:
            return principal
        if self.auth.config.database_tokens:
            return self.auth.lookup_database_token(token)
        return None
