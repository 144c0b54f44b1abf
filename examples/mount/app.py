"""mallcore mounted into a host's own Litestar app, beside the host's routes.

The host keeps its app, its routes and its middleware; mallcore's routes
live under ``/shop`` with their own error handling and body limit.

    uv run uvicorn examples.mount.app:app --port 8000
    curl localhost:8000/health          # the host's route
    curl localhost:8000/shop/catalog/products
"""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar, get

from mallcore.kernel import Kernel, load_config
from mallcore.kernel.http import MallcorePlugin

HERE = Path(__file__).parent


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    """The host's own route; mallcore does not touch it."""
    return {"status": "ok"}


def create_host_app(config_path: str | Path | None = None) -> Litestar:
    kernel = Kernel(load_config(config_path or HERE / "mallcore.toml"))
    return Litestar(
        route_handlers=[health],
        # The host decides when the schema is migrated; here, at start-up.
        on_startup=[kernel.upgrade],
        plugins=[MallcorePlugin(kernel, path="/shop")],
    )


app = create_host_app()
