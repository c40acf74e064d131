"""Where a message's links point: the API's pages under ``report.link_base_url``."""

from __future__ import annotations

from dataclasses import dataclass

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
