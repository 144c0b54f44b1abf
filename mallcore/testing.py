"""``mallcore.testing``: the pytest plugin integrators use to test their centers.

Installed with mallcore (registered under ``pytest11``), it gives one
fixture, ``mallcore``, a :class:`Kit`::

    def test_fee_is_added(mallcore):
        kernel = mallcore.kernel(centers=["catalog", "payment"], extra=[FeeCenter],
                                 settings={"fee": {"amount": 150}})
        admin = mallcore.client(kernel, "admin")
        mallcore.product(kernel, shop="s1", skus=[("TEE-1", 1999)])
        alice = mallcore.client(kernel, "customer", "alice")
        order = alice.post("/orders", json={"shop": "s1", "lines": [{"sku": "TEE-1", "quantity": 1}]}).json()
        assert order["total"] == 1999 + 150

- ``kit.kernel(...)``: a kernel with the chosen centers and settings on a
  throw-away database (a SQLite file in the test's temporary folder, or a
  fresh schema on the PostgreSQL server named by
  ``MALLCORE_TEST_DATABASE_URL``), tables created, jobs and rate limits off.
- ``kit.client(kernel, role, subject, shop=...)``: an HTTP test client
  authenticated as a principal of that role (staff: ``shop=`` or
  ``platform=True``).
- The TMS sandbox carrier's routes (off by default) are on in test kernels
  unless ``settings={"tms": {"sandbox_routes": False}}``.
- ``extra=[MyCenter]``: temporary centers, registered for this kernel only,
  with no entry point.

Everything is torn down at the end of the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from mallcore import testdb
from mallcore.kernel import Kernel, Principal
from mallcore.kernel.config import load_config
from mallcore.kernel.http.app import create_app

TEST_DATABASE_ENV = "MALLCORE_TEST_DATABASE_URL"
BASIC_CENTERS = ("catalog", "payment")


def test_database_url() -> str | None:
    """The PostgreSQL server tests run against, if ``MALLCORE_TEST_DATABASE_URL`` is set."""
    return os.environ.get(TEST_DATABASE_ENV) or None


test_database_url.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name

requires_postgres = pytest.mark.skipif(
    not test_database_url(),
    reason="needs PostgreSQL: set MALLCORE_TEST_DATABASE_URL (the CI sets it for its second run)",
)


class Client:
    """An httpx-style client that sends one principal's bearer token."""

    def __init__(self, transport: TestClient[Any], token: str | None, kernel: Kernel | None = None) -> None:
        self.transport = transport
        self.token = token
        # the kernel behind the app, for tests that need its settings (a carrier's secret)
        self.kernel = kernel

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.transport.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.request("DELETE", url, **kwargs)


