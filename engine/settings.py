"""Settings: one typed object from one YAML file plus ``LEVELSET_*`` environment variables.

```yaml
database_url: sqlite:///levelset.db
catalog: catalog/
scorecards: scorecards/
facts: samples/facts.json
schedule: {timezone: UTC, evaluate: "0 */4 * * *", collect: "0 */4 * * *", prune: "17 3 * * *"}
api: {read_token_required: false, max_body_bytes: 1048576}
retention_days: 400
facts_max_age_hours: 48
collectors: {github: {...}}   # each section checked against its collector's settings model
custom_facts: {sbom: {type: bool, default: false}, coverage: {type: double}}
```

Precedence: environment (``LEVELSET_RETENTION_DAYS``, nested with ``__`` as in
``LEVELSET_API__READ_TOKEN_REQUIRED``) over the file over defaults. Relative paths in the
file are relative to the file. Tokens never come from the file: ``LEVELSET_API_TOKEN`` and
``LEVELSET_READ_TOKEN`` (or ``*_FILE`` naming a secret file); only their sha256 is kept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as PydanticSettingsError

from collectors import CollectorConfig, registry
from core.errors import InputError, Problem, SettingsError, did_you_mean
from core.inputfiles import SECRET_FILE, SETTINGS_FILE, read_text
from core.schema import FactType
from engine.scheduling.cron import CronExpression
from engine.yamlsource import Node, line_for, load_file

CONFIG_ENV = "LEVELSET_CONFIG"
ENV_PREFIX = "LEVELSET_"
PLACEHOLDER_TOKENS = frozenset({"changeme", "change-me", "changethis", "secret", "password",
                                "token", "xxx", "todo"})
MIN_TOKEN_LENGTH = 16


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_cron(value: str) -> str:
    try:
        CronExpression.parse(value)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a cron expression: {error}") from None
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{value!r} is not an IANA time zone name (such as UTC, Europe/Berlin, "
                         "America/New_York)") from None
    return value


Cron = Annotated[str, AfterValidator(_check_cron)]
TimeZoneName = Annotated[str, AfterValidator(_check_zone)]


class JobSchedule(_Section):
    """A job's cron expression in a zone of its own: ``{cron: "0 9 * * 1", timezone: Europe/Berlin}``."""

    cron: Cron
    timezone: TimeZoneName | None = None  # None: schedule.timezone


class ScheduleSettings(_Section):
    """When each job runs: a cron expression read in ``timezone``, or ``{cron, timezone}``.

    ```yaml
    schedule:
      timezone: UTC                         # the default zone (IANA name)
      evaluate: "0 */4 * * *"               # minute hour day-of-month month day-of-week
      prune: {cron: "17 3 * * *", timezone: Europe/Berlin}
    ```

    Cron has standard semantics (Vixie cron, Celery): day of week 0 and 7 are Sunday, 1 is
    Monday, names sun..sat; ranges, lists and steps.
    """

    timezone: TimeZoneName = "UTC"
    evaluate: str | JobSchedule = "0 */4 * * *"
    collect: str | JobSchedule = "0 */4 * * *"
    prune: str | JobSchedule = "17 3 * * *"
    # GitHub discovery into the catalog directory (levelset discover --generate); off when unset.
    discover: str | JobSchedule | None = None

    @field_validator("evaluate", "collect", "prune", "discover", mode="before")
    @classmethod
    def _job(cls, value: Any) -> Any:
        # Decided here rather than by the union, so that a problem is reported once, at its key.
        if value is None:
            return None
        if isinstance(value, str):
            return _check_cron(value)
        if isinstance(value, Mapping):
            return JobSchedule.model_validate(value)  # its errors keep their keys: evaluate.cron
        raise ValueError('expected a cron expression or {cron: "...", timezone: "..."}')


class ApiSettings(_Section):
    # The gate endpoint evaluates a service whose stored result predates the scorecard, and
    # waits this long for it before answering "stale" (503: the gate exits 3).
    gate_wait_seconds: Annotated[float, Field(ge=0, le=600)] = 20
    read_token_required: bool = False
    # Larger request bodies are refused (413) before they are read.
    max_body_bytes: Annotated[int, Field(ge=1024, le=1_073_741_824)] = 1_048_576
    # Runs requested through the API wait in the server's queue (one runs at a time); beyond
    # this many waiting, a request is refused with 429 and Retry-After.
    max_queued_runs: Annotated[int, Field(ge=1, le=10_000)] = 20


