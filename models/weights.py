"""Scorecard weights fitted on history, proposed as a YAML file the team can review and adopt.

The health score is a weighted mean, so its ranking of accounts is the ranking of a linear
score: sum of weight x category score. A logistic regression of the churn label on each
category's *badness* (1 - score/100) with non-negative coefficients is therefore the weighted
mean that best separates churners — and the coefficients, normalised to sum 100, are the
weights. Non-negativity keeps the scorecard's meaning (more health never adds risk); a category
the data finds useless gets weight 0 instead of a sign flip. Metric weights inside a category
are fitted the same way on the metrics' points, then the category weights on the category
scores those new metric weights produce. Each scorecard (default and every segment) is fitted
on the rows it scores, when it has enough of them.

Nothing is tuned on the evaluation period: weights are fitted on early snapshots and the
current and suggested scorecards are both backtested (`models.health_backtest`) on later ones.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import minimize
from scipy.special import expit

from features.errors import ChurnError, DataContractError, counted, named, signed
from features.table import AS_OF, LABEL
from models.evaluation import format_auc
from models.health_backtest import backtest_health
from models.healthscore import score_health
from models.scorecard import DEFAULT_SCORECARD, Bands, Scorecard, ScorecardConfig, parse_scorecard
from models.scores import HEALTH_SCORE, HEALTH_SCORECARD, health_column
from models.split import out_of_time_split

CATEGORY_TOTAL = 100  # suggested category weights of each scorecard sum to this
METRIC_STEP = 0.1  # metric weights are rounded to this, keeping each category's current total
CATEGORY_STEP = 1
INNER_SHARE = 0.3  # last share of the fit rows that decides how far to move towards the fitted weights
BLEND_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)

# scorecard name -> category -> (category weight, metric -> metric weight)
Weights = dict[str, dict[str, tuple[float, dict[str, float]]]]


@dataclass(frozen=True)
class SuggestionLimits:
    """How far a suggestion may move, so a person can accept it rather than rewrite it.

    `category_floor`: fewest points of 100 a category keeps (a category already below keeps its
    weight); `max_change`: most points a category weight moves, up or down; `metric_floor`: share
    of its current weight a metric keeps at least (no metric is driven to 0 by one fit).
    `red_share` / `yellow_share`: the suggested band thresholds put these shares of the fit rows
    (lowest scores first) in red and in yellow.
    """

    category_floor: float = 5.0
    max_change: float = 10.0
    metric_floor: float = 0.25
    red_share: float = 0.15
    yellow_share: float = 0.20


def _within(proposed: Mapping[str, float], low: Mapping[str, float], high: Mapping[str, float], total: float):
    """`proposed` moved by one common shift and clipped to [low, high] so it sums to `total`.

    The closest such vector in the sense that every weight moves by the same amount unless a bound
    stops it; found by bisection on the shift (the clipped sum grows with it). Bounds that cannot
    reach `total` are returned clipped as they are.
    """
    keys = list(proposed)
    p = np.array([proposed[k] for k in keys], dtype=float)
    lo = np.array([low[k] for k in keys], dtype=float)
    hi = np.array([high[k] for k in keys], dtype=float)
    shift_low, shift_high = float((lo - p).min()), float((hi - p).max())
    for _ in range(100):
        shift = (shift_low + shift_high) / 2
        if np.clip(p + shift, lo, hi).sum() < total:
            shift_low = shift
        else:
            shift_high = shift
    return dict(zip(keys, np.clip(p + (shift_low + shift_high) / 2, lo, hi).tolist(), strict=True))


@dataclass(frozen=True)
class SuggestedWeights:
    """A proposed scorecard and the evidence for it.

    `scorecard`: the full scorecard as a dict `models.scorecard.parse_scorecard` accepts (segments
    written as overrides of the default, like the hand-written file). `current`: the current
    scorecard in the same layout, so the two diff line by line. `category_weights` /
    `metric_weights`: current and suggested weight per scorecard, category (and metric), with
    whether it was fitted. `current_auc` / `suggested_auc`: ROC AUC of 100 - health score on the
    evaluation rows, which are later than every fit row. `evaluation_scores`: both health scores
    of the evaluation rows (index of the evaluation table). `share`: how far the suggestion moved
    from the current to the fitted weights (0..1), chosen on the fit period's own later part
    (`share_aucs`: the AUC there for each share tried).
    """

    scorecard: dict[str, Any]
    current: dict[str, Any]
    category_weights: pd.DataFrame
    metric_weights: pd.DataFrame
    current_auc: float | None
    suggested_auc: float | None
    fit_rows: int
    evaluation_rows: int
    fit_period: tuple[pd.Timestamp, pd.Timestamp]
    evaluation_period: tuple[pd.Timestamp, pd.Timestamp]
    evaluation_scores: pd.DataFrame
    share: float = 1.0
    share_aucs: dict[float, float | None] = field(default_factory=dict)
    notes: tuple[str, ...] = field(default=())
    changes: pd.DataFrame = field(default_factory=pd.DataFrame)  # change_gains
    bands: pd.DataFrame = field(default_factory=pd.DataFrame)  # band_table
    limits: SuggestionLimits = field(default_factory=SuggestionLimits)

    def config(self) -> ScorecardConfig:
        return parse_scorecard(self.scorecard, source="suggested scorecard")

    def header(self) -> str:
        """YAML comment lines saying where the suggestion comes from and what it achieved."""

        def period(p: tuple[pd.Timestamp, pd.Timestamp]) -> str:
            return f"{p[0].date()} .. {p[1].date()}"

        lines = [
            "Suggested health-score weights (churn compare). Review before adopting.",
            f"Fitted on {counted(self.fit_rows, 'labelled snapshot')} ({period(self.fit_period)}); backtested on "
            f"{counted(self.evaluation_rows, 'later one')} ({period(self.evaluation_period)}).",
            f"ROC AUC of 100 - health score there: current {format_auc(self.current_auc)}, "
            f"suggested {format_auc(self.suggested_auc)}.",
            *self.notes,
        ]
        if not self.bands.empty:
            red = self.bands.set_index("band").loc["red"]
            lines.append(
                f"Bands set for {self.limits.red_share:.0%} of the fit snapshots in red: red churned "
                f"{_rate(red['suggested_churn_rate'])} on the later snapshots (current bands: "
                f"{_rate(red['current_churn_rate'])}); see suggested_healthscore.diff for every change and its gain."
            )
        return "".join(f"# {line}\n" for line in lines)

    def yaml_text(self) -> str:
        """The suggested scorecard file: the header, then the scorecard (it loads as a scorecard file)."""
        return self.header() + dump_yaml(self.scorecard)

    def yaml_diff(self) -> str:
        """Unified diff current -> suggested of the two scorecards in the same layout."""
        return "".join(
            difflib.unified_diff(
                dump_yaml(self.current).splitlines(keepends=True),
                dump_yaml(self.scorecard).splitlines(keepends=True),
                fromfile="current",
                tofile="suggested",
            )
        )

    def review_text(self) -> str:
        """The suggestion as a diff to review: each change with its own backtest gain, the band thresholds
        with the churn rate per band before and after, then the unified diff of the two scorecards."""
        lines = [
            "Suggested scorecard changes (churn compare): review each, then apply the diff to your scorecard.",
            f"Limits: category weights move at most {self.limits.max_change:g} points and keep at least "
            f"{self.limits.category_floor:g}; metrics keep at least {self.limits.metric_floor:.0%} of their weight.",
            f"ROC AUC of 100 - health score on {counted(self.evaluation_rows, 'later snapshot')}: current "
            f"{format_auc(self.current_auc)}, all changes {format_auc(self.suggested_auc)}.",
            "Each change alone (ROC AUC gain over the current scorecard; a category's weight tried alone is its share "
            "of 100, the other categories sharing the rest as they do now):",
        ]
        for change in self.changes.itertuples(index=False):
            gain = "n/a" if pd.isna(change.auc_gain) else signed(change.auc_gain, ".4f")
            where = "" if change.scorecard == DEFAULT_SCORECARD else f"[{change.scorecard}] "
            lines.append(f"  {gain}  {where}{change.change}")
        if self.changes.empty:
            lines.append("  (no change)")
        if not self.bands.empty:
            lines.append(
                f"Band thresholds for {self.limits.red_share:.0%} of the fit snapshots in red: churn rate per band "
                "on the later snapshots, current -> suggested (their share of them):"
            )
            for b in self.bands.itertuples(index=False):
                lines.append(
                    f"  {b.band:<6} from {b.current_from:g} -> {b.suggested_from:g}: "
                    f"{_rate(b.current_churn_rate)} ({b.current_share:.0%}) -> "
                    f"{_rate(b.suggested_churn_rate)} ({b.suggested_share:.0%})"
                )
        return "".join(f"# {line}\n" for line in lines) + self.yaml_diff()  # `patch` skips the comments


def _rate(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.1%}"


# ------------------------------------------------------------------------------- fitting
def nonnegative_logistic(X: np.ndarray, y: np.ndarray, penalty: float = 1.0) -> np.ndarray:
    """Coefficients (>= 0, no intercept returned) of an L2-penalised logistic regression of y on X."""
    k = X.shape[1]

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = params[0] + X @ params[1:]
        residual = expit(z) - y
        value = np.logaddexp(0.0, z).sum() - y @ z + 0.5 * penalty * params[1:] @ params[1:]
        grad = np.concatenate([[residual.sum()], X.T @ residual + penalty * params[1:]])
        return float(value), grad

    rate = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    start = np.concatenate([[np.log(rate / (1 - rate))], np.zeros(k)])
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(None, None)] + [(0.0, None)] * k)
    return np.maximum(result.x[1:], 0.0)


def _badness(points: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """(1 - points/100) with missing values at the column mean; columns without any value are dropped."""
    usable = [c for c in points.columns if points[c].notna().any()]
    values = 1.0 - points[usable].astype(float) / 100.0
    return values.fillna(values.mean()).to_numpy(), usable


def _round_to_total(values: Mapping[str, float], total: float, step: float) -> dict[str, float]:
    """Round to multiples of `step` keeping the exact total (largest remainders get the leftover steps)."""
    units = {k: v / step for k, v in values.items()}
    floors = {k: np.floor(u) for k, u in units.items()}
    leftover = round(total / step - sum(floors.values()))
    for k in sorted(units, key=lambda k: floors[k] - units[k])[: max(leftover, 0)]:
        floors[k] += 1
    return {k: round(float(f * step), 6) for k, f in floors.items()}


def _fit_share(
    X: np.ndarray, y: np.ndarray, names: list[str], current: Mapping[str, float], penalty: float
) -> dict[str, float] | None:
    """Fitted weights for `names`, scaled to the current total of those weights (unrounded); None without signal."""
    coefficients = nonnegative_logistic(X, y, penalty)
    total = sum(current[n] for n in names)
    if coefficients.sum() <= 0 or total <= 0:
        return None
    return dict(zip(names, coefficients / coefficients.sum() * total, strict=True))


def _current_weights(config: ScorecardConfig) -> Weights:
    return {
        name: {
            cat: (category.weight, {metric: rule.weight for metric, rule in category.metrics.items()})
            for cat, category in card.categories.items()
        }
        for name, card, _ in config.scorecards()
    }


def _with_weights(config: ScorecardConfig, weights: Weights) -> ScorecardConfig:
    """The scorecard with other weights (same schemes, segments and rules), validated."""
    return parse_scorecard(scorecard_dict(config, weights), source="suggested scorecard")


@dataclass
class _Fit:
    """Fitted weights (unrounded; fitted scorecards' category weights sum to 100) and what was fitted."""

    weights: Weights
    scorecards: set[str] = field(default_factory=set)
    metrics: set[tuple[str, str, str]] = field(default_factory=set)
    categories: set[tuple[str, str]] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def _fit(rows: pd.DataFrame, scorecard: ScorecardConfig, min_rows: int, min_churners: int, penalty: float) -> _Fit:
    """Metric weights per category, then category weights on the rescored categories, per scorecard."""
    labels = rows[LABEL].astype(int).to_numpy()
    current = _current_weights(scorecard)
    result = _Fit({name: {c: (w, dict(m)) for c, (w, m) in cats.items()} for name, cats in current.items()})
    health = score_health(rows, scorecard)
    used = health.frame[HEALTH_SCORECARD].to_numpy()
    eligible: dict[str, np.ndarray] = {}
    for name in current:
        mask = used == name
        churners = int(labels[mask].sum())
        if mask.sum() < min_rows or churners < min_churners or churners == mask.sum():
            label = "default scorecard" if name == DEFAULT_SCORECARD else f"segment '{name}'"
            result.notes.append(
                f"{label}: {counted(int(mask.sum()), 'fit row')}, {counted(churners, 'churner')} (needs {min_rows} "
                f"and {min_churners}); "
                "weights kept."
            )
            continue
        eligible[name] = mask

    for name, mask in eligible.items():
        for cat, (cat_weight, metric_weights) in current[name].items():
            X, names = _badness(health.points.loc[mask, list(metric_weights)])
            if len(names) < 2:
                continue
            new = _fit_share(X, labels[mask], names, metric_weights, penalty)
            if new is None:
                result.notes.append(f"{name}.{cat}: no metric separates churners on the fit rows; metric weights kept.")
                continue
            result.weights[name][cat] = (cat_weight, {**metric_weights, **new})
            result.metrics.update((name, cat, m) for m in names)

    rescored = score_health(rows, _with_weights(scorecard, result.weights)).frame
    for name, mask in eligible.items():
        cat_weights = {c: w for c, (w, _) in current[name].items()}
        X, columns = _badness(rescored.loc[mask, [health_column(c) for c in cat_weights]])
        names = [c.removeprefix("health_") for c in columns]
        new = _fit_share(X, labels[mask], names, cat_weights, penalty) if names else None
        if new is None:
            result.notes.append(f"{name}: no category separates churners on the fit rows; category weights kept.")
        else:
            result.categories.update((name, c) for c in names)
        combined = {**cat_weights, **(new or {})}
        scale = CATEGORY_TOTAL / sum(combined.values())
        for cat, weight in combined.items():
            result.weights[name][cat] = (weight * scale, result.weights[name][cat][1])
        result.scorecards.add(name)
    return result


def _blend(current: Weights, fit: _Fit, share: float, limits: SuggestionLimits = SuggestionLimits()) -> Weights:
    """Move `share` of the way from the current weights to the fitted ones, within `limits`; rounded like
    the file writes them.

    Category weights of a fitted scorecard end up summing to 100, each within `max_change` of its
    current share and not below `category_floor`; metric weights keep their category's total and
    at least `metric_floor` of their current weight. Scorecards that were not fitted, and `share`
    0, keep the current weights exactly.
    """
    blended: Weights = {}
    for name, cats in current.items():
        if share == 0 or name not in fit.scorecards:
            blended[name] = {c: (w, dict(m)) for c, (w, m) in cats.items()}
            continue
        total = sum(w for w, _ in cats.values())
        now = {c: w * CATEGORY_TOTAL / total for c, (w, _) in cats.items()}
        category = {c: (1 - share) * now[c] + share * fit.weights[name][c][0] for c in cats}
        low = {c: min(now[c], max(limits.category_floor, now[c] - limits.max_change)) for c in cats}
        high = {c: now[c] + limits.max_change for c in cats}
        category = _round_to_total(_within(category, low, high, CATEGORY_TOTAL), CATEGORY_TOTAL, CATEGORY_STEP)
        blended[name] = {}
        for c, (_, metrics) in cats.items():
            mixed = {m: (1 - share) * w + share * fit.weights[name][c][1][m] for m, w in metrics.items()}
            kept = sum(metrics.values())
            floors = {m: limits.metric_floor * w for m, w in metrics.items()}
            mixed = _within(mixed, floors, dict.fromkeys(metrics, kept), kept)
            changed = any(fit.weights[name][c][1][m] != w for m, w in metrics.items())
            blended[name][c] = (
                category[c],
                _round_to_total(mixed, sum(metrics.values()), METRIC_STEP) if changed else dict(metrics),
            )
    return blended


def _choose_share(
    fit_rows: pd.DataFrame,
    scorecard: ScorecardConfig,
    grace_days: int,
    min_rows: int,
    min_churners: int,
    penalty: float,
    limits: SuggestionLimits,
) -> tuple[float, dict[float, float | None], str]:
    """How far to move towards fitted weights, decided inside the fit period.

    Weights fitted on its earlier part are blended with the current ones at each share of
    BLEND_SHARES and backtested on its later part; the best share wins (ties: the smaller move).
    """
    try:
        inner = out_of_time_split(fit_rows, validation_share=INNER_SHARE, grace_days=grace_days)
    except DataContractError as exc:
        return 0.0, {}, f"Current weights kept: the fit period is too short to check fitted weights out of time ({exc})"
    check = fit_rows.loc[inner.valid_index]
    early = _fit(fit_rows.loc[inner.train_index], scorecard, min_rows, min_churners, penalty)
    current = _current_weights(scorecard)
    aucs: dict[float, float | None] = {}
    for share in BLEND_SHARES:
        aucs[share] = backtest_health(check, _with_weights(scorecard, _blend(current, early, share, limits)))["auc"]
    scored = {s: a for s, a in aucs.items() if a is not None}
    best = max(scored, key=lambda s: (round(scored[s], 6), -s)) if scored else 0.0
    listed = ", ".join(f"{s:.0%}: {format_auc(a)}" for s, a in aucs.items())
    note = (
        f"Moved {best:.0%} of the way from the current to the fitted weights: the share that ranked best on the "
        f"last part of the fit period (from {inner.cutoff.date()}; ROC AUC by share {listed})."
    )
    return best, aucs, note


def suggest_weights(
    train_frame: pd.DataFrame,
    scorecard: ScorecardConfig,
    *,
    evaluation_frame: pd.DataFrame | None = None,
    validation_share: float = 0.3,
    grace_days: int = 30,
    min_rows: int = 200,
    min_churners: int = 20,
    penalty: float = 1.0,
    limits: SuggestionLimits = SuggestionLimits(),
) -> SuggestedWeights:
    """Fit category and metric weights on early labelled snapshots and backtest them on later ones.

    `train_frame` is a feature table (account_id, as_of, label, term_end, features). Without
    `evaluation_frame` it is split out of time (`models.split.out_of_time_split`: the last
    `validation_share` of snapshots evaluate, and fit rows need their label observed
    `grace_days` before that); with it, every labelled row of `train_frame` fits and must be
    dated before every evaluation row. A scorecard (default or segment) with fewer than
    `min_rows` fit rows or `min_churners` churners there keeps its weights (said in `notes`).
    How far the suggestion moves from the current weights is itself chosen out of time within
    the fit rows (`_choose_share`), so a fit that does not carry over to later snapshots
    leaves the scorecard as it is.
    """
    fit_rows, evaluation = _fit_and_evaluation_rows(train_frame, evaluation_frame, validation_share, grace_days)
    current = _current_weights(scorecard)
    share, share_aucs, share_note = _choose_share(
        fit_rows, scorecard, grace_days, min_rows, min_churners, penalty, limits
    )
    full = _fit(fit_rows, scorecard, min_rows, min_churners, penalty)
    suggested = _blend(current, full, share, limits)
    weighted = _with_weights(scorecard, suggested)
    bands = suggest_bands(score_health(fit_rows, weighted).frame[HEALTH_SCORE], limits)
    suggested_config = weighted.model_copy(update={"bands": bands})
    current_bt = backtest_health(evaluation, scorecard)
    suggested_bt = backtest_health(evaluation, suggested_config)
    evaluation_scores = pd.DataFrame(
        {
            "current": score_health(evaluation, scorecard).frame[HEALTH_SCORE],
            "suggested": score_health(evaluation, suggested_config).frame[HEALTH_SCORE],
        }
    )
    moved = share > 0
    return SuggestedWeights(
        scorecard=scorecard_dict(suggested_config, suggested),
        current=scorecard_dict(scorecard, current),
        category_weights=_weight_table(current, suggested, full.categories if moved else set()),
        metric_weights=_metric_table(current, suggested, full.metrics if moved else set()),
        current_auc=current_bt["auc"],
        suggested_auc=suggested_bt["auc"],
        fit_rows=len(fit_rows),
        evaluation_rows=int(current_bt["rows"]),
        fit_period=_period(fit_rows),
        evaluation_period=_period(evaluation),
        evaluation_scores=evaluation_scores,
        share=share,
        share_aucs=share_aucs,
        notes=(share_note, *full.notes),
        changes=change_gains(evaluation, scorecard, current, suggested, current_bt["auc"]),
        bands=band_table(current_bt, suggested_bt, scorecard, suggested_config),
        limits=limits,
    )


def suggest_bands(scores: pd.Series, limits: SuggestionLimits) -> Bands:
    """Band thresholds that put `red_share` of these scores in red and `yellow_share` in yellow.

    Lower bounds, rounded to whole points: yellow starts at the `red_share` quantile (the rows
    below it -- the lowest scores, where churn concentrates -- are red), green at the quantile of
    `red_share + yellow_share`.
    """
    values = pd.to_numeric(scores, errors="coerce").dropna()
    if values.empty:
        raise ChurnError("suggest_bands: no health scores to set band thresholds on.")
    yellow = float(np.clip(round(values.quantile(limits.red_share)), 1, 99))
    green = float(np.clip(round(values.quantile(min(limits.red_share + limits.yellow_share, 1.0))), yellow + 1, 100))
    return Bands(green=green, yellow=yellow)


def band_table(
    before: Mapping[str, Any], after: Mapping[str, Any], current: ScorecardConfig, suggested: ScorecardConfig
) -> pd.DataFrame:
    """Per band, its threshold, share of the evaluation rows and churn rate, current vs suggested."""
    records = []
    for band in ("green", "yellow", "red"):
        row: dict[str, Any] = {"band": band}
        for label, result, config in (("current", before, current), ("suggested", after, suggested)):
            counts = result["bands"][band]
            row[f"{label}_from"] = getattr(config.bands, band) if band != "red" else 0.0
            row[f"{label}_share"] = counts["count"] / result["rows"] if result["rows"] else np.nan
            row[f"{label}_churn_rate"] = np.nan if counts["churn_rate"] is None else counts["churn_rate"]
        records.append(row)
    return pd.DataFrame(records)


def change_gains(
    evaluation: pd.DataFrame, scorecard: ScorecardConfig, current: Weights, suggested: Weights, base_auc: float | None
) -> pd.DataFrame:
    """Each suggested change on its own -- one category weight, or one category's metric weights -- with
    the ROC AUC gain it brings over the current scorecard on the evaluation rows, largest gain first.

    A category's suggested weight is in points of 100: tried alone, it holds that share of the card and the
    other categories share the rest as they do now (next to their raw weights, a card summing to 45 tried
    adoption's 77 of 100 as 84%). A card's only category has all of it either way, and no change to try."""
    records = []
    for name, cats in current.items():
        total = sum(weight for weight, _ in cats.values())
        for cat, (weight, metrics) in cats.items():
            new_weight, new_metrics = suggested[name][cat]
            edits = []
            now = weight * CATEGORY_TOTAL / total
            if not np.isclose(new_weight, now) and total > weight:
                # the suggestion is in points of 100: a card summing to 45 read "30 -> 77" as a 47-point move
                scaled = "" if total == CATEGORY_TOTAL else f" ({now:.0f} of {CATEGORY_TOTAL})"
                rest = (CATEGORY_TOTAL - new_weight) / (total - weight)
                card = {c: (w * rest, m) for c, (w, m) in cats.items()} | {cat: (new_weight, metrics)}
                edits.append((f"{cat} weight {_number(weight)}{scaled} -> {_number(new_weight)}", card))
            if new_metrics != metrics:
                moved = ", ".join(
                    f"{m} {_number(w)} -> {_number(new_metrics[m])}" for m, w in metrics.items() if new_metrics[m] != w
                )
                edits.append((f"{cat} metrics: {moved}", {**cats, cat: (weight, new_metrics)}))
            for text, card in edits:
                auc = backtest_health(evaluation, _with_weights(scorecard, {**current, name: card}))["auc"]
                gain = np.nan if auc is None or base_auc is None else auc - base_auc
                records.append({"scorecard": name, "change": text, "auc": auc, "auc_gain": gain})
    table = pd.DataFrame(records, columns=["scorecard", "change", "auc", "auc_gain"])
    return table.sort_values("auc_gain", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def _period(frame: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    dates = pd.to_datetime(frame[AS_OF])
    return dates.min(), dates.max()


def _fit_and_evaluation_rows(
    train_frame: pd.DataFrame, evaluation_frame: pd.DataFrame | None, validation_share: float, grace_days: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    for name, frame in (("training", train_frame), ("evaluation", evaluation_frame)):
        if frame is not None and (missing := [c for c in (AS_OF, LABEL) if c not in frame.columns]):
            raise DataContractError(f"suggest_weights: the {name} table lacks {named('column', missing)}.")
    if evaluation_frame is None:
        split = out_of_time_split(train_frame, validation_share=validation_share, grace_days=grace_days)
        return train_frame.loc[split.train_index], train_frame.loc[split.valid_index]
    fit = train_frame[train_frame[LABEL].notna()]
    evaluation = evaluation_frame[evaluation_frame[LABEL].notna()]
    if fit.empty or evaluation.empty:
        raise DataContractError(
            f"suggest_weights: {counted(len(fit), 'labelled fit row')} and "
            f"{counted(len(evaluation), 'labelled evaluation row')}; "
            "both must be non-empty."
        )
    last_fit, first_eval = pd.to_datetime(fit[AS_OF]).max(), pd.to_datetime(evaluation[AS_OF]).min()
    if last_fit >= first_eval:
        raise ChurnError(
            f"suggest_weights: fit rows reach {last_fit.date()} but evaluation rows start {first_eval.date()}; "
            "the evaluation period must come after every fit row so nothing is tuned on it."
        )
    return fit, evaluation


def _weight_table(current: Weights, suggested: Weights, fitted: set[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "scorecard": name,
                "category": cat,
                "current": weight,
                "suggested": suggested[name][cat][0],
                "fitted": (name, cat) in fitted,
            }
            for name, cats in current.items()
            for cat, (weight, _) in cats.items()
        ]
    )


def _metric_table(current: Weights, suggested: Weights, fitted: set[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "scorecard": name,
                "category": cat,
                "metric": metric,
                "current": weight,
                "suggested": suggested[name][cat][1][metric],
                "fitted": (name, cat, metric) in fitted,
            }
            for name, cats in current.items()
            for cat, (_, metrics) in cats.items()
            for metric, weight in metrics.items()
        ]
    )


# ------------------------------------------------------------------------------ rendering
def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 6)


def _plain(value: Any) -> Any:
    """Whole floats as ints (also inside lists), so `cuts: [1, 2]` reads as in the hand-written file."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return _number(value) if isinstance(value, float) else value


class _Flow(dict):
    """A mapping written on one line (`{scheme: linear, bad: 0, good: 1}`), like the hand-written file."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True))
_Dumper.add_representer(list, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)


def _rule(rule: Any, weight: float) -> _Flow:
    fields = rule.model_dump(exclude_none=True)
    ordered = {"scheme": fields.pop("scheme")}
    ordered.update({k: v for k, v in fields.items() if k not in ("weight", "default")})
    ordered["weight"] = _number(weight)
    if "default" in fields:
        ordered["default"] = fields["default"]
    return _Flow({k: _plain(v) for k, v in ordered.items()})


def _categories(card: Scorecard, weights: Mapping[str, tuple[float, dict[str, float]]]) -> dict[str, Any]:
    return {
        cat: {
            "weight": _number(weights[cat][0]),
            "metrics": {metric: _rule(rule, weights[cat][1][metric]) for metric, rule in category.metrics.items()},
        }
        for cat, category in card.categories.items()
    }


def _category_override(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """What a segment's category changes relative to the default's (merged back by the scorecard loader)."""
    override: dict[str, Any] = {}
    if own["weight"] != base["weight"]:
        override["weight"] = own["weight"]
    metrics: dict[str, Any] = {m: None for m in base["metrics"] if m not in own["metrics"]}
    for metric, rule in own["metrics"].items():
        inherited = base["metrics"].get(metric)
        if inherited is None or {k: v for k, v in inherited.items() if k != "weight"} != {
            k: v for k, v in rule.items() if k != "weight"
        }:
            metrics[metric] = rule
        elif inherited["weight"] != rule["weight"]:
            metrics[metric] = _Flow(weight=rule["weight"])
    if metrics:
        override["metrics"] = metrics
    return override


def _condition(condition: Any) -> str:
    return f"{condition.column} {condition.op} {json.dumps(condition.value)}"


def scorecard_dict(config: ScorecardConfig, weights: Weights) -> dict[str, Any]:
    """`config` with `weights`, as a scorecard mapping: default in full, segments as overrides of it."""
    default = _categories(config.default, weights[DEFAULT_SCORECARD])
    result: dict[str, Any] = {"name": config.name}
    if config.description:
        result["description"] = config.description
    result["bands"] = _Flow(green=_number(config.bands.green), yellow=_number(config.bands.yellow))
    result["population_by"] = config.population_by
    result["default"] = {"categories": default}
    segments: dict[str, Any] = {}
    for name, segment in config.segments.items():
        own = _categories(segment, weights[name])
        entry: dict[str, Any] = {"when": [_condition(c) for c in segment.when]}
        if not segment.inherit:
            entry["inherit"] = False
            entry["categories"] = own
        else:
            categories: dict[str, Any] = {c: None for c in default if c not in own}
            for cat, spec in own.items():
                override = spec if cat not in default else _category_override(default[cat], spec)
                if override:
                    categories[cat] = override
            entry["categories"] = categories
        segments[name] = entry
    if segments:
        result["segments"] = segments
    return result
