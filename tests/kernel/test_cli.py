"""The `mallcore` command, as an operator uses it."""

import json
import os
import subprocess
import sys

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from mallcore import __version__, cli
from mallcore.kernel import hookimpl


def run(*args, env=None):
    return CliRunner().invoke(cli.cli, list(args), env=env or {}, catch_exceptions=False)


def write_config(tmp_path, enabled, extra=""):
    path = tmp_path / "mallcore.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/cli.db"\n[centers]\nenabled = {json.dumps(enabled)}\n{extra}'
    )
    return str(path)


def test_centers_lists_the_custom_center_when_enabled_and_not_when_disabled(tmp_path):
    on = run("--config", write_config(tmp_path, ["catalog", "payment", "fee"]), "centers", "--json")
    data = json.loads(on.output)
    assert data["enabled"] == ["catalog", "fee", "payment"]  # fee runs after catalog; ties by name
    fee = next(c for c in data["centers"] if c["name"] == "fee")
    assert "order_price" in fee["hooks"] and fee["tables"] == ["fee_charges"]
    assert data["installed"]["fee"] == "mallcore_fee:FeeCenter"
    off = run("--config", write_config(tmp_path, ["catalog", "payment"]), "centers")
    assert "[off] fee" in off.output and "[on ] catalog" in off.output
    assert "fee_charges" not in off.output
    text = run("--config", write_config(tmp_path, ["catalog", "payment", "fee"]), "centers").output
    assert "2. fee" in text and "tables: fee_charges" in text


def test_a_bad_config_stops_with_the_key_named_and_exit_code_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[database]\nurll = 'x'\n")
    try:
        cli.main(["--config", str(path), "centers"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "database.urll" in capsys.readouterr().err


def test_db_upgrade_then_token_create(tmp_path):
    config = write_config(tmp_path, ["catalog", "payment"])
    assert run("--config", config, "db", "upgrade").exit_code == 0
    heads = run("--config", config, "db", "current").output.split()
    from alembic.script import ScriptDirectory

    from mallcore.kernel import Kernel, load_config
    from mallcore.kernel.migrate import alembic_config

    kernel = Kernel(load_config(config, env={}))
    assert sorted(heads) == sorted(ScriptDirectory.from_config(alembic_config(kernel)).get_heads())
    kernel.close()
    token = run(
        "--config", config, "token", "create", "--subject", "m1", "--role", "merchant", "--shop", "s1"
    ).output.strip()
    assert token.startswith("mc_")
    # staff say where they work: a shop, or --platform; neither is refused at issue time
    refused = CliRunner().invoke(
        cli.cli, ["--config", config, "token", "create", "--subject", "f", "--role", "finance"]
    )
    assert refused.exit_code == 2 and "platform" in refused.output
    run("--config", config, "token", "create", "--subject", "pf", "--role", "finance", "--platform")
    engine = sa.create_engine(f"sqlite:///{tmp_path}/cli.db")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT subject, shop, platform FROM api_tokens ORDER BY subject")).all()
        assert [tuple(r) for r in rows] == [("m1", "s1", False), ("pf", None, True)]
    engine.dispose()


def test_demo_seeds_a_shop_and_prints_a_token_for_every_role(tmp_path, monkeypatch):
    monkeypatch.delenv("MALLCORE_HTTP__BASE_URL", raising=False)  # the demo sets it
    monkeypatch.delenv("MALLCORE_CENTERS__TMS__SANDBOX_ROUTES", raising=False)  # and this
    config = write_config(tmp_path, ["catalog", "payment"])
    out = run("--config", config, "demo", "--no-serve").output
    for role in ("customer", "merchant", "warehouse", "finance", "admin"):
        assert f"  {role}" in out
    assert "TEE-WHITE-M" in out
    again = run("--config", config, "demo", "--no-serve")
    assert again.exit_code == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path}/cli.db")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM catalog_skus")).scalar() == 5
        live = conn.execute(sa.text("SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL")).scalar()
    engine.dispose()
    assert live == 8


def test_the_demo_makes_tracking_links_absolute_and_gives_warehouses_a_return_address(tmp_path, monkeypatch):
    from mallcore.kernel import Kernel, load_config

    monkeypatch.delenv("MALLCORE_HTTP__BASE_URL", raising=False)
    monkeypatch.delenv("MALLCORE_CENTERS__TMS__SANDBOX_ROUTES", raising=False)
    config = write_config(tmp_path, ["catalog", "payment", "wms"])
    run("--config", config, "demo", "--no-serve", "--port", "8123")
    # what `serve` (and its workers) will read after the demo
    assert os.environ["MALLCORE_HTTP__BASE_URL"] == "http://127.0.0.1:8123"
    kernel = Kernel(load_config(config))
    try:
        assert kernel.tracking_url(7).startswith("http://127.0.0.1:8123/track/7?token=")
    finally:
        kernel.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path}/cli.db")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT code, contact, street FROM wms_warehouses ORDER BY code")).all()
    engine.dispose()
    assert [r.code for r in rows] == ["BJ", "GZ", "SH"] and all(r.contact and r.street for r in rows)
    # a base_url in the config is kept
    monkeypatch.delenv("MALLCORE_HTTP__BASE_URL")
    (tmp_path / "own").mkdir()
    own = write_config(
        tmp_path / "own", ["catalog", "payment"], '[http]\nbase_url = "https://shop.example.com"\n'
    )
    run("--config", own, "demo", "--no-serve")
    assert "MALLCORE_HTTP__BASE_URL" not in os.environ


