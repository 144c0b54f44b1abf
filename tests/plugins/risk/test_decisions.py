"""Decision rows: every evaluation is stored with its facts and signals. An allowed
placement's row is written by the writer thread after the placement (a review's in
the stage); readers in the worker see it at once; a shutdown writes what waits; a
database that refuses the writer loses nothing."""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel import utcnow
from mallcore.plugins.risk import tables as t

from .support import order, risk_kernel, rule, staff

CENTERS = ("catalog", "payment", "risk")


def stored(kernel) -> list[tuple[int | None, str, str]]:
    """The decision rows in the database, without asking the writer to hurry."""
    d = t.decisions.c
    with kernel.db.transaction(write=False) as conn:
        return [tuple(r) for r in conn.execute(sa.select(d.order_id, d.stage, d.action).order_by(d.id))]


def test_an_allowed_placement_s_decision_is_written_after_it_and_listed_at_once(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS, risk={"decisions": {"flush_ms": 60_000}})
    placed = mallcore.client(kernel, "customer", "alice").post("/orders", json=order()).json()
    assert stored(kernel) == []  # with the writer, not in the placement's transaction
    listed = staff(mallcore, kernel).get("/risk/decisions", params={"order_id": placed["id"]}).json()
    assert [(d["stage"], d["action"]) for d in listed] == [("place", "allow")]
    decision = listed[0]
    assert decision["facts"]["order"]["total"] == placed["total"]
    assert decision["facts"]["customer"]["id"] == "alice"
    assert decision["signals"]["customer_orders_1h"] == 1
    assert stored(kernel) == [(placed["id"], "place", "allow")]


def test_a_held_placement_s_decision_is_written_in_its_stage(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS, risk={"decisions": {"flush_ms": 60_000}})
    rule(staff(mallcore, kernel), "order.total >= 1000", "review")
    placed = mallcore.client(kernel, "customer", "alice").post("/orders", json=order()).json()
    assert placed["hold"] == "risk_review"
    assert stored(kernel) == [(placed["id"], "place", "review")]


def test_with_flush_ms_zero_every_decision_is_written_in_its_stage(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS, risk={"decisions": {"flush_ms": 0}})
    placed = mallcore.client(kernel, "customer", "alice").post("/orders", json=order()).json()
    assert stored(kernel) == [(placed["id"], "place", "allow")]


def test_beyond_max_pending_placements_write_their_own_decision(mallcore):
    kernel = risk_kernel(
        mallcore, centers=CENTERS, risk={"decisions": {"flush_ms": 60_000, "max_pending": 1}}
    )
    alice = mallcore.client(kernel, "customer", "alice")
    first, second = (alice.post("/orders", json=order()).json() for _ in range(2))
    assert stored(kernel) == [(second["id"], "place", "allow")]
    kernel.centers["risk"].decisions.close()  # a clean shutdown writes what waits
    assert sorted(stored(kernel)) == [(first["id"], "place", "allow"), (second["id"], "place", "allow")]


def test_a_database_refusing_the_writer_loses_no_decision(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS, risk={"decisions": {"flush_ms": 10}})
    log = kernel.centers["risk"].decisions
    real, failures = log._insert_many.execute, []

    def refuse_once(conn, rows):
        if not failures:
            failures.append(len(rows))
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real(conn, rows)

    log._insert_many.execute = refuse_once
    alice = mallcore.client(kernel, "customer", "alice")
    ids = [alice.post("/orders", json=order()).json()["id"] for _ in range(3)]
    log.flush()
    assert failures and sorted(o for o, _, _ in stored(kernel)) == ids


def test_a_credit_score_another_worker_changed_is_seen_by_the_next_placement(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS)
    rule(staff(mallcore, kernel), "customer.credit < 500", "review", name="low credit")
    alice = mallcore.client(kernel, "customer", "alice")
    assert alice.post("/orders", json=order()).json()["hold"] is None  # 600: the profile is cached
    # another worker lowers the score (as its review rejection would): row and event
    p = t.profiles.c
    with kernel.db.transaction() as conn:
        conn.execute(t.profiles.update().where(p.customer == "alice").values(credit=450))
        conn.execute(
            t.credit_events.insert().values(
                customer="alice", kind="review_rejected", delta=-150, credit=450, actor="risk-2", at=utcnow()
            )
        )
    assert alice.post("/orders", json=order()).json()["hold"] == "risk_review"
