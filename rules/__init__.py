"""How a rule expression is compiled and run: CEL programs, their functions and their context."""

from rules.expression import (
    EvaluationOutcome,
    Expression,
    ExpressionError,
    ExpressionSyntaxError,
    ExpressionTooComplex,
    Outcome,
)

__all__ = [
    "EvaluationOutcome",
    "Expression",
    "ExpressionError",
    "ExpressionSyntaxError",
    "ExpressionTooComplex",
    "Outcome",
]
