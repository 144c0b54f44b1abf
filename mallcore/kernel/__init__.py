"""The public API of the mallcore kernel: what a center imports.

A center imports from this package, from :mod:`mallcore.kernel.http` (route
helpers and the app) and from these public modules, never from another
kernel module and never from another center's package:

- :mod:`mallcore.kernel.aftersale`: the after-sale structs centers pass each
  other through hooks (cases, parcels, parcel events).
- :mod:`mallcore.kernel.columns`: the column types of every table (and of
  migrations), alike on SQLite and PostgreSQL.
- :mod:`mallcore.kernel.console`: what a center gives the staff console
  (``ConsolePage``, home-page ``Tile``) and the helpers its pages use
  (``render``, ``keyset``, ``language``).
- :mod:`mallcore.kernel.fast`: precompiled statements for the few queries on
  the placement path (use only where profiling says so).
- :mod:`mallcore.kernel.schemas`: the kernel's HTTP request and response
  bodies (``PlaceOrder``, ``LineIn``, ``TimelineView``, ``ShopCode``...).
- :mod:`mallcore.kernel.signing`: signed webhooks.
- :mod:`mallcore.kernel.tables`: the kernel's tables, for reading (joins,
  reports); changes go through the kernel's services.

The classes of the services a kernel offers (``kernel.db``, ``kernel.orders``,
``kernel.order_views``, ``kernel.refunds``) are exported for annotations.
``tests/test_exported_members.py`` holds centers (and the examples) to this.
The layers behind it are described in docs/architecture.md.
"""

from .access import require, require_platform, visible_to
from .auth import Caller
from .center import Center
from .commands import pass_kernel
from .config import Config, load_config
from .context import OrderContext, PlacementIntent
from .db import Database
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
from .facts import RequestFacts
from .facts import current as current_request
from .hookspecs import hookimpl, hookspec
from .i18n import pick_language
from .jobs import Job
from .kernel import Kernel
from .money import allocate, format_amount, share
from .order_views import OrderViews
from .orders import OrderService
from .refunds import LIVE as LIVE_REFUND_STATUSES
from .refunds import RefundService
from .regions import region_name
from .schemas import ShipmentView
from .states import OrderStatus
from .tracking import Card as TrackingCard
from .tracking import Fact as TrackingFact
from .tracking import Section as TrackingSection
from .tracking import Step as TrackingStep
from .tracking import TrackingPage, mask_phone
from .types import (
    SYSTEM,
    Address,
    Adjustment,
    Claim,
    Event,
    Line,
    Order,
    Payment,
    Phase,
    Principal,
    Refund,
    RefundItem,
    RefundLine,
    Shop,
    TimelineEntry,
    utcnow,
)

__all__ = [
    "LIVE_REFUND_STATUSES",
    "SYSTEM",
    "Address",
    "Adjustment",
    "Caller",
    "Center",
    "Claim",
    "Config",
    "ConfigError",
    "Conflict",
    "Database",
    "Event",
    "Forbidden",
    "InvalidInput",
    "Job",
    "Kernel",
    "Line",
    "MallcoreError",
    "NotFound",
    "Order",
    "OrderContext",
    "OrderService",
    "OrderStatus",
    "OrderViews",
    "OutOfStock",
    "Payment",
    "PaymentFailed",
    "Phase",
    "PlacementIntent",
    "PluginError",
    "Principal",
    "Refund",
    "RefundItem",
    "RefundLine",
    "RefundService",
    "Rejected",
    "RequestFacts",
    "ShipmentView",
    "Shop",
    "StartupError",
    "TimelineEntry",
    "TrackingCard",
    "TrackingFact",
    "TrackingPage",
    "TrackingSection",
    "TrackingStep",
    "Unauthenticated",
    "allocate",
    "current_request",
    "format_amount",
    "hookimpl",
    "hookspec",
    "load_config",
    "mask_phone",
    "pass_kernel",
    "pick_language",
    "region_name",
    "require",
    "require_platform",
    "share",
    "utcnow",
    "visible_to",
]
