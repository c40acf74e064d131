"""Facts as CEL variables: a context the runtime accepts, and which namespaces it refused.

The runtime converts every variable into its own values when a context is made, and refuses
the whole context for one value it cannot take (a string with an unpaired surrogate, a set, a
map key that is not a string, int or bool), naming the variable but not the value. A
namespace it refuses is left out of the context, with the place and the reason, so only the
rules reading that namespace are affected.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

import cel

from rules.expression import PROCESS_EXITS, describe_error

_ACCEPTED = (bool, int, float, bytes, bytearray, dt.datetime, dt.timedelta, decimal.Decimal,
             type(None))


def cel_context(
    variables: dict[str, Any], constants: Mapping[str, Any], functions: dict[str, Any]
) -> tuple[cel.Context, dict[str, str]]:
    """A context of ``variables`` and ``constants``, and the variables refused, with why.

    Refused variables are removed from ``variables``. On a refusal each variable is tried
    alone: only a service with facts the runtime cannot take pays for it.
    """
    try:
        return cel.Context(variables={**variables, **constants}, functions=functions), {}
    except PROCESS_EXITS:
        raise
    except BaseException:
        pass
    refused: dict[str, str] = {}
    for name in list(variables):
        try:
            cel.Context(variables={name: variables[name]})
        except PROCESS_EXITS:
            raise
        except BaseException as error:
            refused[name] = unconvertible(variables.pop(name), name) or describe_error(error)
    try:
        return cel.Context(variables={**variables, **constants}, functions=functions), refused
    except PROCESS_EXITS:
        raise
    except BaseException as error:
        for name in list(variables):
            refused[name] = describe_error(error)
            del variables[name]
        return cel.Context(variables=dict(constants), functions=functions), refused


def unconvertible(value: Any, path: str) -> str | None:
    """Where in ``value`` (named ``path``) is something CEL cannot take, and what; or None."""
    pending = [(path, value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, str):
            if not _valid_unicode(item):
                return f"{where} is a string that is not valid Unicode (an unpaired surrogate)"
        elif isinstance(item, _ACCEPTED):
            continue
        elif isinstance(item, list | tuple):
            pending.extend((f"{where}[{index}]", v) for index, v in reversed(list(enumerate(item))))
        elif isinstance(item, Mapping):
            for key in item:
                if not isinstance(key, str | int | bool):
                    return f"{where} has a key of type {type(key).__name__} (CEL keys are strings, ints or bools)"
                if isinstance(key, str) and not _valid_unicode(key):
                    return f"{where} has a key that is not valid Unicode (an unpaired surrogate)"
            pending.extend((f"{where}.{key}", v) for key, v in reversed(list(item.items())))
        else:
            return f"{where} is a {type(item).__name__}, which CEL has no type for"
    return None


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
