"""The feature registry: the single source of truth for feature names, sources and health categories.

Each feature family module declares its features here with `register(...)`. Everything else
(health score validation, SHAP-to-category mapping, explanations in words) asks the registry and
never hard-codes a feature name or category.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from features.snapshots import HORIZON_DAYS

Direction = Literal["higher", "lower", "neutral"]
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class FeatureSpec:
    """What a feature means.

    `template` is a `str.format` pattern rendered with `value=` the feature's value and every
    other column of the same row as keyword arguments, so a template may cite a companion
    feature (e.g. the previous window) to say "down 60% on the previous 30 days".
    `healthier` says which direction of the value means a healthier account. `requires` names the
    optional contract columns (`table.column`) the feature is computed from besides its source
    table's required ones: without them the feature is absent, which is how a scorecard tells an
    absent source from a misspelt name. `absent_reason` replaces "no <source> table in the data" for
    inputs that do not come from a table (`features/judgement.py`); `unbuilt_reason` says why a feature of a
    present source and columns is absent (a product feature the usage events never name). `actionable` says
    whether it is behaviour a CSM can change (usage, logins, support, training, relationship, payments) or
    context (term length, tenure, renewals so far, days to renewal, segment): drivers a CSM is
    asked to act on are actionable ones only; context is stated beside them. `missing` says what a
    missing value means for the account ("fewer than 2 days with logins in the last 90 days"), and
    `never` what a "days since" value as old as the account (`tenure_days`, the value when the event
    never happened) means ("no login recorded after the day it landed, 40 days ago": an event on the
    landing day itself gives that value too when the account landed at midnight); both are templates
    like `template`. `since_start` is what such a value means when it counts from the first row of a table
    that starts after the account landed (`data_days_column`): "no login since the logins data starts, 700
    days ago", where the data cannot say whether there was one before (a login on that first day gives the
    value too). `window` is the days a feature over a trailing window reads back: where its table starts inside
    the window, after the account landed, its words add how much of the window the data holds ("3 failed
    payments (last 365 days), only 200 of these 365 days in the invoices data"); a `whole` feature is missing
    there instead (`features/sql/timeline.py` `within_data`), and its words say so ("...: not known, only 200 of
    these 365 days in the invoices data"). `unseated` is what a per-seat value says where the account has no
    licensed seat count (`SEATS` missing from its row, or not a column at all): per-seat features divide by 1
    there, so the value is the account's own count ("12 logins in the last 30 days", not "12.0 logins per
    seat"). `none` is what a value of zero says where the template would say something false ("an invoice is
    0 days overdue": "no invoice overdue"); a template that starts with a count says zero as "no" anyway
    (`_none`).
    """

    name: str
    source: str
    category: str
    description: str
    healthier: Direction
    template: str
    kind: Kind = "numeric"
    requires: tuple[str, ...] = ()
    absent_reason: str | None = None
    unbuilt_reason: str | None = None
    actionable: bool = True
    missing: str | None = None
    never: str | None = None
    unseated: str | None = None
    none: str | None = None
    since_start: str | None = None
    window: int | None = None

    @property
    def whole(self) -> bool:
        """Whether the feature reads back further than the `HORIZON_DAYS` the snapshots' start guarantees, fixed
        or configured: it is missing where its table starts inside the window, after the account landed
        (`features.sql.timeline.within_data`)."""
        return self.window is not None and self.window > HORIZON_DAYS

    def templates(self) -> tuple[str, ...]:
        """Every template that may render the feature (its value, a missing value, an event that never happened,
        one not seen since its table starts, a value of an account without a seat count, a value of zero)."""
        words = (self.template, self.missing, self.never, self.since_start, self.unseated, self.none)
        return tuple(t for t in words if t is not None)


TENURE_DAYS = "tenure_days"  # the account's age, which a "days since" feature takes when the event never happened
SEATS = "seats"  # licensed seats of the active terms: what per-seat features divide by (1 when unknown)
DATA_DAYS = "_data_days"


def data_days_column(source: str) -> str:
    """The column of the feature table holding, per row, the days of `source` before as_of from its first
    row (missing when it has none): where a "days since" value counts from when the table starts after the
    account landed (`features/sql/timeline.py` `days_since_last`). Carried for the words, never a feature
    (`features.table.feature_columns`)."""
    return f"{source}{DATA_DAYS}"


_REGISTRY: dict[str, FeatureSpec] = {}
Resolver = Callable[[str], FeatureSpec | None]
_RESOLVERS: list[Resolver] = []


def register(spec: FeatureSpec) -> FeatureSpec:
    """Add (or replace, when re-declared with the same definition) a feature spec."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing != spec:
        raise ValueError(f"feature '{spec.name}' registered twice with different definitions")
    _REGISTRY[spec.name] = spec
    return spec


def register_resolver(resolver: Resolver) -> Resolver:
    """Declare features whose names depend on configuration or data (other windows, per-feature usage).

    The resolver maps a column name to its spec, or None when the name is not one of its own, so
    such columns keep their category even in a process that never built them (scoring, `--table`).
    """
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)
    return resolver


def all_specs() -> Mapping[str, FeatureSpec]:
    """Every declared feature (read-only), loading the family modules first so the registry is complete.

    A view, not a copy: `describe` runs once per scored row and driver.
    """
    import features.families
    import features.judgement  # noqa: F401  (both register on import)

    return MappingProxyType(_REGISTRY)


def lookup(name: str) -> FeatureSpec | None:
    """The spec of a column: a declared feature, else one a resolver recognises, else None."""
    specs = all_specs()
    if name in specs:
        return specs[name]
    return next((found for resolver in _RESOLVERS if (found := resolver(name)) is not None), None)


def spec(name: str) -> FeatureSpec:
    found = lookup(name)
    if found is None:
        raise KeyError(f"unknown feature '{name}'")
    return found


def sources_of(columns: Iterable[str]) -> set[str]:
    """The source tables that produced at least one of these feature columns."""
    return {found.source for found in map(lookup, columns) if found is not None}


def absence_reason(name: str, present_sources: Collection[str], present: Collection[str] = ()) -> str:
    """Why a known feature is not in a table built from data whose features come from `present_sources`.

    A required column is blamed only when no `present` feature of the same table needed it too: with
    `features.windows: [14, 60]`, `user_utilisation_30d` is missing for its window, not for `logins.user_id`."""
    found = spec(name)
    if found.source not in present_sources:
        return found.absent_reason or f"no {found.source} table in the data"
    needs = set(found.requires)
    served = any(
        other is not None and other.source == found.source and needs <= set(other.requires)
        for other in map(lookup, present)
    )
    if found.requires and not served:
        verb = "is" if len(found.requires) == 1 else "are"
        return f"{' and '.join(found.requires)} {verb} not in the data"
    return found.unbuilt_reason or "not built from this data (see features.windows, top_features and tracked_features)"


def is_actionable(name: str) -> bool:
    """Whether a column is behaviour a CSM can change; an unregistered column (`--table`) counts as one,
    since nothing says it is context."""
    found = lookup(name)
    return found is None or found.actionable


def category_map(
    names: Iterable[str], overrides: Mapping[str, str] | None = None, default: str = "account"
) -> dict[str, str]:
    """feature -> health category for the given columns; unregistered columns fall to `default`.

    Unregistered columns occur with prepared tables (`--table`); overrides come from configuration.
    """
    overrides = dict(overrides or {})
    result = {}
    for name in names:
        found = lookup(name)
        result[name] = overrides.get(name) or (found.category if found is not None else default)
    return result


def describe(name: str, value: Any, row: Mapping[str, Any] | None = None) -> str:
    """Render a feature value in plain words with its template (fallback: 'name = value')."""
    return _render(name, lookup(name), value, row)


def describer(name: str) -> Callable[[Any, Mapping[str, Any] | None], str]:
    """`describe` for one feature, its spec looked up once: for rendering a column's values row by row."""
    return partial(_render, name, lookup(name))


def template_fields(name: str) -> tuple[str, ...]:
    """Columns a feature's templates cite besides its own value (none for unregistered columns): the
    companions `describe` needs in `row`."""
    found = lookup(name)
    if found is None:
        return ()
    fields: list[str] = []
    for template in found.templates():
        try:
            fields += [f for _, f, _, _ in string.Formatter().parse(template) if f]
        except ValueError:  # a malformed template: describe() falls back to the description anyway
            continue
    if found.unseated is not None:
        fields.append(SEATS)  # whether the account has a seat count decides the words
    if found.since_start is not None or found.window is not None:
        # whether the value counts from the table's start rather than the landing or the window's start
        fields += [data_days_column(found.source), TENURE_DAYS]
    return tuple(dict.fromkeys(f for f in (re.split(r"[.\[]", f)[0] for f in fields) if f != "value"))


def _render(name: str, found: FeatureSpec | None, value: Any, row: Mapping[str, Any] | None = None) -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if found is None:
        return f"{name} blank" if missing else f"{name} = {_fmt(value)}"
    template = found.template
    if missing:
        template = found.missing or "{description}: not recorded"
        if found.whole and _partial(found, row):  # missing because the data holds part of the window only
            template = "{description}: not known"
    elif found.none is not None and _is_zero(value):
        template = found.none
    elif (found.never or found.since_start) and row and (reached := _reached(found, value, row)) is not None:
        template = reached
    elif found.unseated is not None and row is not None and not _seated(row):
        template = found.unseated
    context = {k: _clean(v) for k, v in row.items()} if row else {}
    context |= {"value": value, "description": found.description}
    if not missing and found.missing is not None and _nothing_in_either_period(found.missing, template, value, context):
        template = found.missing
    try:
        inner = _inner_fields(template)  # most templates have none: no call (describe runs per driver)
        said = _no_negative_zero(_rounded_zeros(template, inner, context) if inner else template).format_map(context)
        text = singular_counts(said + _partial(found, row))
    except (KeyError, ValueError, TypeError, IndexError):  # a companion not in the row, a malformed template
        return f"{found.description}: {'not recorded' if missing else _value_alone(template, value)}"
    leading = _LEADING_FIELD.match(template)  # the number the words start with: the value or a companion's
    if leading is None:
        return text
    led = context.get(leading.group(1))
    return _none(text) if _is_zero(led) else _under(text, led)


_LEADING_FIELD = re.compile(r"\{(\w+):")
_VALUE_FIELD = re.compile(r"\{value(:[^{}]*)?\}")


def _value_alone(template: str, value: Any) -> str:
    """The value as its template formats it, for words that cannot render whole: a trend whose companion count
    is not in the row (`features.windows` without 30) read "...(relative change): 0.2", not "+20%"."""
    field = _VALUE_FIELD.search(template)
    try:
        return _no_negative_zero(field.group(0)).format(value=value) if field else _fmt(value)
    except (ValueError, TypeError):
        return _fmt(value)


def _nothing_in_either_period(baseline: str, template: str, value: Any, context: Mapping[str, Any]) -> bool:
    """Whether a change of zero (`value`) comes with a count of zero in the recent period, the companion its words
    start with: then there was nothing in the period before either, which the words of a change without a
    `baseline` say ("no logins in 30 days, none in the 30 before"), not "no logins in 30 days, +0% on the
    previous 30"."""
    leading, missing = _LEADING_FIELD.match(template), _LEADING_FIELD.match(baseline)
    if leading is None or missing is None or leading.group(1) in ("value", "description"):
        return False
    return leading.group(1) == missing.group(1) and _is_zero(value) and _is_zero(context.get(leading.group(1)))


# A count of nothing at the start of the words: "0 tickets open", "0.0 uses of search per seat".
_ZERO_COUNT = re.compile(r"^0(?:\.0+)? (?!days\b|hours\b)(?=[^\W\d])")  # not a span of time


def _none(text: str) -> str:
    """Words that start with a count of zero, as said: "no tickets open", "no uses of search in the last 30 days"
    (none per seat is none at all), not "0 tickets open", "0.0 uses of search per seat in the last 30 days"."""
    if not _ZERO_COUNT.match(text):
        return text
    return _ZERO_COUNT.sub("no ", text, count=1).replace(" per seat", "", 1)


# A count that rounds to zero though it is not: "0.0 uses of search per seat" of 0.04 uses per seat.
_ROUNDED_TO_ZERO = re.compile(r"^0\.(0*)0 (?=[^\W\d])")


def _under(text: str, value: Any) -> str:
    """Words that start with a count rounded to zero, of a value that is not (`_none` says a zero), as the bound
    it is under: "under 0.1 uses of search per seat", not "0.0", which reads as none; a share rounded to none or
    to all, as the bound it is under or over: "under 1% of invoices paid late" of 1 in 250, "over 99% of workflow
    runs completed" of 249 in 250, not "0%" and "100%", which read as none and all."""
    if text.startswith("0% "):
        return "under 1% " + text[3:]
    if text.startswith("100% ") and _below_one(value):
        return "over 99% " + text[5:]
    return _ROUNDED_TO_ZERO.sub(r"under 0.\g<1>1 ", text, count=1)


def _below_one(value: Any) -> bool:
    try:
        return float(value) < 1.0
    except (TypeError, ValueError):
        return False


def _is_zero(value: Any) -> bool:
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):
        return False


