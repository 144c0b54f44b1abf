"""The chart of accounts.

An account is a code; accounts that exist once per provider or shop carry
it after a colon (``provider_clearing:sandbox``, ``shop_payable:s1``).
Amounts on postings are signed: a debit is positive, a credit negative, so
an asset's balance is positive and a liability's or revenue's negative.

=====================  =========  ==============================================
account                kind       holds
=====================  =========  ==============================================
customer_clearing      liability  money customers paid for orders not yet
                                  delivered (担保交易: held until sign-off)
provider_clearing:P    asset      money held for us by payment provider P
shop_payable:S         liability  what the platform owes shop S
commission             revenue    the platform's commission on shop sales
refunds                clearing   every refund paid out passes through it: its
                                  debit turnover is refunds paid, and it clears
                                  to zero within each refund entry
shipping_income        revenue    freight, when ``freight_to = "platform"``
points_liability       liability  the value of the points members hold (membership's
                                  movements, see finance/membership.py)
points_expense         expense    what the points given to members cost the platform,
                                  less what expired or was clawed back
coupon_liability       liability  platform-funded coupons (promotion posts)
bank                   asset      the platform's bank account: payouts to shops
suspense               clearing   manual corrections awaiting a home
=====================  =========  ==============================================
"""

from __future__ import annotations

import re

CUSTOMER_CLEARING = "customer_clearing"
COMMISSION = "commission"
REFUNDS = "refunds"
SHIPPING_INCOME = "shipping_income"
POINTS_LIABILITY = "points_liability"
POINTS_EXPENSE = "points_expense"
COUPON_LIABILITY = "coupon_liability"
BANK = "bank"
SUSPENSE = "suspense"

KINDS: dict[str, str] = {
    CUSTOMER_CLEARING: "liability",
    "provider_clearing": "asset",
    "shop_payable": "liability",
    COMMISSION: "revenue",
    REFUNDS: "clearing",
    SHIPPING_INCOME: "revenue",
    POINTS_LIABILITY: "liability",
    POINTS_EXPENSE: "expense",
    COUPON_LIABILITY: "liability",
    BANK: "asset",
    SUSPENSE: "clearing",
}
# Accounts that exist per provider or per shop.
PER_KEY = {"provider_clearing", "shop_payable"}

_CODE = re.compile(r"^[a-z_]+(:[A-Za-z0-9_.\-]{1,64})?$")


def provider_clearing(provider: str) -> str:
    return f"provider_clearing:{provider}"


def shop_payable(shop: str) -> str:
    return f"shop_payable:{shop}"


def split(code: str) -> tuple[str, str | None]:
    base, _, key = code.partition(":")
    return base, key or None


def kind_of(code: str) -> str | None:
    """The kind of a valid account code, or ``None`` if it is not in the chart."""
    if not _CODE.match(code):
        return None
    base, key = split(code)
    if base not in KINDS or (base in PER_KEY) != (key is not None):
        return None
    return KINDS[base]


def shop_of(code: str) -> str | None:
    base, key = split(code)
    return key if base == "shop_payable" else None
