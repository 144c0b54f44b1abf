"""Signed webhooks: ``X-Mallcore-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is HMAC-SHA256 of ``"<t>.<raw body>"`` under the sender's secret
(stdlib ``hmac``, compared in constant time). A signature older (or newer)
than the tolerance is refused, so a captured request cannot be replayed
later; replays inside the window are caught by the receiver's event-id
deduplication.
"""

from __future__ import annotations

import hashlib
import hmac
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
