"""Errors a user can act on, rooted in the lowest layer so that every layer can raise them.

`features`, `models` and `pipeline` all raise `ChurnError` subclasses for problems with the
user's input, configuration or environment; the CLI prints any `ChurnError` as one paragraph and
exits 1. Anything else is a bug and shows a traceback only with `--debug`.
"""

from __future__ import annotations

import math
import types
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from features.spelling import did_you_mean


class ChurnError(Exception):
    """A problem with the user's input, configuration or environment."""


class DataContractError(ChurnError):
    """Input data breaks the contract of SPEC.md (table, column, problem, example rows)."""


class ConfigError(ChurnError):
    """A configuration file or value is invalid."""


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and its noun, singular for one ('1 row', '2 rows', '1,200 accounts'): every layer's messages
    count things, and '1 rows' reads as a slip. A phrase with its verb gives both forms: `counted(n, 'value is
    missing', 'values are missing')`. The one count helper of every message but the feature templates', whose
    counts are format fields inside the template (`features.registry.singular_counts`)."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def signed(value: float, spec: str) -> str:
    """`value` in format `spec` with its sign ('+0.25', '-1.3%'), but unsigned where it rounds to zero ('0.00'):
    '+0.00' and '-0.00' claim a direction that the number shown does not have."""
    shown = f"{value:+{spec}}"
    return f"{0.0:{spec}}" if math.isfinite(value) and not any(c in "123456789" for c in shown) else shown


def listed(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 2 else items)


def named(noun: str, names: Sequence[object], plural: str | None = None) -> str:
    """`noun` in the number of `names`, then the names quoted: "column 'id'", "columns 'id' and 'Churn'" (a list
    says its own count, so the number is left out)."""
    return f"{noun if len(names) == 1 else plural or noun + 's'} {listed([repr(str(n)) for n in names])}"


def config_error(
    header: str,
    exc: ValidationError,
    noun: str = "invalid setting",
    tags: Collection[str] = (),
    flags: Mapping[str, str] | None = None,
    model: type[BaseModel] | None = None,
) -> ConfigError:
    """One readable line per pydantic error under `header` ("<header>: 2 <noun>:"), each with its key path.

    `tags` are the values of discriminated unions (a scorecard's scheme names), which pydantic puts
    into the path (`metrics.x.linear.good`) and a user never wrote. Rejected values are never
    echoed (a webhook URL may carry a token), except those of `flags`: key paths set by command-line
    options, named by the option the user typed (`--every '7' (features.cadence): ...`). With the
    validated `model`, an unknown key gets the closest known key of its place as a suggestion.
    """
    lines = [f"{header}: {counted(len(exc.errors()), noun)}:"]
    for err in exc.errors():
        loc = err["loc"]
        path = [p for i, p in enumerate(loc) if not (i >= 2 and loc[i - 2] == "metrics" and p in tags)]
        where = ".".join(str(p) for p in path) or "(top level)"
        if flags and where in flags:
            where = f"{flags[where]} {str(err['input'])!r} ({where})"
        message = _message(err, tags)
        if err["type"] == "extra_forbidden" and model is not None:
            message += did_you_mean(str(loc[-1]), _keys_at(model, loc[:-1]), clause=True)
        # a check of the whole file names the keys it is about ("segment 'young': ..."): no place before it
        lines.append(f"  {message}" if not path and err["type"] == "value_error" else f"  {where}: {message}")
    return ConfigError("\n".join(lines))


def _message(err: dict, tags: Collection[str]) -> str:
    kind, loc = err["type"], err["loc"]
    if kind == "union_tag_invalid":
        return f"unknown scheme {err['ctx']['tag']!r}; use one of {', '.join(tags)}"
    if kind == "union_tag_not_found":
        return f"missing 'scheme' (one of {', '.join(tags)})"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind == "extra_forbidden":
        return f"unknown key '{loc[-1]}'"
    if kind == "missing":
        return f"missing required key '{loc[-1]}'"
    if kind in ("model_type", "dict_type"):  # pydantic names its own class: "instance of AlertSettings"
        return f"must be a mapping of keys to values (indented `key: value` lines), not {_kind_of(err['input'])}"
    return err["msg"]


def _kind_of(value: Any) -> str:
    """What a YAML value is, in words, without showing it (it may be a secret)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    return "null" if value is None else type(value).__name__


def _keys_at(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """The keys the settings model accepts at `loc` (through nested models, optional ones and mappings
    keyed by the user's names); none where the path leads elsewhere (lists, unions of models)."""
    node = model
    for part in loc:
        node = _model_of(node)
        if get_origin(node) in (dict, Mapping):
            node = get_args(node)[1]  # `part` is a name the user chose (a category, a segment)
        elif isinstance(node, type) and issubclass(node, BaseModel) and part in node.model_fields:
            node = node.model_fields[part].annotation
        else:
            return []
    node = _model_of(node)
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _model_of(node: Any) -> Any:
    """`X` of an optional `X | None`; any other annotation as it is."""
    if get_origin(node) in (Union, types.UnionType):
        members = [a for a in get_args(node) if a is not type(None)]
        return members[0] if len(members) == 1 else node
    return node
