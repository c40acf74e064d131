"""``report slack --dry-run`` shows messages as people read them in Slack (pure): bold and
italic as styles, bullets kept, links as ``label (url)``, escapes undone."""

from __future__ import annotations

import json

from engine.reports.blocks import context, divider, escape, field_sections, header, link, section
from engine.reports.messages import Message
from engine.reports.preview import BOLD, DIM, ITALIC, Span, mrkdwn, plain, preview
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "reports" / "golden" / "weekly.json"


def test_mrkdwn_is_shown_as_slack_renders_it() -> None:
    text = (f"*{link('https://x.example/s?a=1&b=2', 'pay&ments')}* dropped from *Gold* to "
            f"_no level_\n• *Has a README* fails: {escape('<!channel> & 2*3*4')} <!here>")
    [first, second] = mrkdwn(text)
    assert first == (Span("pay&ments (https://x.example/s?a=1&b=2)", frozenset({BOLD})),
                     Span(" dropped from "), Span("Gold", frozenset({BOLD})), Span(" to "),
                     Span("no level", frozenset({ITALIC})))
    # a value shown as text stays text; a real mention is shown as Slack shows it
    assert plain([second]) == "• Has a README fails: <!channel> & 2*3*4 @here"
    assert second[1] == Span("Has a README", frozenset({BOLD}))


def test_a_message_reads_top_to_bottom_with_fields_on_a_line_each() -> None:
    message = Message("summary", "fallback", [
        header("Scorecard report"), context("Mon 5 Jan · all services"), divider(),
        section("*Production readiness*"), *field_sections(["*Gold*\n1 (-1)", "*Silver*\n2"])])
    [(heading, lines)] = preview([("#platform-standards", message)])
    assert heading == "#platform-standards"
    assert plain(lines) == ("Scorecard report\n\nMon 5 Jan · all services\n\n" + "─" * 40 +
                            "\n\nProduction readiness\n\nGold: 1 (-1)\nSilver: 2")
    assert lines[0] == (Span("Scorecard report", frozenset({BOLD})),)
    assert lines[2] == (Span("Mon 5 Jan · all services", frozenset({DIM})),)


def test_the_golden_report_previews_with_no_markup_left_and_every_channel_named() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    messages = [Message(m["route"], m["text"], m["blocks"]) for m in golden]
    shown = preview([(m.route, m) for m in messages])
    assert [heading for heading, _ in shown] == [
        f"{m.route} (message {i} of {n})" if n > 1 else m.route
        for i, n, m in _numbered(messages)]
    text = "\n".join(plain(lines) for _, lines in shown)
    for markup in ("&lt;", "&gt;", "&amp;", "<http", "|", "*"):
        assert markup not in text
    assert ("• payments (https://levelset.example.com/api/v1/services/payments/scorecards/"
            "readiness): Gold → Silver · availability fails · Tue 6 Jan") in text
    assert len(text) < len(json.dumps(golden, indent=2, ensure_ascii=False)) / 2  # as --format json


def _numbered(messages: list[Message]) -> list[tuple[int, int, Message]]:
    totals = {m.route: sum(1 for o in messages if o.route == m.route) for m in messages}
    seen: dict[str, int] = {}
    found = []
    for m in messages:
        seen[m.route] = seen.get(m.route, 0) + 1
        found.append((seen[m.route], totals[m.route], m))
    return found
