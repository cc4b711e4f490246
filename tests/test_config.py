"""The configuration file as an administrator meets it: real files in tmp_path, every error explained."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.config import (
    Config, ConfigError, DatabaseConfig, LogConfig, SiteConfig, currency_digits, find_config_path, load_config,
    read_secret, reference_markdown, render_effective, starter_config,
)
from appliance.config import loader
from appliance.config.schema import arrays, keys, secret, sections, setting, toml_name

MINIMAL = '[site]\nid = "BER"\n\n[database]\npath = "data/appliance.db"\n'


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("APPLIANCE_CONFIG", "CREDENTIALS_DIRECTORY", "TEST_MQTT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.errors


# Loading -----------------------------------------------------------------------------------------------------

def test_minimal_config_loads_with_defaults(tmp_path):
    path = write(tmp_path / "appliance.toml", MINIMAL)
    config = load_config(path)
    assert config == Config(
        site=SiteConfig(id="BER", name="BER", currency="EUR", timezone="Europe/Berlin"),
        database=DatabaseConfig(path=tmp_path / "data" / "appliance.db", synchronous="FULL",
                                busy_timeout_ms=15000),
        log=LogConfig(level="INFO"),
    )
    assert config.source == path
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.site.id = "WAW"  # type: ignore[misc]


@pytest.mark.parametrize("written, expected", [
    ("data/appliance.db", "etc/data/appliance.db"),
    ("appliance.db", "etc/appliance.db"),
    ("../var/appliance.db", "etc/../var/appliance.db"),
    ("/srv/appliance/appliance.db", "/srv/appliance/appliance.db"),
])
def test_database_path_is_relative_to_the_config_file_not_the_cwd(tmp_path, monkeypatch, written, expected):
    path = write(tmp_path / "etc" / "appliance.toml", f'[site]\nid = "BER"\n[database]\npath = "{written}"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    db = load_config(path).database.path
    assert db.is_absolute()
    assert db == tmp_path / expected


def test_a_relative_config_path_is_made_absolute_at_load_time(tmp_path, monkeypatch):
    write(tmp_path / "etc" / "appliance.toml", MINIMAL)
    monkeypatch.chdir(tmp_path)
    config = load_config("etc/appliance.toml")
    assert config.source == tmp_path / "etc" / "appliance.toml"
    assert config.database.path == tmp_path / "etc" / "data" / "appliance.db"


def with_line(section: str, line: str, text: str = MINIMAL) -> str:
    """`text` with `line` added to `[section]`, which is opened at the end if `text` lacks it."""
    header = f"[{section}]\n"
    return text.replace(header, header + line + "\n") if header in text else text + header + line + "\n"


@pytest.mark.parametrize("section, line, expected", [
    ("database", 'synchronous = "normal"', "NORMAL"),
    ("database", 'synchronous = "Extra"', "EXTRA"),
    ("database", "busy_timeout_ms = 100", 100),
    ("database", "busy_timeout_ms = 600_000", 600000),
    ("log", 'level = "debug"', "DEBUG"),
    ("site", 'name = "Berlin Tempelhof"', "Berlin Tempelhof"),
    ("site", 'currency = "JPY"', "JPY"),
    ("site", 'timezone = "America/Argentina/Buenos_Aires"', "America/Argentina/Buenos_Aires"),
    ("site", 'timezone = "UTC"', "UTC"),
])
def test_valid_values_are_normalised(tmp_path, section, line, expected):
    path = write(tmp_path / "appliance.toml", with_line(section, line))
    key = line.split(" = ")[0]
    assert getattr(getattr(load_config(path), section), key) == expected


# Errors: each names the file, the key, the value and the reason -----------------------------------------------

@pytest.mark.parametrize("text, expected", [
    pytest.param(MINIMAL + '[mqt]\nhost = "broker"\n',
                 "unknown section [mqt]; known sections: site, database, log, mqtt", id="unknown section"),
    pytest.param(MINIMAL + '[mqtt]\nport = 1883\n', "mqtt.host is required", id="mqtt without host"),
    pytest.param(MINIMAL + '[mqtt]\nhost = "b"\npassword = "x"\n',
                 "mqtt.password: secrets are never read from the config file", id="mqtt password in toml"),
    pytest.param('site_id = "BER"\n' + MINIMAL, "unknown key site_id outside any section", id="key outside"),
    pytest.param(MINIMAL + 'pth = "data/other.db"\n',
                 "unknown key database.pth; known keys: path, synchronous, busy_timeout_ms", id="unknown key"),
    pytest.param(MINIMAL.replace('"BER"', '"berlin"'),
                 "site.id = 'berlin': must be 2-8 upper-case letters/digits starting with a letter, e.g. BER",
                 id="bad site id"),
    pytest.param(MINIMAL.replace('"BER"', '"B"'), "site.id = 'B': must be 2-8", id="site id too short"),
    pytest.param(MINIMAL.replace('"BER"', '"1BER"'), "site.id = '1BER': must be 2-8", id="site id digit first"),
    pytest.param(MINIMAL.replace('"BER"', '"BER\\n"'), "site.id = 'BER\\n': must be 2-8", id="trailing newline"),
    pytest.param(MINIMAL.replace('"BER"', "42"), "site.id = 42: must be a string, not an integer",
                 id="int for string"),
    pytest.param(MINIMAL + "busy_timeout_ms = true\n",
                 "database.busy_timeout_ms = True: must be an integer, not a boolean", id="bool for int"),
    pytest.param(MINIMAL + 'busy_timeout_ms = "15000"\n',
                 "database.busy_timeout_ms = '15000': must be an integer, not a string", id="string for int"),
    pytest.param(MINIMAL + "busy_timeout_ms = 1.5\n",
                 "database.busy_timeout_ms = 1.5: must be an integer, not a float", id="float for int"),
    pytest.param(MINIMAL + "busy_timeout_ms = 99\n",
                 "database.busy_timeout_ms = 99: must be between 100 and 600000", id="int out of range"),
    pytest.param(MINIMAL.replace('"data/appliance.db"', "[1, 2]"),
                 "database.path = [1, 2]: must be a string (a path), not an array", id="array for path"),
    pytest.param(MINIMAL.replace('"data/appliance.db"', '""'), "database.path = '': must not be empty",
                 id="empty path"),
    pytest.param(MINIMAL + 'synchronous = "fast"\n',
                 "database.synchronous = 'fast': must be one of OFF, NORMAL, FULL, EXTRA", id="bad synchronous"),
    pytest.param(MINIMAL.replace('id = "BER"', 'id = "BER"\ntimezone = "Mars/Olympus_Mons"'),
                 "site.timezone = 'Mars/Olympus_Mons': must be an IANA time zone name", id="bad timezone"),
    pytest.param(MINIMAL.replace('id = "BER"', 'id = "BER"\ntimezone = "../../etc/passwd"'),
                 "site.timezone = '../../etc/passwd': must be an IANA time zone name", id="timezone path"),
    pytest.param(MINIMAL.replace('id = "BER"', 'id = "BER"\ncurrency = "eur"'),
                 "site.currency = 'eur': must be an ISO 4217 code", id="bad currency"),
    pytest.param(MINIMAL + '[log]\nlevel = "LOUD"\n',
                 "log.level = 'LOUD': must be one of DEBUG, INFO, WARNING, ERROR", id="bad log level"),
    pytest.param('[site]\nid = "BER"\n', "database.path is required", id="missing section"),
    pytest.param(MINIMAL.replace('path = "data/appliance.db"', ""), "database.path is required",
                 id="missing key"),
    pytest.param('site = "BER"\n[database]\npath = "x.db"\n', "site = 'BER': must be a section, written [site]",
                 id="value for section"),
    pytest.param(MINIMAL.replace('id = "BER"', 'id = "BER'),
                 "invalid TOML: Illegal character '\\n' (at line 2, column 10)", id="invalid TOML"),
    pytest.param(MINIMAL + "[site]\n", "invalid TOML: Cannot declare ('site',) twice (at line 6, column 6)",
                 id="duplicate section"),
])
def test_each_error_names_file_key_value_and_reason(tmp_path, text, expected):
    path = write(tmp_path / "appliance.toml", text)
    errors = load_errors(path)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}: ")
    assert expected in errors[0]


def test_all_errors_are_reported_together(tmp_path):
    path = write(tmp_path / "appliance.toml", """
