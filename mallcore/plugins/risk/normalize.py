"""How values are normalised before they are counted, listed or matched.

One rule per kind, applied alike to list entries and to orders, so a listed
value matches however a customer writes it:

- **address**: the fingerprint of region + detail. Each part is put in
  Unicode NFKC form (full-width letters, digits and punctuation become their
  half-width forms, the ideographic space a space), lower-cased
  (``casefold``), and stripped of everything that is not a letter or a digit
  (spaces, punctuation, symbols). The fingerprint is the first 24 hex digits
  of the SHA-256 of ``region + ":" + detail`` so normalised. ``"310000",
  "１号 West-Lake Rd."`` and ``"310000", "1号westlake rd"`` share one.
- **phone**: its digits only; a leading ``86`` / ``0086`` country code in
  front of an 11-digit mainland mobile number is dropped
  (``+86 138-0000-0000`` → ``13800000000``).
- **ip**: the address in its canonical form (IPv4-mapped IPv6 becomes IPv4).
- **cidr**: the network in canonical ``address/prefix`` form (host bits
  cleared).
- **customer**, **device**: trimmed of surrounding spaces, otherwise exact.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import unicodedata

from mallcore.kernel import ConfigError, InvalidInput

KINDS = ("customer", "phone", "address", "ip", "cidr", "device")
_FINGERPRINT = re.compile(r"^[0-9a-f]{24}$")


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


@functools.lru_cache(maxsize=65536)  # a customer's address recurs: placements skip the hashing
def address_fingerprint(region: str, detail: str) -> str:
    """The fingerprint of a delivery address (see the module docstring)."""
    digest = hashlib.sha256(f"{_plain(region)}:{_plain(detail)}".encode()).hexdigest()
    return digest[:24]


@functools.lru_cache(maxsize=65536)
def phone(value: str) -> str:
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", value) if ch.isdigit())
    for prefix in ("0086", "86"):
        rest = digits[len(prefix) :]
        if digits.startswith(prefix) and len(rest) == 11 and rest.startswith("1"):
            return rest
    return digits


@functools.lru_cache(maxsize=65536)  # parsing costs microseconds; a client's address recurs
def ip(value: str) -> str:
    """The canonical form of an address, or "" when it is not one."""
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        return ""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def networks(values: list[str], key: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CIDR ranges (or single addresses) from config; a bad one names the config ``key``."""
    try:
        return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)
    except ValueError as exc:
        raise ConfigError(f"config key '{key}': {exc}") from None


def list_value(kind: str, value: str) -> str:
    """A list entry's value, normalised; 422 ``list_value_invalid`` when it cannot be one."""
    raw = value.strip()
    if kind == "address":
        if _FINGERPRINT.match(raw):
            return raw
        region, sep, detail = raw.partition("|")
        if not sep or not _plain(region) or not _plain(detail):
            raise _invalid(kind, value, "an address fingerprint, or 'region|detail'")
        return address_fingerprint(region, detail)
    if kind == "phone":
        out = phone(raw)
        if len(out) < 5:
            raise _invalid(kind, value, "a phone number")
        return out
    if kind == "ip":
        out = ip(raw)
        if not out:
            raise _invalid(kind, value, "an IP address")
        return out
    if kind == "cidr":
        try:
            return ipaddress.ip_network(raw, strict=False).with_prefixlen
        except ValueError:
            raise _invalid(kind, value, "a CIDR range such as 203.0.113.0/24") from None
    if not raw or len(raw) > 128:
        raise _invalid(kind, value, f"a {kind} id of 1 to 128 characters")
    return raw


def _invalid(kind: str, value: str, wanted: str) -> InvalidInput:
    return InvalidInput(
        f"{value!r} is not {wanted}", code="list_value_invalid", extra={"kind": kind, "value": value}
    )