class EvaluationSettings(_Section):
    """Where and how long rules run (see engine/isolation.py)."""

    # Evaluate in a child process, so a crashing or runaway rule costs its own result only.
    isolated: bool = True
    timeout_seconds: float = Field(default=300, gt=0, le=86400)
    # A running run whose process gave no sign of life for this long is marked failed.
    lease_seconds: float = Field(default=60, ge=1, le=86400)


class SlackSettings(_Section):
    """Where report and notification messages go. Secrets are named here, never held: the
    incoming webhook URL or the bot token comes from the environment or a secret file."""

    webhook_url_env: str | None = "LEVELSET_SLACK_WEBHOOK_URL"  # an incoming webhook, or:
    webhook_url_file: Path | None = None
    token_env: str | None = "LEVELSET_SLACK_TOKEN"  # a bot token (chat.postMessage)
    token_file: Path | None = None
    api_url: str | None = None  # Slack Web API root, for an API-compatible stand-in
    channel: str | None = None  # the summary channel (bot token mode)
    teams: dict[str, str] = {}  # owner (a catalog team) -> channel
    # Each request is over within timeout_seconds (connect, send and read together); a
    # request that failed is retried (429 after its Retry-After, if that is no longer than
    # max_retry_after_seconds; 5xx and connection errors after an exponential backoff from
    # backoff_seconds) at most max_retries times. After breaker_failures deliveries in a row
    # failed for want of Slack, the rest of the batch is not tried (recorded as skipped).
    timeout_seconds: float = Field(default=10, gt=0, le=300)
    max_retries: int = Field(default=3, ge=0, le=10)
    max_retry_after_seconds: float = Field(default=60, ge=0, le=3600)
    backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    breaker_failures: int = Field(default=3, ge=1, le=100)

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class ReportSettings(_Section):
    """The weekly scorecard report (schedule read in ``timezone``, standard cron)."""

    schedule: Cron = "0 9 * * 1"
    timezone: TimeZoneName = "UTC"
    link_base_url: str | None = None  # links in messages point here (the API or a dashboard)
    slack: SlackSettings = SlackSettings()


CUSTOM_FACT_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class CustomFact(_Section):
    """A pushed fact that rules may read as ``custom.NAME``: its type, and what a service that
    never pushed it has instead (``default``), or nothing, so its rules are ``unknown``.

    ```yaml
    custom_facts:
      sbom: {type: bool, default: false}     # never pushed: false, so the rule fails
      coverage: {type: double, description: "Line coverage, percent"}   # never pushed: unknown
    ```
    """

    type: FactType
    default: Any = None
    description: str = ""

    @model_validator(mode="after")
    def _default_has_the_type(self) -> CustomFact:
        if self.default is not None and not has_type(self.default, self.type):
            article = "an" if self.type.value[0] in "aeiou" else "a"
            raise ValueError(f"default {self.default!r} is not {article} {self.type.value}")
        if self.type is FactType.DOUBLE and isinstance(self.default, int):
            self.default = float(self.default)
        return self


def has_type(value: Any, kind: FactType) -> bool:
    if kind is FactType.TIMESTAMP:
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return False
        return isinstance(value, str | datetime)
    checks: dict[FactType, Callable[[Any], bool]] = {
        FactType.BOOL: lambda v: isinstance(v, bool),
        FactType.INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
        FactType.DOUBLE: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        FactType.STRING: lambda v: isinstance(v, str),
        FactType.STRING_LIST: lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
        FactType.OBJECT_LIST: lambda v: isinstance(v, list) and all(isinstance(i, dict) for i in v),
        FactType.MAP: lambda v: isinstance(v, dict),
    }
    return checks[kind](value)


class DiscoverySettings(_Section):
    """GitHub discovery into the catalog (``levelset discover``, the schedule's job)."""

    # A discovery that would remove more than this share of the files discovery wrote
    # before changes nothing and fails (levelset discover --allow-removals accepts it).
    max_removed_share: float = Field(default=0.2, ge=0, le=1)


