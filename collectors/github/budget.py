"""The GraphQL rate limit, kept from what GitHub reports with every query.

Each query asks for ``rateLimit { cost remaining resetAt }``. The budget adds up the points
the run spent and, before the next query, checks that what remains pays for it: when it
does not, it sleeps until the reset if that is within ``max_wait_seconds``, else it stops
the run as rate limited (the facts not read yet become unknown, with the reset time).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collectors.base import utcnow
from collectors.github.client import SourceFailed

RATE_LIMIT_FIELDS = "rateLimit { cost remaining resetAt }"


@dataclass
class Budget:
    max_wait_seconds: float
    points: int = 0  # GraphQL points this run spent, as GitHub reported them
    queries: int = 0
    remaining: int | None = None
    reset_at: datetime | None = None

    def spent(self, rate_limit: Any) -> None:
        """Record the ``rateLimit`` object of an answer."""
        self.queries += 1
        if not isinstance(rate_limit, dict):
            return
        if isinstance(rate_limit.get("cost"), int):
            self.points += rate_limit["cost"]
        if isinstance(rate_limit.get("remaining"), int):
            self.remaining = rate_limit["remaining"]
        self.reset_at = parse_moment(rate_limit.get("resetAt")) or self.reset_at

    def exhausted(self, headers: dict[str, Any] | None) -> None:
        """GitHub refused a query for the primary limit: note when it resets."""
        self.remaining = 0
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        with contextlib.suppress(KeyError, ValueError, OverflowError):
            self.reset_at = datetime.fromtimestamp(int(lowered["x-ratelimit-reset"]), UTC)

    def afford(self, cost: int) -> None:
        """Return when a query of ``cost`` points can be sent; raise when it cannot in time."""
        if self.remaining is None or self.remaining >= cost:
            return
        wait = (self.reset_at - utcnow()).total_seconds() if self.reset_at else None
        if wait is None or wait > self.max_wait_seconds:
            raise SourceFailed(f"rate limited until {self.reset_text()}")
        time.sleep(max(wait, 0) + 1)
        self.remaining = None  # GitHub will say what the new window holds

    def reset_text(self) -> str:
        if self.reset_at is None:
            return "unknown (no reset time given)"
        return self.reset_at.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_moment(value: Any) -> datetime | None:
    """An ISO-8601 moment as GitHub writes it (``...Z``), in UTC; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
