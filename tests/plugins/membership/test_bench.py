"""The membership bench scenario, small: both sides place, the member side spends points, and
the center adds two statements per placement."""

from __future__ import annotations

import uuid

from mallcore.bench import membership


class Target:
    """Fresh SQLite files in the test's folder (the bench's own target does the same)."""

    def __init__(self, folder) -> None:
        self.folder = folder

    def fresh(self) -> tuple[str, None]:
        return f"sqlite:///{self.folder / f'{uuid.uuid4().hex[:8]}.db'}", None


def test_the_in_process_scenario_compares_both_sides_and_counts_two_more_statements(tmp_path):
    result = membership.in_process(Target(tmp_path), orders=50, rounds=1)
    assert result["orders"] == 200  # four batches of fifty on each side
    assert result["extra_statements"] == 2
    assert result["statements"]["on"]["1_line"] == result["statements"]["off"]["1_line"] + 2
    assert set(result["us_per_order"]) == {"off", "on"} and result["ledger_consistent"] is True
    assert "+2" in membership.line(
        {
            "in_process": result,
            "http": {
                "off": {"per_second": 1, "p50_ms": 1},
                "on": {"per_second": 1, "p50_ms": 1},
                "slower": 0.0,
            },
        }
    )
