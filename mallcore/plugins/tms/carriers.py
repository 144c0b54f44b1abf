"""Carriers from config, and the sandbox carrier that is always there.

``[centers.tms.carriers.<code>]`` declares a carrier: its webhook secret,
its waybill prefix, its display name, whether it takes pickup bookings.
Waybill numbers are made here (prefix + 12 random digits, unique per carrier
by a constraint); a real carrier integration that gets numbers from the
carrier's API would replace :meth:`Carrier.waybill` in ``mallcore.contrib``.

The ``sandbox`` carrier issues waybills, books pickups (a courier, a phone,
a pickup code) and is moved through its states by
``POST /tms/sandbox/{tracking_no}/advance``, which signs an event with the
sandbox secret and feeds it to the webhook's code path.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from mallcore.kernel import Rejected

SANDBOX = "sandbox"
# What the sandbox's default webhook secret is derived from, with each of the kernel's
# ``[secrets] webhooks`` keys: never a public constant.
SANDBOX_SECRET_PURPOSE = b"mallcore.tms.sandbox.webhook"

COURIERS = [
    ("王伟", "13800138001"),
    ("李娜", "13800138002"),
    ("张敏", "13800138003"),
    ("刘洋", "13800138004"),
]


class CarrierSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # HMAC secret of the carrier's webhooks; empty: its webhooks are refused
    # (events can still be posted by staff).
    webhook_secret: str = ""
    # Waybill numbers start with this (default: the carrier code, upper-cased).
    waybill_prefix: str = ""
    # What customers read: ``name`` in English pages, ``name_zh`` in Chinese ones
    # (each defaults to the other, then to the code).
    name: str = ""
    name_zh: str = ""
    # Takes pickup bookings (上门取件). The sandbox always does.
    pickup: bool = False


class Booking(msgspec.Struct, kw_only=True):
    tracking_no: str
    courier: str | None
    courier_phone: str | None
    code: str | None


class Carrier:
    def __init__(self, code: str, settings: CarrierSettings) -> None:
        self.code = code
        self.name = settings.name or settings.name_zh or code
        self.name_zh = settings.name_zh or settings.name or code
        self._secret = settings.webhook_secret
        self.prefix = settings.waybill_prefix or code.upper().replace("-", "").replace("_", "")[:8]
        self.pickup = settings.pickup

    def names(self) -> tuple[str, str]:
        """The carrier's name in English and in Chinese."""
        return self.name, self.name_zh

    @property
    def secret(self) -> str:
        """The HMAC secret of this carrier's webhooks ("" refuses them)."""
        return self._secret

    @property
    def secrets(self) -> list[str]:
        """Every secret a webhook may be signed with (the current one first)."""
        return [self.secret] if self.secret else []

    def waybill(self) -> str:
        return f"{self.prefix}{secrets.randbelow(10**12):012d}"

    def book_pickup(self, window_start: datetime, window_end: datetime, address: dict[str, Any]) -> Booking:
        if not self.pickup:
            raise Rejected(f"carrier {self.code} does not take pickup bookings", code="pickup_unsupported")
        return Booking(tracking_no=self.waybill(), courier=None, courier_phone=None, code=None)


class SandboxCarrier(Carrier):
    def __init__(
        self, settings: CarrierSettings, kernel_secret: Callable[[], list[str]] | None = None
    ) -> None:
        super().__init__(SANDBOX, settings)
        self.name = settings.name or "Sandbox Express"
        self.name_zh = settings.name_zh or "沙盒快递"
        self.prefix = settings.waybill_prefix or "SBX"
        self.pickup = True
        self.default_secret = not settings.webhook_secret
        self._kernel_secret = kernel_secret
        self._derived: list[str] | None = None

    @property
    def secret(self) -> str:
        """The configured secret, else one derived from the kernel's ``webhooks`` key."""
        found = self.secrets
        return found[0] if found else ""

    @property
    def secrets(self) -> list[str]:
        """The configured secret, else one derived from each ``[secrets] webhooks`` key (the
        current one first: a rotated key keeps working for its grace period)."""
        if self._secret:
            return [self._secret]
        if self._derived is None and self._kernel_secret is not None:
            self._derived = [
                hmac.new(key.encode(), SANDBOX_SECRET_PURPOSE, hashlib.sha256).hexdigest()
                for key in self._kernel_secret()
            ]
        return self._derived or []

    def book_pickup(self, window_start: datetime, window_end: datetime, address: dict[str, Any]) -> Booking:
        courier, phone = secrets.choice(COURIERS)
        return Booking(
            tracking_no=self.waybill(),
            courier=courier,
            courier_phone=phone,
            code=f"{secrets.randbelow(10**6):06d}",
        )


def build(
    configured: dict[str, CarrierSettings], kernel_secret: Callable[[], list[str]] | None = None
) -> dict[str, Carrier]:
    sandbox = SandboxCarrier(configured.get(SANDBOX, CarrierSettings()), kernel_secret)
    carriers: dict[str, Carrier] = {SANDBOX: sandbox}
    for code, settings in configured.items():
        if code != SANDBOX:
            carriers[code] = Carrier(code, settings)
    return carriers
