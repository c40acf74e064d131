"""Settings: one YAML file plus LEVELSET_* environment; tokens only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SettingsError
from engine.settings import get_settings, load_settings, use_config
from tests.hostile.generators import alias_bomb


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LEVELSET_"):
            monkeypatch.delenv(key)
    get_settings.cache_clear()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "levelset.yaml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(None)
    assert settings.database_url == "sqlite:///levelset.db"
    assert settings.schedule.evaluate == "0 */4 * * *"
    assert settings.retention_days == 400 and settings.facts_max_age_hours == 48
    assert settings.facts is None and settings.collectors == {}
    assert not settings.writes_enabled


def test_file_values_paths_relative_to_the_file_and_env_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, "catalog: cat/\nfacts: f.json\nretention_days: 90\n"
                   "api: {read_token_required: false}\ncollectors: {github: {org: acme}}\n")
    monkeypatch.setenv("LEVELSET_RETENTION_DAYS", "30")
    monkeypatch.setenv("LEVELSET_SCHEDULE__EVALUATE", "*/5 * * * *")
    settings = load_settings(config)
    assert settings.catalog == tmp_path / "cat"
    assert settings.facts == tmp_path / "f.json"
    assert settings.retention_days == 30
    assert settings.schedule.evaluate == "*/5 * * * *"
    assert settings.collectors == {"github": {"org": "acme"}}


def test_bad_settings_name_file_line_and_field(tmp_path: Path) -> None:
    config = write(tmp_path, "database_url: sqlite:///x.db\nretention_days: -1\n"
                   "schedule:\n  evaluate: every hour\nunknown_key: 1\n")
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    text = str(error.value)
    assert f"{config}:2: retention_days: Input should be greater than or equal to 1" in text
    assert f"{config}:4: schedule.evaluate" in text and "not a cron expression" in text
    assert f"{config}:5: unknown_key: unknown setting" in text


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVELSET_FACTS_MAX_AGE_HOURS", "soon")
    with pytest.raises(SettingsError, match="LEVELSET_FACTS_MAX_AGE_HOURS"):
        load_settings(None)


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r":2: invalid YAML: .*duplicate key"):
        load_settings(write(tmp_path, "retention_days: 1\nretention_days: 2\n"))


def test_tokens_come_from_env_or_files_and_are_kept_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "token"
    secret.write_text("a-long-enough-secret-value\n")
    monkeypatch.setenv("LEVELSET_API_TOKEN_FILE", str(secret))
    monkeypatch.setenv("LEVELSET_READ_TOKEN", "another-long-read-token")
    settings = load_settings(None)
    assert settings.check_write_token("a-long-enough-secret-value")
    assert not settings.check_write_token("a-long-enough-secret-valuE")
    assert "a-long-enough-secret-value" not in repr(settings) + str(settings.model_dump())
    with pytest.raises(SettingsError, match="tokens are not read from the file"):
        load_settings(write(tmp_path, "api_token: abc\n"))


def test_placeholder_token_refused_outside_development(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEVELSET_API_TOKEN", "changeme")
    with pytest.raises(SettingsError, match="LEVELSET_API_TOKEN: the token is a placeholder"):
        load_settings(None)
    assert load_settings(write(tmp_path, "environment: development\n")).writes_enabled


def test_read_token_required_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r":1: api\.read_token_required is true"):
        load_settings(write(tmp_path, "api: {read_token_required: true}\n"))


def test_get_settings_is_cached_and_follows_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEVELSET_CONFIG", str(write(tmp_path, "retention_days: 7\n")))
    use_config(None)
    assert get_settings() is get_settings()
    assert get_settings().retention_days == 7


def test_a_misspelt_collector_setting_names_file_line_and_the_closest_key(tmp_path: Path) -> None:
    config = write(tmp_path, "collectors:\n  github:\n    org: acme\n    tokn_env: X\n")
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    assert str(error.value) == (
        f'{config}:4: collectors.github.tokn_env: unknown setting (did you mean "token_env"?)')


def test_an_unknown_collector_names_file_line_and_the_known_ones(tmp_path: Path) -> None:
    config = write(tmp_path, "retention_days: 7\ncollectors:\n  gitlab: {}\n  githb: {}\n")
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    assert [str(p) for p in error.value.problems] == [
        f"{config}:3: collectors.gitlab: unknown collector (known: aws, github, prometheus)",
        f'{config}:4: collectors.githb: unknown collector (did you mean "github"? '
        "known: aws, github, prometheus)",
    ]


def test_bad_collector_values_are_checked_when_the_file_loads(tmp_path: Path) -> None:
    config = write(tmp_path, "collectors:\n  aws:\n    tag_key: svc\n"
                   "  prometheus:\n    timeout_seconds: -1\n")
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    assert [str(p) for p in error.value.problems] == [
        f"{config}:2: collectors.aws.regions: Field required",
        f"{config}:5: collectors.prometheus.timeout_seconds: Input should be greater than 0",
    ]


def test_a_collector_setting_from_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEVELSET_COLLECTORS__GITHUB__TOKN_ENV", "X")
    monkeypatch.setenv("LEVELSET_COLLECTORS__GITLAB__URL", "http://gitlab")
    with pytest.raises(SettingsError) as error:
        load_settings(write(tmp_path, "collectors:\n  github: {org: acme}\n"))
    assert [str(p) for p in error.value.problems] == [
        "LEVELSET_COLLECTORS__GITHUB__TOKN_ENV: unknown setting (did you mean \"token_env\"?)",
        "LEVELSET_COLLECTORS__GITLAB__URL: unknown collector (known: aws, github, prometheus)",
    ]
    monkeypatch.delenv("LEVELSET_COLLECTORS__GITHUB__TOKN_ENV")
    monkeypatch.delenv("LEVELSET_COLLECTORS__GITLAB__URL")
    monkeypatch.setenv("LEVELSET_COLLECTORS__GITHUB__TOKEN_ENV", "GITHUB_TOKEN")
    settings = load_settings(write(tmp_path, "collectors:\n  github: {org: acme}\n"))
    assert settings.collector_settings["github"].token_env == "GITHUB_TOKEN"  # type: ignore[attr-defined]


def test_a_misspelt_top_level_setting_gets_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r':1: retention_day: unknown setting '
                       r'\(did you mean "retention_days"\?\)'):
        load_settings(write(tmp_path, "retention_day: 7\n"))


def test_settings_of_a_collector_registered_by_a_fixture_are_checked(
    tmp_path: Path, fixed_source: object
) -> None:
    with pytest.raises(SettingsError, match=r':3: collectors\.fixed\.valu: unknown setting '
                       r'\(did you mean "value"\?\)'):
        load_settings(write(tmp_path, "collectors:\n  fixed:\n    valu: 2\n"))
    settings = load_settings(write(tmp_path, "collectors:\n  fixed: {value: 2}\n"))
    assert settings.collectors == {"fixed": {"value": 2}}
    assert settings.collector_settings["fixed"].value == 2  # type: ignore[attr-defined]


def test_an_error_in_a_variable_names_the_variable_not_a_line_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, "environment: development\napi:\n  read_token_required: false\n")
    monkeypatch.setenv("LEVELSET_API__READ_TOKEN_REQUIRED", "true")
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    assert [str(p) for p in caught.value.problems] == [
        "LEVELSET_API__READ_TOKEN_REQUIRED: api.read_token_required is true but neither "
        "LEVELSET_READ_TOKEN nor LEVELSET_API_TOKEN is set"]


@pytest.mark.parametrize("value", ['{"read_token_required": tru', "yes"])
def test_a_section_variable_that_is_not_json_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LEVELSET_API", value)
    with pytest.raises(SettingsError) as caught:
        load_settings(write(tmp_path, "api: {read_token_required: false}\n"))
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == ("LEVELSET_API", None)
    assert problem.message.startswith("the api section is set as a JSON object, and this is not JSON")


@pytest.mark.parametrize(("text", "expected"), [
    ("api: " + "{a: " * 1000 + "}" * 1000 + "\n", ":1: nesting deeper than 64 levels"),
    (alias_bomb(), ":5: aliases expand to more than 10,000 nodes"),
    ("#" * (1024 * 1024 + 1), ": settings file is 1 MiB (1,048,577 bytes), larger than the limit"),
], ids=["deep", "alias-bomb", "size"])
def test_a_settings_file_past_a_limit_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    assert str(caught.value).startswith(f"{config}{expected}")


def test_a_secret_file_must_be_a_small_regular_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEVELSET_API_TOKEN_FILE", "/dev/zero")
    with pytest.raises(SettingsError, match=r"^LEVELSET_API_TOKEN_FILE: /dev/zero: a character device"):
        load_settings(None)
