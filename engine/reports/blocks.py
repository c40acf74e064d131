"""Slack Block Kit within Slack's limits: blocks, mrkdwn text, and splitting into messages.

Pure functions, rows -> blocks -> messages. A report is a list of parts: ``Blocks`` kept
together in one message, and ``Rows``, a titled list of one line per row that may continue in
the next section or message but is never cut inside a row. ``paginate`` packs the parts into
messages of at most 50 blocks and 10,000 characters of text; each message begins with the
report's header (numbered "(2/3)" when there are several) and context, and a part that
continues from the previous message says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from engine.reports.messages import Message

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 2000
# Not in Slack's reference, but enforced: chat.postMessage answers msg_blocks_too_long when
# the text of all blocks together passes about 12,000 characters (reports have seen it at
# 11,341; slackapi/bolt-js#2509, #2867). Messages stay well under it.
MAX_MESSAGE_TEXT = 10_000
ELLIPSIS = "…"

Block = dict[str, Any]


def escape(text: str) -> str:
    """Text shown as itself in mrkdwn: Slack reads only ``&``, ``<`` and ``>`` as control
    characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, label: str) -> str:
    """``label`` (plain text) linked to ``url``, or the label alone when there is no URL."""
    if url is None:
        return escape(label)
    # Percent-encoded where Slack's link syntax would end early ("|", ">", spaces), and "&"
    # escaped as in all mrkdwn, so a "&" always begins an escape.
    target = escape(quote(url, safe=":/?#[]@!$&()*+,;=%-._~"))
    return f"<{target}|{escape(label).replace('|', '¦')}>" if label else f"<{target}>"


def clip(text: str, limit: int) -> str:
    """mrkdwn ``text`` cut to ``limit`` characters, ending in "…" when cut, never inside an
    escape (``&amp;``) or a link (``<url|label>``)."""
    if len(text) <= limit:
        return text
    kept = text[: max(limit - len(ELLIPSIS), 0)]
    opening = kept.rfind("<")
    if opening > kept.rfind(">"):
        kept = kept[:opening]
    ampersand = kept.rfind("&")
    if ampersand > kept.rfind(";"):
        kept = kept[:ampersand]
    return kept + ELLIPSIS


def clip_plain(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def header(text: str) -> Block:
    return {"type": "header",
            "text": {"type": "plain_text", "text": clip_plain(text, MAX_HEADER_TEXT)}}


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [
        {"type": "mrkdwn", "text": clip(text, MAX_CONTEXT_TEXT)}
        for text in texts[:MAX_CONTEXT_ELEMENTS]]}


def divider() -> Block:
    return {"type": "divider"}


def field_sections(texts: Sequence[str]) -> list[Block]:
    """Fields (two columns in Slack), ten to a section."""
    return [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": clip(text, MAX_FIELD_TEXT)}
                                       for text in texts[start:start + MAX_FIELDS]]}
        for start in range(0, len(texts), MAX_FIELDS)
    ]


@dataclass(frozen=True)
class Blocks:
    """Blocks kept together in one message. ``opens``: they head the part named ``scope`` and
    stay with what follows them."""

    blocks: tuple[Block, ...]
    scope: str | None = None
    opens: bool = False


@dataclass(frozen=True)
class Rows:
    """A titled list, one row per line; it continues in the next section (and message) when
    it is long, under ``title`` + " (continued)". ``empty``: what to say when there are no
    rows (None: the part is left out)."""

    title: str
    rows: tuple[str, ...]
    scope: str | None = None
    empty: str | None = None


Part = Blocks | Rows


