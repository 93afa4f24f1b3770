"""The comparison report: one self-contained HTML file an analyst opens from disk or an email.

Styles are inline and plots are PNGs embedded as base64 data URIs; there is no script and no
link to anything outside the file, so it reads the same offline, in a mail client's viewer or in
a locked-down browser. Every number comes from the comparison results passed in; this module
only lays them out (and draws the plots specific to the comparison; ROC, gains and reliability
curves are the evaluation module's).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from features.errors import counted, signed
from features.table import LABEL
from models.comparison import (
    DISAGREEMENT_CELLS,
    DISAGREEMENT_KINDS,
    HEALTH_BAND_ORDER,
    ML,
    RISK_BAND_ORDER,
    RULE,
    Comparison,
    band_rates,
    is_monotone,
    labelled_rows,
    ml_risk,
    rule_risk,
)
from models.evaluation import plot_calibration, plot_gains, plot_roc
from models.healthscore import health_risk, shown_score
from models.scores import CHURN_PROBABILITY, ML_PREFIX
from models.scoring import shown_percent
from models.weights import CATEGORY_TOTAL, SuggestedWeights
from pipeline.io import atomic_path

SECTIONS = {
    "summary": "Summary",
    "ranking": "Ranking: who finds the churners",
    "calibration": "Band calibration",
    "agreement": "Agreement between the two views",
    "alignment": "Category alignment",
    "weights": "Suggested weights",
    "method": "How this was computed",
}
METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "lift_top10": "Lift, riskiest 10%",
    "lift_top20": "Lift, riskiest 20%",
    "capture_top10": "Churners captured, riskiest 10%",
    "capture_top20": "Churners captured, riskiest 20%",
    "arr_capture_top10": "Churned ARR captured, riskiest 10%",
    "arr_capture_top20": "Churned ARR captured, riskiest 20%",
}
BAND_COLOURS = {
    "green": "#2e8b57",
    "yellow": "#e0b000",
    "red": "#c0392b",
    "low": "#2e8b57",
    "medium": "#e0b000",
    "high": "#c0392b",
}
SCORE_LABELS = {RULE: "Rule score", ML: "ML risk", "ml_minus_rule": "ML - rule"}
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2731;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:0 0 12px;border-bottom:2px solid #dde3ea;padding-bottom:6px}
h3{font-size:15px;margin:18px 0 8px}
section{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:18px 22px;margin:18px 0}
.meta{color:#5b6b7b;font-size:13px}nav{font-size:13px;margin:10px 0}nav a{margin-right:14px;color:#2a5db0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:10px 0 14px}
.card{flex:1 1 170px;border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;background:#fbfcfd}
.card .v{font-size:24px;font-weight:600}.card .k{font-size:12px;color:#5b6b7b}.card .ci{font-size:12px;color:#5b6b7b}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #dde3ea;padding:4px 8px;text-align:right}th{background:#eef2f6}
td.l,th.l{text-align:left}
.scroll{overflow-x:auto;max-width:100%}td{white-space:nowrap}
details summary{cursor:pointer;font-weight:600;font-size:14px;margin:14px 0 6px}
.band{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots img{max-width:100%;border:1px solid #eef2f6}
pre.diff{background:#fbfcfd;border:1px solid #dde3ea;padding:10px;font-size:12px;overflow-x:auto}
pre.diff .add{color:#1f7a3d;background:#e8f6ec}pre.diff .del{color:#a12a1f;background:#fbeaea}
ul.findings li{margin:4px 0}.note{color:#5b6b7b;font-size:13px}.warn{color:#a12a1f}
.adapted{background:#fff8e6;border:1px solid #f0d58c;border-radius:8px;padding:10px 16px;margin:12px 0;font-size:13px}
"""


@dataclass(frozen=True)
class ReportContext:
    """Facts about the run shown in the report's header."""

    title: str
    evaluation_start: pd.Timestamp | None = None
    scorecard: str = ""
    model: str = ""
    scorecard_notes: tuple[str, ...] = ()  # how the configured scorecard was adapted to the data
    cadence: str = "monthly"  # of the snapshots (features.cadence)


# ------------------------------------------------------------------------------------ helpers
def _e(value: object) -> str:
    return html.escape(str(value))


def _pct(value: float) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.1%}"


