"""Block Kit within Slack's limits: any report splits into messages Slack accepts, keeping
every row once, whole and in order (pure: no database)."""

from __future__ import annotations

import html
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.reports.blocks import (
    MAX_BLOCKS,
    MAX_FIELD_TEXT,
    MAX_FIELDS,
    MAX_HEADER_TEXT,
    MAX_MESSAGE_TEXT,
    MAX_SECTION_TEXT,
    Blocks,
    Part,
    Rows,
    clip,
    escape,
    field_sections,
    header,
    link,
    messages,
    section,
    text_size,
    violations,
)
from engine.reports.messages import Message

# A row is escaped mrkdwn: text, maybe linked, from characters Slack treats specially too.
RAW = st.text(alphabet="ab <>&|*_~`é😀-", max_size=60)
ROW = st.builds(
    lambda raw, url, repeat: (link("https://x.example/a?b=1&c=2", raw) if url else escape(raw))
    * repeat,
    RAW, st.booleans(), st.sampled_from([1, 1, 1, 5, 80]))


def lists() -> st.SearchStrategy[list[Part]]:
    rows = st.one_of(st.lists(ROW, max_size=10), st.lists(ROW, min_size=100, max_size=400))
    scope = st.sampled_from([None, "*Production readiness*", "*Sécurité &amp; co*"])
    part = st.one_of(
        st.builds(lambda r, s: Rows("*Promoted*", tuple(r), scope=s), rows, scope),
        st.builds(lambda s: Blocks((section("heading"),), scope=s, opens=True), scope),
        st.builds(lambda n: Blocks(tuple(field_sections([f"*L{i}*\n{i}" for i in range(n)]))),
                  st.integers(1, 25)),
    )
    return st.lists(part, max_size=6)


def sent_rows(sent: list[Message]) -> list[str]:
    """Every row of every list, in the order the messages show them."""
    found = []
    for message in sent:
        for block in message.blocks:
            text = block.get("text", {}).get("text", "")
            if block["type"] == "section" and text.startswith("*Promoted*"):
                title, *rows = text.split("\n")
                assert title in ("*Promoted*", "*Promoted* (continued)")
                found += rows
    return found


def kept(original: str, shown: str) -> bool:
    """Shown whole, or (longer than a section) clipped at a safe place."""
    return shown == original or (shown.endswith("…") and original.startswith(shown[:-1]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lists())
def test_any_report_fits_slack_and_keeps_every_row_once_in_order(parts: list[Part]) -> None:
    sent = messages(route="summary", title="Scorecard report " * 12, about=["the week"],
                    fallback="report", parts=parts)
    for message in sent:
        assert violations(message.blocks) == []
        assert len(message.blocks) <= MAX_BLOCKS
        assert text_size(message.blocks) <= MAX_MESSAGE_TEXT
        for block in message.blocks:
            if block["type"] == "section":
                assert len(block.get("text", {}).get("text", "")) <= MAX_SECTION_TEXT
                assert len(block.get("fields", [])) <= MAX_FIELDS
                assert all(len(f["text"]) <= MAX_FIELD_TEXT for f in block.get("fields", []))
    rows = [" ".join(r.splitlines()) for p in parts if isinstance(p, Rows) for r in p.rows]
    shown = sent_rows(sent)
    assert len(shown) == len(rows)
    assert all(kept(r, s) for r, s in zip(rows, shown, strict=True))
    headers = [m.blocks[0]["text"]["text"] for m in sent]
    assert all(len(h) <= MAX_HEADER_TEXT for h in headers)
    if len(sent) > 1:
        assert [h.rsplit(" ", 1)[1] for h in headers] == [
            f"({i}/{len(sent)})" for i in range(1, len(sent) + 1)]
        assert [m.text for m in sent] == [f"report ({i}/{len(sent)})"
                                          for i in range(1, len(sent) + 1)]
    else:
        assert not re.search(r"\(\d+/\d+\)$", headers[0])


@settings(max_examples=200, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=4).map("".join), st.integers(1, 400))
def test_clipping_never_cuts_an_escape_or_a_link(text: str, limit: int) -> None:
    clipped = clip(text, limit)
    assert len(clipped) <= limit
    assert kept(text, clipped)
    body = clipped.removesuffix("…") if clipped != text else clipped
    assert body.count("<") == body.count(">")  # every link whole
    assert re.fullmatch(r"([^&]|&(amp|lt|gt);)*", body, flags=re.S)  # every escape whole


def test_names_are_escaped_and_links_hold_their_label() -> None:
    assert escape("R&D <ops> team") == "R&amp;D &lt;ops&gt; team"
    assert link(None, "a<b") == "a&lt;b"
    assert link("https://x.example/a b|c?d=1&e=<2>", "x|y&z") == (
        "<https://x.example/a%20b%7Cc?d=1&amp;e=%3C2%3E|x¦y&amp;z>")
    assert html.unescape(escape("&amp;")) == "&amp;"


def test_a_page_that_begins_inside_a_scorecard_says_which_continues() -> None:
    rows = tuple(f"• service-{i:03d} " + "x" * 150 for i in range(300))
    parts: list[Part] = [Blocks((section("*Readiness*"),), scope="*Readiness*", opens=True),
                         Rows("*Promoted*", rows, scope="*Readiness*")]
    sent = messages(route="summary", title="Report", about=["week"], fallback="f", parts=parts)
    assert len(sent) > 1
    first = [b["type"] for b in sent[0].blocks]
    assert first[:3] == ["header", "context", "section"]
    assert sent[0].blocks[2]["text"]["text"] == "*Readiness*"
    for message in sent[1:]:
        note = message.blocks[2]
        assert note == {"type": "context", "elements": [
            {"type": "mrkdwn", "text": "*Readiness* (continued)"}]}
        assert message.blocks[3]["text"]["text"].startswith("*Promoted* (continued)\n•")
    assert sent_rows(sent) == list(rows)


def test_a_heading_never_ends_a_message_without_what_it_heads() -> None:
    filler = Rows("*Filler*", tuple("y" * 190 for _ in range(48)))
    parts: list[Part] = [filler, Blocks((section("*Security*"),), scope="*Security*", opens=True),
                         Rows("*Promoted*", ("• one",), scope="*Security*")]
    sent = messages(route="summary", title="Report", about=["week"], fallback="f", parts=parts)
    for message in sent:
        texts = [b.get("text", {}).get("text", "") for b in message.blocks]
        if "*Security*" in texts:
            assert texts[texts.index("*Security*") + 1] == "*Promoted*\n• one"


def test_violations_name_what_slack_would_refuse() -> None:
    too_many = [section("x")] * 51
    assert violations(too_many)[0] == "51 blocks (at most 50)"
    long = [header("h" * 10), {"type": "section", "text": {"type": "mrkdwn", "text": "t" * 3001}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]
    assert violations(long) == ["block 1: section text of 3001 characters", "block 2: 11 fields"]
    assert violations([section("s" * 3000)] * 4) == [
        "12000 characters of text (at most 10000)"]
    assert header("h" * 400)["text"]["text"] == "h" * 149 + "…"
