"""``Idempotency-Key``: a replay returns the first response and changes nothing.

The key is scoped to the caller (``subject``). The first successful response
is stored *in the same transaction* as the work it describes, so there is
never an order without its stored reply or the other way round. A request
whose key is already stored gets the stored reply; the same key with another
body or another endpoint is refused (422 ``idempotency_key_reused``). Two
concurrent requests with one key both run, but only one can insert the key:
the other's transaction (its order, its stock) rolls back and it answers with
the winner's stored reply, so concurrent duplicates create one order.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from . import tables as t
from .errors import InvalidInput
from .types import Claim, utcnow

if TYPE_CHECKING:
    from .db import Database

MAX_KEY_LENGTH = 200


class Stored(msgspec.Struct, frozen=True):
    scope: str
    request_hash: str
    status_code: int
    response: bytes


class Reply:
    """Where a write puts its answer: encoded once, and stored for the request's
    ``Idempotency-Key`` in the transaction of the work itself.

    A route's work calls ``reply(conn, view, status)`` inside its transaction
    and gets the encoded body back; the answer and the work then commit
    together, or neither does. Without a key (``claim`` is ``None``, or a
    caller outside HTTP) nothing is stored and the body is still encoded.
    """

    __slots__ = ("_store", "body", "claim", "status")

    def __init__(self, store: Idempotency | None = None, claim: Claim | None = None) -> None:
        self._store = store
        self.claim = claim
        self.status: int | None = None
        self.body: bytes | None = None

    def encode(self, view: Any, status: int = 200) -> bytes:
        """Encode the answer without storing it (the caller stores it, e.g. with
        :meth:`Idempotency.answer_many` for a batch)."""
        body = view if isinstance(view, bytes) else msgspec.json.encode(view)
        self.status, self.body = status, body
        return body

    def __call__(self, conn: sa.Connection, view: Any, status: int = 200) -> bytes:
        """Encode ``view`` (a Struct, or bytes already encoded) and store it for the key."""
        body = view if isinstance(view, bytes) else msgspec.json.encode(view)
        if self.claim is not None and self._store is not None:
            self._store.record(conn, self.claim, status, body)
        self.status, self.body = status, body
        return body


class Idempotency:
    def __init__(self, db: Database, *, ttl_hours: int) -> None:
        self.db = db
        self.ttl_hours = ttl_hours

    def claim(self, subject: str, key: str | None, scope: str, canonical_body: bytes) -> Claim | None:
        if key is None:
            return None
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidInput(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters", code="idempotency_key_invalid"
            )
        digest = hashlib.sha256(scope.encode() + b"\0" + canonical_body).hexdigest()
        return Claim(subject=subject, key=key, scope=scope, request_hash=digest)

    def lookup(self, claim: Claim) -> Stored | None:
        k = t.idempotency_keys.c
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(k.scope, k.request_hash, k.status_code, k.response).where(
                    k.subject == claim.subject, k.key == claim.key
                )
            ).first()
        if row is None:
            return None
        return Stored(row.scope, row.request_hash, row.status_code, bytes(row.response))

    def replay(self, claim: Claim, stored: Stored) -> tuple[int, bytes]:
        if stored.scope != claim.scope or stored.request_hash != claim.request_hash:
            raise InvalidInput(
                "this Idempotency-Key was already used for a different request",
                code="idempotency_key_reused",
            )
        return stored.status_code, stored.response

    def record(self, conn: sa.Connection, claim: Claim, status_code: int, response: bytes) -> None:
        conn.execute(
            t.idempotency_keys.insert().values(
                subject=claim.subject,
                key=claim.key,
                scope=claim.scope,
                request_hash=claim.request_hash,
                status_code=status_code,
                response=response,
                created_at=utcnow(),
            )
        )

    # -- a batch of placements (kernel/combine.py) ------------------------------------
    #
    # A batch claims its keys first, before any order is written: a key that
    # another transaction stored meanwhile shows up here, at the INSERT, and
    # takes out its order alone before a hook has run for it. The answers are
    # filled in at the end, in the same transaction.

    def claim_many(self, conn: sa.Connection, claims: list[Claim]) -> None:
        """Insert ``claims`` with no answer yet (one statement); IntegrityError if one is stored."""
        now = utcnow()
        conn.execute(
            t.idempotency_keys.insert(),
            [
                {
                    "subject": c.subject,
                    "key": c.key,
                    "scope": c.scope,
                    "request_hash": c.request_hash,
                    "status_code": 0,
                    "response": b"",
                    "created_at": now,
                }
                for c in claims
            ],
        )

    def answer_many(self, conn: sa.Connection, replies: list[Reply]) -> None:
        """The answers (encoded with :meth:`Reply.encode`) of claimed keys (one executemany)."""
        k = t.idempotency_keys.c
        rows = [
            {"k_subject": r.claim.subject, "k_key": r.claim.key, "status_code": r.status, "response": r.body}
            for r in replies
            if r.claim is not None
        ]
        if rows:
            conn.execute(
                t.idempotency_keys.update()
                .where(k.subject == sa.bindparam("k_subject"), k.key == sa.bindparam("k_key"))
                .values(status_code=sa.bindparam("status_code"), response=sa.bindparam("response")),
                rows,
            )

    def forget(self, conn: sa.Connection, claims: list[Claim]) -> None:
        """Delete claimed keys whose order was refused (nothing is stored for a refusal)."""
        k = t.idempotency_keys.c
        conn.execute(
            t.idempotency_keys.delete().where(
                sa.tuple_(k.subject, k.key).in_([(c.subject, c.key) for c in claims])
            )
        )

    def stored_keys(self, conn: sa.Connection, claims: list[Claim]) -> set[tuple[str, str]]:
        """Which of ``claims`` already have a stored answer, read in ``conn``."""
        k = t.idempotency_keys.c
        found: set[tuple[str, str]] = set()
        for claim in claims:
            row = conn.execute(sa.select(k.key).where(k.subject == claim.subject, k.key == claim.key)).first()
            if row is not None:
                found.add((claim.subject, claim.key))
        return found

    def purge(self) -> int:
        """Forget keys older than ``http.idempotency_ttl_hours`` (a periodic job)."""
        cutoff = utcnow() - timedelta(hours=self.ttl_hours)
        with self.db.transaction() as conn:
            return conn.execute(
                t.idempotency_keys.delete().where(t.idempotency_keys.c.created_at < cutoff)
            ).rowcount
