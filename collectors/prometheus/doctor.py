"""What ``levelset doctor`` checks of Prometheus: that the query API answers a request sent
the way the collector sends it (its bearer token, timeout and retries)."""

from __future__ import annotations

import requests
from urllib3.util.retry import Retry

from collectors.base import FactsRead, Finding, SourceDoctor, read_secret
from collectors.http import (
    CountingAdapter,
    RequestCounter,
    connection_reason,
    counting_session,
    is_timeout,
)
from collectors.prometheus.settings import PrometheusConfig
from core.errors import CollectorError
from core.redaction import redact_url

NEEDS = ("HTTP access to the Prometheus API (/api/v1/query, /api/v1/rules); a bearer token "
         "(token_env) when the server asks for one")


class PrometheusDoctor(SourceDoctor):
    def check(self, settings: PrometheusConfig, facts_read: FactsRead) -> list[Finding]:
        try:
            token = read_secret(env=settings.token_env, file=settings.token_file,
                                what="Prometheus token")
        except CollectorError as error:
            fix = (f"export {settings.token_env}=<token>" if settings.token_file is None
                   else "check collectors.prometheus.token_file")
            return [Finding("prometheus", str(error), fix)]
        url = settings.url.rstrip("/")
        counter = RequestCounter()
        retry = Retry(total=settings.retries, read=False, backoff_factor=0.2,
                      status_forcelist=(502, 503, 504), raise_on_status=False)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with counting_session(counter, CountingAdapter(counter, max_retries=retry)) as session:
            try:
                response = session.get(f"{url}/api/v1/query", params={"query": "vector(1)"},
                                       headers=headers, timeout=settings.timeout_seconds)
            except requests.exceptions.RequestException as error:
                why = (f"timed out after {settings.timeout_seconds:g}s" if is_timeout(error)
                       else connection_reason(error))
                return [Finding("prometheus", f"cannot reach {redact_url(url)}: {why}",
                                "check collectors.prometheus.url and the network")]
        if response.status_code in (401, 403):
            sent = "the token it was given" if token else "no token"
            return [Finding("prometheus", f"{redact_url(url)}/api/v1/query: HTTP "
                            f"{response.status_code} with {sent}",
                            "set collectors.prometheus.token_env (or token_file) to a token "
                            "the server accepts")]
        if response.status_code != 200:
            return [Finding("prometheus", f"{redact_url(url)}/api/v1/query: HTTP "
                            f"{response.status_code}", "check collectors.prometheus.url (and "
                            "token_env if it needs a token)")]
        return [Finding("prometheus", f"{redact_url(url)} reachable")]

    def credentials(self) -> list[str]:
        return [NEEDS[0].upper() + NEEDS[1:] + "."]
