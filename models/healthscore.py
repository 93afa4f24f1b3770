"""Vectorised rule-based health scoring: a table of accounts + a scorecard -> scores, bands, points.

Per row: pick the scorecard (first matching segment rule, default otherwise), map every metric
to 0-100 points with its scheme, average points within each category by metric weight, then
average categories by category weight. A metric without a value (and without a configured
default) is skipped and its weight shared among the others of its category; a category with no
metric left is skipped likewise; `health_coverage` is the share of configured weight that had
data. Everything works on whole columns, so the cost is a few numpy passes per metric.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from features.errors import ConfigError, DataContractError, counted
from features.registry import SEATS, describe, lookup, template_fields
from features.spelling import closest
from models.scorecard import (
    DEFAULT_SCORECARD,
    BooleanMetric,
    Condition,
    LinearMetric,
    MetricRule,
    PercentileMetric,
    Scorecard,
    ScorecardConfig,
    ThresholdMetric,
)
from models.scores import HEALTH_BAND, HEALTH_COVERAGE, HEALTH_DRIVERS, HEALTH_SCORE, HEALTH_SCORECARD, health_column

BAND_ORDER: dict[str, int] = {"green": 0, "yellow": 1, "red": 2}  # higher = worse
Scores = TypeVar("Scores", pd.Series, np.ndarray)


def health_risk(health_score: Scores) -> Scores:
    """The rule view as a risk (0-100, higher = riskier): 100 - health score, to rank like the ML risk."""
    return 100.0 - health_score


@dataclass(frozen=True)
class HealthScores:
    """Scores of one table. `frame`: the per-row results. `points`: 0-100 points per metric (NaN where
    the metric had no value or is not on the row's scorecard). `weights`: the share of the overall
    score each metric carried for that row after renormalisation (rows with data sum to 1), so
    `health_score == (weights * points).sum(axis=1)`."""

    frame: pd.DataFrame
    points: pd.DataFrame
    weights: pd.DataFrame

    def lost_points(self) -> pd.DataFrame:
        """Overall points each metric cost the row: weight x (100 - points); they sum to 100 - score."""
        return (self.weights * (100.0 - self.points)).fillna(0.0)


def score_health(table: pd.DataFrame, config: ScorecardConfig) -> HealthScores:
    """Score every row of `table` (features as columns) with `config`; one output row per input row."""
    config.validate_columns(table.columns)
    n = len(table)
    metrics, categories = config.metrics(), config.categories()
    metric_index = {m: i for i, m in enumerate(metrics)}
    points = np.full((n, len(metrics)), np.nan)
    weights = np.zeros((n, len(metrics)))
    category_scores = pd.DataFrame(np.nan, index=range(n), columns=categories)
    score = np.full(n, np.nan)
    coverage = np.zeros(n)
    chosen = assign_scorecards(table, config)
    population = config.population_by if config.population_by in table.columns else None
    cache: dict[tuple[str, str], np.ndarray] = {}

    given = dict(percentile_rules(config))

    def metric_points(metric: str, rule: MetricRule) -> np.ndarray:
        """Points over the whole table: percentiles rank the full population, whatever the scorecard
        (or come ranked already, in the rule's `percentile_column`, when the table is a slice of it)."""
        key = (metric, rule.model_dump_json())
        if key not in cache:
            ranked = given.get(key)
            if ranked is not None and ranked in table.columns:
                cache[key] = table[ranked].to_numpy(dtype=float, na_value=np.nan)
            else:
                cache[key] = points_for(rule, metric_values(table, metric, rule.default), table, population)
        return cache[key]

    for name, card, _ in config.scorecards():
        rows = np.flatnonzero(chosen == name)
        if rows.size == 0:
            continue
        part = _score_rows(card, {m: metric_points(m, r)[rows] for m, r in card.rules()})
        cols = [metric_index[m] for m in part.points]
        points[np.ix_(rows, cols)] = part.points.to_numpy()
        weights[np.ix_(rows, cols)] = part.weights.to_numpy()
        category_scores.iloc[rows, [categories.index(c) for c in part.categories]] = part.categories.to_numpy()
        score[rows] = part.score
        coverage[rows] = part.coverage

    frame = pd.DataFrame({HEALTH_SCORE: score, HEALTH_BAND: band_of(score, config)}, index=table.index)
    for cat in categories:
        frame[health_column(cat)] = category_scores[cat].to_numpy()
    frame[HEALTH_COVERAGE] = coverage
    frame[HEALTH_SCORECARD] = chosen
    return HealthScores(
        frame=frame,
        points=pd.DataFrame(points, index=table.index, columns=metrics),
        weights=pd.DataFrame(weights, index=table.index, columns=metrics),
    )


@dataclass(frozen=True)
class _Part:
    """Results for the rows of one scorecard."""

    points: pd.DataFrame
    weights: pd.DataFrame
    categories: pd.DataFrame
    score: np.ndarray
    coverage: np.ndarray


def _score_rows(card: Scorecard, metric_points: dict[str, np.ndarray]) -> _Part:
    """Weighted means with renormalisation: missing metrics hand their weight to the others of
    their category, categories without data hand theirs to the other categories."""
    cat_weights = np.array([c.weight for c in card.categories.values()])
    cat_scores, cat_coverage, metric_shares = [], [], []
    for category in card.categories.values():
        pts = np.column_stack([metric_points[m] for m in category.metrics])
        configured = np.array([rule.weight for rule in category.metrics.values()])
        has = ~np.isnan(pts)
        w = has * configured
        total = w.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, w / total, 0.0)
        cat_scores.append(np.where(total[:, 0] > 0, (np.where(has, pts, 0.0) * share).sum(axis=1), np.nan))
        cat_coverage.append(total[:, 0] / configured.sum())
        metric_shares.append(share)
    scores = np.column_stack(cat_scores)
    counted = ~np.isnan(scores) & (cat_weights > 0)
    cw = counted * cat_weights
    total = cw.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cat_share = np.where(total > 0, cw / total, 0.0)
    score = np.where(total[:, 0] > 0, (np.where(counted, scores, 0.0) * cat_share).sum(axis=1), np.nan)
    # a weighted mean of values in 0..100 stays in 0..100 up to float rounding (100.00000000000001)
    scores, score = np.clip(scores, 0.0, 100.0), np.clip(score, 0.0, 100.0)
    names = [m for m, _ in card.rules()]
    return _Part(
        points=pd.DataFrame(np.column_stack([metric_points[m] for m in names]), columns=names),
        weights=pd.DataFrame(
            np.column_stack([cat_share[:, [ci]] * share for ci, share in enumerate(metric_shares)]), columns=names
        ),
        categories=pd.DataFrame(scores, columns=list(card.categories)),
        score=score,
        coverage=np.column_stack(cat_coverage) @ (cat_weights / cat_weights.sum()),
    )


def band_of(score: np.ndarray, config: ScorecardConfig) -> np.ndarray:
    """green / yellow / red from the lower bounds in `config.bands`; None where the score is missing.

    Scores are compared after rounding to 6 decimals so a weighted average that lands on a
    boundary (69.99999999 from float sums) gets the band its exact value has."""
    score = np.round(np.asarray(score, dtype=float), 6)
    band = np.full(score.shape, None, dtype=object)
    band[score < config.bands.yellow] = "red"
    band[score >= config.bands.yellow] = "yellow"
    band[score >= config.bands.green] = "green"
    return band


def shown_score(score: float, decimals: int = 0) -> float:
    """A health score as a person reads it, cut (not rounded) to `decimals`: the bands are lower bounds, so 59.8
    is red and "60" would name a yellow score. Cut after `band_of`'s rounding to 6 decimals, which decides the
    band: 69.99999999 from float sums is green, and said 70."""
    scale = 10**decimals
    return math.floor(round(float(score) * scale, 6)) / scale


_COMPARE: dict[str, Callable[[pd.Series, object], pd.Series]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "in": lambda col, value: col.isin(value),
    "not in": lambda col, value: ~col.isin(value),
}


def assign_scorecards(table: pd.DataFrame, config: ScorecardConfig) -> np.ndarray:
    """Name of the scorecard of each row: the first segment whose conditions all hold, else default."""
    chosen = np.full(len(table), DEFAULT_SCORECARD, dtype=object)
    undecided = np.ones(len(table), dtype=bool)
    for name, _, conditions in config.scorecards():
        if not conditions:
            continue
        match = np.ones(len(table), dtype=bool)
        for condition in conditions:
            match &= _condition_mask(table, condition, name)
        chosen[match & undecided] = name
        undecided &= ~match
    return chosen


def near_miss_segment_values(table: pd.DataFrame, config: ScorecardConfig) -> list[str]:
    """Segment rules naming a word no row of `table` holds but one it nearly does (`segment == Enterprise`
    where the data says `enterprise`): such a rule matches no account and its accounts silently get the
    next scorecard. A word simply absent (no healthcare account this month) is no mistake and not said."""
    found = []
    for name, _, conditions in config.scorecards():
        for condition in conditions:
            if condition.op not in ("==", "in") or condition.column not in table.columns:
                continue
            present = {str(v) for v in table[condition.column].dropna().unique()}
            wanted = condition.value if isinstance(condition.value, list) else [condition.value]
            for value in (str(v) for v in wanted if str(v) not in present):
                if (held := closest(value, sorted(present), cutoff=0.8)) is not None:
                    count = int(table[condition.column].dropna().astype(str).eq(held).sum())
                    found.append(
                        f"scorecard segment '{name}' (when: {condition}): no scored account has {condition.column} "
                        f"'{value}', {counted(count, 'has', 'have')} '{held}' (values are compared exactly, case "
                        "included)"
                    )
    return found


def _condition_mask(table: pd.DataFrame, condition: Condition, segment: str) -> np.ndarray:
    column = _comparable(table[condition.column], condition.value)
    try:
        result = _COMPARE[condition.op](column, condition.value)
    except TypeError as exc:
        raise ConfigError(
            f"Segment '{segment}' rule '{condition}': cannot compare column '{condition.column}' "
            f"(dtype {column.dtype}, e.g. {column.dropna().head(3).tolist()}) with {condition.value!r}."
        ) from exc
    return (pd.Series(result, index=table.index).fillna(False).astype(bool) & column.notna()).to_numpy()


def _comparable(column: pd.Series, value: object) -> pd.Series:
    """`column` as numbers when it holds text that is all numbers and the rule compares it with numbers: an
    accounts column read from CSV is text, so `employees > 100` failed and `tier == 1` compared '1' with 1
    and matched no account. Words stay words (`tier < 5` on gold/silver is the user's mistake, said)."""
    values = value if isinstance(value, list) else [value]
    numbers = bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    text = pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype)
    if not (numbers and text) or isinstance(column.dtype, pd.CategoricalDtype):
        return column
    try:
        return pd.to_numeric(column.astype("object"), errors="raise")
    except (TypeError, ValueError):
        return column


