"""Secrets never leave in an error: credentials in a URL's user info, in every place a URL
can come from (GitHub ``base_url``, Prometheus ``url``, AWS ``endpoint_url``, Slack's
``api_url``, the database URL), appear in no output of the commands (stdout, stderr, their
logs), no row of the database and no answer of the API. The commands run as people run
them, in processes of their own, against endpoints that do not answer."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from core.errors import Problem
from core.redaction import install_log_redaction, redact
from engine.settings import load_settings
from tests.conftest import ROOT
from tests.realparts.httpserver import free_port

SECRETS = {"github": "ghs_GitHubSecret0001", "prometheus": "PromSecret0002",
           "aws": "AwsSecret0003", "slack": "SlackSecret0004", "database": "DbSecret0005"}


def test_user_info_is_redacted_and_the_rest_of_the_url_kept() -> None:
    assert redact("GitHub at http://x-access-token:ghs_1@127.0.0.1:1/api/v3 is unreachable") \
        == "GitHub at http://***@127.0.0.1:1/api/v3 is unreachable"
    assert redact("'postgresql://levelset:p@ss@db:5432/levelset'") \
        == "'postgresql://***@db:5432/levelset'"
    assert redact("https://u:p@h and //a:b@host/x?q=c@d") == "https://***@h and //***@host/x?q=c@d"
    for untouched in ("mail ops@example.com", "http://host/path@x", "https://host?x=a@b"):
        assert redact(untouched) == untouched
    assert str(Problem("database_url", None, "cannot connect to sqlite://u:p@h/x")) \
        == "database_url: cannot connect to sqlite://***@h/x"


def test_log_handlers_redact_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("levelset.tests.redaction")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        install_log_redaction(logger)
        install_log_redaction(logger)  # once is enough; twice changes nothing
        logger.warning("cannot reach %s", "http://u:SECRET1@host/api")
        try:
            raise ConnectionError("http://u:SECRET2@host/api refused")
        except ConnectionError:
            logger.exception("collector failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "SECRET" not in written
    assert "WARNING cannot reach http://***@host/api" in written
    assert "ConnectionError: http://***@host/api refused" in written


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    """``levelset ARGS --config CONFIG`` in a process of its own."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "LEVELSET_SLACK_TOKEN": "xoxb-1111-2222-dead-endpoint", "PYTHONPATH": str(ROOT)}
    env.pop("LEVELSET_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "engine", *args, "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=config.parent)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_secret_in_a_url_reaches_an_output_the_database_or_the_api(
    sample: Path, database_url: str
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    config = sample / "levelset.yaml"
    config.write_text(yaml.safe_dump({
        "environment": "development", "database_url": database_url,
        "catalog": "catalog", "scorecards": "scorecards",
        "collectors": {
            "github": {"base_url": f"http://x-access-token:{SECRETS['github']}@{dead}/api/v3",
                       "org": "acme", "retries": 0, "timeout_seconds": 2},
            "prometheus": {"url": f"http://metrics:{SECRETS['prometheus']}@{dead}",
                           "retries": 0, "timeout_seconds": 2},
            "aws": {"regions": ["us-east-1"], "max_attempts": 1, "timeout_seconds": 2,
                    "endpoint_url": f"http://aws:{SECRETS['aws']}@{dead}"}},
        "report": {"slack": {"api_url": f"http://bot:{SECRETS['slack']}@{dead}/api/",
                             "channel": "#platform-standards", "timeout_seconds": 1,
                             "max_retries": 0}},
    }), encoding="utf-8")
    # a database that cannot be reached is named, without its password
    broken = sample / "broken.yaml"
    broken.write_text(yaml.safe_dump({
        **yaml.safe_load(config.read_text()),
        "database_url": f"postgresql+psycopg://levelset:{SECRETS['database']}@{dead}/levelset"}))
    outputs = {"collect": finish(start(config, "collect"))}  # stores the failures first
    running = {"evaluate": start(config, "evaluate"), "doctor": start(config, "doctor"),
               "report": start(config, "report", "slack"), "database": start(broken, "collect")}
    outputs |= {name: finish(process) for name, process in running.items()}

    assert outputs["collect"][0] == 3  # every source failed: each says why
    for source in ("GitHub", "Prometheus"):
        assert f"{source} at http://***@{dead}" in outputs["collect"][2]
    assert outputs["database"][0] == 2 and f"***@{dead}" in outputs["database"][2]
    for name, (_, stdout, stderr) in outputs.items():
        for secret in SECRETS.values():
            assert secret not in stdout + stderr, (name, secret)

    settings = load_settings(config)
    from engine.api.app import create_app

    answer = TestClient(create_app(settings)).get("/api/v1/services/payments/facts")
    assert answer.status_code == 200 and "***@" in answer.text
    assert not any(secret in answer.text for secret in SECRETS.values())

    stored = b"".join(path.read_bytes() for path in Path(database_url.removeprefix(
        "sqlite:///")).parent.glob("*.db*"))
    assert b"is unreachable" in stored  # the failures are stored, redacted
    for secret in SECRETS.values():
        assert secret.encode() not in stored, secret