[site]
id = "berlin"
timezone = "Europe/Berlinn"

[database]
pth = "data/appliance.db"
synchronous = "sometimes"
busy_timeout_ms = true

[mqtt_broker]
host = "broker"
""")
    errors = load_errors(path)
    assert [e.removeprefix(f"{path}: ").split(":")[0].split(";")[0] for e in errors] == [
        "unknown section [mqtt_broker]",
        "site.id = 'berlin'",
        "site.timezone = 'Europe/Berlinn'",
        "unknown key database.pth",
        "database.path is required",
        "database.synchronous = 'sometimes'",
        "database.busy_timeout_ms = True",
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert all(error in caught.value.message for error in errors)


@pytest.mark.parametrize("content, expected", [
    (b"\xff\xfe[site]\n", "not UTF-8 text"),
    (None, "cannot read: No such file or directory"),
])
def test_unreadable_files_are_reported(tmp_path, content, expected):
    path = tmp_path / "appliance.toml"
    if content is not None:
        path.write_bytes(content)
    assert load_errors(path) == [f"{path}: {expected}"]


# Finding the file -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, env, cwd_file, etc_file, expected", [
    ("flag.toml", "env.toml", True, True, "flag.toml"),
    (None, "env.toml", True, True, "env.toml"),
    (None, None, True, True, "cwd/appliance.toml"),
    (None, None, False, True, "etc/appliance.toml"),
    (None, None, False, False, None),
    (None, "", True, False, "cwd/appliance.toml"),  # an empty variable is an unset one
])
def test_search_order(tmp_path, monkeypatch, flag, env, cwd_file, etc_file, expected):
    for name in ("flag.toml", "env.toml"):
        write(tmp_path / name, MINIMAL)
    if cwd_file:
        write(tmp_path / "cwd" / "appliance.toml", MINIMAL)
    if etc_file:
        write(tmp_path / "etc" / "appliance.toml", MINIMAL)
    (tmp_path / "cwd").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path / "cwd")
    # /etc/appliance/appliance.toml may exist on the machine running the tests: point that entry into tmp_path.
    monkeypatch.setattr(loader, "SEARCH_PATHS", (Path("appliance.toml"), tmp_path / "etc" / "appliance.toml"))
    if env is not None:
        monkeypatch.setenv("APPLIANCE_CONFIG", env if env == "" else str(tmp_path / env))
    found = find_config_path(str(tmp_path / flag) if flag else None)
    assert found == (tmp_path / expected if expected else None)


def test_search_paths_are_the_documented_ones():
    assert loader.SEARCH_PATHS == (Path("appliance.toml"), Path("/etc/appliance/appliance.toml"))


@pytest.mark.parametrize("use_flag, origin", [(True, "--config"), (False, "$APPLIANCE_CONFIG")])
def test_a_named_file_that_does_not_exist_is_an_error(tmp_path, monkeypatch, use_flag, origin):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "appliance.toml", MINIMAL)  # must not be picked up instead
    missing = tmp_path / "missing.toml"
    if not use_flag:
        monkeypatch.setenv("APPLIANCE_CONFIG", str(missing))
    with pytest.raises(ConfigError) as caught:
        find_config_path(missing if use_flag else None)
    assert caught.value.errors == [f"{missing}: no such file (given by {origin})"]
    # `appliance init` asks for the path anyway, to write the file there.
    assert find_config_path(missing if use_flag else None, missing_ok=True) == missing


def test_a_named_directory_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        find_config_path(tmp_path)


# Writing it back out ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    MINIMAL,
    """
