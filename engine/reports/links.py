"""Where a message's links point: the API's pages under ``report.link_base_url``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from engine.api.paths import service_segment


@dataclass(frozen=True)
class Links:
    """The API pages a report links to; no links without a base URL."""

    base: str | None

    def service(self, service: str, scorecard: str) -> str | None:
        """A service's page on a scorecard (``team-x/svc`` is written ``team-x:svc``)."""
        if self.base is None:
            return None
        return f"{self.base.rstrip('/')}/api/v1/services/{service_segment(service)}/scorecards/{scorecard}"

    def leaderboard(self, scorecard: str) -> str | None:
        if self.base is None:
            return None
        return f"{self.base.rstrip('/')}/api/v1/scorecards/{scorecard}/leaderboard"

    def changes(self, scorecard: str, since: datetime, until: datetime) -> str | None:
        """Every promotion and regression on a scorecard within [since, until]."""
        if self.base is None:
            return None
        query = urlencode({"scorecard": scorecard, "since": _utc(since), "until": _utc(until),
                           "limit": 1000})
        return f"{self.base.rstrip('/')}/api/v1/changes?{query}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
