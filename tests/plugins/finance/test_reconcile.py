"""对账: the sandbox's own statement against the journal, with faults injected."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from click.testing import CliRunner

from mallcore.kernel.cli import State
from mallcore.plugins.finance import tables as ft
from mallcore.plugins.finance.cli import reconcile

from .kit import Shop, approve_all


def busy_day(shop: Shop) -> list[dict]:
    """Payments, partial refunds (reviewed), a cancellation: a day's worth of provider traffic."""
    orders = [shop.paid_order([("TEE", 3), ("MUG", 1)]) for _ in range(4)]
    orders.append(shop.paid_order([("CAP", 2)], shop="s2"))
    a, b, c, _, e = orders
    shop.refund(a["id"], [(a["lines"][0]["id"], 1)])
    shop.refund(b["id"], [(b["lines"][1]["id"], 1)])
    shop.refund(e["id"], [(e["lines"][0]["id"], 1)], requester=shop.merchant2, approved_by="m2")
    approve_all(shop)
    shop.alice.post(f"/orders/{c['id']}/cancel", json={"reason": "changed my mind"})
    return orders


def statement(shop: Shop) -> list[str]:
    day = datetime.now(UTC).date().isoformat()
    r = shop.platform.get("/payment/statements/sandbox", params={"date": day})
    assert r.status_code == 200, r.text
    return r.text.splitlines()


def found(run: dict) -> set[tuple[str, str]]:
    return {(m["kind"], m["reference"]) for m in run["items"]}


