"""An optional GeoIP table: which region an IP address is in.

``[centers.risk] geoip = "path/to/ranges.csv"``: one ``network,region`` per
line (``#`` starts a comment), e.g. ``203.0.113.0/24,31``. The region is a
prefix of the delivery addresses' region codes (``31`` Shanghai, ``3301``
Hangzhou); a GeoLite2 or IP2Location export converts to it with one join.
Lookups bisect sorted ranges. With no file configured every IP's region is
unknown and ``signals.region_mismatch`` is false.
"""

from __future__ import annotations

import bisect
import csv
import ipaddress
from pathlib import Path

from mallcore.kernel import ConfigError


class GeoIP:
    def __init__(self, ranges: list[tuple[int, int, str]]) -> None:
        ranges.sort()
        self.starts = [r[0] for r in ranges]
        self.ranges = ranges

    @classmethod
    def load(cls, path: str, key: str = "centers.risk.geoip") -> GeoIP:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config key '{key}': no file {path}")
        ranges = []
        with file.open(newline="", encoding="utf-8") as handle:
            for n, row in enumerate(csv.reader(handle), 1):
                if not row or row[0].lstrip().startswith("#"):
                    continue
                try:
                    net = ipaddress.ip_network(row[0].strip(), strict=False)
                    region = row[1].strip()
                except (ValueError, IndexError):
                    raise ConfigError(
                        f"config key '{key}': line {n} of {path} is not 'network,region'"
                    ) from None
                # IPv6 ranges sort after every IPv4 one
                offset = 0 if net.version == 4 else 1 << 32
                ranges.append(
                    (offset + int(net.network_address), offset + int(net.broadcast_address), region)
                )
        return cls(ranges)

    def region(self, ip: str) -> str:
        """The region of ``ip``, or "" when unknown."""
        if not ip:
            return ""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return ""
        value = int(addr) + (0 if addr.version == 4 else 1 << 32)
        i = bisect.bisect_right(self.starts, value) - 1
        if i >= 0 and self.ranges[i][0] <= value <= self.ranges[i][1]:
            return self.ranges[i][2]
        return ""


def mismatch(ip_region: str, address_region: str) -> bool:
    """True when both are known and the address is not in the IP's region (same prefix)."""
    if not ip_region or not address_region:
        return False
    n = min(len(ip_region), len(address_region))
    return ip_region[:n] != address_region[:n]
