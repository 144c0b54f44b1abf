"""Signatures: webhooks, keys by purpose, customers' tracking links.

Signed webhooks: ``X-Mallcore-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is HMAC-SHA256 of ``"<t>.<raw body>"`` under the sender's secret
(stdlib ``hmac``, compared in constant time). A signature older (or newer)
than the tolerance is refused, so a captured request cannot be replayed
later; replays inside the window are caught by the receiver's event-id
deduplication.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from .errors import Unauthenticated

HEADER = "X-Mallcore-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(
    secret: str, header: str | None, body: bytes, *, tolerance: int = 300, now: float | None = None
) -> int:
    """Return the signed timestamp, or raise 401 ``signature_invalid`` / ``signature_expired``."""
    if not header:
        raise Unauthenticated(f"missing {HEADER} header", code="signature_missing")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError, IndexError):
        raise Unauthenticated("malformed signature header", code="signature_invalid") from None
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest().encode()
    # Bytes: compare_digest refuses non-ASCII text, and the header is whatever was sent.
    if not any(
        hmac.compare_digest(expected, given.encode("utf-8", "replace")) for given in parts.get("v1", [])
    ):
        raise Unauthenticated("signature does not match", code="signature_invalid")
    current = time.time() if now is None else now
    if abs(current - t) > tolerance:
        raise Unauthenticated(f"signature timestamp is more than {tolerance}s away", code="signature_expired")
    return t


def verify_any(
    secrets_: list[str], header: str | None, body: bytes, *, tolerance: int = 300, now: float | None = None
) -> int:
    """:func:`verify` against each secret (a key in rotation and its predecessor); the first match wins."""
    if not secrets_:
        raise Unauthenticated("this sender has no webhook secret", code="signature_invalid")
    failure: Unauthenticated | None = None
    for secret in secrets_:
        try:
            return verify(secret, header, body, tolerance=tolerance, now=now)
        except Unauthenticated as exc:
            if exc.code != "signature_invalid":
                raise  # missing or expired: the same with any key
            failure = exc
    assert failure is not None
    raise failure


# -- keys by purpose -----------------------------------------------------------------

PURPOSES = ("tracking", "webhooks", "sessions")


def new_secret() -> str:
    """A fresh secret for ``[secrets]`` (256 bits, URL-safe): ``mallcore secret new``."""
    return secrets.token_urlsafe(32)


def derive(purpose: str, secret: str) -> str:
    """A key for ``purpose`` derived from one deployment secret (the fallback when a purpose has none)."""
    return hashlib.sha256(f"mallcore.{purpose}\0{secret}".encode()).hexdigest()


class Keyring:
    """The keys of one purpose: the first signs, every one verifies (rotation's grace period)."""

    def __init__(self, purpose: str, keys: list[str]) -> None:
        if not keys:
            raise ValueError(f"no key for {purpose}")
        self.purpose = purpose
        self.keys = [hashlib.sha256(f"mallcore.{purpose}\0{k}".encode()).digest() for k in keys]
        self.secrets = list(keys)

    def mac(self, message: bytes, key: bytes | None = None) -> bytes:
        return hmac.new(key or self.keys[0], message, hashlib.sha256).digest()

    def verifies(self, message: bytes, mac: bytes) -> bool:
        """Whether ``mac`` (possibly truncated) is ``message``'s under any key, in constant time per key."""
        if not mac:
            return False
        return any(hmac.compare_digest(self.mac(message, key)[: len(mac)], mac) for key in self.keys)


# -- customers' tracking links ----------------------------------------------------------
#
# ``<expiry day, hex>.<HMAC-SHA256("track:<order id>:<expiry day>")[:16], URL-safe base64>``:
# the link stops working after its day (days since 1970-01-01, UTC) and is checked against
# every tracking key, so a rotated key keeps old links working for the grace period. One
# link is revoked by storing its hash (``tracking_link_revocations``).

_DAY = 86_400


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def tracking_token(keyring: Keyring, order_id: int, days: int, now: float | None = None) -> str:
    """A link token for ``order_id``, good for ``days`` days (to the end of the last one, UTC)."""
    expires = int((time.time() if now is None else now) // _DAY) + days
    mac = keyring.mac(b"track:%d:%d" % (order_id, expires))[:16]
    return f"{expires:x}.{_b64(mac)}"


def tracking_token_valid(keyring: Keyring, order_id: int, token: str, now: float | None = None) -> bool:
    """Whether ``token`` is a live link for ``order_id`` (signature and expiry; not revocation)."""
    day_hex, dot, mac_b64 = token.partition(".")
    if not dot or not day_hex or len(day_hex) > 8 or not token.isascii():
        return False
    try:
        expires = int(day_hex, 16)
        mac = base64.urlsafe_b64decode(mac_b64 + "=" * (-len(mac_b64) % 4))
    except ValueError:
        return False
    if expires < int((time.time() if now is None else now) // _DAY):
        return False
    return len(mac) == 16 and keyring.verifies(b"track:%d:%d" % (order_id, expires), mac)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
