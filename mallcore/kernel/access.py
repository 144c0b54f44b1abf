"""Who may see and do what: the rules every route shares, in one place.

Staff scope is explicit (:func:`scope_problem`): a staff principal works for
one shop or, flagged ``platform``, for the whole platform. Then three rules,
each with one error code:

- :func:`require` (403 ``role_required``): the caller holds one of the roles
  (admins always pass).
- :func:`require_platform` (403 ``platform_only``): the caller holds one of
  the roles *and* acts for the whole platform (an admin, or platform
  staff), for objects that belong to no shop: warehouses, unknown waybills,
  platform campaigns, platform-wide finance figures.
- :func:`visible_to` (a SQL condition): the rows of a list the caller may
  see. It is :meth:`Principal.can_see` for many rows at once, so a list and
  a ``GET`` of one object never disagree; an object outside it answers 404.

Routes declare the first two as Litestar guards
(:mod:`mallcore.kernel.http.guards`); services call them directly where the
rule depends on the object (its shop) rather than the route.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .errors import Forbidden
from .types import STAFF_ROLES, Principal


def scope_problem(principal: Principal) -> str | None:
    """Why a principal's scope is not acceptable, or ``None`` when it is.

    Fail closed: staff must say where they work, one shop (``shop``) or the
    whole platform (``platform``), never both and never neither. Tokens are
    checked with it when issued, loaded from config and resolved.
    """
    if principal.is_admin or principal.roles.isdisjoint(STAFF_ROLES):
        return None
    if principal.shop is not None and principal.platform:
        return "a staff token works for one shop or for the platform, not both"
    if principal.shop is None and not principal.platform:
        return "a staff token must name its shop, or be a platform token (platform = true)"
    return None


def require(principal: Principal, *roles: str) -> None:
    """403 ``role_required`` unless the principal holds one of ``roles`` (admin always passes)."""
    if not principal.has(*roles):
        raise Forbidden(f"this needs one of the roles: {', '.join(roles)}", code="role_required")


def require_platform(principal: Principal, *roles: str) -> None:
    """403 ``platform_only`` unless an admin, or platform staff with one of ``roles``."""
    require(principal, *roles)
    if not principal.is_platform:
        raise Forbidden("only admins and platform staff may do this", code="platform_only")


def visible_to(
    principal: Principal, shop: sa.ColumnElement[Any], owner: sa.ColumnElement[Any] | None = None
) -> sa.ColumnElement[bool]:
    """The rows of a query ``principal`` may see: a ``WHERE`` condition.

    ``shop`` is the column naming the row's shop; ``owner``, when the rows
    belong to a customer (orders, cases, coupons), the column naming them.
    An admin sees every row; staff (merchant, warehouse, finance, risk) their
    shop's, or every shop's when they are platform staff (``platform``); a
    customer the rows they own. Anyone else sees nothing.
    """
    if principal.is_admin:
        return sa.true()
    seen: list[sa.ColumnElement[bool]] = []
    if not principal.roles.isdisjoint(STAFF_ROLES):
        if principal.platform:
            return sa.true()
        if principal.shop is not None:
            seen.append(shop == principal.shop)
    if owner is not None and "customer" in principal.roles:
        seen.append(owner == principal.subject)
    if not seen:
        return sa.false()
    return seen[0] if len(seen) == 1 else sa.or_(*seen)
