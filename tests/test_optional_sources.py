"""The optional sources of the contract -- invoices, touchpoints, surveys: validation, features by
hand, point-in-time correctness, the scorecard categories they feed, and data without them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features, snapshot_dates
from features.errors import DataContractError
from features.registry import describe, lookup
from features.settings import FeatureSettings
from features.table import feature_columns
from models.healthscore import score_health
from models.scorecard import parse_scorecard
from pipeline.config import DEFAULTS_DIR, load_scorecard, read_yaml
from pipeline.loading import Dataset, load_dataset
from pipeline.synthetic import generate
from tests.feature_data import accounts, accounts_a_and_b, make_dataset, snapshot
from tests.helpers import run_cli, tiny_tables, write_tables

NEW_CATEGORIES = ("financial", "relationship", "voice")


def _feature_table(root, optional_tables: bool) -> pd.DataFrame:
    out = generate(root / "data", n_accounts=80, seed=4, start="2023-01-01", years=1.5, optional_tables=optional_tables)
    dataset = load_dataset(out.out_dir)
    return build_features(dataset, snapshot_dates(dataset, "monthly"), FeatureSettings(), grace_days=30)


@pytest.fixture(scope="module")
def generated_table(tmp_path_factory) -> pd.DataFrame:
    """Generated history without the optional tables."""
    return _feature_table(tmp_path_factory.mktemp("without"), optional_tables=False)


@pytest.fixture(scope="module")
def optional_table(tmp_path_factory) -> pd.DataFrame:
    return _feature_table(tmp_path_factory.mktemp("with"), optional_tables=True)


def invoices() -> pd.DataFrame:
    """Account A: on time, late, failed and still open, not yet due (discounted)."""
    return pd.DataFrame(
        {
            "account_id": ["A"] * 4,
            "issued_at": ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"],
            "due_at": ["2024-01-31", "2024-03-02", "2024-03-31", "2024-05-01"],
            "amount": [100.0, 100.0, 100.0, 90.0],
            "paid_at": ["2024-01-20", "2024-03-10", None, "2024-04-05"],
            "status": ["paid", "paid", "failed", "paid"],
            "discount": [0.0, 0.0, 0.0, 10.0],
        }
    )


def touchpoints() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A"] * 4,
            "ts": ["2023-12-01", "2024-02-01", "2024-03-15", "2024-04-10"],
            "kind": ["QBR", "qbr", "csm_call", "executive"],
            "sentiment": [1.0, 1.0, -1.0, 0.0],
        }
    )


def surveys() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A"] * 5,
            "ts": ["2024-02-01", "2024-03-15", "2024-03-15 10:00", "2024-04-10", "2024-04-12"],
            "score": [9.0, 3.0, 6.0, 4.0, 10.0],
            "kind": ["nps", "nps", "nps", "csat", None],  # no kind = NPS
        }
    )


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("table", "frame", "expected"),
    [
        ("invoices", invoices().assign(amount=[100.0, -5.0, 1.0, 1.0]), "invoices.amount: 1 value is not a finite"),
        (
            "invoices",
            invoices().assign(status=["paid", "refunded", "x", None]),
            "invoices.status: 2 values are not one of paid/failed/void/open (rows 2, 3: 'refunded', 'x')",
        ),
        ("invoices", invoices().drop(columns="due_at"), "invoices.due_at: required column is missing"),
        ("invoices", invoices().assign(paid_at=["soon", None, None, None]), "invoices.paid_at: 1 value is not a date"),
        (
            "touchpoints",
            touchpoints().assign(kind=["qbr", "lunch", "qbr", "qbr"]),
            "touchpoints.kind: 1 value is not one of qbr/executive/csm_call/email/other (rows 2: 'lunch')",
        ),
        (
            "touchpoints",
            touchpoints().assign(sentiment=[2.0, 0.0, 0.0, 0.0]),
            "touchpoints.sentiment: 1 value is not a finite number from -1 to 1 (rows 1: '2.0')",
        ),
        ("touchpoints", touchpoints().assign(kind=None), "touchpoints.kind: 4 values are missing"),
        (
            "surveys",
            surveys().assign(score=[11.0, 3.0, 6.0, 4.0, 10.0]),
            "surveys.score: 1 nps value is not from 0 to 10 (rows 1: '11.0')",
        ),
        (
            "surveys",
            surveys().assign(score=[9.0, 3.0, 6.0, 6.0, 10.0]),
            "surveys.score: 1 csat value is not from 1 to 5 (rows 4: '6.0')",
        ),
        ("surveys", surveys().assign(kind="ces"), "surveys.kind: 5 values are not one of nps/csat"),
        ("surveys", surveys().drop(columns="score"), "surveys.score: required column is missing"),
    ],
)
def test_bad_values_are_refused_naming_table_column_count_and_rows(table, frame, expected):
    with pytest.raises(DataContractError) as error:
        Dataset.from_frames({**tiny_tables(), table: frame})
    assert expected in str(error.value)
    assert "nothing was written" in str(error.value)


def test_every_problem_of_the_new_tables_is_reported_at_once():
    tables = {
        **tiny_tables(),
        "invoices": invoices().assign(status="x"),
        "touchpoints": touchpoints().assign(kind="x"),
        "surveys": surveys().assign(score=-1.0),
    }
    with pytest.raises(DataContractError, match=r"\(4 problems\)"):
        Dataset.from_frames(tables)


@pytest.mark.parametrize(
    ("table", "frame", "time_column"),
    [("invoices", invoices(), "issued_at"), ("touchpoints", touchpoints(), "ts"), ("surveys", surveys(), "ts")],
)
def test_unknown_accounts_and_future_rows_are_excluded_and_counted(table, frame, time_column):
    extra = frame.head(2).assign(account_id=["ghost", "ghost"])
    future = frame.head(1).assign(**{time_column: "2031-01-01"})
    rows = pd.concat([frame, extra, future], ignore_index=True)
    dataset = Dataset.from_frames({**tiny_tables(), table: rows}, now=pd.Timestamp("2025-01-01"))
    warnings = {w.problem: w for w in dataset.report.warnings if w.table == table}
    assert warnings["rows for accounts not in accounts"].count == 2
    assert warnings["rows for accounts not in accounts"].excluded
    future_warning = next(w for p, w in warnings.items() if p.startswith("rows dated after"))
    assert future_warning.count == 1 and future_warning.excluded
    kept = dataset.con.execute(f'SELECT count(*), max("{time_column}") FROM "{table}"').fetchone()
    assert kept[0] == len(frame) and pd.Timestamp(kept[1]) < pd.Timestamp("2025-01-01")
    assert dataset.report.tables[table].excluded == 3


def test_suspicious_invoices_are_kept_and_reported():
    rows = invoices().assign(invoice_id=["I1", "I1", "I2", "I3"])
    rows.loc[3, "due_at"] = "2024-03-01"  # due before it was issued
    rows.loc[0, "paid_at"] = "2023-12-01"  # paid before it was issued
    rows.loc[1, "paid_at"] = None  # status paid, no payment date
    dataset = Dataset.from_frames({**tiny_tables(), "invoices": rows})
    problems = {w.problem: w.count for w in dataset.report.warnings if w.table == "invoices"}
    assert problems == {
        "invoices due before they were issued": 1,
        "invoices paid before they were issued": 1,
        "invoices with status paid but no paid_at": 1,
        "rows share a duplicated invoice_id": 2,
    }
    assert dataset.con.execute("SELECT count(*) FROM invoices").fetchone()[0] == 4


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_closed_at_or_paid_at_column_null_in_every_row_is_reported(tmp_path, fmt):
    """An export whose closed_at and paid_at columns are present but empty (the source does not record them) read
    as every ticket open and every invoice unpaid -- tickets open for years, every invoice overdue -- without a word,
    where leaving the columns out drops the features that need them; one value in the column is data as usual."""
    tables = tiny_tables()
    tables["support_tickets"] = tables["support_tickets"].assign(closed_at=None)
    tables["invoices"] = invoices().assign(account_id="A", paid_at=None, status=None)
    found = {
        w.column: (w.count, w.action.split(";")[0])
        for w in load_dataset(write_tables(tmp_path / "empty", tables, fmt)).report.warnings
        if w.problem.endswith("and no row of the table has one")
    }
    assert found == {
        "closed_at": (2, "kept: every ticket reads as open (null = open)"),
        "paid_at": (4, "kept: every invoice reads as unpaid (null = unpaid)"),
    }
    tables["support_tickets"].loc[0, "closed_at"] = "2023-05-02"
    tables["invoices"].loc[0, "paid_at"] = "2024-01-20"
    warnings = load_dataset(write_tables(tmp_path / "one", tables, fmt)).report.warnings
    assert not [w for w in warnings if w.column in ("closed_at", "paid_at")]


@pytest.mark.parametrize(
    ("table", "frame"), [("invoices", invoices()), ("touchpoints", touchpoints()), ("surveys", surveys())]
)
def test_any_one_new_table_is_enough_as_event_table_and_ends_the_data(table, frame):
    tables = {name: tiny_tables()[name] for name in ("accounts", "subscriptions")}
    dataset = Dataset.from_frames({**tables, table: frame})
    assert dataset.event_tables == (table,)
    time_column = "issued_at" if table == "invoices" else "ts"
    assert dataset.data_end == pd.Timestamp(frame[time_column].max())


def test_without_any_event_table_the_error_names_the_new_tables_too():
    tables = {name: tiny_tables()[name] for name in ("accounts", "subscriptions")}
    with pytest.raises(DataContractError, match=r"at least one of .*invoices, touchpoints, surveys is required"):
        Dataset.from_frames(tables)


# ------------------------------------------------------------------------------ features
def test_invoice_features_by_hand():
    row = snapshot(make_dataset(invoices=invoices()), "2024-04-15")
    assert row["days_overdue"] == 15  # the failed March invoice, due 2024-03-31
    assert row["overdue_invoices"] == 1
    assert row["overdue_amount_share"] == pytest.approx(100 / 390)
    assert row["late_payments_90d"] == 2 and row["late_payments_365d"] == 2  # February (paid late) and March
    assert row["late_payment_share_365d"] == pytest.approx(2 / 3)  # April is not due yet
    assert row["failed_payments_90d"] == 1 and row["failed_payments_365d"] == 1
    assert row["last_invoice_discount"] == pytest.approx(0.1)
    assert np.isnan(row["invoiced_amount_change_365d"])  # nothing invoiced the year before
    paid = invoices().assign(paid_at=["2024-01-20", "2024-03-10", "2024-04-14 23:59", "2024-04-05"])
    row = snapshot(make_dataset(invoices=paid), "2024-04-15")
    assert row["days_overdue"] == 0 and row["overdue_invoices"] == 0 and row["late_payments_90d"] == 2


def test_nothing_invoiced_in_either_year_is_no_change_not_a_flat_one():
    """With nothing invoiced in either year the change was 0 and read "invoiced amount +0% on the previous year"
    (a flat year). There is no amount to compare: it is missing, and says that nothing was invoiced before."""
    b_invoices = invoices().assign(account_id="B", issued_at="2023-12-01")  # the table starts before A landed
    row = snapshot(make_dataset(accounts_table=accounts_a_and_b(), invoices=b_invoices), "2024-06-01")
    assert np.isnan(row["overdue_amount_share"])  # nothing invoiced to A in the last year
    assert np.isnan(row["invoiced_amount_change_365d"])
    said = describe("invoiced_amount_change_365d", row["invoiced_amount_change_365d"], row.to_dict())
    assert said == "nothing invoiced the year before to compare with"
    flat = pd.concat([invoices().assign(issued_at="2023-03-01", due_at="2023-03-31"), invoices()])
    row = snapshot(make_dataset(accounts_table=accounts(created_at="2023-03-01"), invoices=flat), "2024-06-01")
    assert row["invoiced_amount_change_365d"] == 0  # 390 in either year: flat, as said
    said = describe("invoiced_amount_change_365d", 0.0, row.to_dict())
    assert said == "invoiced amount +0% on the previous year"


def test_touchpoint_features_by_hand():
    row = snapshot(make_dataset(touchpoints=touchpoints()), "2024-04-15")
    assert row["touchpoints_90d"] == 3  # 2024-02-01 onwards (2023-12-01 is 136 days back)
    assert row["days_since_last_qbr"] == 74 and row["days_since_last_executive_meeting"] == 5
    assert row["days_since_last_touchpoint"] == 5
    assert row["touchpoint_sentiment_90d"] == pytest.approx(0.0)
    assert row["touchpoint_sentiment_trend_90d"] == pytest.approx(-1.0)  # 0 now, 1 in the 90 days before
    assert row["negative_touchpoints_90d"] == 1
    never = snapshot(make_dataset(touchpoints=touchpoints().assign(kind="csm_call")), "2024-04-15")
    assert np.isnan(never["days_since_last_qbr"]) and np.isnan(never["days_since_last_executive_meeting"])
    assert never["days_since_last_touchpoint"] == 5


def test_survey_features_by_hand():
    started = snapshot(make_dataset(surveys=surveys()), "2024-04-13")  # 72 of the 180 days in the data
    assert np.isnan(started["nps_mean_180d"]) and np.isnan(started["survey_responses_180d"])
    older = pd.DataFrame({"account_id": ["A"], "ts": ["2023-10-01"], "score": [2.0], "kind": ["csat"]})
    row = snapshot(make_dataset(surveys=pd.concat([older, surveys()], ignore_index=True)), "2024-04-13")
    assert row["nps_latest"] == 10  # the response without a kind is an NPS response
    assert row["nps_mean_180d"] == pytest.approx(7.0)  # 9, 3, 6, 10
    assert row["account_nps_180d"] == pytest.approx(0.0)  # 2 promoters, 2 detractors
    assert row["nps_detractor_share_180d"] == pytest.approx(0.5)
    assert row["survey_csat_latest"] == 4 and row["survey_csat_mean_180d"] == 4
    assert row["survey_responses_180d"] == 5 and row["days_since_last_survey"] == 1
    row = snapshot(make_dataset(surveys=surveys()), "2024-03-20")
    assert row["nps_latest"] == pytest.approx(4.5)  # mean of the two responses of the latest day


@pytest.mark.parametrize(
    ("table", "frame", "column", "gone"),
    [
        (
            "invoices",
            invoices(),
            "paid_at",
            {"days_overdue", "overdue_invoices", "overdue_amount_share", "late_payments_90d", "late_payments_365d",
             "late_payment_share_365d"},
        ),
        ("invoices", invoices(), "status", {"failed_payments_90d", "failed_payments_365d"}),
        ("invoices", invoices(), "discount", {"last_invoice_discount"}),
        (
            "touchpoints",
            touchpoints(),
            "sentiment",
            {"touchpoint_sentiment_90d", "touchpoint_sentiment_trend_90d", "negative_touchpoints_90d"},
        ),
        ("surveys", surveys(), "kind", {"survey_csat_latest", "survey_csat_mean_180d"}),
    ],
)  # fmt: skip
def test_absent_optional_columns_remove_exactly_their_features(table, frame, column, gone):
    full = set(snapshot(make_dataset(**{table: frame}), "2024-04-15").index)
    if table == "surveys":
        frame = frame[frame.kind.ne("csat")]  # without the column every response is NPS
    fewer = set(snapshot(make_dataset(**{table: frame.drop(columns=column)}), "2024-04-15").index)
    assert full - fewer == gone
    assert all(f"{table}.{column}" in lookup(name).requires for name in gone)


def test_each_family_is_point_in_time_correct():
    """Rows at or after as_of -- new, changed, or a payment of an invoice open then -- change no feature."""
    as_of = "2024-04-15"
    before = {"invoices": invoices(), "touchpoints": touchpoints(), "surveys": surveys()}
    after = {
        "invoices": pd.concat(
            [invoices().assign(paid_at=["2024-01-20", "2024-03-10", "2024-04-15", "2024-04-05"]),
             invoices().assign(issued_at="2024-04-15", due_at="2024-04-10", paid_at=None, status="failed")],
        ),
        "touchpoints": pd.concat(
            [touchpoints(), touchpoints().assign(ts=["2024-04-15", "2024-04-15 09:00", "2024-05-01", "2025-01-01"])]
        ),
        "surveys": pd.concat([surveys(), surveys().assign(ts="2024-04-15", score=0.0, kind="nps")]),
    }  # fmt: skip
    for table in before:
        first = snapshot(make_dataset(**{table: before[table]}), as_of)
        second = snapshot(make_dataset(**{table: after[table]}), as_of)
        pd.testing.assert_series_equal(first, second, obj=table)


def test_absent_tables_give_absent_features_not_zeros():
    table = build_features(make_dataset(), ["2024-03-01"], FeatureSettings(), 30)
    sources = {lookup(name).source for name in feature_columns(table)}
    assert not sources & {"invoices", "touchpoints", "surveys"}


def test_a_table_present_with_no_rows_is_named_by_every_command_that_reads_the_data(tmp_path, capsys):
    """An empty `touchpoints` export (header only: a source the team does not use) is not an absent table:
    its features said "no touchpoint" for every account and the relationship category scored every account
    near 0, with no word; `validate` and the commands that build features now say so."""
    tables = {**tiny_tables(), "touchpoints": pd.DataFrame(columns=["account_id", "ts", "kind"])}
    data = write_tables(tmp_path / "data", tables)
    expected = "warning: touchpoints: present with no rows, so every account reads as having none"
    code, text = run_cli(["validate", "--data", str(data)], capsys)
    assert code == 0 and expected in text, text
    out = tmp_path / "features.parquet"
    code, text = run_cli(["features", "--data", str(data), "--out", str(out), "--as-of", "2023-09-01"], capsys)
    assert code == 0 and expected in text, text
    assert pd.read_parquet(out)["touchpoints_90d"].eq(0).all()  # the family is built: the rows say none
    tables["touchpoints"] = pd.DataFrame({"account_id": ["A"], "ts": ["2023-05-01"], "kind": ["qbr"]})
    code, text = run_cli(["validate", "--data", str(write_tables(tmp_path / "used", tables))], capsys)
    assert code == 0 and "present with no rows" not in text, text


# ------------------------------------------------------------------------------ scorecard
def main_scorecard(name: str):
    """The scorecard as it was before the new categories: the same file without them."""
    raw = read_yaml(DEFAULTS_DIR / name)
    for category in NEW_CATEGORIES:
        raw["default"]["categories"].pop(category, None)
    for metric in ("account_nps_180d", "survey_csat_mean_180d", "touchpoint_sentiment_90d"):
        raw["default"]["categories"].get("experience", {}).get("metrics", {}).pop(metric, None)
    for metric in ("days_since_last_touchpoint", "days_overdue"):
        raw["default"]["categories"].get("engagement", {}).get("metrics", {}).pop(metric, None)
    return parse_scorecard(raw)


@pytest.mark.parametrize("name", ["healthscore.yaml", "healthscore-outcomes.yaml"])
def test_data_without_the_new_tables_scores_exactly_as_before(generated_table, name):
    """`generated_table` is built without the optional tables: the new metrics are dropped, the
    scores, bands and category scores are those of the scorecard without them."""
    assert not {lookup(c).source for c in feature_columns(generated_table)} & {"invoices", "touchpoints", "surveys"}
    adapted = load_scorecard(DEFAULTS_DIR / name).adapt_to(generated_table.columns)
    now = score_health(generated_table, adapted.config).frame
    before = score_health(generated_table, main_scorecard(name).adapt_to(generated_table.columns).config).frame
    pd.testing.assert_frame_equal(now, before)
    if name == "healthscore.yaml":
        assert not set(NEW_CATEGORIES) & set(adapted.config.categories())
        notes = " ".join(adapted.notes)
        assert all(f"category '{c}' dropped" in notes for c in NEW_CATEGORIES)
        assert "no invoices table in the data" in notes


def test_the_new_categories_score_when_the_tables_are_present(optional_table):
    config = load_scorecard(DEFAULTS_DIR / "healthscore.yaml").adapt_to(optional_table.columns).config
    assert set(NEW_CATEGORIES) <= set(config.categories())
    frame = score_health(optional_table, config).frame
    for category in NEW_CATEGORIES:
        assert frame[f"health_{category}"].notna().mean() > 0.5, category


def test_rows_a_sparse_scorecard_cannot_score_rank_in_the_middle_of_the_rule_baseline():
    """A scorecard of survey answers alone has nothing to say about an account that never answered:
    the training baseline ranks it in the middle instead of failing the run."""
    from pipeline.stages import NEUTRAL_RULE_RISK, rule_risk_of

    accounts = pd.DataFrame({"account_id": ["A", "B"], "created_at": ["2024-01-01"] * 2})
    terms = pd.DataFrame({"account_id": ["A", "B"], "start_date": ["2024-01-01"] * 2, "end_date": ["2025-01-01"] * 2})
    dataset = make_dataset(accounts_table=accounts, subscriptions_table=terms, surveys=surveys())
    table = build_features(dataset, ["2024-04-15"], FeatureSettings(), 30)
    card = parse_scorecard(
        {"name": "voice", "default": {"categories": {"voice": {"weight": 1, "metrics": {
            "nps_latest": {"scheme": "linear", "bad": 0, "good": 10}}}}}}
    )  # fmt: skip
    risk = rule_risk_of(table, card).set_axis(table["account_id"])
    assert risk["A"] == pytest.approx(100 - 100) and risk["B"] == NEUTRAL_RULE_RISK
