"""The fixes a type error proposes: the smallest change that makes an expression well typed."""

from __future__ import annotations

from rules.syntax import Node, parse
from rules.types import DOUBLE, INT, NUMBERS, STRING, TIMESTAMP, CelType


def to_bool(text: str, kind: CelType) -> str:
    if kind in NUMBERS:
        return f"{text} > 0"
    if kind == STRING or kind.name in ("list", "map", "fact"):
        return f"size({text}) > 0"
    return ""


def fix_for(left_text: str, left: CelType, right_text: str, right: CelType,
         left_node: Node, right_node: Node) -> str:
    """The smallest change that makes ``left op right`` well typed, if there is an obvious one."""
    replacement, original = "", ""
    if left in NUMBERS and right in NUMBERS:
        target = DOUBLE if DOUBLE in (left, right) else INT
        original, node = (left_text, left_node) if left != target else (right_text, right_node)
        replacement = convert(original, target, node)
    elif left == STRING and right in NUMBERS:
        original = left_text
        replacement = f"{right}({bare(left_text)})" if left_node.kind != "literal" else unquote(left_text)
    elif right == STRING and left in NUMBERS:
        original = right_text
        replacement = f"{left}({bare(right_text)})" if right_node.kind != "literal" else unquote(right_text)
    elif left == TIMESTAMP and right == STRING and right_node.kind == "literal":
        original, replacement = right_text, f"timestamp({right_text})"
    elif right == TIMESTAMP and left == STRING and left_node.kind == "literal":
        original, replacement = left_text, f"timestamp({left_text})"
    return f"{replacement} instead of {original}" if replacement else ""


def bare(text: str) -> str:
    """``(a + b)`` without its outer brackets, when they enclose the whole text."""
    if text.startswith("(") and text.endswith(")") and parse(text[1:-1]) is not None:
        return text[1:-1]
    return text


def convert(text: str, target: CelType, node: Node) -> str:
    if node.kind == "literal" and node.text == "int" and target == DOUBLE and text.lstrip("-").isdigit():
        return f"{text}.0"
    if node.kind == "literal" and node.text == "double" and target == INT and text.endswith(".0"):
        return text[:-2]
    return f"{target}({bare(text)})"


def unquote(text: str) -> str:
    inner = text.strip("'\"")
    whole, point, fraction = inner.removeprefix("-").partition(".")
    decimal = whole.isascii() and whole.isdigit() and (not point or (fraction.isascii() and fraction.isdigit()))
    return inner if decimal else ""