class NotifySettings(_Section):
    level_drops: bool = False  # a message per regression after each stored run


class Settings(BaseSettings):
    """Everything a Levelset process needs to know."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid",
    )

    environment: Literal["development", "production"] = "production"
    database_url: str = "sqlite:///levelset.db"
    catalog: Path = Path("catalog")
    scorecards: Path = Path("scorecards")
    facts: Path | None = None
    schedule: ScheduleSettings = ScheduleSettings()
    api: ApiSettings = ApiSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    report: ReportSettings = ReportSettings()
    notify: NotifySettings = NotifySettings()
    discovery: DiscoverySettings = DiscoverySettings()
    retention_days: int = Field(400, ge=1)
    facts_max_age_hours: float = Field(48, gt=0)
    collectors: dict[str, dict[str, Any]] = {}
    # Declared: rules may read only these custom facts, with these types. Not declared (None):
    # any custom.* fact may be read, untyped (as before custom_facts existed).
    custom_facts: dict[Annotated[str, Field(pattern=CUSTOM_FACT_NAME)], CustomFact] | None = None
    # Hashes of the tokens, filled from the environment by load_settings, never from the file.
    _api_token_sha256: str | None = PrivateAttr(None)
    _read_token_sha256: str | None = PrivateAttr(None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML document arrives as init arguments; the environment overrides it.
        return env_settings, init_settings

    def check_write_token(self, presented: str | None) -> bool:
        return _matches(self._api_token_sha256, presented)

    def check_read_token(self, presented: str | None) -> bool:
        if not self.api.read_token_required:
            return True
        return _matches(self._read_token_sha256, presented) or self.check_write_token(presented)

    @property
    def writes_enabled(self) -> bool:
        return self._api_token_sha256 is not None

    @property
    def collector_settings(self) -> dict[str, CollectorConfig]:
        """Each ``collectors`` section parsed by its collector's model (``collectors`` is raw).

        Raises SettingsError for a section ``load_settings`` did not check (a copy with
        other collectors).
        """
        parsed = {}
        for name, section in self.collectors.items():
            try:
                parsed[name] = registry.get(name).parse_settings(section)
            except KeyError as error:
                raise SettingsError([Problem("collectors", None, str(error.args[0]))]) from None
        return parsed


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _matches(expected_sha256: str | None, presented: str | None) -> bool:
    if expected_sha256 is None or not presented:
        return False
    return hmac.compare_digest(expected_sha256, _sha256(presented))


def _read_token(name: str, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """A token from ``NAME`` or the file named by ``NAME_FILE``; the second value says where."""
    direct = environ.get(name)
    file = environ.get(f"{name}_FILE")
    if direct and file:
        raise SettingsError([Problem(name, None, f"set {name} or {name}_FILE, not both")])
    if file:
        try:
            return read_text(Path(file), SECRET_FILE).strip() or None, f"{name}_FILE ({file})"
        except InputError as error:
            raise SettingsError([Problem(f"{name}_FILE", None, str(p))
                                 for p in error.problems]) from None
    return (direct.strip() or None) if direct else None, name


def _check_token(token: str | None, where: str, environment: str) -> list[Problem]:
    if token is None or environment == "development":
        return []
    if token.lower() in PLACEHOLDER_TOKENS or len(token) < MIN_TOKEN_LENGTH:
        return [Problem(where, None, f"the token is a placeholder or shorter than "
                        f"{MIN_TOKEN_LENGTH} characters; set a real secret (or environment: "
                        "development for local use)")]
    return []


def _format_loc(loc: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in loc)


def _env_name(loc: Sequence[str | int]) -> str:
    return ENV_PREFIX + "__".join(str(part) for part in loc).upper()


def _known_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys a settings model accepts at ``loc`` (a path of nested models, and of the
    values of ``dict[str, Model]`` sections such as ``custom_facts``), if known."""
    parts = [str(part) for part in loc]
    while parts:
        field = model.model_fields.get(parts.pop(0))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            annotation = _dict_model(annotation)
            if annotation is None or not parts:
                return []
            parts.pop(0)  # the key of the mapping
        model = annotation
    return list(model.model_fields)


