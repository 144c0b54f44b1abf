"""WMS routes under ``/wms``, one Controller per resource.

Who may do what:

- Warehouses (:mod:`.warehouses`) are platform objects (any shop's goods
  may sit in any of them): only platform warehouse staff (role
  ``warehouse`` with no shop) and admins create or change them; every staff
  member may list them.
- Stock (:mod:`.stock`, :mod:`.moves`) belongs to the shop that sells the
  SKU (the catalog says which): warehouse staff of a shop move (inbound,
  stocktake, transfer) and see only their shop's SKUs, merchants see them
  read-only, platform staff and admins see and move everything. Another
  shop's SKU answers 403 ``shop_forbidden`` (SKUs are public in the
  catalog, so their existence is no secret).
- Orders (:mod:`.orders`): warehouse staff see and dispatch only their
  shop's orders; any other order answers 404.
"""

from __future__ import annotations

from typing import Any

from .moves import StockMoveController
from .orders import OrderController
from .stock import StockController
from .warehouses import WarehouseController

CONTROLLERS: list[Any] = [WarehouseController, StockController, StockMoveController, OrderController]
