"""How well a churn score works, in the terms a customer-success team acts on.

Ranking (ROC AUC, PR AUC, lift and capture in the riskiest 10%/20%, ARR-weighted capture)
says whether the CSMs' call list is the right one; probability quality (Brier, log loss,
expected calibration error) says whether `churn_probability` can be read as a frequency.
Each model therefore has a *score* that ranks and, optionally, *probabilities* that are judged
as probabilities. They may differ: the churn model ranks by its booster score (calibration is
monotone) while its probabilities are cross-fitted calibrations, so neither is flattered by a
calibrator that saw the row. Scores that are not probabilities (the rule-based risk, 0-100) get
ranking metrics only.

Top-share metrics split ties fairly: when the 10% boundary falls inside a group of equal
scores (isotonic calibration makes steps), each tied row counts with the fraction of the
remaining slots, i.e. the expectation over random tie-breaking, so row order never matters.

Plots use matplotlib's object API on Agg canvases (no pyplot state), so they are safe in
batch jobs and threads.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from features.errors import counted
from models.errors import ModelError

TOP_SHARES = (0.1, 0.2)
ALL_SEGMENTS = "all"
FEW_BIN_ROWS = 10
"""A reliability bin of fewer rows has a churn rate that is mostly chance (a bin of one row reads 0% or 100%):
it is drawn hollow, off the curve, so it is not read like a full bin."""


def expected_calibration_error(labels: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean |observed churn rate - mean predicted probability| over equal-width bins.

    The bins are scikit-learn's `calibration_curve` bins (the reliability diagram's); the rows per
    bin weigh each bin's gap.
    """
    labels, proba = np.asarray(labels, dtype=float), np.asarray(proba, dtype=float)
    observed, predicted = calibration_curve(labels, proba, n_bins=bins, strategy="uniform")
    return float(np.sum(_bin_rows(proba, bins) * np.abs(observed - predicted)) / len(labels))


def _bin_rows(proba: np.ndarray, bins: int) -> np.ndarray:
    """Rows per non-empty equal-width bin: the bins `calibration_curve` returns, in its order."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = np.bincount(np.searchsorted(edges[1:-1], proba), minlength=bins)
    return rows[rows > 0]


def top_share_weights(score: np.ndarray, share: float) -> np.ndarray:
    """Each row's membership (0..1) in the top `share` of scores, ties at the boundary shared evenly."""
    score = np.asarray(score, dtype=float)
    slots = share * len(score)
    if slots <= 0 or len(score) == 0:
        return np.zeros(len(score))
    boundary = np.sort(score)[::-1][min(int(np.ceil(slots)), len(score)) - 1]
    above, tied = score > boundary, score == boundary
    weights = above.astype(float)
    weights[tied] = (slots - above.sum()) / tied.sum()
    return weights


def format_auc(value: float | None) -> str:
    """An AUC for people: three decimals, or n/a when it could not be measured."""
    return "n/a" if value is None else f"{value:.3f}"


def _values(name: str, values: np.ndarray | pd.Series, rows: int) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if len(array) != rows:
        raise ModelError(
            f"evaluation: '{name}' has {counted(len(array), 'value')} for {counted(rows, 'labelled row')}."
        )
    if np.isnan(array).any():
        raise ModelError(
            f"evaluation: '{name}' has {counted(int(np.isnan(array).sum()), 'missing value')}; every row needs one."
        )
    return array


def score_metrics(
    labels: np.ndarray,
    score: np.ndarray,
    *,
    probabilities: np.ndarray | None = None,
    arr: np.ndarray | None = None,
) -> dict[str, float]:
    """All metrics of one model on one set of rows (NaN where a metric is undefined).

    `score` ranks the rows; `probabilities` (optional) are judged as probabilities.
    """
    labels = np.asarray(labels, dtype=int)
    score = _values("score", score, len(labels))
    churners = int(labels.sum())
    both_classes = 0 < churners < len(labels)
    metrics: dict[str, float] = {"rows": float(len(labels)), "churners": float(churners)}
    metrics["churn_rate"] = churners / len(labels) if len(labels) else float("nan")
    metrics["roc_auc"] = float(roc_auc_score(labels, score)) if both_classes else float("nan")
    metrics["pr_auc"] = float(average_precision_score(labels, score)) if both_classes else float("nan")
    if probabilities is not None:
        proba = _values("probabilities", probabilities, len(labels))
        metrics["brier"] = float(brier_score_loss(labels, proba))
        metrics["log_loss"] = float(log_loss(labels, proba, labels=[0, 1]))
        metrics["ece"] = expected_calibration_error(labels, proba)
    for share in TOP_SHARES:
        tag = f"top{round(share * 100)}"
        weights = top_share_weights(score, share)
        caught = float((weights * labels).sum())
        metrics[f"capture_{tag}"] = caught / churners if churners else float("nan")
        metrics[f"lift_{tag}"] = (caught / weights.sum()) / metrics["churn_rate"] if churners else float("nan")
        if arr is not None:
            churned_arr = np.nan_to_num(np.asarray(arr, dtype=float)) * labels
            total = churned_arr.sum()
            metrics[f"arr_capture_{tag}"] = float((weights * churned_arr).sum() / total) if total > 0 else float("nan")
    return metrics


