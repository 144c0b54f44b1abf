"""TMS routes under ``/tms``, one Controller per resource.

- Templates (:mod:`.templates`): ``POST/GET /tms/templates``,
  ``GET/PUT/DELETE /tms/templates/{id}`` (merchants of the shop and admins
  write; shop staff read).
- Shipments (:mod:`.shipments`): ``GET /tms/shipments`` (staff: their shop;
  customers: their own), ``GET /tms/shipments/{id}`` with events, ``POST
  /tms/shipments/{id}/events`` (merchant or warehouse staff of the shop).
- Carriers (:mod:`.webhooks`): ``GET /tms/carriers``; ``POST
  /tms/webhooks/{carrier}``, carrier events, HMAC-signed, no bearer token;
  ``POST /tms/sandbox/{tracking_no}/advance``, the sandbox carrier moving a
  parcel through the webhook's code path.
- Unknown waybills (:mod:`.unknown_events`): ``GET /tms/unknown-events``,
  ``POST /tms/unknown-events/{id}/retry`` and ``/dismiss`` (admins and
  platform staff: the events belong to no known shop).
"""

from __future__ import annotations

from typing import Any

from .shipments import ShipmentController
from .templates import TemplateController
from .unknown_events import UnknownEventController
from .webhooks import CarrierController, SandboxController, WebhookController

CONTROLLERS: list[Any] = [
    TemplateController,
    CarrierController,
    ShipmentController,
    WebhookController,
    SandboxController,
    UnknownEventController,
]
