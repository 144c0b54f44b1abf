"""The staff's session: a signed, HttpOnly, SameSite=Lax cookie naming a server-side session.

The cookie is ``<session id>.<expiry>.<HMAC-SHA256>`` (base64url id, unix
seconds): a random 256-bit id and when the session ends, signed with the first
``sessions`` key and verified against every one (rotation: put the new key
first, drop the old one after ``session_hours``). A cookie changed by one byte,
expired or signed under no configured key is no session at all.

The session itself is a row of ``console_sessions`` (:mod:`.tables`), found by
the id's SHA-256. It keeps the API token typed at sign-in, masked under the id
(a SHAKE-256 stream of the id: the table alone gives no token, the cookie alone
holds none). Each request re-resolves that token through the kernel
(``Auth.resolve``: the same ``resolve_principal`` hook and token cache as the
API), so roles and shop are always the token's current ones, and:

- signing out ends the row (a copy of the cookie taken before is refused);
- revoking the token, or the host identity no longer accepting it, ends the
  session on its next request;

both within ``auth.token_cache_seconds`` (at most a second) on every worker,
as for the API. The key comes from config or the environment (``[centers.console]
secret``, ``[secrets] sessions``, else ``[auth] secret``), never from the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from mallcore.kernel import Database, MallcoreError, Principal, Unauthenticated

from . import tables as t

COOKIE = "mallcore_console"
# A session row is kept this long after it ended or expired, then swept at a sign-in.
KEEP_ENDED = timedelta(days=1)


class Resolver(Protocol):
    """What resolves a token to its principal: the kernel's ``Auth`` (``kernel.auth``)."""

    def resolve(self, token: str, request: Any = None) -> Principal: ...


def derive(secret: str, purpose: str) -> bytes:
    """A key for one purpose (``"session"``, ``"csrf"``) from a deployment secret."""
    return hmac.new(secret.encode(), b"mallcore.console." + purpose.encode(), hashlib.sha256).digest()


def random_secret() -> str:
    return secrets.token_urlsafe(32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mask(sid: bytes, data: bytes) -> bytes:
    """``data`` XOR a SHAKE-256 stream of the (random, single-use) session id; its own inverse."""
    stream = hashlib.shake_256(b"mallcore.console.token\0" + sid).digest(len(data))
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def _row_id(sid: bytes) -> str:
    return hashlib.sha256(sid).hexdigest()


class Sessions:
    """Issues, reads and ends console sessions.

    ``keys``: the signing keys, first signs, every one verifies. ``cache_seconds``:
    how long a worker trusts a session row it read (the kernel's token cache time).
    """

    def __init__(
        self, db: Database, auth: Resolver, keys: list[bytes], hours: float, cache_seconds: float = 1.0
    ) -> None:
        if not keys:
            raise ValueError("no session key")
        self.db, self.auth, self.keys = db, auth, keys
        self.seconds = int(hours * 3600)
        self.cache_seconds = cache_seconds
        # row id -> (trusted until, monotonic; masked token; expiry)
        self._rows: dict[str, tuple[float, str, datetime]] = {}
        self._lock = threading.Lock()

    # -- the cookie ---------------------------------------------------------------------

    def _mac(self, key: bytes, body: str) -> str:
        return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())

    def _cookie(self, sid: bytes, exp: int) -> str:
        body = f"{_b64(sid)}.{exp}"
        return f"{body}.{self._mac(self.keys[0], body)}"

    def _open(self, cookie: str | None, now: float) -> bytes | None:
        """The session id of a well-signed, unexpired cookie."""
        if not cookie or not cookie.isascii() or cookie.count(".") != 2:
            return None
        body, _, mac = cookie.rpartition(".")
        # Compared as the exact text each key makes: one session has one spelling.
        if not any(hmac.compare_digest(mac.encode(), self._mac(k, body).encode()) for k in self.keys):
            return None
        sid_text, _, exp_text = body.partition(".")
        if not exp_text.isdigit() or int(exp_text) <= now:
            return None
        try:
            sid = _unb64(sid_text)
        except ValueError:
            return None
        return sid if len(sid) == 32 else None

    # -- sessions -----------------------------------------------------------------------

    def issue(self, token: str, principal: Principal, now: float | None = None) -> str:
        """Start a session for ``token`` (already resolved to ``principal``); its cookie value."""
        at = time.time() if now is None else now
        sid = secrets.token_bytes(32)
        exp = int(at) + self.seconds
        created = datetime.fromtimestamp(at, UTC)
        with self.db.transaction() as conn:
            conn.execute(t.sessions.delete().where(t.sessions.c.expires_at < created - KEEP_ENDED))
            conn.execute(
                t.sessions.insert().values(
                    id=_row_id(sid),
                    subject=principal.subject[:128],
                    shop=principal.shop,
                    token=_b64(_mask(sid, token.encode())),
                    created_at=created,
                    expires_at=datetime.fromtimestamp(exp, UTC),
                )
            )
        return self._cookie(sid, exp)

    def _row(self, row_id: str) -> tuple[str, datetime] | None:
        clock = time.monotonic()
        hit = self._rows.get(row_id)
        if hit is not None and hit[0] > clock:
            return hit[1], hit[2]
        s = t.sessions.c
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(s.token, s.expires_at).where(s.id == row_id, s.ended_at.is_(None))
            ).first()
        if row is None:
            return None
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._rows) >= 10_000:
                    self._rows.clear()
                self._rows[row_id] = (clock + self.cache_seconds, row.token, row.expires_at)
        return row.token, row.expires_at

    def read(self, cookie: str | None, request: Any = None, now: float | None = None) -> Principal | None:
        """Who this cookie's live session belongs to now; ``None`` for anything else."""
        at = time.time() if now is None else now
        sid = self._open(cookie, at)
        if sid is None:
            return None
        row_id = _row_id(sid)
        row = self._row(row_id)
        if row is None or row[1].timestamp() <= at:
            return None
        token = _mask(sid, _unb64(row[0])).decode("utf-8", "replace")
        try:
            return self.auth.resolve(token, request)
        except Unauthenticated:
            # revoked, expired, or the host identity says no: the session is over
            self._end(row_id)
            return None
        except MallcoreError:
            return None  # e.g. too many failed attempts from this client: not now

    def end(self, cookie: str | None) -> None:
        """Sign out: the session ends for every copy of its cookie."""
        sid = self._open(cookie, time.time())
        if sid is not None:
            self._end(_row_id(sid))

    def _end(self, row_id: str) -> None:
        with self._lock:
            self._rows.pop(row_id, None)
        s = t.sessions.c
        with self.db.transaction() as conn:
            conn.execute(
                t.sessions.update()
                .where(s.id == row_id, s.ended_at.is_(None))
                .values(ended_at=datetime.now(UTC))
            )