def _num(value: float, digits: int = 3) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def _metric_value(metric: str, value: float) -> str:
    if metric.startswith(("capture", "arr_capture")):
        return _pct(value)
    if metric.startswith("lift"):
        return "–" if pd.isna(value) else f"{value:.2f}×"
    return _num(value)


def _band(name: str) -> str:
    colour = BAND_COLOURS.get(str(name), "#7f8c8d")
    return f'<span class="band" style="background:{colour}">{_e(name)}</span>'


def _table(
    frame: pd.DataFrame, formats: dict[str, Callable[[object], str]] | None = None, left: Iterable[str] = ()
) -> str:
    """An HTML table with escaped cells; `formats` render given columns, `left` aligns text columns."""
    formats = formats or {}
    left = set(left)
    head = "".join(f'<th class="{"l" if c in left else ""}">{_e(c)}</th>' for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            text = formats[column](value) if column in formats else _e("–" if _missing(value) else value)
            cells.append(f'<td class="{"l" if column in left else ""}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _figure(width: float = 6.0, height: float = 4.2, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def png_data_uri(fig: Figure, dpi: int = 90) -> str:
    """The figure as an inline PNG (`data:image/png;base64,...`)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(fig: Figure, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{png_data_uri(fig)}">'


# -------------------------------------------------------------------------------------- plots
def _percent() -> PercentFormatter:
    """Shares as percentages with the decimals their ticks need: a whole-percent format wrote the tick at
    12.5% as "13%" and the one at 2.5% as "2%" on a small book's axis of 2.5-point steps."""
    return PercentFormatter(xmax=1.0)


def plot_churn_by_band(calibration: pd.DataFrame) -> Figure:
    """Observed churn rate per rule band and per ML risk band, healthiest first, with row counts."""
    fig, axes = _figure(ncols=2, width=4.6)
    for ax, score, order, title in (
        (axes[0], RULE, HEALTH_BAND_ORDER, "Rule health band"),
        (axes[1], ML, RISK_BAND_ORDER, "ML risk band"),
    ):
        bands = calibration[(calibration.score == score) & (calibration.grouping == "band")].set_index("group")
        bands = bands.reindex([b for b in order if b in bands.index])
        rates = bands["churn_rate"].fillna(0).to_numpy()
        bars = ax.bar(bands.index, rates, color=[BAND_COLOURS[b] for b in bands.index])
        for bar, rows, rate in zip(bars, bands["rows"], rates, strict=True):
            ax.annotate(  # an empty band has no churn rate: its zero-height bar must not read as 0.0%
                f"{rate:.1%}\n{counted(rows, 'row')}" if rows else "no rows",
                (bar.get_x() + bar.get_width() / 2, rate),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set(title=title, ylabel="Observed churn rate", ylim=(0, max(rates.max() * 1.3, 0.05)))
        ax.yaxis.set_major_formatter(_percent())
    return fig


def plot_deciles(calibration: pd.DataFrame) -> Figure:
    """Churn rate per risk decile of each score: a good score rises steeply from decile 1 to 10."""
    fig, (ax,) = _figure()
    for score, marker in ((RULE, "s"), (ML, "o")):
        deciles = calibration[(calibration.score == score) & (calibration.grouping == "decile")]
        ax.plot(deciles["group"].astype(int), deciles["churn_rate"], marker=marker, label=SCORE_LABELS[score])
    overall = calibration[(calibration.score == RULE) & (calibration.grouping == "band")]
    ax.axhline(overall["churners"].sum() / overall["rows"].sum(), color="grey", linestyle=":", label="overall")
    ax.set(
        xlabel="Risk decile (1 = least risky 10% of rows)", ylabel="Observed churn rate", title="Churn rate by decile"
    )
    ax.set_xticks(range(1, 11))
    ax.set_ylim(bottom=0)  # a rate is never negative: an autoscaled axis under deciles of 0% showed "-2.5%"
    ax.yaxis.set_major_formatter(_percent())
    ax.legend()
    return fig


def plot_agreement(cells: pd.DataFrame) -> Figure:
    """Rule band x ML band heatmap: share of rows in colour, count and churn rate written in each cell."""
    counts = cells.pivot(index="health_band", columns="risk_band", values="rows").reindex(
        index=list(HEALTH_BAND_ORDER), columns=list(RISK_BAND_ORDER)
    )
    rates = cells.pivot(index="health_band", columns="risk_band", values="churn_rate").reindex_like(counts)
    fig, (ax,) = _figure(width=5.6, height=4.4)
    # aspect "auto": a square-celled image is centred at a fixed size, and its band labels fell off the figure
    image = ax.imshow(counts.to_numpy(dtype=float), cmap="Blues", aspect="auto")
    top = counts.to_numpy().max() or 1
    for i, band in enumerate(counts.index):
        for j, level in enumerate(counts.columns):
            n, rate = counts.loc[band, level], rates.loc[band, level]
            text = f"{counted(n, 'row')}\n" + ("–" if pd.isna(rate) else f"{rate:.0%} churn")
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if n > 0.6 * top else "black")
    ax.set_xticks(range(len(counts.columns)), [f"ML {c}" for c in counts.columns])
    ax.set_yticks(range(len(counts.index)), [f"rule {b}" for b in counts.index])
    ax.set_title("Rule band × ML risk band")
    fig.colorbar(image, ax=ax, label="rows")
    return fig


def plot_alignment(alignment: pd.DataFrame) -> Figure:
    """Per category: ML attribution share next to scorecard weight share, with the signed correlation.

    The figure widens with the categories so that eight names (LAER and the optional sources) stay apart."""
    fig, (ax,) = _figure(width=max(7.0, 1.1 * len(alignment)))
    x = np.arange(len(alignment))
    ax.bar(x - 0.2, alignment["ml_attribution_share"].fillna(0), width=0.4, label="share of ML attribution")
    ax.bar(x + 0.2, alignment["scorecard_weight_share"].fillna(0), width=0.4, label="share of scorecard weight")
    ticks = [
        f"{category}\nr = {'–' if pd.isna(corr) else signed(corr, '.2f')}"
        for category, corr in zip(alignment["category"], alignment["correlation"], strict=True)
    ]
    ax.set_xticks(x, ticks, fontsize=9)
    ax.yaxis.set_major_formatter(_percent())
    ax.set(ylabel="Share", title="What each view weighs")
    ax.set_xlabel("r: rule category score vs ML contribution (negative = the views agree)", fontsize=9)
    ax.legend()
    return fig


# ------------------------------------------------------------------------------------ sections
def _interval(metric: dict[str, float], name: str) -> str:
    return f"{_metric_value(name, metric['low'])} – {_metric_value(name, metric['high'])}"


def _card(key: str, value: str, detail: str = "") -> str:
    return (
        f'<div class="card"><div class="k">{_e(key)}</div><div class="v">{value}</div>'
        f'<div class="ci">{detail}</div></div>'
    )


def _band_cards(calibration: pd.DataFrame, score: str, view: str) -> str:
    """One card per band with its churners and rows: "60%" of 5 accounts and of 500 must not read the same."""
    bands = calibration[(calibration.score == score) & (calibration.grouping == "band")]
    return "".join(
        _card(
            f"Churn rate, {view} {band.group}",
            _pct(band.churn_rate) if band.rows else "no rows",
            f"{_band(band.group)} {band.churners:,} churned of {counted(band.rows, 'row')}"
            if band.rows
            else _band(band.group),
        )
        for band in bands.itertuples()
    )


ALIKE_SHARE = 0.05
"""A category's share of the ML attribution and of the scorecard weight this close (5 points) read as alike."""


def _alignment_findings(alignment: pd.DataFrame) -> list[str]:
    """Where the model leans more, and less, than the scorecard -- only where the shares really differ, so
    one category is never both, and 74% vs 75% is not "leans most" -- and the attribution no category holds."""
    gaps = alignment.dropna(subset=["share_gap"]).sort_values("share_gap")
    lines = []
    if len(gaps):
        under, over = gaps.iloc[0], gaps.iloc[-1]
        sides = (("more", over, over.share_gap), ("less", under, -under.share_gap))
        differing = [(side, row) for side, row, gap in sides if gap >= ALIKE_SHARE]
        leans = [
            f"{side}{'' if i else ' than the scorecard'} on {row.category} ({_pct(row.ml_attribution_share)} of its "
            f"attribution vs {_pct(row.scorecard_weight_share)} of scorecard weight)"
            for i, (side, row) in enumerate(differing)
        ]
        lines.append(
            f"The model leans {' and '.join(leans)}."
            if leans
            else f"The model's attribution and the scorecard's weights agree on every category (within "
            f"{ALIKE_SHARE * 100:.0f} points)."
        )
    unplaced = alignment[alignment["scorecard_weight_share"].isna() & (alignment["ml_attribution_share"] > 0)]
    lines += [
        f"{_pct(row.ml_attribution_share)} of the model's attribution is in '{row.category}': features no "
        "category of the scorecard scores."
        for row in unplaced.itertuples()
    ]
    return lines


def _findings(comparison: Comparison, suggested: SuggestedWeights | None) -> list[str]:
    """The few sentences an analyst needs, worded from the numbers (and their intervals)."""
    scores = comparison.scores["scores"]
    ml, rule, diff = scores[ML]["roc_auc"], scores[RULE]["roc_auc"], scores["ml_minus_rule"]["roc_auc"]
    level = f"{comparison.scores['level']:.0%}"
    if diff["low"] > 0:
        verdict = "The ML risk ranks churners better than the rule score"
    elif diff["high"] < 0:
        verdict = "The rule score ranks churners better than the ML risk"
    else:
        verdict = "The two scores rank churners about equally well (the difference is within the interval)"
    if comparison.few_churners:  # an interval resampled from 3 churners excludes 0 as readily as it includes it
        churners = comparison.scores["churners"]
        few = f"On {churners} churned snapshot{'' if churners == 1 else 's'} only (too few to tell)"
        verdict = f"{few}: {verdict[0].lower()}{verdict[1:]}"
    lines = [
        f"{verdict}: ROC AUC {_num(ml['value'])} vs {_num(rule['value'])}, difference {_num(diff['value'])} "
        f"({level} interval {_num(diff['low'])} to {_num(diff['high'])})."
    ]
    lift_ml, lift_rule = scores[ML]["lift_top10"]["value"], scores[RULE]["lift_top10"]["value"]
    lines.append(
        f"Calling the riskiest 10% of accounts finds {lift_ml:.1f}× the base churn rate with the ML risk "
        f"and {lift_rule:.1f}× with the rule score."
    )
    rates = comparison.rule_churn_by_band
    band_text = band_rates(comparison.calibration, RULE)
    if is_monotone(rates):
        lines.append(f"Rule bands are ordered as they should be: churn rate {band_text}.")
    else:
        lines.append(f"Rule bands are NOT ordered: churn rate {band_text}; the thresholds need review.")
    counts = comparison.agreement.pivot("rows")
    lines.append(
        f"Rank correlation of the two views: {_num(comparison.agreement.spearman, 2)}; "
        f"{_pct(comparison.agreement.agreeing_share)} of snapshots fall in matching bands; "
        f"{counted(counts.loc['green', 'high'], 'is', 'are')} green for the rule but high risk for the model, "
        f"{counts.loc['red', 'low']:,} red for the rule but low risk for the model."
    )
    lines += _alignment_findings(comparison.alignment)
    if not np.isnan(comparison.actionable_share):
        parts = comparison.attribution_parts()
        actionable, context = (f"{parts[0]}: ", f" ({parts[1]})") if parts else ("", "")
        lines.append(
            f"{_pct(comparison.actionable_share)} of the model's attribution is actionable ({actionable}what a CSM "
            f"can change); {_pct(1 - comparison.actionable_share)} is context{context}, stated beside the drivers."
        )
    if suggested is not None and suggested.current_auc is not None and suggested.suggested_auc is not None:
        change = suggested.suggested_auc - suggested.current_auc
        lines.append(
            f"Weights fitted on earlier history move the rule score's ROC AUC on these rows from "
            f"{_num(suggested.current_auc)} to {_num(suggested.suggested_auc)} ({signed(change, '.3f')})."
        )
    return lines


def _summary(frame: pd.DataFrame, comparison: Comparison, suggested: SuggestedWeights | None) -> str:
    scores = comparison.scores
    ml, rule = scores["scores"][ML], scores["scores"][RULE]
    level = f"{scores['level']:.0%} CI"
    cards = [
        _card("ML risk ROC AUC", _num(ml["roc_auc"]["value"]), f"{level} {_interval(ml['roc_auc'], 'roc_auc')}"),
        _card("Rule score ROC AUC", _num(rule["roc_auc"]["value"]), f"{level} {_interval(rule['roc_auc'], 'roc_auc')}"),
    ]
    if suggested is not None:
        cards.append(
            _card(
                "Rule AUC, suggested weights", _num(suggested.suggested_auc), f"current {_num(suggested.current_auc)}"
            )
        )
    cards += [
        _card(
            "Lift, riskiest 10%", f"{ml['lift_top10']['value']:.2f}× / {rule['lift_top10']['value']:.2f}×", "ML / rule"
        ),
        _card(
            "Rows / accounts / churn rate",
            f"{scores['rows']:,}",
            f"{counted(scores['accounts'], 'account')}, {_pct(scores['churn_rate'])} churned",
        ),
    ]
    band_cards = _band_cards(comparison.calibration, RULE, "rule") + _band_cards(comparison.calibration, ML, "ML")
    findings = "".join(f"<li>{_e(line)}</li>" for line in _findings(comparison, suggested))
    few = comparison.few_churners
    return (
        (f"<div class='adapted'><strong>Warning:</strong> {_e(few)}</div>" if few else "")
        + f'<div class="cards">{"".join(cards)}</div><div class="cards">{band_cards}</div>'
        f'<ul class="findings">{findings}</ul>'
    )


def _ranking(frame: pd.DataFrame, comparison: Comparison, suggested: SuggestedWeights | None) -> str:
    scores = comparison.scores["scores"]
    rows = []
    for metric, label in METRIC_LABELS.items():
        row = {"metric": label}
        for name in (RULE, ML, "ml_minus_rule"):
            value = scores[name][metric]
            row[SCORE_LABELS[name]] = (
                f"{_metric_value(metric, value['value'])} <span class='note'>[{_interval(value, metric)}]</span>"
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    html_table = _table(table, {c: str for c in table.columns if c != "metric"}, left=["metric"])
    labelled = labelled_rows(frame)
    labels = labelled[LABEL].astype(int).to_numpy()
    curves = {"ML risk": ml_risk(labelled).to_numpy(), "rule (current weights)": rule_risk(labelled).to_numpy()}
    if suggested is not None:
        aligned = suggested.evaluation_scores["suggested"].reindex(labelled.index)
        if aligned.notna().all():
            curves["rule (suggested weights)"] = health_risk(aligned.to_numpy())
    level = f"{comparison.scores['level']:.0%}"
    return (
        f"<p class='note'>Point estimate and {level} bootstrap interval (accounts resampled with all their "
        f"snapshots, {counted(comparison.scores['n_boot'], 'resample')}). The rule score ranks by 100 − health "
        "score.</p>"
        + html_table
        + f'<div class="plots">{_img(plot_roc(labels, curves), "ROC curves, rule vs ML")}'
        + f"{_img(plot_gains(labels, curves), 'Cumulative gains and lift, rule vs ML')}</div>"
    )


CHURNED_ROWS = "churned rows"
NOISE_COLUMN = "observed by noise alone (95%)"
"""Where an ML band's observed rate falls 95 % of the time if its probabilities are right (`outcome_noise`)."""


def _calibration(frame: pd.DataFrame, comparison: Comparison) -> str:
    calibration = comparison.calibration
    fmt = {"churn_rate": _pct, "group": _band}
    parts = []
    for score, title, risk in (
        (RULE, "Rule health bands", "mean rule risk"),
        (ML, "ML risk bands", "mean probability"),
    ):
        bands = calibration[(calibration.score == score) & (calibration.grouping == "band")]
        # churned snapshot rows, beside the band's accounts: not 'churners' (503 of 198 accounts)
        table = bands[["group", "rows", "churners", "churn_rate", "mean_risk"]].rename(
            columns={"mean_risk": risk, "churners": CHURNED_ROWS}
        )
        if score == ML:  # a probability: the accounts behind each rate, and what outcome noise alone makes of it
            noise = [
                "-" if pd.isna(low) else f"{_pct(low)}-{_pct(high)}"
                for low, high in zip(bands["noise_low"], bands["noise_high"], strict=True)
            ]
            table = table.assign(accounts=bands["accounts"].fillna(0).astype(int).to_numpy(), **{NOISE_COLUMN: noise})
            table = table[["group", "rows", "accounts", CHURNED_ROWS, "churn_rate", risk, NOISE_COLUMN]]
        digits = 1 if score == RULE else 3
        parts.append(
            f"<div><h3>{_e(title)}</h3>"
            + _table(table, {**fmt, risk: lambda v, d=digits: _num(v, d)}, left=["group"])
            + "</div>"
        )
    deciles = calibration[calibration.grouping == "decile"].pivot(index="group", columns="score", values="churn_rate")
    deciles = deciles.reindex([str(d) for d in range(1, 11)]).dropna(how="all").reset_index()
    deciles.columns = ["decile", *[SCORE_LABELS[c] for c in deciles.columns[1:]]]
    parts.append(
        "<div><h3>Churn rate by risk decile</h3>"
        + _table(deciles, {c: _pct for c in deciles.columns[1:]}, left=["decile"])
        + "</div>"
    )
    labelled = labelled_rows(frame)
    plots = [
        _img(plot_churn_by_band(calibration), "Churn rate by band"),
        _img(plot_deciles(calibration), "Churn rate by decile"),
        _img(
            plot_calibration(
                labelled[LABEL].astype(int).to_numpy(), {"ML risk": labelled[CHURN_PROBABILITY].to_numpy()}
            ),
            "Calibration of the ML probability",
        ),
    ]
    return (
        "<p class='note'>Observed churn per band: a trustworthy band scheme has churn rising from green to red "
        "(and low to high). For the ML probability the mean predicted value should match the observed rate.</p>"
        f'<div class="plots">{"".join(parts)}</div><div class="plots">{"".join(plots)}</div>'
    )


def _agreement(comparison: Comparison) -> str:
    agreement = comparison.agreement
    counts = agreement.pivot("rows")
    rates = agreement.pivot("churn_rate")
    matrix = pd.DataFrame(
        {
            "rule band": [_band(b) for b in counts.index],
            **{
                f"ML {level}": [
                    f"{counts.loc[b, level]:,} <span class='note'>({_pct(rates.loc[b, level])} churn)</span>"
                    for b in counts.index
                ]
                for level in counts.columns
            },
        }
    )
    body = (
        f"<p>Spearman rank correlation between rule risk and ML risk: <b>{_num(agreement.spearman, 3)}</b>; "
        f"rows in matching bands (green–low, yellow–medium, red–high): <b>{_pct(agreement.agreeing_share)}</b>.</p>"
        + _table(matrix, {c: str for c in matrix.columns}, left=["rule band"])
        + f'<div class="plots">{_img(plot_agreement(agreement.cells), "Agreement heatmap")}</div>'
    )
    found = agreement.disagreements
    for kind, text in DISAGREEMENT_KINDS.items():
        rows = found[found["kind"] == kind].drop(columns="kind")
        snapshots = counts.loc[DISAGREEMENT_CELLS[kind]]  # the matrix's count: more than the accounts listed
        shown = f", {counted(len(rows), 'account')} shown" if len(rows) else ""
        body += f"<h3>Top disagreements: {_e(text)} ({counted(snapshots, 'snapshot')}{shown})</h3>"
        if rows.empty:
            body += "<p class='note'>None in the evaluation period.</p>"
            continue
        body += _table(rows, _disagreement_formats(rows), left=["account_id", "segment", "health_scorecard"])
    body += (
        "<p class='note'>health_&lt;category&gt;: the rule's category score (0–100, higher = healthier); "
        "ml_&lt;category&gt;: the model's SHAP contribution of that category (log-odds; positive raises risk). "
        "One row per account: its most extreme snapshot.</p>"
    )
    return body


def _disagreement_formats(rows: pd.DataFrame) -> dict[str, Callable[[object], str]]:
    formats: dict[str, Callable[[object], str]] = {
        "as_of": lambda v: _e(pd.Timestamp(v).date()),
        "health_band": _band,
        "risk_band": _band,
        # cut, not rounded, to the precision shown: "50.0%" or "60.0" beside the band below it would contradict it
        "churn_probability": lambda v: "–" if _missing(v) else shown_percent(v, 1),
        "health_score": lambda v: "–" if _missing(v) else f"{shown_score(v, 1):.1f}",
        "label": lambda v: "churned" if v == 1 else "renewed",
        "arr": lambda v: "–" if _missing(v) else f"{v:,.0f}",
    }
    for column in rows.columns:
        if column.startswith("health_") and column not in formats and column != "health_scorecard":
            formats[column] = lambda v: _num(v, 0)
        elif column.startswith(ML_PREFIX):
            formats[column] = lambda v: "–" if _missing(v) else signed(v, ".2f")
    return formats


def _alignment(comparison: Comparison) -> str:
    table = comparison.alignment.rename(
        columns={
            "correlation": "correlation (rule score vs ML contribution)",
            "ml_mean_contribution": "mean ML contribution",
            "ml_attribution_share": "share of ML attribution",
            "scorecard_weight_share": "share of scorecard weight",
            "share_gap": "ML share − scorecard share",
        }
    )
    formats = {
        "correlation (rule score vs ML contribution)": lambda v: _num(v, 2),
        "mean ML contribution": lambda v: "–" if _missing(v) else signed(v, ".3f"),
        "share of ML attribution": _pct,
        "share of scorecard weight": _pct,
        "ML share − scorecard share": lambda v: "–" if _missing(v) else signed(v, ".1%"),
    }
    return (
        "<p class='note'>The correlation is signed: the rule's category score rises with health while the ML "
        "contribution rises with risk, so <b>negative means the two views agree</b> on that category; near 0 or "
        "positive means they read it differently. Attribution share = the category's share of the mean absolute "
        "SHAP contribution; weight share = its share of scorecard weight, averaged over the scorecards "
        "(default and segments) the rows used.</p>"
        + _table(table, formats, left=["category"])
        + f'<div class="plots">{_img(plot_alignment(comparison.alignment), "Category alignment")}</div>'
    )


def _changes(suggested: SuggestedWeights) -> str:
    """Each change alone with its backtest gain, and the suggested bands with churn per band before/after."""
    gains = suggested.changes.drop(columns=["auc"], errors="ignore")
    limits = suggested.limits
    html_parts = [
        "<h3>Each change alone</h3>",
        f"<p class='note'>Category weights, as points of {CATEGORY_TOTAL} (a scorecard's weights are read as shares "
        f"of their total), move at most {limits.max_change:g} points (before rounding) and keep at least "
        f"{limits.category_floor:g}; metrics keep at least {limits.metric_floor:.0%} of their weight. A category's "
        "weight tried alone is its share of 100, the other categories sharing the rest as they do now. ROC AUC gain "
        "over the current scorecard on the later snapshots; the reviewed diff is suggested_healthscore.diff.</p>",
        _table(gains, {"auc_gain": lambda v: "–" if pd.isna(v) else signed(v, ".4f")}, left=["scorecard", "change"])
        if len(gains)
        else "<p>No change.</p>",
    ]
    if len(suggested.bands):
        share = {c: _pct for c in suggested.bands.columns if c.endswith(("_share", "_churn_rate"))}
        start = {c: (lambda v: f"{v:g}") for c in ("current_from", "suggested_from")}
        html_parts += [
            f"<h3>Band thresholds for {limits.red_share:.0%} of the fit snapshots in red</h3>",
            "<p class='note'>Shares and churn rates below are those of the later snapshots the thresholds were not "
            "fitted on, so red may hold more or fewer of them.</p>",
            _table(suggested.bands, {**share, **start}, left=["band"]),
        ]
    return "".join(html_parts)


CURRENT_OF_100 = "current, of 100"


def _category_changes(weights: pd.DataFrame) -> pd.DataFrame:
    """The category weight table with each fitted scorecard's current weights also as points of 100, the scale
    the fit moves them on (`suggestions.max_change`) and the suggestion is written in: the change is measured
    there, so a weight of 30 of 130 suggested as 13 reads as the 10-point move it is, not as -17."""
    of_100 = weights["current"] * CATEGORY_TOTAL / weights.groupby("scorecard")["current"].transform("sum")
    fitted = weights["fitted"].astype(bool)
    table = weights.assign(change=weights["suggested"] - of_100.where(fitted, weights["current"]))
    table.insert(table.columns.get_loc("current") + 1, CURRENT_OF_100, of_100.where(fitted))
    return table


def _weights(suggested: SuggestedWeights | None) -> str:
    if suggested is None:
        return "<p class='note'>No weights were fitted.</p>"
    categories = _category_changes(suggested.category_weights)
    metrics = suggested.metric_weights[suggested.metric_weights["suggested"] != suggested.metric_weights["current"]]
    number = {
        "current": lambda v: f"{v:g}",
        CURRENT_OF_100: lambda v: "–" if _missing(v) else f"{v:.1f}",
        "suggested": lambda v: f"{v:g}",
        "change": lambda v: signed(v, ".1f"),
    }
    fitted = {"fitted": lambda v: "yes" if v else "kept"}
    notes = "".join(f"<li>{_e(n)}</li>" for n in suggested.notes)
    diff_lines = []
    for line in suggested.yaml_diff().splitlines():
        css = "add" if line.startswith("+") and not line.startswith("+++") else ""
        css = "del" if line.startswith("-") and not line.startswith("---") else css
        diff_lines.append(f'<span class="{css}">{_e(line)}</span>' if css else _e(line))
    diff = "\n".join(diff_lines) or "(no change)"
    return (
        f"<p>Fitted on {counted(suggested.fit_rows, 'labelled snapshot')} from {suggested.fit_period[0].date()} to "
        f"{suggested.fit_period[1].date()} (a constrained logistic regression: more health never adds risk); "
        f"backtested on {counted(suggested.evaluation_rows, 'later snapshot')} "
        f"({suggested.evaluation_period[0].date()} to "
        f"{suggested.evaluation_period[1].date()}): ROC AUC <b>{_num(suggested.current_auc)}</b> with the current "
        f"weights, <b>{_num(suggested.suggested_auc)}</b> with the suggested ones.</p>"
        + (f"<ul class='note'>{notes}</ul>" if notes else "")
        + _changes(suggested)
        + "<h3>Category weights</h3>"
        + _table(categories, {**number, **fitted}, left=["scorecard", "category"])
        + f"<details><summary>Metric weights that change ({len(metrics)})</summary>"
        + _table(metrics, {**number, **fitted}, left=["scorecard", "category", "metric"])
        + "</details><details open><summary>YAML diff (current → suggested_healthscore.yaml)</summary>"
        + f'<pre class="diff">{diff}</pre></details>'
    )


def _method(comparison: Comparison, context: ReportContext) -> str:
    items = [
        f"Snapshots are {context.cadence} (account, as-of date) rows; each uses only data before its date, and its "
        "label says whether the term active then was renewed.",
        "Out of time: the model, its calibration and the suggested weights learn only from snapshots before the "
        "evaluation start whose outcome was known before it; every number here is measured on later snapshots.",
        "Confidence intervals: percentile bootstrap over accounts "
        f"({counted(comparison.scores['n_boot'], 'resample')}); differences are paired (both scores on the same "
        "resample).",
        "ML ranking uses the model's log-odds (calibration is monotone); bands use the calibrated probability.",
        "Category contributions are exact TreeSHAP values summed per health category (log-odds of churn).",
    ]
    if context.model:
        items.append(f"Model: {context.model}.")
    if context.scorecard:
        items.append(f"Scorecard: {context.scorecard}.")
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _adaptations(context: ReportContext) -> str:
    """The scorecard's adaptations to the data, above everything: every health number depends on them."""
    if not context.scorecard_notes:
        return ""
    items = "".join(f"<li>{_e(note)}</li>" for note in context.scorecard_notes)
    return (
        "<div class='adapted'><strong>The scorecard was adapted to this data</strong> (its sources or columns are "
        f"absent), so health scores use fewer metrics than configured:<ul>{items}</ul></div>"
    )


# --------------------------------------------------------------------------------------- page
def render_report(
    frame: pd.DataFrame, comparison: Comparison, suggested: SuggestedWeights | None, context: ReportContext
) -> str:
    """The whole report as one HTML string."""
    bodies = {
        "summary": _summary(frame, comparison, suggested),
        "ranking": _ranking(frame, comparison, suggested),
        "calibration": _calibration(frame, comparison),
        "agreement": _agreement(comparison),
        "alignment": _alignment(comparison),
        "weights": _weights(suggested),
        "method": _method(comparison, context),
    }
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in SECTIONS.items())
    sections = "".join(
        f'<section id="{key}"><h2>{_e(SECTIONS[key])}</h2>{body}</section>' for key, body in bodies.items()
    )
    start = f"evaluation from {context.evaluation_start.date()}, " if context.evaluation_start is not None else ""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = (
        f"{start}{counted(comparison.scores['rows'], 'labelled snapshot')} of "
        f"{counted(comparison.scores['accounts'], 'account')}; "
        f"generated {generated}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(context.title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{_e(context.title)}</h1><div class='meta'>{_e(meta)}</div>{_adaptations(context)}<nav>{nav}</nav>"
        f"{sections}"
        "</main></body></html>"
    )


def write_report(
    path: str | Path,
    frame: pd.DataFrame,
    comparison: Comparison,
    suggested: SuggestedWeights | None,
    context: ReportContext,
) -> Path:
    """Render and write the report atomically; returns its path."""
    path = Path(path)
    text = render_report(frame, comparison, suggested, context)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
