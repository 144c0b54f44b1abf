"""The levels in order, and what a growth value earns: config turned into lookups.

Built once per kernel from the validated settings (levels never change
while a process runs), so the placement path reads a level's benefits from
memory.
"""

from __future__ import annotations

from collections.abc import Iterator

from mallcore.kernel import InvalidInput

from .settings import Level


class Ladder:
    def __init__(self, levels: dict[str, Level]) -> None:
        """``levels`` in order, lowest first (see :func:`.settings.check`)."""
        self.codes: tuple[str, ...] = tuple(levels)
        self.levels: dict[str, Level] = dict(levels)
        self.rank: dict[str, int] = {code: i for i, code in enumerate(self.codes)}
        self.base = self.codes[0]
        # What the placement path needs to know without reading a member row.
        self.any_member_price = any(lv.member_discount_bp for lv in self.levels.values())
        self.any_vouchers = any(lv.free_shipping_per_month for lv in self.levels.values())
        self.base_has_price = self.levels[self.base].member_discount_bp > 0
        self.base_has_vouchers = self.levels[self.base].free_shipping_per_month > 0

    def __iter__(self) -> Iterator[tuple[str, Level]]:
        return iter(self.levels.items())

    def get(self, code: str) -> Level:
        """The level ``code``; a member whose level left the config counts as the first level."""
        return self.levels.get(code) or self.levels[self.base]

    def known(self, code: str) -> str:
        """``code`` if it is a configured level, else 422 ``level_unknown``."""
        if code not in self.levels:
            raise InvalidInput(
                f"unknown level '{code}'; levels are {', '.join(self.codes)}",
                code="level_unknown",
                extra={"levels": list(self.codes)},
            )
        return code

    def for_growth(self, growth: int) -> str:
        """The highest level whose threshold ``growth`` reaches."""
        reached = self.base
        for code in self.codes:
            if growth >= self.levels[code].growth:
                reached = code
        return reached

    def above(self, code: str) -> str | None:
        i = self.rank.get(code, 0) + 1
        return self.codes[i] if i < len(self.codes) else None

    def higher(self, a: str, b: str) -> bool:
        """Is level ``a`` above level ``b``?"""
        return self.rank.get(a, 0) > self.rank.get(b, 0)
