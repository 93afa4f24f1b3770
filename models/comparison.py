"""Rule score versus ML risk on the same held-out snapshots: how far to trust each, and where they differ.

Everything here is a pure function of a *backtest frame*: one row per labelled snapshot
(account_id, as_of, label, arr, segment) carrying both views — the rule-based health score
(health_score, health_band, health_<category>) and the model's risk (churn_probability,
risk_band, ml_<category> SHAP sums in log-odds). The rule's risk is `100 - health_score`, so
for both scores higher means riskier and the same ranking metrics apply.

Confidence intervals come from a cluster bootstrap: an account contributes several monthly
snapshots whose outcomes are the same renewal, so resampling rows would pretend to have more
independent evidence than there is. Accounts are drawn with replacement and bring all their rows.
Ranking metrics themselves come from `models.evaluation` (one implementation for the project).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.errors import DataContractError, counted, named
from features.registry import lookup
from features.table import ACCOUNT_ID, AS_OF, LABEL, TERM_END
from models.evaluation import score_metrics
from models.explain import actionable_share
from models.healthscore import BAND_ORDER, health_risk
from models.scorecard import ScorecardConfig
from models.scores import (
    ACTIONABLE_LOG_ODDS,
    ARR,
    CHURN_LOG_ODDS,
    CHURN_PROBABILITY,
    HEALTH_BAND,
    HEALTH_PREFIX,
    HEALTH_SCORE,
    HEALTH_SCORECARD,
    ML_PREFIX,
    RISK_BAND,
    SEGMENT,
    health_column,
    health_columns,
    ml_column,
    ml_columns,
)
from models.split import MIN_VALID_CLASS_ROWS

RULE = "rule"
ML = "ml"
RISK_BAND_ORDER: tuple[str, ...] = ("low", "medium", "high")  # models.alerts.risk_band levels, least risky first
HEALTH_BAND_ORDER: tuple[str, ...] = tuple(sorted(BAND_ORDER, key=BAND_ORDER.__getitem__))  # green, yellow, red
RANKING_METRICS: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "lift_top10",
    "lift_top20",
    "capture_top10",
    "capture_top20",
    "arr_capture_top10",
    "arr_capture_top20",
)
REQUIRED_COLUMNS: tuple[str, ...] = (ACCOUNT_ID, AS_OF, LABEL, HEALTH_SCORE, HEALTH_BAND, CHURN_PROBABILITY, RISK_BAND)
DISAGREEMENT_KINDS: dict[str, str] = {
    "green_but_high_ml_risk": "rule says green, model says high risk",
    "red_but_low_ml_risk": "rule says red, model says low risk",
}
DISAGREEMENT_CELLS: dict[str, tuple[str, str]] = {
    "green_but_high_ml_risk": ("green", "high"),
    "red_but_low_ml_risk": ("red", "low"),
}  # kind -> (health band, risk band)


def rule_risk(frame: pd.DataFrame) -> pd.Series:
    """The rule score as a risk (0-100, higher = riskier), comparable in direction to the ML probability."""
    return health_risk(frame[HEALTH_SCORE].astype(float)).rename("rule_risk")


def ml_risk(frame: pd.DataFrame) -> pd.Series:
    """What ranks accounts by ML risk: the log-odds when the frame has them, else the calibrated probability.

    Calibration is monotone, so both give the same order except that isotonic steps tie accounts
    the model itself tells apart; ranking metrics should not pay for that.
    """
    return frame[CHURN_LOG_ODDS if CHURN_LOG_ODDS in frame.columns else CHURN_PROBABILITY].astype(float)


def labelled_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with a known outcome and both scores; raises when the frame cannot be compared at all."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataContractError(
            f"backtest frame: missing {named('column', missing)}; it needs {', '.join(REQUIRED_COLUMNS)} "
            f"(has {', '.join(map(str, frame.columns[:10]))}{', ...' if len(frame.columns) > 10 else ''})."
        )
    usable = frame[frame[LABEL].notna() & frame[HEALTH_SCORE].notna() & frame[CHURN_PROBABILITY].notna()]
    if usable.empty:
        raise DataContractError(
            f"backtest frame: none of its {counted(len(frame), 'row')} has a label, a health score and a churn "
            "probability."
        )
    return usable


# --------------------------------------------------------------------------------- ranking
def _drawn_groups(n_groups: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """The group codes each of `n_boot` resamples draws (with replacement, as many as there are groups)."""
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n_groups, n_groups)


def cluster_bootstrap_indices(groups: pd.Series, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Row positions of `n_boot` resamples that draw whole groups (accounts) with replacement, one at a time."""
    codes, uniques = pd.factorize(groups, sort=False)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=len(uniques))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for drawn in _drawn_groups(len(uniques), n_boot, seed):
        lengths = sizes[drawn]
        # positions starts[g] .. starts[g] + size[g] - 1 of every drawn group, concatenated
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        yield order[np.repeat(starts[drawn], lengths) + offsets]


