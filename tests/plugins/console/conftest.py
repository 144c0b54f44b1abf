"""Signing in to the console as a browser does (a cookie jar, the CSRF token of each form), and
the console served on a free port for the browser tests."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from litestar.testing import TestClient

from mallcore.kernel import Kernel
from mallcore.kernel.http import create_app

from .story import Story

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


class Browser:
    """One person's browser on the console: its own cookies, forms posted with their token."""

    def __init__(self, kit: Any, kernel: Kernel) -> None:
        # Not entered: the app's lifespan belongs to the kit's own client.
        self.client: TestClient[Any] = TestClient(kit.app(kernel), raise_server_exceptions=False)
        self.kit, self.kernel = kit, kernel

    def sign_in(
        self, roles: str, subject: str, shop: str | None = None, *, platform: bool | None = None
    ) -> Browser:
        """Sign in; staff without ``shop`` are platform staff unless ``platform=False``."""
        if platform is None:
            platform = roles in ("merchant", "warehouse", "finance", "risk") and shop is None
        token = self.kit.token(self.kernel, roles, subject, shop, platform=platform)
        r = self.post("/console/sign-in", {"token": token, "next": "/console/"})
        assert r.status_code == 303 and r.headers["location"] == "/console/", r.text
        return self

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, follow_redirects=False, **kw)

    def csrf(self, page: str = "/console/sign-in") -> str:
        """The CSRF token a page's forms carry (the sign-in page needs no session)."""
        found = CSRF.search(self.client.get(page).text)
        assert found, f"no CSRF token on {page}"
        return found.group(1)

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kw: Any) -> Any:
        body = dict(data or {})
        if csrf:
            body["_csrf_token"] = self.csrf()
        return self.client.post(path, data=body, follow_redirects=False, **kw)


def serve(kernel: Kernel) -> tuple[str, uvicorn.Server, threading.Thread]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(kernel, lifecycle=False), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture
def running(mallcore: Any) -> Iterator[tuple[Story, str]]:
    story = Story(mallcore)
    base, server, thread = serve(story.kernel)
    try:
        yield story, base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
