import pytest

from mallcore.kernel import ConfigError, Kernel, load_config
from mallcore.kernel.config import FIRST_PARTY_CENTERS


def test_no_file_at_all_gives_a_working_sqlite_shop_with_first_party_centers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.database.url.startswith("sqlite:///")
    kernel = Kernel(config)
    try:
        assert list(kernel.centers)[:2] == ["catalog", "payment"]
        assert set(kernel.centers) <= set(FIRST_PARTY_CENTERS)
    finally:
        kernel.close()


def test_a_file_and_environment_overrides(tmp_path):
    path = tmp_path / "mallcore.toml"
    path.write_text(
        '[database]\nurl = "sqlite:///a.db"\npool_size = 3\n[http]\nbase_url = "https://shop.example"\n'
    )
    config = load_config(
        path,
        env={
            "MALLCORE_DATABASE__POOL_SIZE": "7",
            "MALLCORE_CENTERS__ENABLED": '["catalog", "payment"]',
            "MALLCORE_CENTERS__PAYMENT__METHODS": '["sandbox"]',
            "MALLCORE_UNRELATED": "ignored",
        },
    )
    assert config.database.url == "sqlite:///a.db"
    assert config.database.pool_size == 7
    assert config.http.base_url == "https://shop.example"
    assert config.enabled_centers == ["catalog", "payment"]
    assert config.center_settings("payment") == {"methods": ["sandbox"]}


def test_config_file_from_the_environment_variable(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[orders]\ncurrency = "USD"\n')
    assert load_config(env={"MALLCORE_CONFIG": str(path)}).orders.currency == "USD"


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("[database]\nurll = 'x'\n", {}, "database.urll"),
        ("[database]\npool_size = 'many'\n", {}, "database.pool_size"),
        ("[nonsense]\na = 1\n", {}, "nonsense"),
        ("", {"MALLCORE_HTTP__MAX_BODY_BYTES": "big"}, "http.max_body_bytes"),
        ("", {"MALLCORE_LOGGING__LEVEL": "loud"}, "logging.level"),
    ],
)
def test_a_bad_key_or_value_stops_start_up_naming_the_key(tmp_path, text, env, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env=env)
    assert key in str(err.value)


def test_a_missing_file_and_broken_toml_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[database\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})


def test_center_settings_are_validated_by_the_centers_schema(tmp_path):
    base = {"database": {"url": f"sqlite:///{tmp_path}/x.db"}}
    bad_key = load_config(
        overrides={**base, "centers": {"enabled": ["catalog", "payment"], "payment": {"metods": []}}}, env={}
    )
    with pytest.raises(ConfigError, match="centers.payment.metods"):
        Kernel(bad_key)
    bad_type = load_config(
        overrides={**base, "centers": {"enabled": ["catalog", "payment"], "payment": {"methods": "sandbox"}}},
        env={},
    )
    with pytest.raises(ConfigError, match="centers.payment.methods"):
        Kernel(bad_type)


def test_settings_for_a_center_that_is_not_installed_are_refused(tmp_path):
    config = load_config(
        overrides={
            "database": {"url": f"sqlite:///{tmp_path}/x.db"},
            "centers": {"enabled": ["catalog", "payment"], "loyalty": {"x": 1}},
        },
        env={},
    )
    with pytest.raises(ConfigError, match="centers.loyalty"):
        Kernel(config)


def test_unknown_roles_in_static_tokens_are_refused(tmp_path):
    config = load_config(
        overrides={
            "database": {"url": f"sqlite:///{tmp_path}/x.db"},
            "centers": {"enabled": ["catalog", "payment"]},
            "auth": {"tokens": {"abcdef": {"subject": "x", "roles": ["superuser"]}}},
        },
        env={},
    )
    with pytest.raises(ConfigError, match="superuser"):
        Kernel(config)


def test_errors_inside_tables_of_tables_point_at_the_key(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[auth.tokens."abc"]\nsubject = 1\nroles = []\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert "auth.tokens.<key>.subject" in str(err.value)


def test_unknown_center_settings_are_refused_even_if_the_centers_struct_allows_them(mallcore):
    import msgspec

    from mallcore.kernel import Center

    class Lenient(Center):
        name = "lenient"

        class Settings(msgspec.Struct):  # no forbid_unknown_fields
            rate: int = 1

    with pytest.raises(ConfigError, match="centers.lenient.rat"):
        mallcore.kernel(extra=[Lenient], settings={"lenient": {"rat": 2}})
    assert (
        mallcore.kernel(extra=[Lenient], settings={"lenient": {"rate": 2}}).centers["lenient"].settings.rate
        == 2
    )
