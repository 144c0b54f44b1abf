"""The staff's session: a signed, HttpOnly, SameSite=Lax cookie with an expiry.

The cookie holds who signed in (subject, roles, shop, as ``resolve_principal``
answered for the token they typed) and when the session ends, as
``<base64url JSON>.<base64url HMAC-SHA256>``. Nothing is stored server-side,
so any worker reads it; the key comes from config or the environment
(``[centers.console] secret``, else ``[auth] secret``), never from the
database, and each use of it (sessions, CSRF tokens) gets its own key derived
with a label. A cookie changed by one byte, expired or signed under another
key is no session at all: the user signs in again.

Signing out clears the cookie in the browser; a copy taken before stays
valid until it expires (``session_hours``), like any stateless session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import msgspec

from mallcore.kernel import Principal

COOKIE = "mallcore_console"


class Session(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sub: str
    roles: list[str]
    shop: str | None
    exp: int

    def principal(self) -> Principal:
        return Principal(self.sub, frozenset(self.roles), self.shop)


def derive(secret: str, purpose: str) -> bytes:
    """A key for one purpose (``"session"``, ``"csrf"``) from the deployment's secret."""
    return hmac.new(secret.encode(), b"mallcore.console." + purpose.encode(), hashlib.sha256).digest()


def random_secret() -> str:
    return secrets.token_urlsafe(32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issues and reads session cookies under one key."""

    def __init__(self, key: bytes, hours: float) -> None:
        self.key = key
        self.seconds = int(hours * 3600)

    def issue(self, principal: Principal, now: float | None = None) -> str:
        body = Session(
            sub=principal.subject,
            roles=sorted(principal.roles),
            shop=principal.shop,
            exp=int(now if now is not None else time.time()) + self.seconds,
        )
        payload = _b64(msgspec.json.encode(body))
        return f"{payload}.{_b64(self._mac(payload))}"

    def read(self, cookie: str | None, now: float | None = None) -> Principal | None:
        """The principal of a valid, unexpired cookie; ``None`` for anything else."""
        if not cookie or not cookie.isascii() or cookie.count(".") != 1:
            return None
        payload, _, mac = cookie.partition(".")
        try:
            given = _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(given, self._mac(payload)):
            return None
        try:
            session = msgspec.json.decode(_unb64(payload), type=Session)
        except (ValueError, msgspec.DecodeError):
            return None
        if session.exp <= (now if now is not None else time.time()):
            return None
        return session.principal()

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).digest()
