"""Centers that implement every lifecycle hook and do nothing: the plugin machinery's cost."""

from __future__ import annotations

from typing import Any

from mallcore.kernel import Center, hookimpl


class _NoOp(Center):
    @hookimpl
    def order_pre_validate(self, ctx: Any) -> None:
        pass

    @hookimpl
    def order_price(self, ctx: Any) -> None:
        pass

    @hookimpl
    def order_reserve(self, ctx: Any) -> None:
        pass

    @hookimpl
    def order_pay(self, ctx: Any, payment: Any) -> None:
        pass

    @hookimpl
    def order_dispatch(self, ctx: Any) -> None:
        pass

    @hookimpl
    def order_deliver(self, ctx: Any) -> None:
        pass

    @hookimpl
    def order_after_sale(self, ctx: Any, case: Any) -> None:
        pass

    @hookimpl
    def order_cancel(self, ctx: Any, reason: str) -> None:
        pass

    @hookimpl
    def order_refund(self, ctx: Any, refund: Any) -> None:
        pass

    @hookimpl
    def order_view(self, kernel: Any, conn: Any, order: Any, view: Any) -> None:
        pass


def noop_centers(n: int) -> tuple[type[Center], ...]:
    return tuple(type(f"NoOp{i}", (_NoOp,), {"name": f"noop{i}"}) for i in range(n))
