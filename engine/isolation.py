"""Evaluation in a child process with a wall-clock budget.

Rules are user input and the CEL runtime is native code: a rule may crash the process
(a segmentation fault), hold the GIL for minutes, or never end. So a server never evaluates
in its own process: it sends the run's inputs to a long-lived child and waits on a pipe (its
event loop and database sessions never wait on the GIL). When the child dies or overruns its
budget it is killed, and the culprits are found by evaluating each scorecard, then each of the
failing scorecard's rules, alone; those rules become ``error`` with the reason, for every
service, and everything else is graded. A crash costs the run time, never the run.
"""

from __future__ import annotations

import contextlib
import copyreg
import ctypes
import ctypes.util
import logging
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing.connection import Connection
from types import MappingProxyType
from typing import Any

from core.schema import FactSchema
from core.service import Service
from engine.evaluation import (
    Evaluation,
    RuleResult,
    RuleStatus,
    ScorecardResult,
    ServiceFacts,
    achieved_level,
    evaluate,
    score,
)
from engine.incremental import clock_part
from engine.loading import parse_scorecard
from engine.scorecard import Scorecard
from rules.expression import Expression

log = logging.getLogger("levelset.isolation")



def _read_only(values: dict[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(values)


# Results carry read-only evidence (a mappingproxy), which pickle does not know how to send.
copyreg.pickle(MappingProxyType, lambda proxy: (_read_only, (dict(proxy),)))

FILTER = "(filter)"  # how a scorecard's filter is named among its rules when it is the culprit


class EvaluationFailure(Exception):
    """The child died or overran its budget; ``reason`` says which, for the rules it costs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EvaluationTask:
    """What a child needs to grade: picklable, so scorecards travel as their text."""

    services: Sequence[Service]
    facts: Mapping[str, ServiceFacts]
    scorecards: Sequence[tuple[str, str]]  # (path, text): the child compiles them again
    schemas: Mapping[str, FactSchema]
    now: datetime
    # scorecard -> rule (or FILTER) -> why it is not run: the rule's result is an error.
    disabled: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # service -> the scorecards to grade it on (None: all); see ``evaluate``.
    only: Mapping[str, Collection[str]] | None = None
    clock_only: bool = False  # grade only the rules that read the clock (``clock_part``)


def grade(task: EvaluationTask) -> Evaluation:
    """The child's work: compile the scorecards, evaluate, and turn disabled rules to errors."""
    cards = []
    for path, text in task.scorecards:
        card, problems = parse_scorecard(text, path, task.schemas)
        if card is None:  # it compiled in the parent; a child that disagrees is a bug
            raise RuntimeError(f"{path}: does not compile in the evaluation process: {problems}")
        if task.clock_only:
            card = clock_part(card)
        cards.append(_without(card, task.disabled.get(card.name, {})))
    evaluation = evaluate(task.services, task.facts, cards, task.schemas, task.now, task.only)
    evaluation.unsettled.update(task.disabled)
    if task.disabled:
        by_name = {card.name: card for card in cards}
        evaluation.results = [
            _as_errors(result, by_name[result.scorecard], task.disabled.get(result.scorecard, {}))
            for result in evaluation.results
        ]
        for name, culprits in task.disabled.items():
            if FILTER in culprits:
                for service in task.services:
                    evaluation.filter_errors[(service.name, name)] = culprits[FILTER]
    return evaluation


def _without(card: Scorecard, disabled: Mapping[str, str]) -> Scorecard:
    """The scorecard with disabled rules made harmless (their results are replaced after)."""
    if not disabled:
        return card
    harmless = Expression.compile("true", ())
    rules = tuple(replace(r, expression=harmless) if r.name in disabled else r for r in card.rules)
    never = Expression.compile("false", ()) if FILTER in disabled else card.filter
    return replace(card, rules=rules, filter=never)


def _as_errors(
    result: ScorecardResult, card: Scorecard, disabled: Mapping[str, str]
) -> ScorecardResult:
    if not disabled:
        return result
    rules = tuple(
        RuleResult(r.rule, r.level, RuleStatus.ERROR, disabled[r.rule], r.weight)
        if r.rule in disabled else r
        for r in result.rules
    )
    level = achieved_level(card.levels, rules)
    rank = level.rank if level else 0
    return ScorecardResult(
        result.service, result.scorecard, level.name if level else None, score(rules), rules,
        card.levels[rank].name if rank < len(card.levels) else None,
    )


# --- the child process ---------------------------------------------------------------------

STARTUP_SECONDS = 120
PR_SET_PDEATHSIG = 1


def _ready(_: object) -> bool:
    return True



def _die_with_parent() -> None:
    """On Linux, the kernel kills this process when its parent dies (even by SIGKILL), so a
    runaway evaluation never outlives the server that asked for it."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pipe's EOF ends an idle child
        pass


def _child(connection: Connection) -> None:
    """Serve calls until the parent closes the pipe."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the child stops
    while True:
        try:
            function, argument = connection.recv()
        except EOFError:
            return
        try:
            connection.send((True, function(argument)))
        except Exception as error:  # reported to the parent, which fails the run
            connection.send((False, f"{type(error).__name__}: {error}"))


def child_main(fd: int) -> None:
    """The child's entry point: the parent's import path first (so that the functions it
    sends can be imported), then calls until the parent closes the socket ``fd``."""
    connection = Connection(fd)
    sys.path[:] = connection.recv()
    _child(connection)


# The child is a new interpreter started with subprocess, not a multiprocessing.Process: a
# Celery prefork worker is a daemonic process, and multiprocessing refuses daemonic
# processes children. The child dies with its parent all the same (_die_with_parent).
CHILD_COMMAND = ("import sys; from engine.isolation import child_main; "
                 "child_main(int(sys.argv[1]))")


class Evaluator:
    """A long-lived child process that evaluates, restarted after a crash or a timeout.

    One call at a time (a lock): a process evaluates one run after another, as before.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None

    def call(self, function: Callable[[Any], Any], argument: Any, *, budget: float) -> Any:
        """``function(argument)`` in the child; raises EvaluationFailure on crash or timeout."""
        with self._lock:
            connection = self._ensure()
            try:
                connection.send((function, argument))
                if not connection.poll(budget):
                    self._kill()
                    raise EvaluationFailure(f"evaluation exceeded its budget of {budget:g} s")
                ok, value = connection.recv()
            except (EOFError, OSError, BrokenPipeError):
                raise EvaluationFailure(self._death()) from None
            if not ok:
                raise RuntimeError(value)
            return value

    def _ensure(self) -> Connection:
        if self._process is None or self._process.poll() is not None:
            parent, child = socket.socketpair()
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-c", CHILD_COMMAND, str(child.fileno())],
                    pass_fds=[child.fileno()], stdin=subprocess.DEVNULL)
            finally:
                child.close()
            self._connection = Connection(parent.detach())
            self._connection.send([entry for entry in sys.path if isinstance(entry, str)])
            # Imports happen before the first call is read; they do not count against its budget.
            self._connection.send((_ready, None))
            try:
                started = (self._connection.poll(STARTUP_SECONDS)
                           and self._connection.recv() == (True, True))
            except (EOFError, OSError):
                started = False
            if not started:
                self._kill()
                raise EvaluationFailure("the evaluation process did not start")
        assert self._connection is not None
        return self._connection

    def _death(self) -> str:
        process = self._process
        assert process is not None
        try:
            code: int | None = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self._forget()
        if code is not None and code < 0:
            try:
                return f"evaluation crashed ({signal.Signals(-code).name})"
            except ValueError:
                return f"evaluation crashed (signal {-code})"
        return f"evaluation process exited with status {code}"

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        self._forget()

    def _forget(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()  # the child reads EOF and returns
                self._connection = None
            if self._process is not None:
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=5)
            self._process = None


_EVALUATOR = Evaluator()


def evaluate_isolated(
    task: EvaluationTask,
    *,
    budget: float,
    evaluator: Evaluator | None = None,
    function: Callable[[EvaluationTask], Evaluation] = grade,
) -> Evaluation:
    """Grade ``task`` in the child; on a crash or timeout, find the culprit rules and grade
    everything else. ``function`` runs in the child (a module-level function)."""
    evaluator = evaluator or _EVALUATOR
    try:
        result: Evaluation = evaluator.call(function, task, budget=budget)
        return result
    except EvaluationFailure as failure:
        log.warning("evaluation failed (%s); evaluating scorecards one by one", failure.reason)
    parts: list[Evaluation] = []
    for path, text in task.scorecards:
        alone = replace(task, scorecards=[(path, text)])
        try:
            parts.append(evaluator.call(function, alone, budget=budget))
            continue
        except EvaluationFailure:
            pass
        card, culprits = _culprits(alone, evaluator, function, budget)
        log.warning("%s: rules disabled for this run: %s", path, culprits)
        parts.append(evaluator.call(function, replace(alone, disabled={card: culprits}),
                                    budget=budget))
    return _merge(task, parts)


def _culprits(
    task: EvaluationTask, evaluator: Evaluator, function: Callable[[EvaluationTask], Evaluation],
    budget: float,
) -> tuple[str, dict[str, str]]:
    """The scorecard's name and the rules (and the filter) that fail alone, with why."""
    [(path, text)] = task.scorecards
    card, _ = parse_scorecard(text, path, task.schemas)
    assert card is not None
    names = [rule.name for rule in card.rules] + ([FILTER] if card.filter is not None else [])
    found: dict[str, str] = {}
    for name in names:
        others = {other: "not evaluated" for other in names if other != name}
        try:
            evaluator.call(function, replace(task, disabled={card.name: others}), budget=budget)
        except EvaluationFailure as failure:
            found[name] = failure.reason
    # Every rule passes alone but not together: none can be blamed, so none is run.
    return card.name, found or dict.fromkeys(names, "evaluation failed with all rules together")


def _merge(task: EvaluationTask, parts: Sequence[Evaluation]) -> Evaluation:
    """One evaluation of per-scorecard parts, in the order a single evaluation has."""
    merged = Evaluation.combined(task.now, parts)
    position = {service.name: index for index, service in enumerate(task.services)}
    merged.results.sort(key=lambda r: position[r.service])  # stable: scorecards keep order
    return merged