def _dict_model(annotation: Any) -> type[BaseModel] | None:
    """The model of ``dict[str, Model]`` or ``dict[str, Model] | None``; else None."""
    if get_origin(annotation) is dict:
        value = get_args(annotation)[1]
        return value if isinstance(value, type) and issubclass(value, BaseModel) else None
    if get_origin(annotation) in (UnionType, Union):
        return next(filter(None, map(_dict_model, get_args(annotation))), None)
    return None


def _unknown_setting(model: type[BaseModel], loc: Sequence[str | int]) -> str:
    hint = did_you_mean(str(loc[-1]), _known_keys(model, loc[:-1])) if loc else ""
    return f"unknown setting ({hint})" if hint else "unknown setting"


def _in_document(document: Any, loc: Sequence[str | int]) -> bool:
    node = document
    for part in loc:
        if not isinstance(node, Node) or str(part) not in node:
            return False
        node = node[str(part)]
    return True


def _env_variable(loc: Sequence[str | int], document: Any, environ: Mapping[str, str]) -> str | None:
    """The ``LEVELSET_*`` variable that set the value at ``loc``, or None when the file did."""
    present = {key.upper(): key for key in environ if key.upper().startswith(ENV_PREFIX)}
    for end in range(len(loc), 0, -1):  # the variable of loc or of a section holding it
        if _env_name(loc[:end]) in present:
            return present[_env_name(loc[:end])]
    below = sorted(key for key in present if key.startswith(_env_name(loc) + "__"))
    return present[below[0]] if below and not _in_document(document, loc) else None


class _Origin:
    """Where the settings came from: problems name the file and line, or the variable."""

    def __init__(self, file: str, document: Any, environ: Mapping[str, str]) -> None:
        self.file, self.document, self.environ = file, document, environ

    def problem(self, loc: Sequence[str | int], message: str) -> Problem:
        variable = _env_variable(loc, self.document, self.environ)
        if variable is not None:
            return Problem(variable, None, message)
        return Problem(self.file, line_for(self.document, loc), f"{_format_loc(loc)}: {message}")

    def validation_problems(self, model: type[BaseModel], error: ValidationError,
                            prefix: Sequence[str | int] = ()) -> list[Problem]:
        problems = []
        for item in error.errors():
            loc = [part for part in item["loc"] if isinstance(part, str | int)]
            message = (_unknown_setting(model, loc) if item["type"] == "extra_forbidden"
                       else item["msg"])
            problems.append(self.problem([*prefix, *loc], message))
        return problems


def _unparsable_variables(environ: Mapping[str, str]) -> list[Problem]:
    """Variables setting a whole section (``LEVELSET_API``) to something that is not JSON."""
    problems = []
    for name, field in Settings.model_fields.items():
        annotation = get_origin(field.annotation) or field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel | dict | list)):
            continue
        for variable, value in environ.items():
            if variable.upper() == _env_name([name]):
                try:
                    json.loads(value)
                except ValueError as error:
                    problems.append(Problem(variable, None, f"the {name} section is set as a JSON "
                                            f"object, and this is not JSON: {error}"))
    return problems


def _collector_problems(sections: Mapping[str, Any], origin: _Origin) -> list[Problem]:
    """Each ``collectors`` section against its collector's settings model."""
    problems = []
    known = registry.names()
    for name, section in sections.items():
        if name not in registry:
            hint = did_you_mean(name, known, cutoff=0.75)  # not "github" for "gitlab"
            problems.append(origin.problem(["collectors", name], "unknown collector ("
                                           f"{hint + ' ' if hint else ''}known: {', '.join(known)})"))
            continue
        model = registry.get(name).settings
        try:
            model.model_validate(section)
        except ValidationError as error:
            problems += origin.validation_problems(model, error, ["collectors", name])
    return problems


def _resolve_paths(document: dict[str, Any], base: Path) -> dict[str, Any]:
    resolved = dict(document)
    for key in ("catalog", "scorecards", "facts"):
        value = resolved.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            resolved[key] = str(base / value)
    return resolved


