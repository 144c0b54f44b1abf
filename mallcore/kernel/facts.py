"""The facts of the request a stage runs for: client IP, device, user agent.

Centers never read the HTTP request; a stage that runs for a request
(placement, a price preview, an after-sale step, a payment) offers its facts
as ``ctx.request`` (:class:`RequestFacts`, or ``None`` for jobs, the CLI and
other stages with no request behind them). Risk decides on them; anyone may
log them.

The client IP is the socket's peer, unless that peer is a trusted proxy
(``http.trusted_proxies``): then ``X-Forwarded-For`` is read from the right,
skipping trusted proxies, and the first address that is not one is the
client. A header from anyone else is ignored, so a client cannot pick its
own IP.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from typing import Any

import msgspec

from .errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RequestFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What is known of the request behind a stage."""

    # The client's address as worked out above ("" when unknown).
    ip: str
    # The socket's peer and the X-Forwarded-For chain as received.
    peer: str = ""
    forwarded_for: tuple[str, ...] = ()
    device_id: str | None = None
    user_agent: str = ""
    method: str = ""
    path: str = ""

    def client_ip(self, trusted: Sequence[Network]) -> str:
        """The client IP under another list of trusted proxies (e.g. a center's own)."""
        return client_ip(self.peer, self.forwarded_for, trusted)


def parse_networks(values: Iterable[str], key: str) -> tuple[Network, ...]:
    """CIDR ranges (or single addresses) from config; a bad one names ``key``."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"config key '{key}': {value!r} is not an IP address or CIDR range") from None
    return tuple(out)


# A server hears from the same few proxies and clients over and over: parsing an
# address and testing it against the networks costs microseconds each time.
@functools.lru_cache(maxsize=4096)
def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_ip(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    trusted = tuple(trusted)  # (hashable, for _trusted's cache)
    if not trusted or not _trusted(peer, trusted):
        return peer
    for hop in reversed(forwarded_for):
        if not _trusted(hop, trusted):
            return hop
    return forwarded_for[0] if forwarded_for else peer


# The ASGI scope of the request being served in this context, and how to read it;
# set by the HTTP layer, read (lazily) by OrderContext.request.
_current: ContextVar[tuple[dict[str, Any], FactsReader] | None] = ContextVar("mallcore_request", default=None)


class FactsReader:
    """Turns an ASGI scope into :class:`RequestFacts` under one kernel's HTTP settings."""

    def __init__(self, trusted: Sequence[Network], device_header: str) -> None:
        self.trusted = tuple(trusted)
        self.device_header = device_header.lower().encode("latin-1")

    def read(self, scope: dict[str, Any]) -> RequestFacts:
        client = scope.get("client")
        peer = client[0] if client else ""
        forwarded: list[str] = []
        device = None
        agent = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                forwarded.extend(h.strip() for h in value.decode("latin-1").split(",") if h.strip())
            elif name == self.device_header:
                device = value.decode("latin-1").strip()[:128] or None
            elif name == b"user-agent":
                agent = value.decode("latin-1")[:300]
        hops = tuple(forwarded[-20:])
        return RequestFacts(
            ip=client_ip(peer, hops, self.trusted),
            peer=peer,
            forwarded_for=hops,
            device_id=device,
            user_agent=agent,
            method=scope.get("method", ""),
            path=scope.get("path", ""),
        )


def enter(scope: dict[str, Any], reader: FactsReader) -> Any:
    """Make ``scope`` the current request (the HTTP layer calls this); returns a reset token."""
    return _current.set((scope, reader))


def leave(token: Any) -> None:
    _current.reset(token)


def current() -> RequestFacts | None:
    """The facts of the request served in this context, if any."""
    held = _current.get()
    if held is None:
        return None
    scope, reader = held
    facts = scope.get("mallcore.facts")
    if facts is None:
        facts = scope["mallcore.facts"] = reader.read(scope)
    return facts
