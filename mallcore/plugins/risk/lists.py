"""Block / review / allow lists: an in-memory index for the hot path, and the writes.

The index holds every live entry (not removed; an expired one is skipped at
lookup) keyed by (kind, value), and CIDR ranges by prefix length, so a
lookup costs a few dictionary reads whatever the lists' size: one per kind,
plus one per distinct prefix length among the CIDR entries.

Which entries apply to an order: the platform's (``shop`` null) and the
order's shop's. What they decide is in :mod:`.engine`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from . import tables as t


class Entry(msgspec.Struct, frozen=True, gc=False):
    id: int
    kind: str
    value: str
    action: str
    shop: str | None
    expires_at: datetime | None

    def brief(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "action": self.action, "shop": self.shop}


class ListIndex:
    """Every live entry, indexed (see the module docstring)."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.exact: dict[tuple[str, str], list[Entry]] = {}
        # prefix length -> (network address as int, version) -> entries
        self.ranges: dict[tuple[int, int], dict[int, list[Entry]]] = {}
        self.size = 0
        for entry in entries:
            self.size += 1
            if entry.kind == "cidr":
                net = ipaddress.ip_network(entry.value, strict=False)
                by_net = self.ranges.setdefault((net.version, net.prefixlen), {})
                by_net.setdefault(int(net.network_address), []).append(entry)
            else:
                self.exact.setdefault((entry.kind, entry.value), []).append(entry)

    @property
    def empty(self) -> bool:
        return self.size == 0

    def match(self, values: dict[str, str], shop: str, now: datetime) -> list[Entry]:
        """Live entries of the platform or ``shop`` matching any of ``values`` (kind → value)."""
        found: list[Entry] = []
        exact = self.exact
        for kind, value in values.items():
            if value:
                hits = exact.get((kind, value))
                if hits:
                    found.extend(hits)
        ip = values.get("ip")
        if ip and self.ranges:
            version, as_int = _address(ip)
            bits = 32 if version == 4 else 128
            for (net_version, prefix), by_net in self.ranges.items():
                if net_version != version:
                    continue
                mask = ((1 << prefix) - 1) << (bits - prefix) if prefix else 0
                hits = by_net.get(as_int & mask)
                if hits:
                    found.extend(hits)
        return [
            e
            for e in found
            if (e.shop is None or e.shop == shop) and (e.expires_at is None or e.expires_at > now)
        ]


@functools.lru_cache(maxsize=65536)
def _address(ip: str) -> tuple[int, int]:
    """(version, the address as an integer) of a normalised address."""
    addr = ipaddress.ip_address(ip)
    return addr.version, int(addr)


def load_index(conn: sa.Connection) -> ListIndex:
    c = t.lists.c
    rows = conn.execute(
        sa.select(c.id, c.kind, c.value, c.action, c.shop, c.expires_at).where(c.removed_at.is_(None))
    )
    return ListIndex(Entry(*row) for row in rows)