def metric_values(table: pd.DataFrame, metric: str, default: float | None) -> np.ndarray:
    """The metric column as float64 (booleans as 0/1), missing values filled with `default` if set; a per-seat
    metric is missing for rows without a seat count where the table has `seats` (a book of mixed accounts)."""
    column = table[metric]
    if isinstance(column.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
    ):
        try:
            column = pd.to_numeric(column.astype("object"), errors="raise")
        except (TypeError, ValueError) as exc:
            examples = column.dropna().astype(str).unique()[:3].tolist()
            raise DataContractError(
                f"Health metric '{metric}': column is not numeric (dtype {column.dtype}, values like "
                f"{examples}); a scorecard metric needs numbers or booleans."
            ) from exc
    values = column.to_numpy(dtype=float, na_value=np.nan)
    if default is not None:
        values = np.where(np.isnan(values), default, values)
    spec = lookup(metric)
    if spec is not None and spec.unseated is not None and SEATS in table.columns:
        # a per-seat value of an account without a seat count is of the whole account (its users, not a share of
        # seats): on the scale of the accounts beside it that have one, it is no data
        seats = pd.to_numeric(table[SEATS], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        values = np.where(seats > 0, values, np.nan)
    return values


def points_for(rule: MetricRule, values: np.ndarray, table: pd.DataFrame, population: str | None) -> np.ndarray:
    """Map metric values to 0-100 points with the rule's scheme; NaN stays NaN (no data)."""
    if isinstance(rule, LinearMetric):
        return np.clip((values - rule.bad) / (rule.good - rule.bad), 0.0, 1.0) * 100.0
    if isinstance(rule, ThresholdMetric):
        band = np.searchsorted(np.asarray(rule.cuts), values, side="right")
        return np.where(np.isnan(values), np.nan, np.asarray(rule.points)[np.minimum(band, len(rule.cuts))])
    if isinstance(rule, BooleanMetric):
        return np.where(np.isnan(values), np.nan, np.where((values != 0) == rule.healthy, 100.0, 0.0))
    if isinstance(rule, PercentileMetric):
        return _percentile_points(values, table, [c for c in (population, rule.within) if c], rule.healthier)
    raise TypeError(f"no scoring for scheme {type(rule).__name__}")


def percentile_rules(config: ScorecardConfig) -> list[tuple[tuple[str, str], str]]:
    """((metric, rule as JSON), column name) of every distinct percentile rule of the scorecard.

    Percentiles are the one part of the health score that depends on other rows (the population);
    an engine that scores slices of the table (Spark) ranks them over the whole table first and
    hands the points over in these columns.
    """
    keys = []
    for _, card, _ in config.scorecards():
        for metric, rule in card.rules():
            key = (metric, rule.model_dump_json())
            if isinstance(rule, PercentileMetric) and key not in keys:
                keys.append(key)
    return [(key, f"__percentile_points_{index}") for index, key in enumerate(keys)]


def _percentile_points(values: np.ndarray, table: pd.DataFrame, group_by: list[str], healthier: str) -> np.ndarray:
    """Mid-rank percentile (rank - 0.5) / count within each group: ties share points, a lone value gets 50."""
    series = pd.Series(values)
    if group_by:
        grouped = series.groupby([table[c].to_numpy() for c in group_by], dropna=False)
        rank, count = grouped.rank(method="average"), grouped.transform("count")
    else:
        rank, count = series.rank(method="average"), series.count()
    pct = ((rank - 0.5) / count * 100.0).to_numpy(dtype=float)
    return 100.0 - pct if healthier == "lower" else pct


def explain_health(
    table: pd.DataFrame,
    health: HealthScores,
    config: ScorecardConfig,
    n: int = 3,
    labels: Mapping[str, str] | None = None,
) -> pd.Series:
    """Per row, the `n` metrics that cost the most overall points, in plain words.

    Each item is the registry's description of the value, its category and the points it cost,
    e.g. "12% of seats active in the last 30 days (engagement, -9.5 pts)". `labels`: metric -> the column
    the words render it as (`models.scoring.said_columns`: a usage metric by its product feature's name)."""
    labels = labels or {}
    lost = health.lost_points().reindex(table.index)
    values = lost.to_numpy()
    top = np.argsort(-values, axis=1, kind="stable")[:, :n]
    metrics = lost.columns.to_numpy()
    companions = {m: _template_columns(m, table.columns) for m in metrics}
    needed = list(dict.fromkeys([*metrics, *(c for cols in companions.values() for c in cols)]))
    category_of = {name: card.metric_categories() for name, card, _ in config.scorecards()}
    scorecards = health.frame[HEALTH_SCORECARD].reindex(table.index).to_numpy()
    scores = health.frame[HEALTH_SCORE].reindex(table.index).to_numpy()
    texts = []
    for i, row in enumerate(table[needed].to_dict("records")):
        if np.isnan(scores[i]):
            texts.append("no data for any health metric")
            continue
        items = []
        for j in top[i]:
            if values[i, j] < 0.05:
                break
            metric = metrics[j]
            words = describe(labels.get(metric, metric), row[metric], {c: row[c] for c in companions[metric]})
            items.append(f"{words} ({category_of[scorecards[i]][metric]}, -{values[i, j]:.1f} pts)")
        texts.append("; ".join(items) if items else "no health points lost")
    return pd.Series(texts, index=table.index, name=HEALTH_DRIVERS, dtype="string")


def _template_columns(metric: str, columns: pd.Index) -> list[str]:
    """Columns a metric's templates cite besides its value: describe() only needs those, and
    handing it just them keeps explanations fast on wide tables."""
    return [f for f in template_fields(metric) if f in columns]