def load_settings(config: Path | None = None) -> Settings:
    """Build the settings from ``config`` (YAML) and the environment, or raise SettingsError."""
    environ = os.environ
    document: Any = {}
    file = str(config) if config is not None else "<environment>"
    if config is not None:
        try:
            documents = load_file(config, SETTINGS_FILE)
        except InputError as error:
            raise SettingsError(error.problems) from None
        if len(documents) > 1:
            raise SettingsError.single(file, None, f"expected one document, found {len(documents)}")
        document = documents[0] if documents else {}
        if not isinstance(document, Node):
            raise SettingsError.single(file, getattr(document, "line", 1),
                                       "settings must be a mapping")
        for forbidden in ("api_token", "read_token"):
            if forbidden in document:
                raise SettingsError.single(
                    file, document.line_of(forbidden),
                    f"{forbidden}: tokens are not read from the file; set "
                    f"LEVELSET_{forbidden.upper()} or LEVELSET_{forbidden.upper()}_FILE")
    init = _resolve_paths(dict(document), config.parent) if config is not None else {}
    origin = _Origin(file, document, environ)
    try:
        settings = Settings(**init)
    except ValidationError as error:
        raise SettingsError(origin.validation_problems(Settings, error)) from None
    except PydanticSettingsError as error:  # a variable holding a section that is not JSON
        raise SettingsError(_unparsable_variables(environ) or [
            Problem("<environment>", None, str(error))]) from None
    problems = _collector_problems(settings.collectors, origin)
    api_token, api_where = _read_token("LEVELSET_API_TOKEN", environ)
    read_token, read_where = _read_token("LEVELSET_READ_TOKEN", environ)
    problems += _check_token(api_token, api_where, settings.environment)
    problems += _check_token(read_token, read_where, settings.environment)
    if settings.api.read_token_required and read_token is None and api_token is None:
        loc = ["api", "read_token_required"]
        variable = _env_variable(loc, document, environ)  # set there, blamed there
        problems.append(Problem(variable or file, None if variable else line_for(document, loc),
                                "api.read_token_required is true but neither LEVELSET_READ_TOKEN "
                                "nor LEVELSET_API_TOKEN is set"))
    if problems:
        raise SettingsError(problems)
    settings._api_token_sha256 = _sha256(api_token) if api_token else None
    settings._read_token_sha256 = _sha256(read_token) if read_token else None
    return settings


LOCAL_CONFIG = Path("levelset.yaml")


@dataclass(frozen=True)
class ConfigChoice:
    """The settings file a process reads and why: given (``--config``), named by
    ``LEVELSET_CONFIG``, found as ``./levelset.yaml``; or none, and built-in defaults."""

    path: Path | None
    reason: str

    def describe(self) -> str:
        if self.path is None:
            return f"settings: built-in defaults ({self.reason})"
        return f"settings: {self.path} ({self.reason})"


def find_config(given: Path | None = None) -> ConfigChoice:
    """Which settings file to read: ``given``, else ``LEVELSET_CONFIG``, else
    ``./levelset.yaml`` when present, else none (built-in defaults). Never guessed further."""
    if given is not None:
        return ConfigChoice(given, "--config")
    named = os.environ.get(CONFIG_ENV)
    if named:
        return ConfigChoice(Path(named), CONFIG_ENV)
    if LOCAL_CONFIG.is_file():
        return ConfigChoice(LOCAL_CONFIG, "found in the working directory")
    return ConfigChoice(None, f"no --config, no {CONFIG_ENV} and no ./{LOCAL_CONFIG}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings (a worker's, beat's, the API's): from the file ``find_config``
    chooses, and the environment."""
    choice = find_config()
    return load_settings(choice.path)


def use_config(config: Path | None) -> None:
    """Point every later ``get_settings()`` (and child processes) at ``config``."""
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    get_settings.cache_clear()


__all__ = [
    "ApiSettings",
    "ConfigChoice",
    "CustomFact",
    "EvaluationSettings",
    "JobSchedule",
    "NotifySettings",
    "ReportSettings",
    "ScheduleSettings",
    "Settings",
    "SlackSettings",
    "find_config",
    "get_settings",
    "has_type",
    "load_settings",
    "use_config",
]