def evaluate(
    labels: pd.Series | np.ndarray,
    scores: Mapping[str, pd.Series | np.ndarray],
    *,
    probabilities: Mapping[str, pd.Series | np.ndarray] | None = None,
    segments: pd.Series | None = None,
    arr: pd.Series | None = None,
) -> pd.DataFrame:
    """Metrics per model, overall (segment 'all') and per segment: one row per (score, segment).

    `scores[name]` ranks the rows; `probabilities[name]`, where given, is judged as probabilities.
    """
    y = np.asarray(labels, dtype=int)
    probabilities = {name: _values(name, p, len(y)) for name, p in (probabilities or {}).items()}
    unknown = sorted(set(probabilities) - set(scores))
    if unknown:
        raise ModelError(f"evaluation: probabilities given for {unknown} but no score with that name.")
    arr_values = None if arr is None else np.asarray(arr, dtype=float)
    groups: list[tuple[str, np.ndarray]] = [(ALL_SEGMENTS, np.ones(len(y), dtype=bool))]
    if segments is not None:
        seg = pd.Series(np.asarray(segments, dtype=object)).fillna("(missing)").astype(str)
        groups += [(name, (seg == name).to_numpy()) for name in sorted(seg.unique())]
    rows = []
    for name, score in scores.items():
        values = _values(name, score, len(y))
        proba = probabilities.get(name)
        for segment, mask in groups:
            metrics = score_metrics(
                y[mask],
                values[mask],
                probabilities=None if proba is None else proba[mask],
                arr=None if arr_values is None else arr_values[mask],
            )
            rows.append({"score": name, "segment": segment, **metrics})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- plots
def new_figure(width: float = 6.5, height: float = 5.0, ncols: int = 1) -> tuple[Figure, list]:
    """A figure of `ncols` side-by-side axes on its own Agg canvas (no pyplot state)."""
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def plot_roc(labels: np.ndarray, scores: Mapping[str, np.ndarray]) -> Figure:
    fig, (ax,) = new_figure()
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(labels, score)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, score):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    ax.set(xlabel="False positive rate (renewals flagged)", ylabel="True positive rate (churners found)", title="ROC")
    ax.legend(loc="lower right")
    return fig


def plot_precision_recall(labels: np.ndarray, scores: Mapping[str, np.ndarray]) -> Figure:
    fig, (ax,) = new_figure()
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(labels, score)
        ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(labels, score):.3f})")
    ax.axhline(np.mean(labels), color="grey", linestyle=":", label="churn rate")
    ax.set(xlabel="Recall (share of churners found)", ylabel="Precision", title="Precision-recall")
    ax.legend(loc="upper right")
    return fig


