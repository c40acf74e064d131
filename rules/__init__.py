"""How a rule expression is read (`syntax`: its tokens and tree), checked (`limits`, `typecheck`),
compiled and run: CEL programs, their functions and their context."""

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
