"""One front end for rule expressions: CEL's tokens, read the same by every reader of a rule."""

from __future__ import annotations

from typing import Any

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import typecheck
from rules.limits import measure
from rules.references import fact_references, reads_identifier
from rules.syntax import (
    BYTES,
    DOUBLE,
    IDENT,
    INT,
    INVALID,
    OP,
    STRING,
    UINT,
    Token,
    bound_names,
    parse,
    string_text,
    tokens,
)
from tests.rules.test_typecheck_agrees_with_runtime import ENV, expression

LITERALS: list[tuple[str, str, type]] = [
    ("0", INT, int), ("42", INT, int), ("0x1F", INT, int), ("0xfF", INT, int),
    ("1u", UINT, int), ("7U", UINT, int), ("0x1Fu", UINT, int),
    ("1.5", DOUBLE, float), (".5", DOUBLE, float), ("2e3", DOUBLE, float), ("1.5e-3", DOUBLE, float),
    ("1E+2", DOUBLE, float), ("0.0", DOUBLE, float),
    ("'a'", STRING, str), ('"a"', STRING, str), ('"a\\"b"', STRING, str), ("'it\\'s'", STRING, str),
    ("'''a'b'''", STRING, str), ('"""a\n"b"""', STRING, str), ('r"a\\d"', STRING, str),
    ("R'\\'", STRING, str), ("r'''\\'''", STRING, str),
    ('b"ab"', BYTES, bytes), ("B'\\x00'", BYTES, bytes), ('br"x"', BYTES, bytes),
    ("bR'x'", BYTES, bytes), ("BR'\\d'", BYTES, bytes),
]


@pytest.mark.parametrize(("text", "kind", "python"), LITERALS)
def test_every_literal_form_is_one_token_of_the_type_the_runtime_gives_it(text: str, kind: str,
                                                                          python: type) -> None:
    assert tokens(text) == (Token(kind, text, 0),)
    assert type(cel.evaluate(text)) is python


def test_hex_uint_and_exponent_literals_are_read_the_same_by_references_limits_and_the_checker():
    source = "f.i + 0x1F > 0 && f.d * 2.5e-3 < .5 && f.u == 0x1Fu && f.e == 1E+2"
    assert [ref.dotted for ref in fact_references(source, {"f"})] == ["f.i", "f.d", "f.u", "f.e"]
    assert not reads_identifier(source, {"x1F", "e", "E", "u"})
    shape = measure("0x1F + 1u + 2.5e-3 + .5 + 1E+2 > 0")
    assert (shape.chain_terms, shape.nesting) == (6, 0)
    env = ENV
    assert typecheck.check("f.i + 0x1F > 0 && f.d * 2.5e-3 < .5 && f.d > 1E+2", env) == []
    (problem,) = typecheck.check("f.i + 0x1Fu > 0", env)
    assert problem.describe() == ('type error in "f.i + 0x1Fu": int + uint (CEL does not convert '
                                  "between number types); fix: int(0x1Fu) instead of 0x1Fu")
    (problem,) = typecheck.check("f.d < 1e3 + 1", env)
    assert problem.subexpression == "1e3 + 1"
    assert cel.evaluate("0x1F + 1 == 32 && 1e3 + 1.0 == 1001.0 && 0x1Fu == 31u") is True


def test_a_hex_literal_is_a_number_not_a_name():
    # Read as "0" and the name "xee" before there was one number grammar.
    assert not reads_identifier("service.tier > 0xee", {"xee"})
    assert reads_identifier("service.tier > xee", {"xee"})


def test_names_in_strings_and_comments_and_after_a_dot_are_not_read():
    source = 'service.owner != "now" // now\n && custom.now > 1'
    assert not reads_identifier(source, {"now"})
    assert [ref.dotted for ref in fact_references(source, {"service", "custom"})] == \
        ["service.owner", "custom.now"]


def test_comprehension_and_transform_variables_are_bound_names():
    assert bound_names("f.ls.exists(x, x == 'a') && f.m.all(k, k != '')") == {"x", "k"}
    assert bound_names("f.m.transformMap(k, v, v) == {}") == {"k", "v"}
    assert bound_names("f.ls.exists( x ,  x == 'a')") == {"x"}
    assert bound_names("'.exists(y, ' == f.s && f.ls.size() > 0") == frozenset()