def _seated(row: Mapping[str, Any]) -> bool:
    """Whether the row's account has a licensed seat count (per-seat values are then per seat)."""
    try:
        return float(row.get(SEATS)) > 0  # NaN compares False
    except (TypeError, ValueError):
        return False


def _at_least(value: Any, bound: Any) -> bool:
    """Whether a "days since" value reaches `bound` (the account's age, the days of its table): no event since."""
    try:
        return bound is not None and not math.isnan(float(bound)) and float(value) >= float(bound)
    except (TypeError, ValueError):
        return False


def _reached(found: FeatureSpec, value: Any, row: Mapping[str, Any]) -> str | None:
    """The template of a "days since" value that reaches what it counts from -- the first row of a table that
    starts after the account landed (`since_start`), else the landing day (`never`) -- or None (an event)."""
    value, held, age = _number(value), _number(row.get(data_days_column(found.source))), _number(row.get(TENURE_DAYS))
    if found.since_start is not None and _since_start(value, held, age):
        return found.since_start
    return found.never if found.never is not None and value >= age else None


def _partial(found: FeatureSpec, row: Mapping[str, Any] | None) -> str:
    """What a feature over the last `window` days adds when its table starts inside the window, after the
    account landed: how much of the window the data holds (the value counts that part only)."""
    if found.window is None or not row:
        return ""
    held = _number(row.get(data_days_column(found.source)))
    if not _part_of_window(found.window, held, _number(row.get(TENURE_DAYS))):
        return ""
    return f", only {float(held):.0f} of these {found.window} days in the {found.source.replace('_', ' ')} data"