class Kit:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._kernels: list[Kernel] = []
        self._apps: dict[int, TestClient[Any]] = {}
        self._clients: list[TestClient[Any]] = []
        # (server url, schema, (tables key, metadatas) when the schema may be kept for the next test)
        self._schemas: list[tuple[str, str, tuple[str, list[sa.MetaData]] | None]] = []
        self._seq = 0

    # -- kernels -------------------------------------------------------------

    def database(self) -> dict[str, Any]:
        """A fresh database: a SQLite file, or a new schema on the test PostgreSQL."""
        database = self._unmade_database()
        self._make(database)
        return database

    def _unmade_database(self) -> dict[str, Any]:
        self._seq += 1
        url = test_database_url()
        if not url:
            return {"url": f"sqlite:///{self.tmp_path / f'mallcore-{self._seq}.db'}"}
        return {"url": url, "schema": f"t_{uuid.uuid4().hex[:12]}"}

    def _make(self, database: dict[str, Any]) -> None:
        if "schema" in database:
            testdb.pg_create(database["url"], database["schema"])
            self._schemas.append((database["url"], database["schema"], None))

    def _make_with_tables(self, kernel: Kernel, database: dict[str, Any]) -> None:
        """Every enabled center's tables, from a template or a kept schema when an earlier test
        had the same tables (:mod:`mallcore.testdb`), else created."""
        metadatas = list(kernel.metadatas.values())
        key = testdb.tables_key(kernel.db.engine.dialect, metadatas)
        if "schema" in database:
            url, schema = database["url"], database["schema"]
            if not testdb.databases.pg_take(url, key, schema):
                testdb.pg_create(url, schema)
                kernel.create_schema()
                testdb.databases.pg_created(url, schema)
            self._schemas.append((url, schema, (key, metadatas)))
        else:
            path = Path(sa.make_url(database["url"]).database or "")
            if not testdb.databases.sqlite_from_template(key, path):
                for metadata in metadatas:
                    metadata.create_all(kernel.db.engine)
                testdb.databases.sqlite_keep_template(key, path)
        kernel._ensure_secret()

    def kernel(
        self,
        centers: Sequence[str] = BASIC_CENTERS,
        *,
        settings: dict[str, dict[str, Any]] | None = None,
        extra: Sequence[Any] = (),
        config: dict[str, Any] | None = None,
        migrate: bool = False,
    ) -> Kernel:
        """A kernel with ``centers`` enabled (plus ``extra`` center objects or classes)."""
        database = self._unmade_database()
        made = dict(database)
        overrides: dict[str, Any] = {
            "database": database,
            "jobs": {"enabled": False},
            # every test client comes from one address: limits only where a test turns them on
            "http": {"limits": {"enabled": False}},
            "centers": {"enabled": list(centers) + [c.name for c in extra if c.name not in centers]},
        }
        for name, values in (settings or {}).items():
            overrides["centers"][name] = values
        if "tms" in overrides["centers"]["enabled"]:
            # Tests play the sandbox carrier by hand; the route is off by default.
            overrides["centers"]["tms"] = {"sandbox_routes": True, **overrides["centers"].get("tms", {})}
        if config:
            _merge(overrides, config)
        kernel = Kernel(load_config(overrides=overrides, env={}), centers=extra)
        own = overrides["database"] == made  # else the test named a database of its own
        if migrate:
            if own:
                self._make(database)
            kernel.upgrade()
        elif own:
            self._make_with_tables(kernel, database)
        else:
            kernel.create_schema()
        kernel.startup(jobs=False)
        self._kernels.append(kernel)
        return kernel

    # -- clients -------------------------------------------------------------

    def token(
        self,
        kernel: Kernel,
        roles: str | Sequence[str],
        subject: str | None = None,
        shop: str | None = None,
        *,
        platform: bool = False,
    ) -> str:
        """A bearer token for a principal, valid in ``kernel`` for this test.

        Staff need ``shop=`` or ``platform=True`` (the kernel refuses a staff
        token with neither, 401 ``invalid_token``, as it would in production).
        """
        roles = (roles,) if isinstance(roles, str) else tuple(roles)
        subject = subject or f"{roles[0]}-{shop or ('platform' if platform else 'any')}"
        token = f"test-{uuid.uuid4().hex}"
        kernel.auth.static[token] = Principal(subject, frozenset(roles), shop, platform)
        return token

    def app(self, kernel: Kernel) -> Any:
        return self._transport(kernel).app

    def _transport(self, kernel: Kernel) -> TestClient[Any]:
        # One test client (one app, one lifespan) per kernel, shared by every
        # principal's Client; it is safe to use from many threads at once.
        client = self._apps.get(id(kernel))
        if client is None:
            client = TestClient(create_app(kernel, lifecycle=False), raise_server_exceptions=False)
            client.__enter__()
            self._apps[id(kernel)] = client
            self._clients.append(client)
        return client

    def client(
        self,
        kernel: Kernel,
        roles: str | Sequence[str] | None = "customer",
        subject: str | None = None,
        *,
        shop: str | None = None,
        platform: bool = False,
    ) -> Client:
        """An HTTP client for ``kernel``'s app; ``roles=None`` sends no token.

        Staff work for ``shop``, or for the whole platform with ``platform=True``.
        """
        token = None if roles is None else self.token(kernel, roles, subject, shop, platform=platform)
        return Client(self._transport(kernel), token, kernel)

    # -- data ------------------------------------------------------------------

    def product(
        self,
        kernel: Kernel,
        *,
        shop: str = "s1",
        skus: Sequence[tuple[str, int] | tuple[str, int, int]] = (("SKU-1", 1000),),
        name: str = "Test product",
    ) -> dict[str, Any]:
        """Create a product through ``POST /catalog/products`` as an admin."""
        admin = self.client(kernel, "admin", "kit-admin")
        body = {
            "name": name,
            "shop": shop,
            "skus": [{"code": s[0], "price": s[1], "weight_grams": s[2] if len(s) > 2 else 0} for s in skus],
        }
        response = admin.post("/catalog/products", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    # -- teardown ----------------------------------------------------------------

    def close(self) -> None:
        for client in self._clients:
            try:
                client.__exit__(None, None, None)
            except Exception:
                pass
        for kernel in self._kernels:
            kernel.close()
        for url, schema, kept in self._schemas:
            if kept is None:
                testdb.pg_drop(url, schema)
            else:
                testdb.databases.pg_give_back(url, kept[0], schema, kept[1])


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@pytest.fixture
def mallcore(tmp_path: Path) -> Iterator[Kit]:
    """A :class:`Kit` for building kernels and clients; everything is torn down after the test."""
    kit = Kit(tmp_path)
    try:
        yield kit
    finally:
        kit.close()


def pytest_report_header(config: pytest.Config) -> str:
    url = test_database_url()
    if url:
        return f"mallcore: tests run against PostgreSQL ({sa.make_url(url).render_as_string(hide_password=True)})"
    return "mallcore: tests run against SQLite (set MALLCORE_TEST_DATABASE_URL for PostgreSQL)"
