"""Clients that connect from an IP address of the test's choosing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from mallcore.kernel.http import create_app
from mallcore.testing import Client

from .support import PeerApp


class Peers:
    def __init__(self, mallcore: Any) -> None:
        self.mallcore = mallcore
        self.transports: dict[int, TestClient[Any]] = {}

    def client(
        self, kernel: Any, ip: str, roles: str = "customer", subject: str | None = None, **headers: str
    ) -> Client:
        """A client of ``roles``/``subject`` whose requests come from ``ip``."""
        transport = self.transports.get(id(kernel))
        if transport is None:
            transport = TestClient(
                PeerApp(create_app(kernel, lifecycle=False)), raise_server_exceptions=False
            )  # type: ignore[arg-type]
            transport.__enter__()
            self.transports[id(kernel)] = transport
        token = self.mallcore.token(kernel, roles, subject)
        client = Client(transport, token, kernel)
        original = client.request

        def request(method: str, url: str, **kwargs: Any) -> Any:
            kwargs["headers"] = {"X-Test-Peer": ip, **headers, **(kwargs.get("headers") or {})}
            return original(method, url, **kwargs)

        client.request = request  # type: ignore[method-assign]
        return client

    def close(self) -> None:
        for transport in self.transports.values():
            transport.__exit__(None, None, None)


@pytest.fixture
def peers(mallcore: Any) -> Iterator[Peers]:
    p = Peers(mallcore)
    try:
        yield p
    finally:
        p.close()