def _since_start(value: Any, held: Any, age: Any) -> Any:
    """Whether a "days since" value counts from its table's first row (`held` days back), which starts after the
    account landed (`age` days back): per row, on numbers or arrays (NaN: no)."""
    return (value >= held) & ~(held >= age)


def _part_of_window(window: int, held: Any, age: Any) -> Any:
    """Whether the table starts inside a trailing `window`, after the account landed: per row, as `_since_start`."""
    return (held >= 0) & ~(held >= window) & ~(held >= age)


def days_matter(found: FeatureSpec, values: np.ndarray, age: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Per row, whether a feature's words depend on the account's age (`TENURE_DAYS`) and its table's days of data
    (`data_days_column`): where `_reached` or `_partial` read them. Elsewhere rows of equal values say the same
    words, so a caller rendering many rows renders each value once (`models.explain.top_drivers`)."""
    matter = np.zeros(len(values), dtype=bool)
    if found.since_start is not None:
        matter |= _since_start(values, held, age)
    if found.never is not None:
        matter |= values >= age
    if found.window is not None:
        matter |= _part_of_window(found.window, held, age)
    return matter


def _number(value: Any) -> np.float64:
    """A number of a row as the predicates above read it: NaN where it is missing or not a number."""
    try:
        return np.float64(value)
    except (TypeError, ValueError):
        return np.float64(np.nan)


# A number field of a template ("{value:+.0%}", "{value:,.0f}"): its sign, then the rest of its format.
_NUMBER_FIELD = re.compile(r"\{([^{}:]*):([+\- ]?)([,_]?(?:\.\d+)?[fg%])\}")


@cache
def _no_negative_zero(template: str) -> str:
    """`template` with its number fields rounding a tiny negative to plain zero (Python's `z` option): a change
    of -0.1 % read "invoiced amount -0% on the previous year"."""
    return _NUMBER_FIELD.sub(r"{\1:\2z\3}", template)


@cache
def _inner_fields(template: str) -> tuple[tuple[int, int, str, bool, float, str], ...]:
    """The number fields of `template` after its first character that `_rounded_zeros` rewrites: (start, end,
    name, whether it is a change, the largest value it prints as zero, the smallest it prints). A signed number
    that is not a percentage is a level around zero (sentiment, NPS), whose sign says what it is: left as is."""
    fields = []
    for m in _NUMBER_FIELD.finditer(template):
        name, sign, spec = m.groups()
        percent = spec.endswith("%")
        if m.start() == 0 or (sign == "+" and not percent) or spec.endswith("g"):
            continue
        decimals = int(spec.split(".")[1][:-1]) if "." in spec else 6
        unit = f"{10.0**-decimals:.{decimals}f}" + ("%" if percent else "")
        fields.append((m.start(), m.end(), name, sign == "+", 0.5 * 10.0**-decimals / (100 if percent else 1), unit))
    return tuple(reversed(fields))


def _rounded_zeros(template: str, inner: tuple[tuple[Any, ...], ...], context: Mapping[str, Any]) -> str:
    """`template` with each number inside its words that would print a zero though it is not one said as the
    bound it is under: "tickets took under 1 hour to resolve" of 0.3 hours, not "0 hours"; a change rounded to
    "+0%" as "up under 1%" or "down under 1%", the way it went. The number the words start with is `_under`'s."""
    for start, end, name, change, bound, unit in inner:  # `_inner_fields(template)`
        number = context.get(name)
        if not isinstance(number, float | int) or not 0 < abs(number) <= bound:  # NaN compares False
            continue
        if change:
            words = f"{'up' if number > 0 else 'down'} under {unit}"
        elif number > 0:
            words = f"under {unit}"
        else:
            continue
        template = template[:start] + words + template[end:]
    return template


# A count of one in the templates' words: "1 day", "1 escalated ticket" (never "0.1 uses" or "21 days").
_ONE = re.compile(
    r"(?<![\d.,+-])1 ((?:active|distinct|escalated|licensed|negative|onboarding|survey|training|failed|product) )?"
    r"(day|hour|time|ticket|invoice|touchpoint|payment|response|user|seat|feature|session|training|certification"
    r"|login|event|use|point)s\b"
)


def singular_counts(text: str) -> str:
    """`text` with its counts of one in the singular: templates say "{value:.0f} days", which read "1 days".

    What `features.errors.counted` (every other message's count) cannot do: a template is text written once
    per feature, its count a format field inside it, so only the rendered words can be put right."""
    return _ONE.sub(r"1 \1\2", text)


def _clean(value: Any) -> Any:
    """NaN companions render as 0 so a template never crashes on missing history."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.0
    return value


def _fmt(value: Any) -> str:
    """A value as said in words: three significant digits, but a thousand or more whole, grouped (a prepared
    table's `Balance = 125,432`, not `1.25e+05`)."""
    if isinstance(value, float):
        return f"{value:,.0f}" if 1e3 <= abs(value) < 1e15 else f"{value:.3g}"
    return str(value)
