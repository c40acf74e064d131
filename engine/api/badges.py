"""Badges: an SVG and a shields.io endpoint document for a service on a scorecard."""

from __future__ import annotations

from html import escape

from engine.storage.public import ServiceScorecard

# shields.io colour names by share of levels reached.
_SCALE = ((1.0, "#4c1", "brightgreen"), (0.66, "#97ca00", "green"), (0.33, "#dfb317", "yellow"),
          (0.0, "#fe7d37", "orange"))
NONE_COLOR = ("#9f9f9f", "lightgrey")


def badge_color(card: ServiceScorecard, level_colors: dict[str, str | None]) -> tuple[str, str]:
    """(hex, shields name). A level's own colour wins; else by how far up the ladder."""
    if card.level is None:
        return NONE_COLOR
    own = level_colors.get(card.level)
    share = card.rank / max(len(card.levels), 1)
    hex_color, name = next((h, n) for bound, h, n in _SCALE if share >= bound)
    return (own, own) if own else (hex_color, name)


def badge_message(card: ServiceScorecard) -> str:
    return f"{card.level or 'no level'} ({card.score:.0f}%)"


def _width(text: str) -> int:
    return int(len(text) * 6.5) + 10


def badge_svg(label: str, message: str, color: str) -> str:
    left, right = _width(label), _width(message)
    total = left + right
    label_e, message_e = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label_e}: {message_e}"><title>{label_e}: {message_e}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{escape(color)}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{left / 2}" y="14">{label_e}</text>'
        f'<text x="{left + right / 2}" y="14">{message_e}</text></g></svg>'
    )