def plot_calibration(labels: np.ndarray, probabilities: Mapping[str, np.ndarray], bins: int = 10) -> Figure:
    """Reliability diagram (observed churn rate per predicted-probability bin) and the histogram.

    A bin's marker area grows with its rows, and bins under `FEW_BIN_ROWS` rows are hollow and off the line:
    a bin of one row at 100% drew the curve to the corner like a bin of thousands."""
    fig, (ax, hist) = new_figure(ncols=2)
    labels = np.asarray(labels, dtype=float)
    few = False
    for name, proba in probabilities.items():
        proba = np.asarray(proba, dtype=float)
        observed, predicted = calibration_curve(labels, proba, n_bins=bins, strategy="uniform")
        rows = _bin_rows(proba, bins)
        full, area = rows >= FEW_BIN_ROWS, 10 + 190 * rows / rows.max()
        ece = expected_calibration_error(labels, proba, bins)
        (line,) = ax.plot(predicted[full], observed[full], label=f"{name} (ECE {ece:.3f})")
        ax.scatter(predicted[full], observed[full], s=area[full], color=line.get_color(), zorder=3)
        ax.scatter(predicted[~full], observed[~full], s=area[~full], facecolors="none", edgecolors=line.get_color())
        few |= bool((~full).any())
        hist.hist(proba, bins=np.linspace(0, 1, bins * 2 + 1), histtype="step", label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    if few:  # say what a hollow marker is
        ax.scatter([], [], facecolors="none", edgecolors="grey", label=f"bin of under {FEW_BIN_ROWS} rows")
    ax.set(xlabel="Predicted churn probability", ylabel="Observed churn rate", title="Calibration")
    ax.legend(loc="upper left")
    hist.set(xlabel="Predicted churn probability", ylabel="Rows", title="Distribution", yscale="log")
    # every bar stands on the axis: a log axis fitted to counts of 80 to 200 started at 75, and 80 rows looked like none
    hist.set_ylim(bottom=0.5)
    hist.legend()
    return fig


def plot_gains(labels: np.ndarray, scores: Mapping[str, np.ndarray]) -> Figure:
    """Cumulative gains (share of churners found vs share of accounts called) and lift."""
    fig, (gains, lift) = new_figure(ncols=2)
    labels = np.asarray(labels, dtype=float)
    shares = np.linspace(0.01, 1, 100)
    for name, score in scores.items():
        found = np.array([(top_share_weights(score, s) * labels).sum() for s in shares]) / labels.sum()
        gains.plot(shares, found, label=name)
        lift.plot(shares, found / shares, label=name)
    gains.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    lift.axhline(1, color="grey", linestyle=":")
    for share in TOP_SHARES:
        gains.axvline(share, color="lightgrey", linewidth=0.8)
        lift.axvline(share, color="lightgrey", linewidth=0.8)
    gains.set(xlabel="Share of accounts, riskiest first", ylabel="Share of churners captured", title="Cumulative gains")
    lift.set(xlabel="Share of accounts, riskiest first", ylabel="Lift over random", title="Lift")
    gains.legend(loc="lower right")
    lift.legend(loc="upper right")
    return fig


def _category_colours(categories: Collection[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {category: palette(i % 10) for i, category in enumerate(sorted(set(categories)))}


def plot_importance(importance: pd.Series, categories: Mapping[str, str], top: int = 20) -> Figure:
    """Gain importance of the top features, coloured by health category."""
    shown = importance.sort_values(ascending=False).head(top)[::-1]
    colours = _category_colours(categories.values())
    fig, (ax,) = new_figure(height=max(4.0, 0.28 * len(shown) + 1.5))
    ax.barh(shown.index, shown.to_numpy(), color=[colours[categories[name]] for name in shown.index])
    _category_legend(ax, colours, {categories[name] for name in shown.index})
    ax.set(xlabel=f"Total {importance.name or 'gain'} in the boosted trees", title="Feature importance (gain)")
    return fig


def _category_legend(ax, colours: Mapping[str, tuple], shown: Collection[str]) -> None:
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=colours[c], label=c) for c in sorted(shown)], loc="lower right", title="category")


def plot_shap_by_category(contributions: pd.DataFrame, categories: Mapping[str, str], top: int = 15) -> Figure:
    """SHAP summary in health-score vocabulary.

    Left: per account, the sum of its features' contributions in each category (log-odds of
    churn; right of zero raises risk), categories ordered by mean |contribution|. Right: the
    features with the largest mean |contribution|, coloured by their category.
    """
    features = [c for c in contributions.columns if c in categories]
    values = contributions[features]
    colours = _category_colours(categories[name] for name in features)
    per_category = values.T.groupby([categories[name] for name in features]).sum().T
    order = per_category.abs().mean().sort_values().index
    fig, (strips, bars) = new_figure(height=max(4.5, 0.3 * min(top, len(features)) + 1.5), ncols=2)
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, size=len(per_category))
    for position, category in enumerate(order):
        strips.scatter(per_category[category], position + jitter, s=4, alpha=0.35, color=colours[category])
        mean_abs = per_category[category].abs().mean()
        strips.annotate(
            f"mean |·| {mean_abs:.3f}", (1.0, position), xycoords=("axes fraction", "data"), ha="right", fontsize=8
        )
    strips.axvline(0, color="grey", linewidth=0.8)
    strips.set_yticks(range(len(order)), list(order))
    strips.set(xlabel="Contribution to churn log-odds (SHAP)", title="SHAP by health category")
    mean_abs = values.abs().mean().sort_values(ascending=False).head(top)[::-1]
    bars.barh(mean_abs.index, mean_abs.to_numpy(), color=[colours[categories[name]] for name in mean_abs.index])
    _category_legend(bars, colours, {categories[name] for name in mean_abs.index})
    bars.set(xlabel="Mean |SHAP| (log-odds)", title="Top features")
    return fig


def evaluation_figures(
    labels: np.ndarray,
    scores: Mapping[str, np.ndarray],
    *,
    probabilities: Mapping[str, np.ndarray],
    importance: pd.Series | None = None,
    contributions: pd.DataFrame | None = None,
    categories: Mapping[str, str] | None = None,
) -> dict[str, Figure]:
    """Every evaluation plot, by file name (`roc.png`...); the caller decides where they go."""
    labels = np.asarray(labels, dtype=int)
    figures = {
        "roc.png": plot_roc(labels, scores),
        "precision_recall.png": plot_precision_recall(labels, scores),
        "calibration.png": plot_calibration(labels, probabilities),
        "gains_lift.png": plot_gains(labels, scores),
    }
    if importance is not None and categories is not None:
        figures["importance_gain.png"] = plot_importance(importance, categories)
    if contributions is not None and categories is not None:
        figures["shap_by_category.png"] = plot_shap_by_category(contributions, categories)
    return figures