def _ranking(labels: np.ndarray, score: np.ndarray, arr: np.ndarray | None) -> dict[str, float]:
    metrics = score_metrics(labels, score, arr=arr)
    return {name: metrics.get(name, float("nan")) for name in RANKING_METRICS}


def compare_scores(frame: pd.DataFrame, n_boot: int = 200, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Ranking metrics of the rule risk and the ML probability on the same rows, with bootstrap CIs.

    The ML side ranks by `ml_risk` (log-odds when present).
    Returns {"rows", "accounts", "churners", "churn_rate", "n_boot", "level", "scores": {"rule": m,
    "ml": m, "ml_minus_rule": m}} where each m maps a metric of RANKING_METRICS to {"value", "low",
    "high"} (percentile interval of the account-level bootstrap; the difference is paired: both
    scores are measured on the same resample). ARR metrics are NaN without an `arr` column.
    """
    rows = labelled_rows(frame)
    labels = rows[LABEL].astype(int).to_numpy()
    scores = {RULE: rule_risk(rows).to_numpy(), ML: ml_risk(rows).to_numpy()}
    arr = rows[ARR].astype(float).to_numpy() if ARR in rows.columns else None

    def measure(idx: np.ndarray | slice) -> dict[str, dict[str, float]]:
        sub_arr = None if arr is None else arr[idx]
        result = {name: _ranking(labels[idx], values[idx], sub_arr) for name, values in scores.items()}
        result["ml_minus_rule"] = {m: result[ML][m] - result[RULE][m] for m in RANKING_METRICS}
        return result

    point = measure(slice(None))
    draws = [measure(idx) for idx in cluster_bootstrap_indices(rows[ACCOUNT_ID], n_boot, seed)]
    tail = (1 - level) / 2 * 100
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name, metrics in point.items():
        summary[name] = {}
        for metric, value in metrics.items():
            sample = np.array([draw[name][metric] for draw in draws], dtype=float)
            sample = sample[~np.isnan(sample)]
            low, high = np.percentile(sample, [tail, 100 - tail]) if sample.size else (np.nan, np.nan)
            summary[name][metric] = {"value": float(value), "low": float(low), "high": float(high)}
    return {
        "rows": len(rows),
        "accounts": int(rows[ACCOUNT_ID].nunique()),
        "churners": int(labels.sum()),
        "churn_rate": float(labels.mean()),
        "n_boot": n_boot,
        "level": level,
        "scores": summary,
    }


def auc_lower_bound(
    labels: np.ndarray, scores: np.ndarray, groups: pd.Series, *, level: float = 0.95, n_boot: int = 400, seed: int = 0
) -> float:
    """The one-sided `level` lower bound of the ROC AUC of `scores`: the (1 - level) percentile of the cluster
    bootstrap over `groups` (accounts). How far above chance (0.5) a model's ranking credibly is, with an
    account's several snapshots counted as the one renewal they are."""
    labels = np.asarray(labels, dtype=float)
    levels, unique_scores = pd.factorize(np.asarray(scores), sort=True)
    if unique_scores.size == 1:  # ranks no one: every resample is 0.5
        return 0.5
    # The resamples of `cluster_bootstrap_indices`, each held as how often it drew every row's account: the AUC
    # of the repeated rows is the Mann-Whitney statistic with those weights, two bincounts over the distinct
    # scores instead of a sort per resample (10 s for 400 resamples of 30,000 rows became a fraction of one).
    codes, uniques = pd.factorize(groups.reset_index(drop=True), sort=False)
    draws = []
    for drawn in _drawn_groups(len(uniques), n_boot, seed):
        weights = np.bincount(drawn, minlength=len(uniques))[codes]
        churned = np.bincount(levels, weights=weights * labels, minlength=unique_scores.size)
        renewed = np.bincount(levels, weights=weights * (1 - labels), minlength=unique_scores.size)
        if churned.sum() > 0 and renewed.sum() > 0:
            renewed_below = np.cumsum(renewed) - renewed
            draws.append((churned * (renewed_below + renewed / 2)).sum() / (churned.sum() * renewed.sum()))
    return float(np.percentile(draws, (1 - level) * 100)) if draws else float("nan")


def metrics_table(scores: dict[str, Any]) -> pd.DataFrame:
    """compare_scores output as a flat table: one row per (score, metric) with value and interval."""
    return pd.DataFrame(
        [
            {"score": name, "metric": metric, **values}
            for name, metrics in scores["scores"].items()
            for metric, values in metrics.items()
        ]
    )


# ----------------------------------------------------------------------------- calibration
def _rates(labels: pd.Series, groups: pd.Series, risk: pd.Series, order: list[str]) -> pd.DataFrame:
    grouped = pd.DataFrame({"group": groups.astype(object), "label": labels, "risk": risk}).groupby("group", sort=False)
    table = grouped.agg(rows=("label", "size"), churners=("label", "sum"), mean_risk=("risk", "mean"))
    extra = [g for g in table.index if g not in order]
    table = table.reindex([*order, *extra])
    table["rows"] = table["rows"].fillna(0).astype(int)
    table["churners"] = table["churners"].fillna(0).astype(int)
    table["churn_rate"] = table["churners"] / table["rows"].where(table["rows"] > 0)
    return table.rename_axis("group").reset_index()


NOISE_LEVEL = 0.95
NOISE_DRAWS = 2_000


def outcome_noise(probability: np.ndarray, outcomes: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """The `NOISE_LEVEL` range of the churn rate observed over these rows if `probability` were exactly right:
    each outcome (an account's renewal; its several snapshot rows share it) drawn once with its rows' mean
    probability. A band of 13 accounts predicted at 0.65 may show anything from about 0.35 to 0.9; an
    observed rate inside the range is no evidence of miscalibration."""
    codes, _ = pd.factorize(pd.Series(outcomes), sort=False)
    weights = np.bincount(codes).astype(float)
    p = np.bincount(codes, weights=np.asarray(probability, dtype=float)) / weights
    draws = np.random.default_rng(seed).random((NOISE_DRAWS, len(p))) < p
    rates = draws.astype(float) @ weights / weights.sum()
    tail = (1 - NOISE_LEVEL) / 2 * 100
    low, high = np.percentile(rates, [tail, 100 - tail])
    return float(low), float(high)


def _with_noise(
    table: pd.DataFrame, groups: pd.Series, probability: pd.Series, accounts: pd.Series, term_end: pd.Series | None
) -> pd.DataFrame:
    """`table` (one row per group, as `_rates` makes it) with each group's accounts and `outcome_noise` range
    (rows of one account and term end share one outcome: `_outcome_keys`)."""
    frame = pd.DataFrame(
        {"group": groups.astype(object).to_numpy(), "p": probability.to_numpy(dtype=float),
         "account": accounts.to_numpy(), "outcome": _outcome_keys(accounts, term_end).to_numpy()}
    )  # fmt: skip
    found = {}
    for group, rows in frame.groupby("group", sort=False):
        found[group] = (rows["account"].nunique(), *outcome_noise(rows["p"].to_numpy(), rows["outcome"].to_numpy()))
    columns = pd.DataFrame.from_dict(found, orient="index", columns=["accounts", "noise_low", "noise_high"])
    table = table.join(columns, on="group")
    table["accounts"] = table["accounts"].fillna(0).astype(int)
    return table


def _outcome_keys(accounts: pd.Series, term_end: pd.Series | None) -> pd.Series:
    """One key per outcome: an account's renewal at its term end (every row its own without term ends)."""
    if term_end is None or term_end.isna().all():
        return pd.Series(np.arange(len(accounts)))
    return accounts.astype(str).reset_index(drop=True) + "|" + term_end.astype(str).reset_index(drop=True)


def calibration_by_band(
    labels: np.ndarray,
    probability: np.ndarray,
    bands: pd.Series,
    accounts: pd.Series | None = None,
    term_end: pd.Series | None = None,
) -> pd.DataFrame:
    """Per risk band (low, medium, high): rows, accounts, churners, mean predicted probability, observed churn
    rate and the range outcome noise alone gives it (`outcome_noise`; `accounts` and `term_end` say which rows
    share an outcome, each row its own without them).

    ECE summarises calibration in one number; a CSM acts on bands, so each band's promise
    ("high" = about half churn) is checked on its own -- against its noise: a high band is often a dozen accounts.
    """
    groups = pd.Series(np.asarray(bands, dtype=object))
    risk = pd.Series(np.asarray(probability, dtype=float))
    table = _rates(pd.Series(np.asarray(labels, dtype=int)), groups, risk, list(RISK_BAND_ORDER))
    ids = pd.Series(np.arange(len(groups))) if accounts is None else accounts.reset_index(drop=True)
    table = _with_noise(table, groups, risk, ids, term_end)
    return table.rename(columns={"group": "band", "mean_risk": "mean_predicted", "churn_rate": "observed"})[
        ["band", "rows", "accounts", "churners", "mean_predicted", "observed", "noise_low", "noise_high"]
    ]


def risk_deciles(risk: pd.Series) -> pd.Series:
    """Decile 1 (least risky tenth of rows) .. 10 (riskiest); ties split by row order so deciles stay equal-sized."""
    ranks = risk.rank(method="first")
    return pd.Series(pd.qcut(ranks, min(10, len(risk)), labels=False) + 1, index=risk.index, name="decile").astype(int)


def band_calibration(frame: pd.DataFrame) -> pd.DataFrame:
    """Observed churn per rule band, ML risk band and risk decile of each score.

    One row per (score, grouping, group): rows, churners, churn_rate and mean_risk (the mean
    rule risk 100 - health score, or the mean predicted probability, so the ML rows double as a
    calibration check). Bands are listed from healthiest to riskiest (green, yellow, red; low,
    medium, high), deciles from 1 (least risky) to 10. The ML bands also carry their accounts and the
    range outcome noise alone gives their churn rate (`noise_low`, `noise_high`: `outcome_noise`).
    """
    rows = labelled_rows(frame)
    labels = rows[LABEL].astype(int)
    risks = {RULE: rule_risk(rows), ML: rows[CHURN_PROBABILITY].astype(float)}
    rankings = {RULE: risks[RULE], ML: ml_risk(rows)}
    bands = {RULE: (rows[HEALTH_BAND], list(HEALTH_BAND_ORDER)), ML: (rows[RISK_BAND], list(RISK_BAND_ORDER))}
    parts = []
    for score in (RULE, ML):
        band_values, order = bands[score]
        by_band = _rates(labels, band_values, risks[score], order)
        if score == ML:  # a probability: the range outcome noise alone gives each band's observed rate
            term_end = rows[TERM_END] if TERM_END in rows.columns else None
            by_band = _with_noise(
                by_band, band_values.reset_index(drop=True), risks[ML].reset_index(drop=True),
                rows[ACCOUNT_ID].reset_index(drop=True), term_end,
            )  # fmt: skip
        deciles = risk_deciles(rankings[score])
        by_decile = _rates(labels, deciles.astype(str), risks[score], [str(d) for d in range(1, 11)])
        parts.append(by_band.assign(score=score, grouping="band"))
        parts.append(by_decile[by_decile["rows"] > 0].assign(score=score, grouping="decile"))
    table = pd.concat(parts, ignore_index=True)
    columns = ["score", "grouping", "group", "rows", "churners", "churn_rate", "mean_risk"]
    return table[[*columns, "accounts", "noise_low", "noise_high"]]


def churn_rate_by_band(calibration: pd.DataFrame, score: str = RULE) -> dict[str, float]:
    """{band: observed churn rate} of one score from a band_calibration table (empty bands left out)."""
    bands = calibration[(calibration["score"] == score) & (calibration["grouping"] == "band")]
    return {str(r.group): float(r.churn_rate) for r in bands.itertuples() if r.rows > 0}


SMALL_BAND_ROWS = 30
"""A band's churn rate on fewer rows is said with its counts: "high 60.0%" on 5 rows says little."""


def band_rates(calibration: pd.DataFrame, score: str) -> str:
    """Each band's observed churn rate, healthiest first, as the console and the report's findings say it: an
    empty band is named as empty (left out, "high" missing from the line read as if the model had none to
    show), a small one with its churners and rows, a band of probabilities (ML) with its mean prediction and
    the range outcome noise alone gives its observed rate (`outcome_noise`)."""
    bands = calibration[(calibration["score"] == score) & (calibration["grouping"] == "band")]
    parts = []
    for band in bands.itertuples():
        if band.rows == 0:
            parts.append(f"{band.group} no rows")
            continue
        said = [f"{band.churners:,} of {band.rows:,}"] if band.rows < SMALL_BAND_ROWS else []
        if "noise_low" in bands.columns and pd.notna(band.noise_low):  # a probability's band: promise and noise
            said.append(
                f"predicted {band.mean_risk:.1%}, noise alone {band.noise_low:.1%}-{band.noise_high:.1%} "
                f"on {counted(int(band.accounts), 'account')}"
            )
        parts.append(f"{band.group} {band.churn_rate:.1%}" + (f" ({'; '.join(said)})" if said else ""))
    return ", ".join(parts)


def is_monotone(rates: dict[str, float], order: tuple[str, ...] = HEALTH_BAND_ORDER) -> bool:
    """Churn rate never falls from a healthier band to a riskier one (bands without rows are skipped)."""
    values = [rates[band] for band in order if band in rates]
    return all(a <= b for a, b in itertools.pairwise(values))


# ------------------------------------------------------------------------------- agreement
def _spearman(a: pd.Series, b: pd.Series) -> float:
    """Rank correlation; NaN (not a warning) when either side is constant."""
    if a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(a.corr(b, method="spearman"))


@dataclass(frozen=True)
class Agreement:
    """How the two views agree.

    `cells`: one row per (health_band, risk_band) with rows, churners, churn_rate and share of
    all rows; `spearman`: rank correlation of the rule risk (100 - health score) with the ML
    risk (positive = the two rank accounts alike); `agreeing_share`: rows where the bands
    say the same (green-low, yellow-medium, red-high); `disagreements`: the accounts where the
    views differ most, with both views' category columns side by side.
    """

    cells: pd.DataFrame
    spearman: float
    agreeing_share: float
    disagreements: pd.DataFrame

    def pivot(self, value: str) -> pd.DataFrame:
        """Rule bands as rows, ML bands as columns, `value` (rows, churners, churn_rate, share) in cells."""
        return self.cells.pivot(index=HEALTH_BAND, columns=RISK_BAND, values=value).reindex(
            index=list(HEALTH_BAND_ORDER), columns=list(RISK_BAND_ORDER)
        )


def side_by_side_columns(frame: pd.DataFrame) -> list[str]:
    """health_<c>, ml_<c> pairs for every category either view has, rule categories first."""
    rule_categories = [c.removeprefix(HEALTH_PREFIX) for c in health_columns(frame)]
    ml_categories = [c.removeprefix(ML_PREFIX) for c in ml_columns(frame)]
    columns = []
    for category in dict.fromkeys([*rule_categories, *ml_categories]):
        columns += [c for c in (health_column(category), ml_column(category)) if c in frame.columns]
    return columns


def disagreements(frame: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Accounts whose two views disagree most, at most `n` per kind, one (the most extreme) snapshot each.

    green_but_high_ml_risk: health band green and risk band high, highest ML risk first;
    red_but_low_ml_risk: health band red and risk band low, lowest ML risk first.
    Ties go to the more extreme health score (healthier for green, sicker for red).
    """
    context = [c for c in (ACCOUNT_ID, AS_OF, LABEL, ARR, SEGMENT, HEALTH_SCORECARD) if c in frame.columns]
    scores = [HEALTH_SCORE, HEALTH_BAND, CHURN_PROBABILITY, RISK_BAND]
    columns = [*context, *scores, *side_by_side_columns(frame)]
    ranked = frame.assign(_ml_risk=ml_risk(frame))
    parts = []
    for kind, (health, risk) in DISAGREEMENT_CELLS.items():
        ascending = risk == "low"  # the lowest ML risk first where the model says low
        mask = (frame[HEALTH_BAND] == health) & (frame[RISK_BAND] == risk)
        chosen = ranked.loc[mask].sort_values(
            ["_ml_risk", HEALTH_SCORE, ACCOUNT_ID], ascending=[ascending, ascending, True], kind="stable"
        )
        parts.append(chosen.drop_duplicates(ACCOUNT_ID).head(n)[columns].assign(kind=kind))
    return pd.concat(parts, ignore_index=True)[["kind", *columns]]


def agreement(frame: pd.DataFrame, n: int = 10) -> Agreement:
    """Rule band x ML band matrix with counts and churn rates, rank correlation and top disagreements."""
    rows = labelled_rows(frame)
    grid = pd.MultiIndex.from_product([HEALTH_BAND_ORDER, RISK_BAND_ORDER], names=[HEALTH_BAND, RISK_BAND])
    cells = (
        rows.assign(_label=rows[LABEL].astype(int))
        .groupby([HEALTH_BAND, RISK_BAND])["_label"]
        .agg(rows="size", churners="sum")
        .reindex(grid, fill_value=0)
        .reset_index()
    )
    cells["churn_rate"] = cells["churners"] / cells["rows"].where(cells["rows"] > 0)
    cells["share"] = cells["rows"] / len(rows)
    same = dict(zip(HEALTH_BAND_ORDER, RISK_BAND_ORDER, strict=True))
    agreeing = (rows[HEALTH_BAND].map(same) == rows[RISK_BAND]).mean()
    spearman = _spearman(rule_risk(rows), ml_risk(rows))
    return Agreement(
        cells=cells,
        spearman=float(spearman),
        agreeing_share=float(agreeing),
        disagreements=disagreements(rows, n),
    )


# ---------------------------------------------------------------------- category alignment
def category_weight_shares(scorecard: ScorecardConfig, used: pd.Series | None = None) -> dict[str, float]:
    """Each category's share of the total category weight, averaged over the scorecards rows used.

    `used` holds the scorecard name of each row (health_scorecard); without it the default
    scorecard's shares are returned. A category a scorecard lacks counts as 0 for its rows.
    """
    cards = {name: card for name, card, _ in scorecard.scorecards()}
    frequency = used.value_counts(normalize=True).to_dict() if used is not None and len(used) else {"default": 1.0}
    unknown = sorted(str(name) for name in frequency if str(name) not in cards)
    if unknown:
        raise DataContractError(
            f"category alignment: rows were scored with {named('scorecard', unknown)} that scorecard "
            f"'{scorecard.name}' does not have (it has {', '.join(cards)}); score and compare with the same file."
        )
    shares: dict[str, float] = dict.fromkeys(scorecard.categories(), 0.0)
    for name, freq in frequency.items():
        card = cards[str(name)]
        total = sum(c.weight for c in card.categories.values())
        for category, spec in card.categories.items():
            shares[category] += freq * spec.weight / total
    return shares


def category_alignment(frame: pd.DataFrame, scorecard: ScorecardConfig) -> pd.DataFrame:
    """Per health category: do the rule and the model see the same thing, and weigh it alike?

    Columns: category; `correlation`: Spearman correlation of the rule's category score
    (health_<c>, 0-100, higher = healthier) with the model's contribution (ml_<c>, log-odds,
    higher = riskier) — reported signed, so **negative means aligned** (a healthier rule score
    goes with a lower ML risk) and a value near 0 or positive flags a category the two views read
    differently; `rows` (pairs with both values); `ml_mean_contribution`; `ml_attribution_share`
    (the category's share of mean |contribution| over all ML categories); `scorecard_weight_share`
    (its share of scorecard weight, averaged over the scorecards the rows used);
    `share_gap` = ML share - scorecard share (positive: the model leans on it more than the rule).
    """
    rows = labelled_rows(frame)
    contributions = ml_columns(rows)
    if not contributions:
        raise DataContractError(
            f"category alignment: the backtest frame has no {ML_PREFIX}<category> columns (SHAP by category)."
        )
    mean_abs = rows[contributions].abs().mean()
    attribution = mean_abs / mean_abs.sum() if mean_abs.sum() > 0 else mean_abs * np.nan
    used = rows[HEALTH_SCORECARD] if HEALTH_SCORECARD in rows.columns else None
    weights = category_weight_shares(scorecard, used)
    categories = list(dict.fromkeys([*weights, *(c.removeprefix(ML_PREFIX) for c in contributions)]))
    records = []
    for category in categories:
        rule_col, ml_col = health_column(category), ml_column(category)
        both = rows[[rule_col, ml_col]].dropna() if {rule_col, ml_col} <= set(rows.columns) else pd.DataFrame()
        correlation = _spearman(both[rule_col], both[ml_col]) if len(both) > 2 else np.nan
        records.append(
            {
                "category": category,
                "correlation": float(correlation),
                "rows": len(both),
                "ml_mean_contribution": float(rows[ml_col].mean()) if ml_col in rows.columns else np.nan,
                "ml_attribution_share": float(attribution.get(ml_col, np.nan)),
                "scorecard_weight_share": weights.get(category, np.nan),
            }
        )
    table = pd.DataFrame(records)
    table["share_gap"] = table["ml_attribution_share"] - table["scorecard_weight_share"]
    return table


# ------------------------------------------------------------------------ attribution words
SOURCE_WORDS: dict[str, str] = {
    "usage_events": "usage",
    "logins": "logins",
    "support_tickets": "support",
    "trainings": "training",
    "invoices": "payments",
    "touchpoints": "relationship",
    "surveys": "surveys",
    "override store": "CSM ratings",
}
"""An actionable feature's source table as a CSM names what it can change."""
CONTEXT_WORDS: dict[str, str] = {
    "term_length_days": "term length",
    "tenure_days": "tenure",
    "renewals_count": "renewals so far",
    "is_new_customer": "new customer",
    "seat_change_last_renewal": "seat change at the last renewal",
    "arr": "ARR",
}
"""A context feature in words where its name does not read as one (`days_to_renewal` does)."""


def attribution_words(importance: pd.Series) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(actionable, context): what a model's attribution is made of, in words, most important first.

    Actionable features are named by their source table (a prepared table's columns by their own names),
    context features one by one. Only features the trees split on are named: the others add nothing to
    any account's attribution, and an absent table must not be named as if the model used it.
    """
    actionable: dict[str, None] = {}
    context: dict[str, None] = {}
    for name in importance[importance > 0].sort_values(ascending=False, kind="stable").index:
        found = lookup(str(name))
        if found is None or found.actionable:
            actionable[str(name) if found is None else SOURCE_WORDS.get(found.source, found.source)] = None
        else:
            context[CONTEXT_WORDS.get(found.name, found.name.replace("_", " "))] = None
    return tuple(actionable), tuple(context)


# ------------------------------------------------------------------------------ everything
@dataclass(frozen=True)
class Comparison:
    """All comparison results of one backtest frame."""

    scores: dict[str, Any]
    calibration: pd.DataFrame
    agreement: Agreement
    alignment: pd.DataFrame
    actionable_share: float = float("nan")  # of the model's attribution (models.explain.actionable_share)
    actionable_sources: tuple[str, ...] | None = None  # attribution_words: what the actionable share is made of
    context_features: tuple[str, ...] | None = None  # and the context share (None: the model's importance unknown)

    def attribution_parts(self, most: int = 5) -> tuple[str, str] | None:
        """The actionable sources and the `most` important context features in words (the console and the
        report alike say them; a dozen account columns would bury the sentence); None when not known."""
        if self.actionable_sources is None or self.context_features is None:
            return None
        context = list(self.context_features[:most])
        if len(self.context_features) > most:
            context.append(f"{len(self.context_features) - most} more")
        return ", ".join(self.actionable_sources) or "none", ", ".join(context) or "none"

    @property
    def rule_churn_by_band(self) -> dict[str, float]:
        return churn_rate_by_band(self.calibration, RULE)

    @property
    def ml_churn_by_band(self) -> dict[str, float]:
        return churn_rate_by_band(self.calibration, ML)

    @property
    def few_churners(self) -> str | None:
        """A warning when the backtest holds too few churned snapshots for its AUCs, lifts and intervals to
        mean anything (a small book or a quiet year): the numbers are still shown, so they must be qualified."""
        churners = self.scores["churners"]
        if churners >= MIN_VALID_CLASS_ROWS:
            return None
        return (
            f"the backtest holds {churners} churned snapshot{'' if churners == 1 else 's'} of {self.scores['rows']:,} "
            f"(fewer than {MIN_VALID_CLASS_ROWS}): its ROC AUC, lift and intervals rest on "
            f"{'it' if churners == 1 else 'them'} and are not reliable; use a longer history or a larger "
            "model.validation_share."
        )


def compare(
    frame: pd.DataFrame,
    scorecard: ScorecardConfig,
    n_boot: int = 200,
    seed: int = 0,
    n_disagreements: int = 10,
    importance: pd.Series | None = None,
) -> Comparison:
    """Run every comparison on one backtest frame; `importance` (the model's, per feature) names what its
    attribution is made of."""
    actionable, context = attribution_words(importance) if importance is not None else (None, None)
    return Comparison(
        scores=compare_scores(frame, n_boot=n_boot, seed=seed),
        calibration=band_calibration(frame),
        agreement=agreement(frame, n=n_disagreements),
        alignment=category_alignment(frame, scorecard),
        actionable_share=actionable_share(labelled_rows(frame)) if ACTIONABLE_LOG_ODDS in frame.columns else np.nan,
        actionable_sources=actionable,
        context_features=context,
    )
