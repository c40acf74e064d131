"""A message as the report builds it and delivery sends it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    """One Slack message, within Slack's limits (<= 50 blocks, section text <= 3,000
    characters, header text <= 150)."""

    route: str  # "summary" (the platform channel) or "team:<owner>"
    text: str  # the notification fallback text: mrkdwn, every value in it escaped
    blocks: list[dict[str, Any]]