def row_sections(part: Rows, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """The section texts of a list: as many whole rows as fit in each, in order. A row
    longer than a section by itself is clipped (never split)."""
    if not part.rows:
        return [] if part.empty is None else [f"{part.title}\n{part.empty}"]
    texts: list[str] = []
    text = part.title
    count = 0
    for line in part.rows:
        row = " ".join(line.splitlines())  # a row is one line, whatever a name holds
        if count and len(text) + 1 + len(row) > limit:
            texts.append(text)
            text, count = f"{part.title} (continued)", 0
        text += "\n" + clip(row, limit - len(text) - 1)
        count += 1
    texts.append(text)
    return texts


@dataclass(frozen=True)
class _Unit:
    blocks: tuple[Block, ...]
    scope: str | None
    opens: bool  # the unit begins its scope: no "continued" note before it


def _units(parts: Iterable[Part]) -> list[_Unit]:
    """The parts as units that never split: each section of a list, each group of blocks;
    a group that opens a scope is joined to the unit after it, in the same scope."""
    units: list[_Unit] = []
    heading: _Unit | None = None
    for part in parts:
        if isinstance(part, Blocks):
            found = [_Unit(part.blocks, part.scope, part.opens or part.scope is None)]
        else:
            found = [_Unit((section(text),), part.scope, part.scope is None)
                     for text in row_sections(part)]
        for unit in found:
            if heading is not None and heading.scope == unit.scope:
                unit = _Unit(heading.blocks + unit.blocks, unit.scope, True)
            elif heading is not None:
                units.append(heading)
            heading = None
            if isinstance(part, Blocks) and part.opens:
                heading = unit
            else:
                units.append(unit)
    if heading is not None:
        units.append(heading)
    return units


def text_size(value: Any) -> int:
    """Characters of text in a block (or blocks): what Slack counts against a message."""
    if isinstance(value, dict):
        return sum(len(v) if k == "text" and isinstance(v, str) else text_size(v)
                   for k, v in value.items())
    if isinstance(value, list):
        return sum(text_size(v) for v in value)
    return 0


def paginate(
    parts: Iterable[Part], room: int = MAX_BLOCKS, text_room: int = MAX_MESSAGE_TEXT
) -> list[list[Block]]:
    """The parts' blocks in pages of at most ``room`` blocks and ``text_room`` characters of
    text, never splitting a unit (unless one alone is larger than a page). A page that begins
    inside a scope begins with a note that the scope continues."""
    pages: list[list[Block]] = []
    page: list[Block] = []
    for unit in _units(parts):
        blocks = list(unit.blocks)
        note = [] if unit.opens or unit.scope is None else [context(f"{unit.scope} (continued)")]
        if page and (len(page) + len(blocks) > room
                     or text_size(page) + text_size(blocks) > text_room):
            pages.append(page)
            page = []
        if not page:
            blocks = note + blocks
        while page or blocks:  # a unit larger than a page by itself splits between blocks
            while blocks and (not page or (len(page) < room and
                                           text_size(page) + text_size(blocks[0]) <= text_room)):
                page.append(blocks.pop(0))
            if not blocks:
                break
            pages.append(page)
            page = []
    if page:
        pages.append(page)
    return pages


def numbered(title: str, index: int, total: int) -> str:
    """A header's text, "(2/3)" when the report spans several messages, within 150 chars."""
    suffix = f" ({index}/{total})" if total > 1 else ""
    return clip_plain(title, MAX_HEADER_TEXT - len(suffix)) + suffix


def messages(
    *, route: str, title: str, about: Sequence[str], fallback: str, parts: Iterable[Part]
) -> list[Message]:
    """The parts as messages to ``route``, in order, each within Slack's limits: a header
    (``title``, numbered when there are several), a context line (``about``), then a page.

    ``fallback`` is plain text: the message's top-level ``text`` (what notifications show),
    which Slack reads as mrkdwn too, so it is escaped here, once for every report.
    """
    top = [header(title + " (99/99)"), context(*about)]
    pages = paginate(parts, room=MAX_BLOCKS - len(top),
                     text_room=MAX_MESSAGE_TEXT - text_size(top)) or [[]]
    total = len(pages)
    return [
        Message(route=route,
                text=escape(fallback) + (f" ({index}/{total})" if total > 1 else ""),
                blocks=[header(numbered(title, index, total)), context(*about), *page])
        for index, page in enumerate(pages, start=1)
    ]


def violations(blocks: Sequence[Block]) -> list[str]:
    """Where ``blocks`` break Slack's limits (none: Slack accepts them)."""
    found = [f"{len(blocks)} blocks (at most {MAX_BLOCKS})"] if len(blocks) > MAX_BLOCKS else []
    if text_size(list(blocks)) > MAX_MESSAGE_TEXT:
        found.append(f"{text_size(list(blocks))} characters of text (at most {MAX_MESSAGE_TEXT})")
    for i, block in enumerate(blocks):
        text = block.get("text", {}).get("text", "")
        if block["type"] == "header" and len(text) > MAX_HEADER_TEXT:
            found.append(f"block {i}: header text of {len(text)} characters")
        if block["type"] == "section" and len(text) > MAX_SECTION_TEXT:
            found.append(f"block {i}: section text of {len(text)} characters")
        elements = block.get("elements", [])
        if block["type"] == "context" and not 0 < len(elements) <= MAX_CONTEXT_ELEMENTS:
            found.append(f"block {i}: {len(elements)} context elements")
        found += [f"block {i}: context text of {len(e['text'])} characters"
                  for e in elements if len(e.get("text", "")) > MAX_CONTEXT_TEXT]
        fields = block.get("fields", [])
        if len(fields) > MAX_FIELDS:
            found.append(f"block {i}: {len(fields)} fields")
        found += [f"block {i}: field of {len(f['text'])} characters"
                  for f in fields if len(f["text"]) > MAX_FIELD_TEXT]
        if block["type"] == "section" and not text and not fields:
            found.append(f"block {i}: a section with neither text nor fields")
    return found
