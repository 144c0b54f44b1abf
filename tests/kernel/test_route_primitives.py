"""The primitives every center's routes share: guards, the visibility filter,
idempotent writes and the center router, exercised through a small center
written the way a center's routes should be."""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec
import pytest
import sqlalchemy as sa
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from mallcore.kernel import Caller, Center, Kernel, NotFound, Principal, utcnow, visible_to
from mallcore.kernel.http import Idempotent, Reply, center_router, platform, roles
from tests.helpers import count

metadata = sa.MetaData()
notes = sa.Table(
    "memo_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(64), nullable=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


class NoteIn(msgspec.Struct, forbid_unknown_fields=True):
    shop: str
    text: str
    customer: str | None = None


class NoteView(msgspec.Struct):
    id: int
    shop: str
    customer: str | None
    text: str


class MemoCenter(Center):
    name = "memo"
    tables = metadata

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    from mallcore.kernel import hookimpl

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        return [center_router(self, [NoteController, PlatformController])]


Memo: TypeAlias = NamedDependency[MemoCenter]


class NoteController(Controller):
    path = "/notes"
    guards = [roles("merchant", "customer")]

    @post("/", status_code=201, sync_to_thread=True, guards=[roles("merchant")])
    def create(
        self, data: JSONBody[NoteIn], principal: Caller, memo: Memo, idempotent: Idempotent
    ) -> Response[NoteView]:
        def work(reply: Reply) -> None:
            if not principal.can_act_for_shop(data.shop, "merchant"):
                raise NotFound("no such shop", code="shop_not_found")
            memo.writes += 1
            with memo.kernel.db.transaction() as conn:
                note_id = conn.execute(
                    notes.insert()
                    .values(shop=data.shop, customer=data.customer, text=data.text, at=utcnow())
                    .returning(notes.c.id)
                ).scalar_one()
                reply(conn, NoteView(note_id, data.shop, data.customer, data.text), 201)

        return idempotent(data, work)

    @get("/", sync_to_thread=True)
    def list(self, principal: Caller, memo: Memo) -> list[NoteView]:
        c = notes.c
        with memo.kernel.db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(c.id, c.shop, c.customer, c.text)
                .where(visible_to(principal, c.shop, c.customer))
                .order_by(c.id)
            )
            return [NoteView(*row) for row in rows]


class PlatformController(Controller):
    path = "/platform"
    guards = [platform("merchant")]

    @get("/", sync_to_thread=False)
    def whoami(self, principal: Caller) -> dict[str, Any]:
        return {"subject": principal.subject}


@pytest.fixture
def memo(mallcore):
    return mallcore.kernel(extra=[MemoCenter])


def test_a_route_guard_refuses_a_role_before_reading_the_body(mallcore, memo):
    alice = mallcore.client(memo, "customer", "alice")
    refused = alice.post("/memo/notes", json={"not": "a note"})
    assert (refused.status_code, refused.json()["code"]) == (403, "role_required")
    finance = mallcore.client(memo, "finance", "f1", shop="s1")
    assert finance.get("/memo/notes").json()["code"] == "role_required"
    anonymous = mallcore.client(memo, None).get("/memo/notes")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")


def test_platform_routes_take_admins_and_staff_of_no_shop_only(mallcore, memo):
    shop_staff = mallcore.client(memo, "merchant", "m1", shop="s1")
    refused = shop_staff.get("/memo/platform")
    assert (refused.status_code, refused.json()["code"]) == (403, "platform_only")
    assert mallcore.client(memo, "merchant", "pm", platform=True).get("/memo/platform").json() == {
        "subject": "pm"
    }
    assert mallcore.client(memo, "admin", "root").get("/memo/platform").status_code == 200
    customer = mallcore.client(memo, "customer", "alice").get("/memo/platform")
    assert customer.json()["code"] == "role_required"


