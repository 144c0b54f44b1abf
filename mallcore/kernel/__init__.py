"""The public API of the mallcore kernel: what a center imports.

Centers import from here and never from another center's package.
"""

from .access import require, require_platform, visible_to
from .auth import SYSTEM, Caller, Principal, require_visible
from .center import Center
from .config import Config, load_config
from .context import Address, Adjustment, Event, Line, Order, OrderContext, Payment, Phase, utcnow
from .errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    MallcoreError,
    NotFound,
    OutOfStock,
    PaymentFailed,
    PluginError,
    Rejected,
    StartupError,
    Unauthenticated,
)
from .hookspecs import hookimpl, hookspec
from .jobs import Job
from .kernel import Kernel
from .money import Money, allocate, format_amount, share
from .refunds import LIVE as LIVE_REFUND_STATUSES
from .refunds import Refund, RefundItem, RefundLine
from .schemas import ShipmentView
from .states import OrderStatus

__all__ = [
    "LIVE_REFUND_STATUSES",
    "SYSTEM",
    "Address",
    "Adjustment",
    "Caller",
    "Center",
    "Config",
    "ConfigError",
    "Conflict",
    "Event",
    "Forbidden",
    "InvalidInput",
    "Job",
    "Kernel",
    "Line",
    "MallcoreError",
    "Money",
    "NotFound",
    "Order",
    "OrderContext",
    "OrderStatus",
    "OutOfStock",
    "Payment",
    "PaymentFailed",
    "Phase",
    "PluginError",
    "Principal",
    "Refund",
    "RefundItem",
    "RefundLine",
    "Rejected",
    "ShipmentView",
    "StartupError",
    "Unauthenticated",
    "allocate",
    "format_amount",
    "hookimpl",
    "hookspec",
    "load_config",
    "require",
    "require_platform",
    "require_visible",
    "share",
    "utcnow",
    "visible_to",
]