def test_what_the_runtime_does_not_read_as_one_literal_is_not_one_token():
    # CEL writes hex with a lower-case x and bytes prefixes before the raw one: the runtime
    # refuses these, as two tokens (an int and a name; a name and a string).
    assert [(t.kind, t.text) for t in tokens("0XfF")] == [(INT, "0"), (IDENT, "XfF")]
    assert [(t.kind, t.text) for t in tokens('rb"x"')] == [(IDENT, "rb"), (STRING, '"x"')]
    assert [(t.kind, t.text) for t in tokens("1e5u 1.0u 1e")] == [
        (DOUBLE, "1e5"), (IDENT, "u"), (DOUBLE, "1.0"), (IDENT, "u"), (INT, "1"), (IDENT, "e")]
    for source in ("0XfF", 'rb"x"', "1e5u", "1.0u", "1e"):
        with pytest.raises(ValueError, match="Syntax error"):
            cel.compile(source)


def test_an_unterminated_string_or_a_stray_character_is_invalid_and_has_no_tree():
    assert [t.kind for t in tokens("f.s == 'abc")] == [IDENT, OP, IDENT, OP, INVALID]
    assert [t.kind for t in tokens("f.i # 1")] == [IDENT, OP, IDENT, INVALID, INT]
    assert parse("f.s == 'abc") is None
    assert parse("f.i # 1") is None
    assert [t.kind for t in tokens("1 +\u00a02")] == [INT, OP, INVALID, INT]  # not CEL's space


def test_the_text_of_a_string_is_known_when_it_has_no_escape():
    assert [string_text(t) for t in tokens("""'a' "b" '''c''' r"d\\e" 'f\\'g' b'h' 1""")] == \
        ["a", "b", "c", "d\\e", None, None, None]


# ------------------------------------------------------------------ tokens round-trip

TOKEN_TEXTS: dict[str, st.SearchStrategy[str]] = {
    INT: st.integers(0, 10**12).map(str) | st.integers(0, 2**32).map(lambda n: f"0x{n:X}"),
    UINT: st.integers(0, 10**6).map(lambda n: f"{n}u") | st.integers(0, 255).map(lambda n: f"0x{n:x}U"),
    DOUBLE: st.tuples(st.integers(0, 999), st.integers(0, 999), st.sampled_from(["", "e5", "E-3", "e+12"]))
    .map(lambda p: f"{p[0]}.{p[1]}{p[2]}")
    | st.integers(0, 99).map(lambda n: f".{n}")
    | st.integers(0, 99).map(lambda n: f"{n}e{n % 7}"),
    STRING: st.sampled_from(["'a'", '"b c"', '"\\""', "'\\\\'", "'''x'y'''", '"""\n"""', "r'\\'",
                             'R"a\\d"', "''", '"// no comment"']),
    BYTES: st.sampled_from(["b'a'", 'B"\\x01"', "br'\\'", "Br'x'"]),
    IDENT: st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
    OP: st.sampled_from(["&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "%",
                         "?", ":", ".", ",", "(", ")", "[", "]", "{", "}"]),
}
GAPS = st.sampled_from([" ", "  ", "\n", "\t", " // a comment\n", "\t//\n", "\r\n"])


@st.composite
def token_sequences(draw: st.DrawFn) -> tuple[str, list[Token]]:
    """Tokens of every kind, each followed by spaces or a comment, and the source they make."""
    source, expected = draw(st.sampled_from(["", " ", "// leading\n"])), []
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(sorted(TOKEN_TEXTS)))
        text = draw(TOKEN_TEXTS[kind])
        expected.append(Token(kind, text, len(source)))
        source += text + draw(GAPS)
    return source, expected


@settings(max_examples=300, deadline=None, derandomize=True)
@given(token_sequences())
def test_every_token_round_trips_with_its_kind_and_position(generated: tuple[str, list[Token]]) -> None:
    source, expected = generated
    found = list(tokens(source))
    assert found == expected
    for token in found:
        assert source[token.start:token.end] == token.text
        assert tokens(token.text) == (Token(token.kind, token.text, 0),)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(source=expression("bool", 3, frozenset()))
def test_generated_rules_are_their_tokens_and_spaces_and_have_a_tree(source: str) -> None:
    rebuilt, end = "", 0
    for token in tokens(source):
        assert token.kind != INVALID, source
        assert source[end:token.start].strip() == "", source
        rebuilt += source[end:token.start] + token.text
        end = token.end
    assert rebuilt + source[end:] == source
    tree: Any = parse(source)
    assert tree is not None and (tree.start, tree.end) == (0, len(source.rstrip()))