def test_lists_show_each_caller_exactly_what_they_may_see(mallcore, memo):
    platform_merchant = mallcore.client(memo, "merchant", "pm", platform=True)
    for shop, customer in [("s1", "alice"), ("s1", "bob"), ("s2", "alice"), ("s2", None)]:
        created = platform_merchant.post(
            "/memo/notes", json={"shop": shop, "text": "x", "customer": customer}
        )
        assert created.status_code == 201, created.text

    def seen(roles: Any, subject: str, shop: str | None = None) -> list[tuple[str, str | None]]:
        staff = roles in ("merchant", "warehouse", "finance", "risk")
        rows = mallcore.client(memo, roles, subject, shop=shop, platform=staff and shop is None)
        rows = rows.get("/memo/notes").json()
        return [(row["shop"], row["customer"]) for row in rows]

    everything = [("s1", "alice"), ("s1", "bob"), ("s2", "alice"), ("s2", None)]
    assert everything == seen("admin", "root")
    assert everything == seen("merchant", "pm")
    assert seen("merchant", "m1", "s1") == [("s1", "alice"), ("s1", "bob")]
    assert seen("customer", "alice") == [("s1", "alice"), ("s2", "alice")]
    assert seen("customer", "bob") == [("s1", "bob")]


@pytest.mark.parametrize(
    ("principal", "visible"),
    [
        (Principal("root", frozenset({"admin"})), {1, 2, 3}),
        (Principal("w", frozenset({"warehouse"}), "s2"), {3}),
        (Principal("alice", frozenset({"customer"})), {1, 3}),
        (Principal("alice", frozenset({"customer", "merchant"}), "s1"), {1, 2, 3}),
        (Principal("x", frozenset()), set()),
    ],
)
def test_the_visibility_filter_agrees_with_can_see(principal, visible):
    rows = [(1, "s1", "alice"), (2, "s1", "bob"), (3, "s2", "alice")]
    table = sa.table("t", sa.column("id"), sa.column("shop"), sa.column("customer"))
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER, shop TEXT, customer TEXT)"))
        conn.execute(sa.text("INSERT INTO t VALUES (:i, :s, :c)"), [dict(i=i, s=s, c=c) for i, s, c in rows])
        where = visible_to(principal, table.c.shop, table.c.customer)
        got = {r.id for r in conn.execute(sa.select(table.c.id).where(where))}
    assert visible == got
    assert visible == {i for i, s, c in rows if principal.can_see(s, c)}


def test_an_idempotent_write_runs_once_per_key_and_scope(mallcore, memo):
    merchant = mallcore.client(memo, "merchant", "m1", shop="s1")
    center = memo.centers["memo"]
    body = {"shop": "s1", "text": "restock"}
    first = merchant.post("/memo/notes", json=body, headers={"Idempotency-Key": "n-1"})
    again = merchant.post("/memo/notes", json=body, headers={"Idempotency-Key": "n-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.content == again.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (center.writes, count(memo, "memo_notes")) == (1, 1)
    other = merchant.post("/memo/notes", json={**body, "text": "else"}, headers={"Idempotency-Key": "n-1"})
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    # a refused write stores nothing: the key is still free
    foreign = merchant.post(
        "/memo/notes", json={"shop": "s2", "text": "x"}, headers={"Idempotency-Key": "n-2"}
    )
    assert foreign.status_code == 404
    assert count(memo, "idempotency_keys") == 1


def test_the_openapi_schema_documents_the_idempotency_header_on_write_routes(mallcore, memo):
    schema = mallcore.client(memo, "admin").get("/schema/openapi.json").json()
    for path in ("/memo/notes", "/orders"):
        names = [p["name"] for p in schema["paths"][path]["post"].get("parameters", [])]
        assert "Idempotency-Key" in names, path


def test_a_center_router_registered_twice_serves_in_both_apps():
    """A center router is registered without a copy the first time (app start-up cost); a second
    registration, in another app, gets its own copy: each app answers with its own layers
    (here an app-level dependency), not the first app's."""
    from litestar import Litestar
    from litestar.di import Provide
    from litestar.testing import TestClient

    class Thing:
        name = "thing"

    @get("/ping", sync_to_thread=False)
    def ping(thing: NamedDependency[Thing], where: NamedDependency[str]) -> dict[str, str]:
        return {"from": thing.name, "where": where}

    def app(where: str) -> Litestar:
        return Litestar(
            route_handlers=[router], dependencies={"where": Provide(lambda: where, sync_to_thread=False)}
        )

    router = center_router(Thing(), [ping])
    first, second = app("first"), app("second")
    with TestClient(first) as a, TestClient(second) as b:
        assert a.get("/thing/ping").json() == {"from": "thing", "where": "first"}
        assert b.get("/thing/ping").json() == {"from": "thing", "where": "second"}