[site]
id = "WAW2"
name = "Warszawa \\"Praga\\" \\\\ magazyn\\t2"
currency = "PLN"
timezone = "Europe/Warsaw"

[database]
path = "/var/lib/appliance/ledger \\u007f.db"
synchronous = "normal"
busy_timeout_ms = 600000

[log]
level = "warning"
""",
])
def test_render_effective_round_trips(tmp_path, text):
    config = load_config(write(tmp_path / "etc" / "appliance.toml", text))
    rendered = render_effective(config)
    again = load_config(write(tmp_path / "other" / "effective.toml", rendered))
    assert again == config
    assert again.database.path == config.database.path  # absolute, so moving the file changes nothing


def test_render_effective_documents_every_key(tmp_path):
    rendered = render_effective(load_config(write(tmp_path / "appliance.toml", MINIMAL + '[mqtt]\nhost = "b"\n[smtp]\nhost = "m"\nsender = "stock@shop.test"\n')))
    lines = rendered.splitlines()
    for section, cls in sections():
        assert f"[{section.name}]" in lines
        start = lines.index(f"[{section.name}]")   # keys of one name (host) live in several sections
        for f, _ in keys(cls):
            prefix = f"# {f.name} = " if f.metadata.get("secret") or f.default is None else f"{f.name} = "
            line = next(i for i, text in enumerate(lines) if i > start and text.startswith(prefix))
            assert lines[line - 1] == f"# {f.metadata['doc']}"
    assert 'busy_timeout_ms = 15000' in lines and 'name = "BER"' in lines
    assert "# password = not set  (secret: put it in $CREDENTIALS_DIRECTORY/mqtt-password" in rendered


def test_an_absent_mqtt_section_is_rendered_commented_out_and_loads_back_as_sync_off(tmp_path):
    config = load_config(write(tmp_path / "appliance.toml", MINIMAL))
    assert config.mqtt is None
    rendered = render_effective(config)
    assert "# [mqtt]" in rendered.splitlines() and "\n[mqtt]" not in rendered
    assert load_config(write(tmp_path / "again.toml", rendered)).mqtt is None


def test_every_key_has_a_one_line_description_and_a_supported_type():
    for _, cls in sections():
        for f, type_ in keys(cls):
            assert f.metadata["doc"].strip() and "\n" not in f.metadata["doc"], f.name
            assert f.metadata.get("secret") or type_ in loader._EXPECTED, f.name


def test_reference_markdown_lists_every_key():
    table = reference_markdown().splitlines()
    assert table[:2] == ["| key | default | description |", "| --- | --- | --- |"]
    expected = [f"`[{s.name}] {f.name}`" for s, cls in sections() for f, _ in keys(cls)]
    expected += [f"`[[{toml_name(a)}]] {f.name}`" for a, cls in arrays() for f, _ in keys(cls)]
    assert [row.split(" | ")[0].removeprefix("| ") for row in table[2:]] == expected
    assert "| `[site] id` | **required** |" in reference_markdown()
    assert "| `[database] busy_timeout_ms` | `15000` |" in reference_markdown()
    assert "| `[site] name` | the id |" in reference_markdown()


@pytest.mark.parametrize("db_path, expected", [
    ("data/appliance.db", "etc/data/appliance.db"),
    (Path("/srv/a b/appliance.db"), "/srv/a b/appliance.db"),
    ('odd "name" \\ here.db', 'etc/odd "name" \\ here.db'),
])
def test_starter_config_loads(tmp_path, db_path, expected):
    text = starter_config("BER", "Berlin", db_path)
    config = load_config(write(tmp_path / "etc" / "appliance.toml", text))
    assert (config.site.id, config.site.name, config.site.currency) == ("BER", "Berlin", "EUR")
    assert config.database.path == tmp_path / expected
    assert "# synchronous = \"FULL\"" in text.splitlines()


def test_starter_config_refuses_a_bad_site_id():
    with pytest.raises(ConfigError, match=r"site.id = 'berlin': must be 2-8 upper-case"):
        starter_config("berlin", "Berlin", "data/appliance.db")


# Secrets ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("credential, env, expected", [
    ("from-file\n", "from-env", "from-file"),
    ("from-file", None, "from-file"),
    (None, "from-env", "from-env"),
    (None, None, None),
    ("", "from-env", None),  # an empty credential is an unset one, as is an empty variable
    ("two\nlines\n", None, "two\nlines"),
])
def test_read_secret_prefers_the_credentials_directory(tmp_path, monkeypatch, credential, env, expected):
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    if credential is not None:
        (tmp_path / "mqtt_password").write_text(credential, encoding="utf-8")
    if env is not None:
        monkeypatch.setenv("TEST_MQTT_PASSWORD", env)
    assert read_secret("mqtt_password", "TEST_MQTT_PASSWORD") == expected


def test_read_secret_without_a_credentials_directory_uses_the_environment(monkeypatch):
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "from-env")
    assert read_secret("mqtt_password", "TEST_MQTT_PASSWORD") == "from-env"


@pytest.mark.parametrize("name", ["", "..", "../etc/shadow", "a/b"])
def test_read_secret_refuses_names_that_are_paths(name):
    with pytest.raises(ValueError):
        read_secret(name, "TEST_MQTT_PASSWORD")


# A schema with a secret, as later sections (MQTT, SMTP) will have: the machinery is generic.
@dataclass(frozen=True)
class MqttSection:
    host: str = setting("broker host", "localhost")
    password: str | None = secret("broker password", credential="mqtt_password", env="TEST_MQTT_PASSWORD")


@dataclass(frozen=True)
class SecretConfig:
    mqtt: MqttSection = field(default_factory=MqttSection, metadata={"doc": "test broker"})
    source: Path | None = field(default=None, compare=False)


def test_secrets_are_filled_from_credentials_and_masked_when_rendered(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "credentials"))
    write(tmp_path / "credentials" / "mqtt_password", "hunter2\n")
    config = load_config(write(tmp_path / "a.toml", '[mqtt]\nhost = "broker"\n'), schema=SecretConfig)
    assert config.mqtt == MqttSection(host="broker", password="hunter2")
    rendered = render_effective(config)
    assert "hunter2" not in rendered
    assert '# password = "***"  (secret: put it in $CREDENTIALS_DIRECTORY/mqtt_password' in rendered
    assert load_config(write(tmp_path / "b.toml", rendered), schema=SecretConfig) == config
    assert "secret, from `$CREDENTIALS_DIRECTORY/mqtt_password` or `$TEST_MQTT_PASSWORD`" in \
        reference_markdown(SecretConfig)


def test_a_secret_in_the_toml_is_refused_without_echoing_it(tmp_path):
    path = write(tmp_path / "a.toml", '[mqtt]\npassword = "hunter2"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, schema=SecretConfig)
    assert caught.value.errors == [
        f"{path}: mqtt.password: secrets are never read from the config file; secret: put it in "
        "$CREDENTIALS_DIRECTORY/mqtt_password (systemd LoadCredential=) or $TEST_MQTT_PASSWORD"]
    assert "hunter2" not in caught.value.message


def test_an_unset_secret_renders_as_not_set():
    assert "# password = not set  (secret:" in render_effective(SecretConfig())


# Currency --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, digits", [
    ("EUR", 2), ("USD", 2), ("HUF", 2), ("PLN", 2), ("CHF", 2), ("JPY", 0), ("KRW", 0), ("ISK", 0),
    ("KWD", 3), ("BHD", 3), ("TND", 3), ("CLF", 4), ("jpy", 0),
])
def test_currency_digits(code, digits):
    assert currency_digits(code) == digits
