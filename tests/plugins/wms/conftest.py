"""Fixtures of the WMS tests (helpers live in ``helpers.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import Shop


@pytest.fixture
def shop(mallcore: Any) -> Shop:
    """Catalog + payment + WMS; warehouses SH, GZ, BJ; SKUs TEE, MUG, CAP of shop s1 (no stock)."""
    return Shop(mallcore)