def test_a_clean_statement_matches_every_line(mallcore):
    shop = Shop(mallcore, fake_clock=False)
    busy_day(shop)
    lines = statement(shop)
    assert len(lines) == 1 + 5 + 4  # header, 5 charges, 3 reviewed refunds + 1 cancellation
    r = shop.platform.post(
        "/finance/reconciliations", content="\n".join(lines), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 201, r.text
    run = r.json()
    assert (run["rows"], run["matched"], run["mismatches"], run["items"]) == (9, 9, 0, [])


def test_each_injected_fault_is_found_and_nothing_else(mallcore):
    shop = Shop(mallcore, fake_clock=False)
    busy_day(shop)
    header, *rows = statement(shop)
    cells = [row.split(",") for row in rows]
    charges = [c for c in cells if c[1] == "charge"]
    refunds = [c for c in cells if c[1] == "refund"]
    dropped, wrong, doubled = charges[0], refunds[0], charges[1]
    wrong_line = list(wrong)
    wrong_line[4] = str(int(wrong[4]) + 1)
    unknown = [wrong[0], "charge", "sbx_pay_not_ours", "", "1234", "CNY"]
    faulty = [c for c in cells if c is not dropped and c is not wrong] + [wrong_line, doubled, unknown]
    body = "\n".join([header] + [",".join(c) for c in faulty])

    r = shop.platform.post(
        "/finance/reconciliations",
        files={"file": ("sandbox.csv", body.encode(), "text/csv")},
        params={"provider": "sandbox"},
    )
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["filename"] == "sandbox.csv"
    assert found(run) == {
        ("missing_theirs", dropped[2]),
        ("amount_differs", wrong[2]),
        ("duplicate", doubled[2]),
        ("missing_ours", "sbx_pay_not_ours"),
    }
    by_kind = {m["kind"]: m for m in run["items"]}
    assert by_kind["amount_differs"]["their_amount"] == -(int(wrong[4]) + 1)
    assert by_kind["amount_differs"]["our_amount"] == -int(wrong[4])
    assert by_kind["duplicate"]["occurrences"] == 2
    assert by_kind["missing_theirs"]["our_amount"] == int(dropped[4])
    assert by_kind["missing_theirs"]["order_id"] is not None
    assert run["matched"] == len(rows) - 2  # the dropped and the wrong line
    assert run["rows"] == len(faulty)


def test_mismatches_wait_in_a_queue_until_resolved_with_a_note(mallcore):
    shop = Shop(mallcore, fake_clock=False)
    busy_day(shop)
    header, *rows = statement(shop)
    s2_charge = next(r for r in rows if r.split(",")[4] == "5000")  # the s2 order
    s1_charge = next(r for r in rows if r.split(",")[1] == "charge" and r is not s2_charge)
    extra = rows[0].split(",")[0] + ",refund,sbx_rfd_stray,sbx_pay_x,100,CNY"
    keep = [r for r in rows if r not in (s1_charge, s2_charge)] + [extra]
    run = shop.platform.post(
        "/finance/reconciliations", content="\n".join([header, *keep]), headers={"content-type": "text/csv"}
    ).json()
    assert len(run["items"]) == 3
    queue = shop.platform.get("/finance/mismatches").json()
    assert {m["kind"] for m in queue} == {"missing_theirs", "missing_ours"}
    assert {m["shop"] for m in queue} == {"s1", "s2", None}

    # A shop's finance user sees and resolves its own shop's only.
    mine = shop.fin1.get("/finance/mismatches").json()
    assert [m["shop"] for m in mine] == ["s1"]
    assert [m["shop"] for m in shop.fin1.get(f"/finance/reconciliations/{run['id']}").json()["items"]] == [
        "s1"
    ]
    stray = next(m for m in queue if m["kind"] == "missing_ours")
    assert shop.fin1.post(f"/finance/mismatches/{stray['id']}/resolve", json={"note": "x"}).status_code == 404
    r = shop.fin1.post(
        f"/finance/mismatches/{mine[0]['id']}/resolve", json={"note": "provider settles it tomorrow"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["resolved_by"], r.json()["note"]) == (
        "resolved",
        "fin-s1",
        "provider settles it tomorrow",
    )
    again = shop.platform.post(f"/finance/mismatches/{mine[0]['id']}/resolve", json={"note": "again"})
    assert again.status_code == 409 and again.json()["code"] == "mismatch_resolved"
    r = shop.platform.post(f"/finance/mismatches/{stray['id']}/resolve", json={"note": ""})
    assert r.status_code == 400
    assert len(shop.platform.get("/finance/mismatches").json()) == 2
    resolved = shop.platform.get("/finance/mismatches", params={"status": "resolved"}).json()
    assert [m["id"] for m in resolved] == [mine[0]["id"]]
    runs = shop.platform.get("/finance/reconciliations").json()
    assert [(x["id"], x["mismatches"]) for x in runs] == [(run["id"], 3)]


def test_only_platform_finance_imports_and_a_bad_file_writes_nothing(mallcore):
    shop = Shop(mallcore, fake_clock=False)
    body = "occurred_at,type,reference,original_reference,amount,currency\n2030-01-01T00:00:00Z,charge,r1,,100,CNY\n"
    r = shop.fin1.post("/finance/reconciliations", content=body, headers={"content-type": "text/csv"})
    assert r.status_code == 403 and r.json()["code"] == "platform_only"
    assert shop.merchant.post("/finance/reconciliations", content=body).status_code == 403
    for bad, line in (
        (body + "2030-01-01T00:00:00Z,charge,r2,,ten,CNY\n", 3),
        (body + "yesterday,charge,r2,,10,CNY\n", 3),
        (body.replace("charge", "chargeback"), 2),
    ):
        r = shop.platform.post("/finance/reconciliations", content=bad, headers={"content-type": "text/csv"})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "statement_invalid" and r.json()["line"] == line
    for row in (
        "2030-01-01T00:00:00Z,charge,r2,,99999999999999999999999,CNY",
        "2030-01-01T00:00:00Z,charge,r2,,1_000,CNY",
        "2030-01-01T00:00:00Z,charge,r\x002,,10,CNY",
        "9999-12-31T23:00:00-05:00,charge,r2,,10,CNY",
        "9999-12-31T23:00:00Z,charge,r2,,10,CNY",
        "2030-01-01T00:00:00Z,charge,r2,,10,人民币",
    ):
        r = shop.platform.post(
            "/finance/reconciliations",
            content=(body + row + "\n").encode(),
            headers={"content-type": "text/csv"},
        )
        assert r.status_code == 422, (row, r.text)
        assert r.json()["code"] == "statement_invalid" and r.json()["line"] == 3, (row, r.text)
    r = shop.platform.post(
        "/finance/reconciliations",
        content=body,
        params={"date": "9999-12-31"},
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 422 and r.json()["code"] == "statement_date_invalid", r.text
    r = shop.platform.post("/finance/reconciliations", content="a,b,c\n1,2,3\n")
    assert r.status_code == 422 and r.json()["code"] == "statement_invalid"
    r = shop.platform.post("/finance/reconciliations", content=body.splitlines()[0] + "\n")
    assert r.status_code == 422 and r.json()["code"] == "statement_date_required"
    assert shop.rows(sa.select(sa.func.count()).select_from(ft.recon_runs))[0][0] == 0
    # An empty statement for a day with traffic of ours: all of it is missing on their side.
    shop.paid_order([("TEE", 1)])
    day = datetime.now(UTC).date().isoformat()
    r = shop.platform.post(
        "/finance/reconciliations", content=body.splitlines()[0] + "\n", params={"date": day}
    )
    assert r.status_code == 201 and [m["kind"] for m in r.json()["items"]] == ["missing_theirs"]


def test_the_cli_reconciles_a_file_with_a_progress_bar(mallcore, tmp_path):
    shop = Shop(mallcore, fake_clock=False)
    busy_day(shop)
    header, *rows = statement(shop)
    path = tmp_path / "sandbox.csv"
    path.write_text("\n".join([header, *rows[1:]]) + "\n")
    state = State(None)
    state._kernel = shop.kernel
    result = CliRunner().invoke(reconcile, [str(path), "--provider", "sandbox"], obj=state)
    assert result.exit_code == 1, result.output
    assert "1 mismatches" in result.output and "missing_theirs" in result.output
    assert rows[0].split(",")[2] in result.output
    path.write_text("\n".join([header, *rows]) + "\n")
    result = CliRunner().invoke(reconcile, [str(path), "--quiet"], obj=state)
    assert result.exit_code == 0, result.output
    assert f"{len(rows)} matched, 0 mismatches" in result.output
    runs = shop.platform.get("/finance/reconciliations").json()
    assert [r["created_by"] for r in runs] == ["cli", "cli"]


def test_a_shops_finance_user_sees_its_own_figures_of_a_run(mallcore):
    shop = Shop(mallcore, fake_clock=False)
    busy_day(shop)  # s1: 4 charges, 2 refunds, 1 cancellation; s2: 1 charge, 1 refund
    header, *rows = statement(shop)
    s2_charge = next(r for r in rows if r.split(",")[4] == "5000")
    stray = rows[0].split(",")[0] + ",refund,sbx_rfd_stray,sbx_pay_x,100,CNY"
    body = "\n".join([header, *[r for r in rows if r is not s2_charge], stray])
    r = shop.platform.post(
        "/finance/reconciliations", files={"file": ("platform-2030-01-10.csv", body.encode(), "text/csv")}
    )
    assert r.status_code == 201, r.text
    run = r.json()
    # platform finance: the whole file
    assert (run["filename"], run["rows"], run["matched"], run["mismatches"]) == (
        "platform-2030-01-10.csv",
        9,
        8,
        2,
    )
    s1 = shop.fin1.get(f"/finance/reconciliations/{run['id']}").json()
    assert (s1["filename"], s1["rows"], s1["matched"], s1["mismatches"], s1["items"]) == (None, 7, 7, 0, [])
    s2 = shop.fin2.get(f"/finance/reconciliations/{run['id']}").json()
    assert (s2["filename"], s2["rows"], s2["matched"], s2["mismatches"]) == (None, 1, 1, 1)
    assert [(m["kind"], m["shop"]) for m in s2["items"]] == [("missing_theirs", "s2")]
    assert shop.platform.get(f"/finance/reconciliations/{run['id']}").json() == run
    # a run recorded before shops' figures were kept is the platform's alone
    with shop.kernel.db.transaction() as conn:
        conn.execute(ft.recon_runs.update().where(ft.recon_runs.c.id == run["id"]).values(by_shop=None))
    r = shop.fin1.get(f"/finance/reconciliations/{run['id']}")
    assert r.status_code == 404 and r.json()["code"] == "run_not_found"
    assert shop.platform.get(f"/finance/reconciliations/{run['id']}").status_code == 200
