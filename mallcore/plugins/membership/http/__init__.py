"""Membership routes under ``/membership``, one Controller per resource.

- Me (:mod:`.me`): ``GET/PUT /membership/me``, ``GET /membership/me/points``,
  ``/me/history``, ``/me/wallet`` (customers, their own).
- Members (:mod:`.members`): ``GET /membership/members`` (search, staff),
  ``GET /membership/members/{customer}`` with ``/points`` and ``/history``
  (the customer themself, staff who may see them), ``POST
  /membership/members/{customer}/points`` and ``PUT .../level`` (admins).
- Program (:mod:`.program`): ``GET /membership/levels`` (everyone),
  ``GET/PUT /membership/shops/{shop}`` (a shop's part in the program),
  ``GET /membership/stats`` (admins and platform staff).
"""

from __future__ import annotations

from typing import Any

from .me import MeController
from .members import MemberController
from .program import LevelController, ProgramController, StatsController

CONTROLLERS: list[Any] = [MeController, MemberController, LevelController, ProgramController, StatsController]
