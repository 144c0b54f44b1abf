"""deploy/: the compose file parses and names the services docs/deploy.md describes, and the
deployment's config is a valid mallcore config."""

from pathlib import Path

import pytest

from mallcore.kernel.config import load_config

yaml = pytest.importorskip("yaml")

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_compose_names_the_services_and_their_order():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "nats", "migrate", "app", "relay", "proxy"}
    app = services["app"]
    assert app["command"][:2] == ["mallcore", "serve"] and "--no-migrate" in app["command"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["mallcore", "db", "upgrade"]
    assert services["relay"]["command"][:3] == ["mallcore", "outbox", "relay"]
    assert "nats://nats:4222" in services["relay"]["command"]
    assert "-js" in services["nats"]["command"]
    assert services["proxy"]["depends_on"]["app"]["condition"] == "service_healthy"
    for name in ("app", "migrate", "relay"):
        env = services[name]["environment"]
        assert env["MALLCORE_DATABASE__URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["MALLCORE_DATABASE__URL"]


def test_the_deployment_config_is_valid_and_shares_limits_in_redis():
    env = {"MALLCORE_DATABASE__URL": "postgresql+psycopg://mallcore:x@postgres:5432/mallcore"}
    config = load_config(DEPLOY / "mallcore.toml", env=env)
    assert config.database.url.startswith("postgresql")
    assert config.database.migrate_on_start is False
    assert config.http.limits.storage.startswith("redis://redis:6379")
    assert config.http.trusted_proxies and config.http.metrics.outbox_relays == ["nats"]
    assert config.jobs.enabled


def test_nginx_forwards_the_client_address_and_request_id():
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in conf
    assert "X-Request-ID" in conf and "server app:8000" in conf
