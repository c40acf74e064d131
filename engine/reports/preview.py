"""Messages as a person reads them in Slack, for a terminal: ``report slack --dry-run``.

Pure functions, Block Kit -> lines of styled spans. mrkdwn is rendered as Slack renders it:
``*bold*`` and ``_italic_`` become styles, ``<url|label>`` becomes ``label (url)``, the
escapes ``&amp;`` ``&lt;`` ``&gt;`` become the characters they stand for; a header is bold,
each field is a line of its own, a divider is a rule and context is dimmed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.reports.messages import Message

BOLD, ITALIC, CODE, DIM = "bold", "italic", "code", "dim"
RULE = "─" * 40

# One mrkdwn token: a link or mention in angle brackets, or a styled run. Slack styles a run
# only when its markers sit at word edges; "2*3*4" stays as written.
_TOKEN = re.compile(
    r"<(?P<link>[^<>]*)>"
    r"|(?<![\w*])\*(?P<bold>[^*\n]+?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<italic>[^_\n]+?)_(?![\w_])"
    r"|`(?P<code>[^`\n]+)`")


@dataclass(frozen=True)
class Span:
    text: str
    styles: frozenset[str] = frozenset()


Line = tuple[Span, ...]


def unescape(text: str) -> str:
    """mrkdwn's three escapes back to their characters (``&amp;`` last)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _link(inner: str) -> str:
    """``<url|label>`` -> ``label (url)``; a mention as Slack shows it: ``<!here>`` ->
    ``@here``, ``<@U1>`` -> ``@U1``, ``<#C1|general>`` -> ``#general``."""
    target, _, label = inner.partition("|")
    if target.startswith(("!", "@", "#")):
        name = unescape(label or target.lstrip("!@#"))
        return ("#" if target.startswith("#") else "@") + name
    target = unescape(target)
    return f"{unescape(label)} ({target})" if label else target


def mrkdwn(text: str, styles: frozenset[str] = frozenset()) -> list[Line]:
    """mrkdwn ``text`` as lines of spans, styled as Slack shows them."""
    lines: list[Line] = []
    for raw in text.split("\n"):
        spans: list[Span] = []
        position = 0
        for match in _TOKEN.finditer(raw):
            if match.start() > position:
                spans.append(Span(unescape(raw[position:match.start()]), styles))
            if match["link"] is not None:
                spans.append(Span(_link(match["link"]), styles))
            else:
                style = BOLD if match["bold"] else ITALIC if match["italic"] else CODE
                inner = match["bold"] or match["italic"] or match["code"]
                spans += [Span(span.text, span.styles | {style})
                          for line in mrkdwn(inner, styles) for span in line]
            position = match.end()
        if position < len(raw):
            spans.append(Span(unescape(raw[position:]), styles))
        lines.append(tuple(spans))
    return lines


def _text(element: dict[str, Any], styles: frozenset[str] = frozenset()) -> list[Line]:
    if element.get("type") == "plain_text":
        return [(Span(line, styles),) for line in str(element.get("text", "")).split("\n")]
    return mrkdwn(str(element.get("text", "")), styles)


def block_lines(block: dict[str, Any]) -> list[Line]:
    """One block as the lines Slack shows for it."""
    kind = block.get("type")
    if kind == "header":
        return _text(block.get("text") or {}, frozenset({BOLD}))
    if kind == "divider":
        return [(Span(RULE, frozenset({DIM})),)]
    if kind == "context":
        return [line for element in block.get("elements") or () if isinstance(element, dict)
                for line in _text(element, frozenset({DIM}))]
    lines: list[Line] = []
    if isinstance(block.get("text"), dict):
        lines += _text(block["text"])
    for field in block.get("fields") or ():  # a field on a line: "Gold: 3 (+1)"
        parts = [line for line in _text(field) if line]
        lines.append(tuple(span for index, line in enumerate(parts)
                           for span in ((Span(": "),) if index else ()) + line))
    return lines


def message_lines(message: Message) -> list[Line]:
    """A message's blocks, a blank line between blocks (its ``text`` when it has none)."""
    if not message.blocks:
        return mrkdwn(message.text)
    lines: list[Line] = []
    for index, block in enumerate(message.blocks):
        if index:
            lines.append(())
        lines += block_lines(block)
    return lines


def plain(lines: Iterable[Line]) -> str:
    """The lines without their styles."""
    return "\n".join("".join(span.text for span in line) for line in lines)


def preview(outgoing: Sequence[tuple[str, Message]]) -> list[tuple[str, list[Line]]]:
    """(heading, lines) for each (channel, message): ``#channel (message 2 of 3)``."""
    totals: dict[str, int] = {}
    for channel, _ in outgoing:
        totals[channel] = totals.get(channel, 0) + 1
    seen: dict[str, int] = {}
    found = []
    for channel, message in outgoing:
        seen[channel] = seen.get(channel, 0) + 1
        of = f" (message {seen[channel]} of {totals[channel]})" if totals[channel] > 1 else ""
        found.append((f"{channel}{of}", message_lines(message)))
    return found
