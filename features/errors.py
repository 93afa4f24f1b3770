"""Errors a user can act on, rooted in the lowest layer so that every layer can raise them.

`features`, `models` and `pipeline` all raise `ChurnError` subclasses for problems with the
user's input, configuration or environment; the CLI prints any `ChurnError` as one paragraph and
exits 1. Anything else is a bug and shows a traceback only with `--debug`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pydantic import ValidationError


class ChurnError(Exception):
    """A problem with the user's input, configuration or environment."""


class DataContractError(ChurnError):
    """Input data breaks the contract of SPEC.md (table, column, problem, example rows)."""


class ConfigError(ChurnError):
    """A configuration file or value is invalid."""


def config_error(
    header: str,
    exc: ValidationError,
    noun: str = "invalid setting(s)",
    tags: Collection[str] = (),
    flags: Mapping[str, str] | None = None,
) -> ConfigError:
    """One readable line per pydantic error under `header` ("<header>: 2 <noun>:"), each with its key path.

    `tags` are the values of discriminated unions (a scorecard's scheme names), which pydantic puts
    into the path (`metrics.x.linear.good`) and a user never wrote. Rejected values are never
    echoed (a webhook URL may carry a token), except those of `flags`: key paths set by command-line
    options, named by the option the user typed (`--every '7' (features.cadence): ...`).
    """
    lines = [f"{header}: {len(exc.errors())} {noun}:"]
    for err in exc.errors():
        loc = err["loc"]
        path = [p for i, p in enumerate(loc) if not (i >= 2 and loc[i - 2] == "metrics" and p in tags)]
        where = ".".join(str(p) for p in path) or "(top level)"
        if flags and where in flags:
            where = f"{flags[where]} {str(err['input'])!r} ({where})"
        lines.append(f"  {where}: {_message(err, tags)}")
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
    return err["msg"]
