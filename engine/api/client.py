"""Reading a stored result from a Levelset server (``levelset gate --api URL``)."""

from __future__ import annotations

import os
from urllib.parse import quote

import httpx

from core.errors import InputError, Problem
from engine.api.paths import service_segment
from engine.evaluation import RuleStatus
from engine.gate import GatedRule, GateVerdict, UnknownPolicy

API_PREFIX = "/api/v1"
# The token a gate sends, in this order (a read token is enough).
TOKEN_ENVS = ("LEVELSET_READ_TOKEN", "LEVELSET_API_TOKEN")


class Unreachable(Exception):
    """The server cannot be reached, or has no data to answer with: the gate cannot decide."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def _token() -> str | None:
    return next((os.environ[name] for name in TOKEN_ENVS if os.environ.get(name)), None)


def api_root(api: str) -> str:
    """The server's base URL, given with or without ``/api/v1``."""
    root = api.strip().rstrip("/")
    return root.removesuffix(API_PREFIX).rstrip("/")


def remote_verdict(
    api: str, *, service: str, scorecard: str, min_level: str, timeout: float = 120.0,
    transport: httpx.BaseTransport | None = None,
    unknown: UnknownPolicy = UnknownPolicy.BLOCK,
) -> GateVerdict:
    """The gate verdict from the server's result graded by the current scorecard (same output
    as local mode): the server evaluates a result that predates the scorecard again first.

    ``service`` is the catalog name: ``team-x/svc`` (or ``team-x:svc``) outside the default
    namespace, asked for as ``team-x:svc``. Raises ``InputError`` for what the caller got
    wrong and ``Unreachable`` when the server cannot answer or has nothing stored."""
    url = f"{api_root(api)}{API_PREFIX}/services/{quote(service_segment(service), safe=':')}/" \
          f"scorecards/{quote(scorecard, safe='')}/gate"
    token = _token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.get(url, headers=headers)
    except httpx.HTTPError as error:
        raise Unreachable([Problem("--api", None, f"cannot reach {api}: {error}")]) from None
    if response.status_code != 200:
        _refuse(response, url)
    try:
        body = response.json()
        return GateVerdict.build(
            service=body["service"], scorecard=body["scorecard"], required=min_level,
            current=body["level"], score=body["score"], levels=body["levels"],
            rules=[GatedRule(r["name"], r["title"], r["level"], RuleStatus(r["status"]),
                             r["message"], r["remediation"]) for r in body["rules"]],
            unknown=unknown,
        )
    except (ValueError, KeyError, TypeError):
        raise InputError([Problem("--api", None, f"{url} does not answer as a Levelset server "
                                  "(give the server's base URL, e.g. https://levelset.example.com)")
                          ]) from None


def _refuse(response: httpx.Response, url: str) -> None:
    status = response.status_code
    try:
        detail = str(response.json().get("detail", response.text))
    except (ValueError, AttributeError):
        detail = response.text.strip()[:200]
    if status in (401, 403):
        raise InputError([Problem("--api", None, f"{url}: HTTP {status}: {detail} (set "
                                  f"{' or '.join(TOKEN_ENVS)})")])
    if status >= 500 or status == 429:
        raise Unreachable([Problem("--api", None, f"{url}: HTTP {status}: {detail}")])
    if status == 404 and detail.startswith("unknown service"):
        raise InputError([Problem("--service", None, detail)])
    if status == 404 and detail.startswith("unknown scorecard"):
        raise InputError([Problem("--scorecard", None, detail)])
    if status == 404 and detail.startswith('scorecard "') and "does not apply to" in detail:
        raise InputError([Problem("--scorecard", None, detail)])
    if status == 404 and "not graded" in detail:
        raise Unreachable([Problem("--api", None, detail)])
    raise InputError([Problem("--api", None, f"{url}: HTTP {status}: {detail} (is --api the "
                              "base URL of a Levelset server?)")])


# The token a push sends: pushing writes, so only the write token will do.
WRITE_TOKEN_ENV = "LEVELSET_API_TOKEN"


def push_facts(
    api: str, *, service: str, facts: dict[str, object], evaluate: bool = False,
    timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
) -> dict[str, object]:
    """Push custom facts to a server (``levelset push``); its answer: the stored snapshot,
    and the run started with ``evaluate``.

    Raises ``InputError`` for what the server refuses (an unknown service, a value that is
    not of a fact's declared type, a missing or read-only token: its reason is kept) and
    ``Unreachable`` when it cannot be reached or fails itself."""
    url = f"{api_root(api)}{API_PREFIX}/services/{quote(service_segment(service), safe=':')}/facts"
    token = os.environ.get(WRITE_TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.post(url, headers=headers, json={"facts": facts},
                                   params={"evaluate": "true"} if evaluate else None)
    except httpx.HTTPError as error:
        raise Unreachable([Problem("--api", None, f"cannot reach {api}: {error}")]) from None
    if response.status_code in (200, 201):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
        raise InputError([Problem("--api", None, f"{url} does not answer as a Levelset server "
                                  "(give the server's base URL, e.g. https://levelset.example.com)")])
    reason = _reason(response)
    status = response.status_code
    if status >= 500 or status == 429:
        raise Unreachable([Problem("--api", None, f"{url}: HTTP {status}: {reason}")])
    if status in (401, 403):
        reason += f" (set {WRITE_TOKEN_ENV} to the server's write token)"
    raise InputError([Problem(service, None, f"HTTP {status}: {reason}")])


def _reason(response: httpx.Response) -> str:
    """The server's reason for a refusal: FastAPI's ``detail``, a string or a list of field
    errors (``facts.coverage: ...``), else the start of the body."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return response.text.strip()[:200] or response.reason_phrase
