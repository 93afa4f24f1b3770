"""The HTML comparison report: every section, embedded PNG plots, nothing external, text escaped."""

from __future__ import annotations

import base64
import html
import itertools
import re
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from models.comparison import band_rates, compare
from models.health_backtest import backtest_health
from models.healthscore import score_health
from models.scorecard import parse_scorecard
from models.scoring import risk_band
from models.weights import suggest_weights
from pipeline.report import (
    SECTIONS,
    ReportContext,
    plot_agreement,
    plot_alignment,
    plot_churn_by_band,
    plot_deciles,
    render_report,
    write_report,
)

SCORECARD = parse_scorecard(
    {
        "name": "toy",
        "default": {
            "categories": {
                "adoption": {
                    "weight": 50,
                    "metrics": {
                        "workflow_rate": {"scheme": "linear", "bad": 0.0, "good": 1.0, "weight": 2},
                        "breadth": {"scheme": "thresholds", "cuts": [2, 4], "points": [0, 50, 100]},
                    },
                },
                "support": {"weight": 50, "metrics": {"csat": {"scheme": "linear", "bad": 1, "good": 5}}},
            }
        },
    }
)
ODD_ID = "<script>alert('x')</script>&co"


def _history(n_accounts: int = 300, months: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    frames = []
    for month in range(months):
        as_of = pd.Timestamp("2024-01-01") + pd.DateOffset(months=month)
        workflow = rng.uniform(0, 1, n_accounts)
        csat = rng.uniform(1, 5, n_accounts)
        logit = -1.5 - 3.0 * (workflow - 0.5) - 0.3 * (csat - 3)
        frames.append(
            pd.DataFrame(
                {
                    "account_id": [f"A{i:03d}" for i in range(n_accounts)],
                    "as_of": as_of,
                    "label": (rng.uniform(size=n_accounts) < 1 / (1 + np.exp(-logit))).astype(int),
                    "term_end": as_of + pd.Timedelta(days=10),
                    "arr": rng.uniform(1_000, 50_000, n_accounts).round(),
                    "segment": rng.choice(["smb", "mid"], n_accounts),
                    "workflow_rate": workflow,
                    "breadth": rng.integers(0, 6, n_accounts).astype(float),
                    "csat": csat,
                    "_logit": logit,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def inputs():
    history = _history()
    early, late = history[history["as_of"] < "2024-08-01"], history[history["as_of"] >= "2024-08-01"]
    suggested = suggest_weights(early, SCORECARD, evaluation_frame=late, min_rows=100)
    rng = np.random.default_rng(9)
    log_odds = late["_logit"] + rng.normal(0, 0.5, len(late))
    probability = pd.Series(1 / (1 + np.exp(-log_odds)), index=late.index)
    context = late[["account_id", "as_of", "label", "arr", "segment"]]
    frame = pd.concat([context, score_health(late, SCORECARD).frame], axis=1)
    frame["churn_probability"] = probability
    frame["churn_log_odds"] = log_odds
    frame["risk_band"] = risk_band(probability, high=0.5, medium=0.2)
    frame["ml_adoption"] = -0.03 * (frame["health_adoption"] - 50) + rng.normal(0, 0.1, len(frame))
    frame["ml_support"] = -0.01 * (frame["health_support"] - 50)
    frame["ml_account"] = rng.normal(0, 0.05, len(frame))
    odd = frame.index[0]
    overrides = {"account_id": ODD_ID, "health_score": 95.0, "health_band": "green"}
    overrides |= {"churn_probability": 0.99, "churn_log_odds": 5.0, "risk_band": "high"}
    for column, value in overrides.items():
        frame.loc[odd, column] = value
    comparison = compare(frame, SCORECARD, n_boot=40, seed=1)
    return frame, comparison, suggested


@pytest.fixture(scope="module")
def html_text(inputs, tmp_path_factory) -> str:
    frame, comparison, suggested = inputs
    out = tmp_path_factory.mktemp("report")
    path = write_report(
        out / "report.html",
        frame,
        comparison,
        suggested,
        ReportContext("Rule score vs ML risk", pd.Timestamp("2024-08-01"), "toy", "test model"),
    )
    assert [p.name for p in out.iterdir()] == ["report.html"], "written atomically, no leftovers"
    return path.read_text(encoding="utf-8")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.headings: list[str] = []
        self.sources: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(attrs.get("id", ""))
        if tag == "h2":
            self._in_h2 = True
        if "src" in attrs:
            self.sources.append(attrs["src"])
        if "href" in attrs:
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)


@pytest.fixture(scope="module")
def parsed(html_text) -> _Collector:
    collector = _Collector()
    collector.feed(html_text)
    return collector


def test_every_section_is_there_in_order(parsed):
    assert parsed.sections == list(SECTIONS)
    assert parsed.headings == list(SECTIONS.values())


def test_plots_are_embedded_pngs(parsed):
    assert len(parsed.sources) >= 7  # ROC, gains, band bars, deciles, calibration, heatmap, alignment
    for source in parsed.sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_external_and_no_script(html_text, parsed):
    assert all(link.startswith("#") for link in parsed.links), parsed.links
    assert not re.search(r"https?://|//cdn|@import|url\(", html_text)
    assert not ({"script", "link", "iframe", "object"} & parsed.tags)


def test_user_text_is_escaped(html_text):
    assert ODD_ID not in html_text and "<script>" not in html_text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;co" in html_text


def test_numbers_come_from_the_comparison(inputs, html_text):
    _, comparison, suggested = inputs
    scores = comparison.scores["scores"]
    for name in ("ml", "rule"):
        assert f"{scores[name]['roc_auc']['value']:.3f}" in html_text
        low, high = scores[name]["roc_auc"]["low"], scores[name]["roc_auc"]["high"]
        assert f"{low:.3f} – {high:.3f}" in html_text
    assert f"{suggested.suggested_auc:.3f}" in html_text
    for band, rate in comparison.rule_churn_by_band.items():
        assert f"{rate:.1%}" in html_text, band


def test_weights_section_shows_the_yaml_diff(inputs, html_text):
    _, _, suggested = inputs
    weights = html_text[html_text.index('<section id="weights">') : html_text.index('<section id="method">')]
    assert "+++ suggested" in weights and "--- current" in weights
    assert 'class="add"' in weights and 'class="del"' in weights, "the fit moved some weight"
    assert f"{suggested.fit_rows:,} labelled snapshots" in weights


def test_report_without_suggested_weights(inputs):
    frame, comparison, _ = inputs
    text = render_report(frame, comparison, None, ReportContext("t"))
    assert "No weights were fitted." in text and text.count("<section") == len(SECTIONS)


def test_an_empty_band_is_plotted_as_no_rows_not_as_a_zero_churn_rate(inputs):
    """A small book often has no ML "medium" or "high" row; its bar used to be labelled "0.0%" as if nobody
    churned."""
    frame, _, _ = inputs
    calm = frame.assign(churn_probability=0.1, risk_band="low")
    calm.loc[calm.index[0], "risk_band"] = "high"
    figure = plot_churn_by_band(compare(calm, SCORECARD, n_boot=10, seed=1).calibration)
    ml_labels = [text.get_text() for text in figure.axes[1].texts]
    assert ml_labels[0].endswith(f"\n{len(calm) - 1:,} rows") and ml_labels[1] == "no rows"
    assert ml_labels[2].endswith("\n1 row"), "one row is not 'rows'"


def test_a_backtest_with_too_few_churners_is_flagged_above_its_numbers(inputs, html_text):
    """Two churned snapshots gave an AUC and a tight-looking interval with no word that they mean nothing."""
    frame, comparison, _ = inputs
    assert comparison.few_churners is None and "not reliable" not in html_text
    quiet = frame.assign(label=0)
    quiet.loc[quiet.index[:2], "label"] = 1
    few = compare(quiet, SCORECARD, n_boot=10, seed=1)
    assert few.few_churners.startswith(f"the backtest holds 2 churned snapshots of {len(quiet):,} (fewer than 5)")
    text = render_report(quiet, few, None, ReportContext("t"))
    summary = text[text.index('id="summary"') :]
    assert summary.index("are not reliable") < summary.index("ML risk ROC AUC")
    # and the verdict does not read as settled: a bootstrap over 2 churners "excludes 0" as readily as not
    assert "<li>On 2 churned snapshots only (too few to tell): the " in summary


def _summary(text: str) -> str:
    return html.unescape(text[text.index('id="summary"') : text.index('id="ranking"')])


def test_the_summary_cards_give_each_bands_churners_and_rows(inputs):
    """The cards read "Churn rate, rule red 60.0%" whether the band held 5 rows or 500 (the band chart and
    the console gave the counts), and showed no ML band at all though the console prints them."""
    frame, _, _ = inputs
    small = frame.head(40).assign(risk_band="low")  # a small book: every band under 30 rows, ML medium and high empty
    small.loc[small.index[0], "risk_band"] = "high"
    comparison = compare(small, SCORECARD, n_boot=10, seed=1)
    summary = _summary(render_report(small, comparison, None, ReportContext("t")))
    bands = comparison.calibration[comparison.calibration["grouping"] == "band"]
    for band in bands.itertuples():
        view = "rule" if band.score == "rule" else "ML"
        card = summary[summary.index(f"Churn rate, {view} {band.group}<") :][:400]
        if band.rows:
            assert f"{band.churn_rate:.1%}" in card and f"{band.churners:,} churned of {band.rows:,} row" in card
        else:
            assert ">no rows<" in card, band
    assert "1 churned of 1 row<" in summary or "0 churned of 1 row<" in summary, "one row is not 'rows'"
    # the finding on the rule bands' order carries the counts too: 0.0% of 4 rows is no evidence of disorder
    assert f"churn rate {band_rates(comparison.calibration, 'rule')}" in summary


def test_the_actionable_share_names_what_this_model_attributes_to(inputs):
    """The sentence listed "usage, logins, support, training, relationship, payments" on data without most of
    those tables: it names the sources and context the model's trees use, most important first."""
    frame, _, _ = inputs
    split = frame.assign(
        actionable_log_odds=frame["ml_adoption"] + frame["ml_support"], context_log_odds=frame["ml_account"]
    )
    importance = pd.Series(
        {"events_per_seat_30d": 30.0, "tickets_per_seat_90d": 0.0, "term_length_days": 20.0, "tenure_days": 12.0,
         "segment": 0.0, "feature_breadth_30d": 3.0}
    )  # fmt: skip
    comparison = compare(split, SCORECARD, n_boot=10, seed=1, importance=importance)
    assert comparison.attribution_parts() == ("usage", "term length, tenure")
    summary = _summary(render_report(split, comparison, None, ReportContext("t")))
    share = comparison.actionable_share
    assert (
        f"{share:.1%} of the model's attribution is actionable (usage: what a CSM can change); {1 - share:.1%} is "
        "context (term length, tenure), stated beside the drivers." in summary
    )
    for absent in ("logins", "relationship", "payments", "support,", "segment"):
        assert absent not in summary.split("attribution is actionable")[1].split(".")[1], absent
    # without the model's importance nothing is named, rather than a list the model may not use
    unnamed = compare(split, SCORECARD, n_boot=10, seed=1)
    assert unnamed.attribution_parts() is None
    summary = _summary(render_report(split, unnamed, None, ReportContext("t")))
    assert (
        f"{share:.1%} of the model's attribution is actionable (what a CSM can change); {1 - share:.1%} is context, "
        "stated beside the drivers." in summary
    )


def test_the_alignment_finding_says_only_what_really_differs(inputs):
    """On a one-category scorecard the report said "leans most on engagement ... and least ... on engagement";
    on shares of 74.2% vs 75.0% it said "leans most"; the attribution in `other` went unmentioned."""
    frame, comparison, _ = inputs

    def findings(rows: list[tuple[str, float, float]]) -> str:
        alignment = pd.DataFrame(rows, columns=["category", "ml_attribution_share", "scorecard_weight_share"])
        alignment = alignment.assign(correlation=-0.5, share_gap=lambda t: t.iloc[:, 1] - t.iloc[:, 2])
        text = render_report(frame, replace(comparison, alignment=alignment), None, ReportContext("t"))
        return _summary(text)

    one = findings([("engagement", 0.543, 1.0), ("other", 0.457, np.nan)])
    assert "The model leans less than the scorecard on engagement (54.3% of its attribution vs 100.0% of " in one
    assert "most" not in one.split("The model leans")[1].split(".")[0]
    assert "45.7% of the model's attribution is in 'other': features no category of the scorecard scores." in one
    alike = findings([("adoption", 0.742, 0.75), ("account", 0.258, 0.25)])
    assert "agree on every category (within 5 points)" in alike and "leans" not in alike
    both = findings([("adoption", 0.2, 0.4), ("account", 0.6, 0.3), ("support", 0.2, 0.3)])
    assert (
        "The model leans more than the scorecard on account (60.0% of its attribution vs 30.0% of scorecard weight) "
        "and less on adoption (20.0% of its attribution vs 40.0% of scorecard weight)." in both
    )


def test_a_disagreement_heading_counts_the_snapshots_of_its_cell_and_the_accounts_shown(inputs, html_text):
    """ "rule says red, model says low risk (10)" under a matrix cell of 232 snapshots read as a contradiction."""
    _, comparison, _ = inputs
    counts = comparison.agreement.pivot("rows")
    found = comparison.agreement.disagreements
    for kind, (health, risk) in (
        ("green_but_high_ml_risk", ("green", "high")),
        ("red_but_low_ml_risk", ("red", "low")),
    ):
        n, shown = counts.loc[health, risk], (found["kind"] == kind).sum()
        heading = f"({n:,} snapshot{'' if n == 1 else 's'}, {shown} account{'' if shown == 1 else 's'} shown)</h3>"
        assert heading in html_text, kind
    assert counts.loc["red", "low"] > (found["kind"] == "red_but_low_ml_risk").sum(), "the fixture shows the case"


def test_a_disagreement_says_each_probability_and_score_in_the_band_it_is_in(inputs):
    """A probability of 0.49996 is medium (high from 0.5) and a health score of 59.96 red (yellow from 60): the
    disagreement table said them rounded, "50.0%" beside "medium" and "60.0" beside "red"."""
    frame, comparison, _ = inputs
    found = comparison.agreement.disagreements
    row = found.index[found["kind"] == "red_but_low_ml_risk"][0]
    edited = found.copy()
    edited.loc[row, ["churn_probability", "risk_band"]] = [0.49996, "medium"]
    edited.loc[row, ["health_score", "health_band"]] = [59.96, "red"]
    agreement = replace(comparison.agreement, disagreements=edited)
    text = render_report(frame, replace(comparison, agreement=agreement), None, ReportContext("t"))
    cells = re.findall(r"<td[^>]*>(.*?)</td>", text.split("Top disagreements: rule says red")[1].split("</table>")[0])
    assert "49.9%" in cells and "59.9" in cells and "50.0%" not in cells and "60.0" not in cells


def _drawn(figure):
    figure.canvas.draw()
    return figure.canvas.get_renderer()


def test_the_agreement_heatmap_keeps_its_band_labels_inside_the_figure(inputs):
    """The square-celled image was centred at a fixed size and "rule yellow" was cut to "ule yellow"."""
    _, comparison, _ = inputs
    figure = plot_agreement(comparison.agreement.cells)
    renderer = _drawn(figure)
    labels = [t for t in figure.axes[0].get_yticklabels() if t.get_text()]
    assert len(labels) == 3 and min(t.get_window_extent(renderer).x0 for t in labels) >= 0


def test_the_alignment_plot_keeps_eight_categories_apart_and_its_title_inside():
    """With the eight LAER categories "adoptionengagementsupport" ran together and the title was cut at the right."""
    names = ["adoption", "engagement", "support", "training", "account", "financial", "relationship", "voice"]
    alignment = pd.DataFrame(
        {"category": names, "correlation": np.linspace(-0.8, 0.1, 8), "ml_attribution_share": 1 / 8,
         "scorecard_weight_share": 1 / 8}
    )  # fmt: skip
    figure = plot_alignment(alignment)
    renderer = _drawn(figure)
    ax = figure.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
    assert len(boxes) == 8 and all(a.x1 < b.x0 for a, b in itertools.pairwise(boxes))
    for text in (ax.title, ax.xaxis.label, *ax.get_xticklabels()):
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= figure.bbox.width, text.get_text()
    assert "r = -0.80" in ax.get_xticklabels()[0].get_text(), "each category carries its correlation"


def test_category_weight_changes_are_measured_on_the_scale_the_fit_moves_them_on(inputs):
    """Weights of 30 and 50 are read as 37.5 and 62.5 of 100, the scale `suggestions.max_change` bounds and the
    suggestion is written in; the table showed "30 -> 45, change +15" beside "move at most 10 points"."""
    frame, comparison, _ = inputs
    history = _history(n_accounts=200, months=8)
    raw = SCORECARD.model_dump(mode="python")
    raw["default"]["categories"]["adoption"]["weight"], raw["default"]["categories"]["support"]["weight"] = 30, 50
    early, late = history[history["as_of"] < "2024-06-01"], history[history["as_of"] >= "2024-06-01"]
    suggested = suggest_weights(early, parse_scorecard(raw), evaluation_frame=late, min_rows=100)
    weights = suggested.category_weights.set_index("category")
    assert weights["fitted"].all() and weights["suggested"].sum() == pytest.approx(100, abs=1)
    text = render_report(frame, comparison, suggested, ReportContext("t"))
    table = text[text.index("<h3>Category weights</h3>") :].split("</table>")[0]
    head = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    assert head == ["scorecard", "category", "current", "current, of 100", "suggested", "fitted", "change"]
    rows = {cells[1]: cells for cells in (re.findall(r"<td[^>]*>([^<]*)</td>", r) for r in table.split("<tr>")[2:])}
    of_100 = {"adoption": 37.5, "support": 62.5}
    for category, share in of_100.items():
        current, shown, written, _, change = rows[category][2:]
        assert (current, shown) == (f"{weights.loc[category, 'current']:g}", f"{share:.1f}")
        assert change == f"{float(written) - share:+.1f}"
        assert abs(float(change)) <= suggested.limits.max_change + 0.5, "at most max_change, before rounding"
    assert "as points of 100" in text
    # and the change alone (the report's table and the review diff) says where the weight stood on that scale
    said = suggested.changes["change"]
    assert said.str.match(r"adoption weight 30 \(38 of 100\) -> \d+$").any(), said.tolist()


def test_a_category_weight_change_alone_gives_the_category_the_share_it_says():
    """Weights of 30 and 50: "adoption weight 30 (38 of 100) -> 47" was tried as 47 beside support's raw 50, not as
    47 of 100; and a card's only category listed "30 (100 of 100) -> 100" as a change worth trying."""
    history = _history(n_accounts=200, months=8)
    raw = SCORECARD.model_dump(mode="python")
    raw["default"]["categories"]["adoption"]["weight"], raw["default"]["categories"]["support"]["weight"] = 30, 50
    scorecard = parse_scorecard(raw)
    early, late = history[history["as_of"] < "2024-06-01"], history[history["as_of"] >= "2024-06-01"]
    suggested = suggest_weights(early, scorecard, evaluation_frame=late, min_rows=100)
    changes = suggested.changes.set_index("change")["auc"]
    [change] = [c for c in changes.index if c.startswith("adoption weight 30 (38 of 100) -> ")]
    meant = SCORECARD.model_dump(mode="python")
    meant["default"]["categories"]["adoption"]["weight"] = float(change.rsplit(" ", 1)[1])
    meant["default"]["categories"]["support"]["weight"] = 100 - meant["default"]["categories"]["adoption"]["weight"]
    assert changes[change] == pytest.approx(backtest_health(late, parse_scorecard(meant))["auc"])
    raw["default"]["categories"] = {"adoption": raw["default"]["categories"]["adoption"]}
    alone = suggest_weights(early, parse_scorecard(raw), evaluation_frame=late, min_rows=100).changes["change"]
    assert not alone.str.contains("weight").any(), alone.tolist()


def test_the_probability_histogram_stands_every_bar_on_its_axis():
    """A log axis fitted to bins of 80 to 200 rows started at 75: the bins of 80 rows looked empty (usage-only
    data, where every probability is low)."""
    from models.evaluation import plot_calibration

    rng = np.random.default_rng(3)
    probability = np.concatenate([rng.uniform(0.0, 0.05, 200), rng.uniform(0.05, 0.1, 150), rng.uniform(0.15, 0.2, 80)])
    figure = plot_calibration((rng.uniform(size=len(probability)) < probability).astype(int), {"ML risk": probability})
    assert figure.axes[1].get_ylim()[0] < 1, "a bin of one row still shows"


def test_a_reliability_bin_of_one_row_is_not_drawn_like_a_full_one():
    """A bin holding one row at 100% churn drew the calibration curve to the top corner with the same marker as the
    bins of hundreds of rows."""
    from models.evaluation import FEW_BIN_ROWS, plot_calibration

    rng = np.random.default_rng(5)
    probability = np.concatenate([rng.uniform(0.0, 0.1, 400), rng.uniform(0.1, 0.2, 100), [0.95]])
    labels = (rng.uniform(size=len(probability)) < probability).astype(int)
    labels[-1] = 1
    ax = plot_calibration(labels, {"ML risk": probability}).axes[0]
    curve = ax.lines[0]
    assert curve.get_xdata().max() < 0.2, "the one-row bin is off the curve"
    full, hollow = ax.collections[0], ax.collections[1]
    assert list(hollow.get_offsets()[:, 0]) == pytest.approx([0.95]) and hollow.get_facecolors().size == 0
    assert hollow.get_sizes()[0] < full.get_sizes().min() < full.get_sizes().max()
    assert f"bin of under {FEW_BIN_ROWS} rows" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_the_decile_axis_starts_at_zero():
    """Deciles of 0% churn under an autoscaled axis showed a tick at "-2.5%"."""
    rows = [
        {"score": score, "grouping": "decile", "group": str(d + 1), "rows": 10, "churners": c, "churn_rate": c / 10}
        for score in ("rule", "ml")
        for d, c in enumerate([0, 0, 0, 0, 0, 0, 0, 1, 1, 2])
    ] + [{"score": "rule", "grouping": "band", "group": "red", "rows": 100, "churners": 4, "churn_rate": 0.04}]
    ax = plot_deciles(pd.DataFrame(rows)).axes[0]
    _drawn(ax.figure)
    assert ax.get_ylim()[0] == 0
    assert not [t.get_text() for t in ax.get_yticklabels() if t.get_text().startswith(("-", "−"))]


def test_percent_ticks_say_the_value_they_mark():
    """A small book's decile axis of 2.5-point steps was labelled "2%, 5%, 8%, 10%, 13%": 12.5% written as 13%."""
    one_in_six = [0, 0, 1, 0, 0, 0, 0, 0, 1, 1]  # churners of the deciles of 6 rows of a book of 60 snapshots
    rows = [
        *({"score": score, "grouping": "decile", "group": str(d + 1), "rows": 6, "churners": c, "churn_rate": c / 6}
          for score in ("rule", "ml") for d, c in enumerate(one_in_six)),
        *({"score": "rule", "grouping": "band", "group": band, "rows": n, "churners": c, "churn_rate": c / n}
          for band, n, c in (("green", 24, 1), ("yellow", 18, 0), ("red", 18, 2))),
        *({"score": "ml", "grouping": "band", "group": band, "rows": n, "churners": c, "churn_rate": c / n}
          for band, n, c in (("low", 54, 2), ("medium", 6, 1), ("high", 1, 0))),
    ]  # fmt: skip
    calibration = pd.DataFrame(rows)
    for figure in (plot_deciles(calibration), plot_churn_by_band(calibration)):
        _drawn(figure)
        for ax in figure.axes:
            for tick, label in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True):
                assert float(label.get_text().replace("−", "-").rstrip("%")) == pytest.approx(tick * 100), label


def test_the_method_names_the_snapshot_cadence(inputs):
    """`features.cadence: weekly` (monthly B2C terms renew between monthly snapshots) gave a report that said
    "Snapshots are monthly"."""
    frame, comparison, _ = inputs
    text = render_report(frame, comparison, None, ReportContext("t", cadence="weekly"))
    assert "Snapshots are weekly (account, as-of date) rows" in text and "monthly" not in text


def test_the_suggested_bands_say_which_snapshots_their_shares_are_of(inputs, html_text):
    """ "Band thresholds for 15% of accounts in red" headed a table whose red held 8.4%: the thresholds are set on
    the fit snapshots, the shares shown are the later snapshots'."""
    _, _, suggested = inputs
    assert len(suggested.bands)
    weights = html_text[html_text.index('<section id="weights">') : html_text.index('<section id="method">')]
    assert "Band thresholds for 15% of the fit snapshots in red</h3>" in weights
    assert "Shares and churn rates below are those of the later snapshots" in weights
    assert "# Band thresholds for 15% of the fit snapshots in red: churn rate per band on the later snapshots" in (
        suggested.review_text()
    )


def test_the_band_tables_say_their_churned_rows_as_rows(html_text):
    """The ML band table put '503 churners' beside '198 accounts': the count is of churned snapshot rows."""
    assert html_text.count('<th class="">churned rows</th>') == 2 and ">churners</th>" not in html_text