def test_jobs_list_and_run(tmp_path):
    config = write_config(tmp_path, ["catalog", "payment"])
    run("--config", config, "db", "upgrade")
    assert "kernel.idempotency_purge" in run("--config", config, "jobs", "list").output
    out = run("--config", config, "jobs", "run", "kernel.idempotency_purge").output
    assert out.startswith("kernel.idempotency_purge:")
    bad = CliRunner().invoke(cli.cli, ["--config", config, "jobs", "run", "nope"])
    assert bad.exit_code == 2 and "unknown job" in bad.output


# What a `--help` must not import: the kernel and its heavy dependencies (about 1.4 s).
HEAVY = ("mallcore.kernel", "sqlalchemy", "litestar", "mallcore_fee", "mallcore.plugins")


@pytest.mark.parametrize("argv", [["--help"], ["serve", "--config", "x.toml", "--help"], ["--version"]])
def test_help_and_version_answer_without_importing_the_kernel(argv):
    probe = (
        "import sys\n"
        "from mallcore.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        f"print('LOADED', sorted(m for m in sys.modules if m.startswith({HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out, out
    if argv == ["--version"]:
        assert f"mallcore {__version__}" in out


def test_help_lists_the_built_in_and_the_registered_commands():
    out = run("--help").output
    for name in ("serve", "db", "centers", "jobs", "token", "demo", "bench", "outbox"):
        assert f"  {name} " in out, name
    assert "mallcore <center> ..." in out


def test_config_may_follow_the_command_at_every_level(tmp_path):
    config = write_config(tmp_path, ["catalog", "payment", "fee"])
    before = json.loads(run("--config", config, "centers", "--json").output)
    after = json.loads(run("centers", "--json", "--config", config).output)
    assert before == after and after["enabled"] == ["catalog", "fee", "payment"]
    assert run("db", "upgrade", "--config", config).exit_code == 0
    assert run("db", "--config", config, "current").output.split()


def test_config_may_follow_a_centers_command(tmp_path, monkeypatch):
    @click.command("hello")
    @click.option("--name", default="world")
    def hello(name):
        click.echo(f"hello {name}")

    monkeypatch.setattr(
        "mallcore_fee.FeeCenter.center_commands", hookimpl(lambda self: [hello]), raising=False
    )
    config = write_config(tmp_path, ["catalog", "payment", "fee"])
    assert run("fee", "hello", "--config", config, "--name", "fee").output.strip() == "hello fee"
    assert run("fee", "--config", config, "hello").output.strip() == "hello world"
    assert run("--config", config, "fee", "hello").output.strip() == "hello world"
    # disabled, the center brings no commands
    off = CliRunner().invoke(
        cli.cli, ["fee", "hello", "--config", write_config(tmp_path, ["catalog", "payment"])]
    )
    assert off.exit_code == 2 and "No such command 'fee'" in off.output


def test_version():
    assert run("--version").output.strip() == f"mallcore {__version__}"


def test_centers_says_whether_placements_are_combined_and_config_turns_it_off(tmp_path):
    on = run("--config", write_config(tmp_path, ["catalog", "payment", "wms"]), "centers")
    assert "combined placements ([orders.combine]): on (at most 32 orders a batch)" in on.output
    assert "combined writes (order_reserve_batch): wms" in on.output
    data = json.loads(
        run("--config", write_config(tmp_path, ["catalog", "payment", "wms"]), "centers", "--json").output
    )
    assert data["combine"] == {
        "enabled": True,
        "max_batch": 32,
        "writer": "async",
        "batches_at_once": 1,
        "batch_hook": ["wms"],
    }
    assert "writer: async, batches at once: 1" in on.output
    off_config = write_config(tmp_path, ["catalog", "payment"], "[orders.combine]\nenabled = false\n")
    off = run("--config", off_config, "centers")
    assert "combined placements ([orders.combine]): off" in off.output
    assert json.loads(run("--config", off_config, "centers", "--json").output)["combine"]["enabled"] is False


def test_the_demo_seeds_with_every_first_party_center_on(tmp_path, monkeypatch):
    # what `scripts/demo` runs: every center's demo data, twice (a restart seeds nothing twice)
    from mallcore.kernel.config import FIRST_PARTY_CENTERS

    monkeypatch.delenv("MALLCORE_HTTP__BASE_URL", raising=False)
    monkeypatch.delenv("MALLCORE_CENTERS__TMS__SANDBOX_ROUTES", raising=False)
    config = write_config(tmp_path, list(FIRST_PARTY_CENTERS))
    first = run("--config", config, "demo", "--no-serve")
    assert first.exit_code == 0, first.output
    for center in ("risk", "promotion", "membership", "console", "refund"):
        assert f"  {center}: " in first.output
    again = run("--config", config, "demo", "--no-serve")
    assert again.exit_code == 0, again.output
