"""Signing in to the console as a browser does: a cookie jar, the CSRF token of each form."""

from __future__ import annotations

import re
from typing import Any

from litestar.testing import TestClient

from mallcore.kernel import Kernel

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


class Browser:
    """One person's browser on the console: its own cookies, forms posted with their token."""

    def __init__(self, kit: Any, kernel: Kernel) -> None:
        # Not entered: the app's lifespan belongs to the kit's own client.
        self.client: TestClient[Any] = TestClient(kit.app(kernel), raise_server_exceptions=False)
        self.kit, self.kernel = kit, kernel

    def sign_in(self, roles: str, subject: str, shop: str | None = None) -> Browser:
        token = self.kit.token(self.kernel, roles, subject, shop)
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
