"""Catalog request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from mallcore.kernel.schemas import ShopCode

SkuCode = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-/]+$")]
Price = Annotated[int, Meta(ge=0, le=10**12, description="minor units")]
Weight = Annotated[int, Meta(ge=0, le=10**8, description="grams")]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
# Free-form attributes (colour, size...): at most 50, keys up to 64 characters.
Attrs = Annotated[dict[Annotated[str, Meta(max_length=64)], Any], Meta(max_length=50)]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class SkuIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): another variant of the demo's T-shirt
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "code": "TEE-BLACK-L",
        "name": "black L",
        "price": 8900,
        "weight_grams": 240,
    }

    code: SkuCode
    price: Price
    weight_grams: Weight = 0
    name: Annotated[str, Meta(max_length=200)] = ""
    attrs: Attrs = msgspec.field(default_factory=dict)
    active: bool = True


# SKUs added to a product in one request.
SkuList = Annotated[list[SkuIn], Meta(min_length=1, max_length=200)]


class ProductIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): a product of the demo shop, with its own SKU code
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "name": "Canvas tote 帆布袋",
        "shop": "demo",
        "description": "Cotton canvas, 38 x 42 cm",
        "skus": [{"code": "TOTE-1", "price": 2900, "weight_grams": 180}],
    }

    name: Name
    shop: ShopCode
    skus: Annotated[list[SkuIn], Meta(min_length=1, max_length=200)]
    description: Annotated[str, Meta(max_length=20_000)] = ""
    category_id: int | None = None
    attrs: Attrs = msgspec.field(default_factory=dict)
    active: bool = True


class ProductPatch(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): no category (the demo has none)
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "description": "Heavy cotton, three colours, pre-shrunk",
        "active": True,
    }

    name: Name | None = None
    description: Annotated[str, Meta(max_length=20_000)] | None = None
    category_id: int | None = None
    attrs: Attrs | None = None
    active: bool | None = None


class SkuPatch(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): a new price
    EXAMPLE: ClassVar[dict[str, Any]] = {"price": 6900}

    price: Price | None = None
    weight_grams: Weight | None = None
    name: Annotated[str, Meta(max_length=200)] | None = None
    attrs: Attrs | None = None
    active: bool | None = None


class CategoryIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): a back category
    EXAMPLE: ClassVar[dict[str, Any]] = {"name": "Apparel 服装"}

    name: Name
    kind: Literal["back", "front"] = "back"
    parent_id: int | None = None
    # For a front category: the back categories it shows.
    shows: Annotated[list[int], Meta(max_length=500)] = msgspec.field(default_factory=list)


class SkuView(msgspec.Struct, kw_only=True):
    id: int
    code: str
    name: str
    price: int
    currency: str
    weight_grams: int
    active: bool
    attrs: dict[str, Any]


class ProductView(msgspec.Struct, kw_only=True):
    id: int
    shop: str
    name: str
    description: str
    category_id: int | None
    active: bool
    attrs: dict[str, Any]
    skus: list[SkuView]
    created_at: datetime
    updated_at: datetime


class CategoryView(msgspec.Struct, kw_only=True):
    id: int
    name: str
    kind: str
    parent_id: int | None
    shows: list[int] = msgspec.field(default_factory=list)
