"""The train stage on prepared per-account tables (`churn train --table`) and its input checks."""

from __future__ import annotations

import warnings

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow.exceptions import MlflowException
from rich.console import Console

from features.errors import ChurnError, ConfigError, DataContractError
from pipeline.config import Settings, load_settings
from pipeline.console import print_training
from pipeline.prepared_table import as_trained, parse_ids, prepare_table, read_prepared_table
from pipeline.train import train_model, train_prepared_table
from tests.churn_sim import simulate_feature_table
from tests.helpers import run_cli, telco_like

pytestmark = pytest.mark.slow  # trains models or runs the CLI end to end (see conftest)


def _settings(tmp_path, **model) -> Settings:
    return Settings(
        workdir=str(tmp_path / "work"), model={"num_threads": 1, "name": "table-model", "tune_trials": 3, **model}
    )


def test_prepare_table_detects_numbers_categories_and_drops_ids_and_free_text():
    frame = telco_like(300)
    table, notes = prepare_table(frame, "customerID", "Churn", None)
    assert list(table.columns[:4]) == ["account_id", "label", "as_of", "term_end"]
    assert table["label"].dtype == "Int8" and set(table["label"].unique()) == {0, 1}
    assert (
        table["TotalCharges"].dtype == "float64" and table["TotalCharges"].isna().sum() == (frame["tenure"] == 0).sum()
    )
    assert isinstance(table["Contract"].dtype, pd.CategoricalDtype)
    assert "Notes" not in table.columns and "SignupMonth" not in table.columns
    assert notes == [
        "dropped 'Notes': 300 distinct text values (an id or free text; e.g. 'call note 0', 'call note 1', "
        "'call note 2')",
        "dropped 'SignupMonth': a timestamp (pass it as --time to split on it)",
    ]


def test_a_column_of_numbers_with_a_missing_marker_is_numbers(tmp_path, capsys):
    """An export writing a missing number as '?', '-' or 'unknown' (UCI tables use '?') lost the column:
    "dropped 'TotalCharges': 291 distinct text values (an id or free text)"; scoring such a table was refused."""
    frame = telco_like(300)
    blank = frame["tenure"] == 0
    for marker in ("?", "-", "unknown"):
        frame.assign(TotalCharges=frame["TotalCharges"].mask(blank, marker)).to_csv(tmp_path / "t.csv", index=False)
        table, notes = prepare_table(read_prepared_table(tmp_path / "t.csv"), "customerID", "Churn", None)
        assert table["TotalCharges"].dtype == "float64" and table["TotalCharges"].isna().sum() == blank.sum()
        said = f"read 'TotalCharges' as numbers: its {blank.sum()} values without a digit ('{marker}') are taken as"
        assert any(note.startswith(said) for note in notes), notes
    words = frame.assign(TotalCharges=frame["TotalCharges"].mask(frame.index % 4 == 0, "n" + frame["customerID"]))
    assert "TotalCharges" not in prepare_table(words, "customerID", "Churn", None)[0]  # words, not markers of a number
    config = _cli_config(tmp_path)
    args = ["--table", str(tmp_path / "t.csv"), "--id", "customerID", "--config", config]
    assert run_cli(["train", *args, "--label", "Churn"], capsys)[0] == 0
    code, text = run_cli(["score", *args, "--out", str(tmp_path / "s.csv")], capsys)
    assert code == 0 and f"column 'TotalCharges' holds values that are not numbers in {blank.sum()} rows (e.g. " \
        "'unknown'); they are scored as missing" in text, text  # fmt: skip
    mlflow.set_tracking_uri(load_settings(config).tracking_uri())
    pyfunc = mlflow.pyfunc.load_model("models:/churn-risk-table@champion")  # reads the table as scoring does
    got = pyfunc.predict(pd.read_csv(tmp_path / "t.csv").drop(columns=["customerID", "Churn"]))["churn_probability"]
    np.testing.assert_allclose(got.to_numpy(), pd.read_csv(tmp_path / "s.csv")["churn_probability"].to_numpy())
    frame.assign(TotalCharges=frame["TotalCharges"].mask(blank, "?")).to_csv(tmp_path / "t.csv", index=False)
    code, text = run_cli(["score", *args, "--out", str(tmp_path / "s2.csv")], capsys)  # not what training read
    assert code == 1 and f"column 'TotalCharges': {blank.sum()} values are not numbers, and the model learnt it" in text


def test_a_snapshot_repeated_on_the_same_date_is_warned_about(tmp_path):
    """With --time, ids repeat by design (one row per account and date), and rows an export or a join doubled
    (the same account at the same date, twice) were trained on twice without a word."""
    frame = telco_like(300)
    doubled = pd.concat([frame, frame.iloc[[4]]], ignore_index=True)
    doubled.to_csv(tmp_path / "t.csv", index=False)
    _, notes = prepare_table(read_prepared_table(tmp_path / "t.csv"), "customerID", "Churn", "SignupMonth")
    when = pd.Timestamp(frame.loc[4, "SignupMonth"]).date()
    assert (
        f"1 id of 'customerID' is on more than one row of the same 'SignupMonth' (rows 4, 300: '0004-CUST' at {when}): "
        "an account's snapshot repeated (by a join, or an export that doubled rows?), trained on as many times as it "
        "is there" in notes
    ), notes
    snapshots = frame.assign(SignupMonth=frame["SignupMonth"] + pd.Timedelta(days=400))  # the same ids, later
    _, notes = prepare_table(pd.concat([frame, snapshots], ignore_index=True), "customerID", "Churn", "SignupMonth")
    assert not any("more than one row" in note for note in notes), notes


def test_a_parquet_tables_column_names_are_trimmed_as_its_csvs(tmp_path):
    """A parquet written from a CSV read with its header's spaces (`customerID, Churn`) refused `--label Churn`,
    which the CSV itself took, and trained on `_tenure_`, a column its CSV names `tenure`."""
    frame = telco_like(300).rename(columns={"Churn": " Churn", "tenure": "tenure\u00a0"})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    for name in ("t.parquet", "t.csv"):
        table, _ = prepare_table(read_prepared_table(tmp_path / name), "customerID", "Churn", None)
        assert "tenure" in table.columns and table["label"].notna().all(), name


def test_a_csv_written_with_its_index_does_not_train_on_the_row_numbers(tmp_path):
    """pandas' `to_csv` writes the index as a first column with a blank name: row numbers, which rank the
    outcomes whenever the export was sorted (by outcome, by signup date) before or after, are not a feature."""
    frame = telco_like(300).sort_values("Churn")  # sorted by outcome: the row number alone separates them
    frame.to_csv(tmp_path / "sorted.csv")  # index=True, pandas' default
    frame.to_csv(tmp_path / "from_one.csv", index=False)
    numbered = pd.read_csv(tmp_path / "from_one.csv").assign(row=range(1, 301))
    numbered.to_csv(tmp_path / "from_one.csv", index=False)
    for name, column in (("sorted.csv", "column0"), ("from_one.csv", "row")):
        table, notes = prepare_table(read_prepared_table(tmp_path / name), "customerID", "Churn", None)
        assert column not in table.columns, name
        first, last = (0, 299) if column == "column0" else (1, 300)
        assert f"dropped '{column}': its values number the rows {first} to {last}, each once" in " ".join(notes)
    kept, _ = prepare_table(frame.assign(tenure=range(0, 600, 2)), "customerID", "Churn", None)
    assert "tenure" in kept.columns  # distinct whole numbers that do not number the rows are data


def test_prepared_table_trains_with_a_stratified_split_and_is_registered(tmp_path):
    path = tmp_path / "telco.csv"
    telco_like().to_csv(path, index=False)
    result = train_prepared_table(path, "customerID", "Churn", None, _settings(tmp_path))
    assert result.split.kind == "stratified" and result.promoted
    assert set(result.model.categories_) == {"Contract"}
    assert result.overall()["model"]["roc_auc"] > 0.7
    assert "rule" not in result.overall()  # no health score for a prepared table
    assert mlflow.MlflowClient().get_run(result.run_id).data.params["split_kind"] == "stratified"


def test_prepared_table_with_a_time_column_splits_out_of_time(tmp_path):
    path = tmp_path / "telco.parquet"
    telco_like().to_parquet(path)
    result = train_prepared_table(path, "customerID", "Churn", "SignupMonth", _settings(tmp_path))
    valid_times = result.validation["as_of"]
    assert result.split.kind == "out_of_time" and (valid_times >= result.split.cutoff).all()
    assert "SignupMonth" not in result.model.feature_names_in_


def test_scoring_a_table_dates_its_rows_by_the_time_column_the_model_was_trained_with(tmp_path):
    """`churn train --table --time SignupMonth` dated each training row by it, but `churn score --table` left the
    scores' as_of empty for a table holding the same column (several snapshots of an account could not be told
    apart). The model keeps its time column: scoring dates each row by it, `--as-of` still dates them all."""
    from pipeline.score import score_prepared
    from pipeline.tracking import load_model

    path = tmp_path / "telco.csv"
    telco_like(600).to_csv(path, index=False)
    settings = _settings(tmp_path, tune_trials=0)
    result = train_prepared_table(path, "customerID", "Churn", "SignupMonth", settings)
    model = load_model(result.model_uri, settings)  # as `churn score` loads it: from the store
    fresh = telco_like(50, seed=1).drop(columns=["Churn"])
    fresh = pd.concat([fresh, fresh.head(2).assign(SignupMonth=pd.Timestamp("2025-03-01"))], ignore_index=True)
    table = tmp_path / "fresh.csv"
    fresh.to_csv(table, index=False)
    scores, warned = score_prepared(table, "customerID", model, settings)
    assert scores["as_of"].tolist() == pd.to_datetime(fresh["SignupMonth"]).tolist()
    assert scores["as_of"].notna().all() and len(scores) == 52  # an account's two snapshots, each with its date
    dated, _ = score_prepared(table, "customerID", model, settings, pd.Timestamp("2025-04-01"))
    assert (dated["as_of"] == pd.Timestamp("2025-04-01")).all()
    np.testing.assert_allclose(dated["churn_probability"], scores["churn_probability"])

    fresh.assign(SignupMonth=["soon", *fresh["SignupMonth"].astype(str).iloc[1:]]).to_csv(table, index=False)
    with pytest.raises(
        DataContractError, match=r"fresh.csv.SignupMonth: 1 value is not an ISO-8601 date \(row 0: 'soon'\)"
    ):
        score_prepared(table, "customerID", model, settings)
    fresh.drop(columns=["SignupMonth"]).to_csv(table, index=False)
    undated, warned = score_prepared(table, "customerID", model, settings)
    assert undated["as_of"].isna().all()
    assert any("no column 'SignupMonth', which dated the rows the model was trained on" in w for w in warned)


def test_without_time_a_second_table_cannot_be_compared_fairly_unless_promoted(tmp_path):
    frame = telco_like()
    settings = _settings(tmp_path)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    frame.to_csv(first, index=False)
    frame.iloc[:1_200].to_csv(second, index=False)
    assert train_prepared_table(first, "customerID", "Churn", None, settings).promoted
    kept = train_prepared_table(second, "customerID", "Churn", None, settings)
    assert not kept.promoted
    assert kept.promotion_reason.startswith("kept champion v1: no fair comparison possible")
    forced = train_prepared_table(second, "customerID", "Churn", None, settings, promote=True)
    assert forced.promoted and forced.promotion_reason == "promoted on request (--promote), replacing champion v1"


def test_bad_prepared_tables_are_refused_with_column_and_examples(tmp_path):
    frame = telco_like(50)
    with pytest.raises(DataContractError, match=r"column 'Churned' \(did you mean 'Churn'\?\) not found"):
        prepare_table(frame, "customerID", "Churned", None)
    bad_labels = frame.assign(Churn=["Yes", "maybe", *frame["Churn"].iloc[2:]])
    with pytest.raises(DataContractError, match=r"label column 'Churn': 1 value is not an outcome.*row 1: 'maybe'"):
        prepare_table(bad_labels, "customerID", "Churn", None)
    bad_time = frame.assign(SignupMonth=["soon", *frame["SignupMonth"].astype(str).iloc[1:]])
    with pytest.raises(DataContractError, match=r"SignupMonth: 1 value is not an ISO-8601 date \(row 0: 'soon'\)"):
        prepare_table(bad_time, "customerID", "Churn", "SignupMonth")
    blank_ids = frame.assign(customerID=["\u00a0 ", None, *frame["customerID"].iloc[2:]])
    with pytest.raises(
        DataContractError, match=r"id column 'customerID': 2 values are missing \(row 0: '\\xa0 ', row 1: ''\)"
    ):
        prepare_table(blank_ids, "customerID", "Churn", None)
    padded, _ = prepare_table(
        frame.assign(customerID="\u00a0" + frame["customerID"] + "\u3000"), "customerID", "Churn", None
    )
    assert padded["account_id"].tolist() == frame["customerID"].tolist()  # trimmed as a data folder's ids are
    with pytest.raises(DataContractError, match=r"feature column 'label' clashes with reserved names"):
        prepare_table(frame.assign(label=1), "customerID", "Churn", None)
    # a column that is no feature is no clash: the export's date `as_of` and a second id were refused as such
    wider = telco_like(200)
    exported = wider.assign(as_of="2024-06-01", account_id="A-" + wider["customerID"])
    table, notes = prepare_table(exported, "customerID", "Churn", None)
    assert table["account_id"].tolist() == wider["customerID"].tolist() and table["as_of"].isna().all()
    assert {"dropped 'as_of': a timestamp (pass it as --time to split on it)",
            "dropped 'account_id': 200 distinct text values (an id or free text; e.g. 'A-0000-CUST', 'A-0001-CUST', "
            "'A-0002-CUST')"} <= set(notes), notes  # fmt: skip
    with pytest.raises(DataContractError, match=r"--table: feature column 'bias' has the name the model's"):
        prepare_table(frame.assign(bias=1.0), "customerID", "Churn", None)
    with pytest.raises(DataContractError, match=r"does not exist"):
        train_prepared_table(tmp_path / "none.csv", "customerID", "Churn")
    # it was "50 labelled rows of 2 accounts (ids of 'Churn' repeat ...): 1 churned and 1 retained account"
    with pytest.raises(DataContractError, match=r"^--table: --id and --label name the same column 'Churn'; the id, "):
        prepare_table(frame, "Churn", "Churn", None)
    with pytest.raises(DataContractError, match=r"^--table: --label and --time name the same column 'SignupMonth'"):
        prepare_table(frame, "customerID", "SignupMonth", "SignupMonth")


def test_feature_table_without_meta_columns_or_with_unaligned_rule_risk_is_refused(tmp_path):
    table, _ = simulate_feature_table(150, seed=2)
    with pytest.raises(DataContractError, match=r"columns \['term_end'\] are missing"):
        train_model(table.drop(columns="term_end"), _settings(tmp_path))
    with pytest.raises(DataContractError, match=r"rule_risk: no value for \d+ validation rows"):
        train_model(table, _settings(tmp_path), rule_risk=pd.Series(50.0, index=table.index[:10]))


def test_the_search_runs_in_churn_train_and_zero_trials_trains_the_configured_settings(tmp_path):
    table, _ = simulate_feature_table(300, seed=2)
    tuned = train_model(table, _settings(tmp_path, tune_trials=6))
    selection = tuned.model.selection_
    assert selection["tuned"] and selection["trials"] == 6 and selection["cv_folds"] == len(tuned.folds) >= 2
    assert tuned.folds.kind == "rolling_origin"
    chosen = next(t for t in tuned.model.search_.trials if t.number == selection["chosen_trial"])
    assert tuned.model.tree_params() == chosen.params
    assert selection["chosen_cv_auc"] >= selection["best_cv_auc"] - selection["one_se_tolerance"] - 1e-12
    assert not selection["search_cut_by_timeout"] and not any("model.tune_timeout_s" in n for n in tuned.notes)
    assert mlflow.MlflowClient().get_run(tuned.run_id).data.tags["search_cut_by_timeout"] == "False"
    again = train_model(table, _settings(tmp_path, tune_trials=6))  # same data and seed: the same trees
    assert again.model.tree_params() == tuned.model.tree_params()
    assert again.model.booster_.model_to_string() == tuned.model.booster_.model_to_string()
    cut = train_model(table, _settings(tmp_path, tune_trials=3, tune_timeout_s=1e-6))  # cut after its 1st trial
    assert cut.model.selection_["trials"] == 1 and cut.model.selection_["search_cut_by_timeout"]
    assert [n for n in cut.notes if "model.tune_timeout_s" in n] == [
        "the search was cut by model.tune_timeout_s = 1e-06 s after 1 of 3 trials: not reproducible, another "
        "machine or load may choose other settings (raise the timeout, or set it to null, for the full trial budget)"
    ]
    assert mlflow.MlflowClient().get_run(cut.run_id).data.tags["search_cut_by_timeout"] == "True"
    plain = train_model(table, _settings(tmp_path, tune_trials=0, num_leaves=5, max_depth=2))
    assert not plain.model.selection_["tuned"] and (plain.model.num_leaves, plain.model.max_depth) == (5, 2)
    assert "model.tune_trials = 0: trained with the configured tree settings, no search" in plain.notes
    run = mlflow.MlflowClient().get_run(plain.run_id)
    assert run.data.tags["tuned"] == "False" and run.data.params["model_tune_trials"] == "0"


def test_thin_data_trains_with_fewer_folds_or_none_and_says_why(tmp_path):
    table, _ = simulate_feature_table(60, seed=4, years=3.0)
    result = train_model(table, _settings(tmp_path, cv_folds=6))
    assert len(result.folds) < 6
    explained = " ".join(result.notes)
    assert "requested folds" in explained or "too few labelled rows for cross-validation" in explained
    assert "churned" in explained and "needs" in explained
    assert result.model.predict_proba(table.head(5))[:, 1].min() > 0
    one = train_model(table, _settings(tmp_path, cv_folds=2, tune_trials=0))
    assert len(one.folds) == 1
    console = Console(record=True, width=200)
    print_training(one, console)
    # it said "1 rolling-origin folds: ROC AUC 0.802 ± 0.000", a spread of one fold
    assert "Cross-validation (1 rolling-origin fold): ROC AUC 0." in console.export_text()
    assert "±" not in console.export_text()


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("n_estimators", 0, "model.n_estimators: Input should be greater than or equal to 1"),
        ("learning_rate", 0, "model.learning_rate: Input should be greater than 0"),
        ("learning_rate", -0.1, "model.learning_rate: Input should be greater than 0"),
        ("tune_trials", -1, "model.tune_trials: Input should be greater than or equal to 0"),
        ("tune_timeout_s", -5, "model.tune_timeout_s: Input should be greater than 0"),
        ("cv_folds", 0, "model.cv_folds: Input should be greater than or equal to 1"),
        ("lambda_l2", -1, "model.lambda_l2: Input should be greater than or equal to 0"),
    ],
)
def test_model_settings_out_of_bounds_are_configuration_errors_naming_the_key(tmp_path, key, value, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(f"model:\n  {key}: {value}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert fragment in str(err.value)


def test_a_model_that_learned_nothing_says_so(tmp_path):
    """A model whose validation scores are all equal ranks no one: `churn train` must not pass it silently."""
    frame = telco_like(rows=400).assign(tenure=12, Contract="One year", MonthlyCharges=50.0, TotalCharges="600")
    frame.loc[:2, "tenure"] = 13  # varies (an all-constant table is refused), on too few rows for any leaf
    path = tmp_path / "flat.csv"
    frame.drop(columns=["SignupMonth"]).to_csv(path, index=False)
    result = train_prepared_table(path, "customerID", "Churn", None, _settings(tmp_path))
    assert result.overall()["model"]["roc_auc"] == 0.5
    assert any(note.startswith("the model learned nothing from these rows") for note in result.notes)
    assert not result.promoted and result.at_chance  # and it is not made the first champion

    informative = tmp_path / "telco.csv"
    telco_like().to_csv(informative, index=False)
    result = train_prepared_table(informative, "customerID", "Churn", None, _settings(tmp_path / "again"))
    assert not any("learned nothing" in note for note in result.notes)


# ------------------------------------------------------------- prepared tables as teams export them
def _cli_config(tmp_path, tune_trials: int = 2) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(f"workdir: {tmp_path / 'work'}\nmodel:\n  tune_trials: {tune_trials}\n  num_threads: 1\n")
    return str(path)


def test_ids_of_a_csv_keep_their_leading_zeros_and_float_ids_read_as_integers(tmp_path, capsys):
    """A CSV's id column was read as numbers: account `00042` trained and scored as `42`."""
    frame = telco_like(400).assign(customerID=[f"{i:05d}" for i in range(400)])
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = _cli_config(tmp_path)
    code, text = run_cli(["train", "--table", str(tmp_path / "t.csv"), "--id", "customerID", "--label", "Churn",
                          "--config", config], capsys)  # fmt: skip
    assert code == 0, text
    out = tmp_path / "s.parquet"
    code, text = run_cli(["score", "--table", str(tmp_path / "t.csv"), "--id", "customerID", "--out", str(out),
                          "--config", config], capsys)  # fmt: skip
    assert code == 0 and "trained on other data" not in text, text
    assert pd.read_parquet(out)["account_id"].tolist()[:3] == ["00000", "00001", "00002"]
    # R and pandas write integer ids with gaps as doubles: 2.0 is account 2, as in a data folder
    assert parse_ids(pd.Series([2.0, 10.0, 2.5]), "id").tolist() == ["2", "10", "2.5"]


def test_columns_named_as_spreadsheets_name_them_train_and_score(tmp_path, capsys):
    """`Monthly Charges` trained (LightGBM named the feature `Monthly_Charges`) but no table could be scored
    ("lacks 1 feature(s) the model needs: Monthly_Charges"); `Payment: method` failed training with an
    internal error ("special JSON characters")."""
    frame = telco_like(400).rename(columns={"MonthlyCharges": "Monthly Charges", "Contract": "Contract [type]"})
    frame = frame.assign(**{"Payment: method": np.where(frame.index % 3 == 0, "card", "bank")})
    frame.to_parquet(tmp_path / "t.parquet")
    config = _cli_config(tmp_path)
    args = ["--table", str(tmp_path / "t.parquet"), "--id", "customerID", "--config", config]
    code, text = run_cli(["train", *args, "--label", "Churn"], capsys)
    assert code == 0, text
    assert "renamed 'Contract [type]' -> 'Contract__type_', 'Monthly Charges' -> 'Monthly_Charges'" in text
    out = tmp_path / "s.parquet"
    code, text = run_cli(["score", *args, "--out", str(out)], capsys)
    assert code == 0, text
    scores = pd.read_parquet(out)
    assert (
        scores["churn_probability"].between(0, 1).all()
        and scores["top_drivers"].str.contains("Contract [type] = ", regex=False).any()  # the table's own name
    )
    with pytest.raises(DataContractError, match=r"columns \['a b', 'a:b'\] would all be feature 'a_b'"):
        prepare_table(frame.assign(**{"a b": 1, "a:b": 2}), "customerID", "Churn", None)


def test_a_table_to_score_is_typed_as_training_typed_it_whatever_its_format(tmp_path, capsys):
    """Training trims text and reads a column of numbers and words as categories, but scoring did not:
    a CSV with padded text (` One year `) scored every row as an unseen category, without a word (up to
    0.4 off), and a categorical column holding only numbers in the file to score was refused."""
    rng = np.random.default_rng(3)
    frame = telco_like(600).assign(tier=lambda f: rng.choice(["1", "2", "gold"], len(f)), vip=rng.random(600) < 0.3)
    frame.to_parquet(tmp_path / "t.parquet")
    config = _cli_config(tmp_path)
    args = ["--id", "customerID", "--config", config]
    code, text = run_cli(["train", "--table", str(tmp_path / "t.parquet"), "--label", "Churn", *args], capsys)
    assert code == 0, text
    book = frame.drop(columns="Churn").assign(tier=lambda f: f["tier"].replace("gold", "1"))
    book.to_parquet(tmp_path / "book.parquet")
    code, text = run_cli(["score", "--table", str(tmp_path / "book.parquet"), "--out", str(tmp_path / "a.parquet"),
                          *args], capsys)  # fmt: skip
    assert code == 0 and "never saw" not in text, text
    padded = book.assign(Contract=" " + book["Contract"] + " ", vip=np.where(book["vip"], "yes", "no"))
    padded.to_csv(tmp_path / "book.csv", index=False)  # tier reads as numbers 1 and 2 from the CSV
    code, text = run_cli(["score", "--table", str(tmp_path / "book.csv"), "--out", str(tmp_path / "b.parquet"),
                          *args], capsys)  # fmt: skip
    assert code == 0, text
    expected = pd.read_parquet(tmp_path / "a.parquet")["churn_probability"]
    pd.testing.assert_series_equal(pd.read_parquet(tmp_path / "b.parquet")["churn_probability"], expected)
    book.assign(tier="platinum").to_parquet(tmp_path / "new.parquet")
    code, text = run_cli(["score", "--table", str(tmp_path / "new.parquet"), "--out", str(tmp_path / "c.parquet"),
                          *args], capsys)  # fmt: skip
    assert code == 0 and "column 'tier' holds values the model never saw in training in 600 rows (e.g. 'platinum'); " \
        "they are scored as missing" in text, text  # fmt: skip


def test_labels_as_teams_write_them_and_the_outcomes_a_model_cannot_learn_from():
    """`churned`/`retained` were refused as "not 0/1"; a label of one outcome failed later with advice about
    subscription terms ("feature table: all 200 labelled rows renewed ... use a longer history"); blank labels
    and repeated ids were taken without a word; a blank time said "feature table.as_of: 150 missing dates"."""
    frame = telco_like(300)
    words = frame.assign(Churn=np.where(frame["Churn"] == "Yes", "Churned", " retained"))
    assert prepare_table(words, "customerID", "Churn", None)[0]["label"].tolist() == (frame["Churn"] == "Yes").tolist()
    blanks = frame.assign(Churn=frame["Churn"].where(frame.index % 10 != 0))
    table, notes = prepare_table(blanks, "customerID", "Churn", None, source="t.csv")
    assert table["label"].isna().sum() == 30
    assert "30 rows have no label in 'Churn' (an unknown outcome): not trained or validated on" in notes
    twice = frame.assign(customerID=frame["customerID"].where(frame.index != 5, "0004-CUST"))
    assert prepare_table(twice, "customerID", "Churn", None)[1] == [
        "dropped 'Notes': 300 distinct text values (an id or free text; e.g. 'call note 0', 'call note 1', "
        "'call note 2')",
        "dropped 'SignupMonth': a timestamp (pass it as --time to split on it)",
        "1 id of 'customerID' is on more than one row (row 4: '0004-CUST', row 5: '0004-CUST'): each account's "
        "rows stay on one side of the split (pass --time if they are snapshots at different dates)",
    ]
    with pytest.raises(DataContractError, match=r"t.csv, label column 'Churn': all 300 labelled rows are 0; a churn "):
        prepare_table(frame.assign(Churn="No"), "customerID", "Churn", None, source="t.csv")
    three = frame.assign(Churn=np.where(frame.index % 3 == 0, "Joined", frame["Churn"]))
    with pytest.raises(
        DataContractError, match=r"100 values are not an outcome \(row 0: 'Joined'.*'Joined' \(100 rows\)"
    ):
        prepare_table(three, "customerID", "Churn", None, source="t.csv")
    undated = frame.assign(SignupMonth=frame["SignupMonth"].where(frame.index % 100 != 0))
    with pytest.raises(DataContractError, match=r"t.csv.SignupMonth: 3 values are missing \(rows 0, 100, 200\)"):
        prepare_table(undated, "customerID", "Churn", "SignupMonth", source="t.csv")


def test_a_crm_status_of_churned_or_active_is_a_label(tmp_path):
    """A CRM export's status column, `Churned`/`Active`, was refused: "459 values are not an outcome ('active')"."""
    frame = telco_like(300)
    churned = frame["Churn"] == "Yes"
    frame.assign(Churn=np.where(churned, "Churned", "Active")).to_csv(tmp_path / "crm.csv", index=False)
    table, _ = prepare_table(read_prepared_table(tmp_path / "crm.csv"), "customerID", "Churn", None)
    assert table["label"].tolist() == churned.astype(int).tolist()


def test_labels_of_public_churn_tables_train_and_a_status_of_three_values_asks_which_is_churn(tmp_path, capsys):
    """BankChurners' `Attrition_Flag` (`Attrited Customer`/`Existing Customer`), UCI's `True.`/`False.` and
    `Left`/`Stayed` were refused as "not an outcome"; IBM telco's `Customer Status` (Churned/Stayed/Joined) was
    refused naming only 'Joined', with no way to say which value is churn: `--churn-value` says it, and the error
    lists every value with its count."""
    frame = telco_like(400, seed=2)
    churned = frame["Churn"] == "Yes"
    flag = np.where(churned, "Attrited Customer", "Existing Customer")
    frame.drop(columns="Churn").assign(Attrition_Flag=flag).to_csv(tmp_path / "bank.csv", index=False)
    config = _cli_config(tmp_path)
    train = ["train", "--id", "customerID", "--config", config]
    code, text = run_cli([*train, "--table", str(tmp_path / "bank.csv"), "--label", "Attrition_Flag"], capsys)
    assert code == 0 and "Validation on held-out rows" in text, text
    status = np.where(churned, "Churned", np.where(frame["tenure"] < 6, "Joined", "Stayed"))
    frame.drop(columns="Churn").assign(**{"Customer Status": status}).to_csv(tmp_path / "ibm.csv", index=False)
    ibm = [*train, "--table", str(tmp_path / "ibm.csv"), "--label", "Customer Status"]
    code, text = run_cli(ibm, capsys)
    counts = pd.Series(status).value_counts()
    assert (
        code == 1
        and (f"label column 'Customer Status': {counts['Joined']} values are not an outcome (row ") in text
        and f"'Joined' ({counts['Joined']} rows)" in text
        and "--churn-value 'Churned'" in text
    ), text
    code, text = run_cli([*ibm, "--churn-value", "churned"], capsys)
    assert code == 0 and "Validation on held-out rows" in text, text
    code, text = run_cli(["train", "--data", str(tmp_path), "--churn-value", "Churned", "--config", config], capsys)
    assert code == 2 and "--churn-value: needs --table" in text, text
    code, text = run_cli([*ibm, "--churn-value", "Left"], capsys)
    assert code == 1 and "no value is 'Left' (--churn-value); its values are 'Stayed' (" in text, text
    uci = frame.assign(Churn=np.where(churned, "True.", "False."))  # the UCI churn table's `Churn?`
    assert prepare_table(uci, "customerID", "Churn", None)[0]["label"].tolist() == churned.astype(int).tolist()
    left = frame.assign(Churn=np.where(churned, "Left", "Stayed"))
    assert prepare_table(left, "customerID", "Churn", None)[0]["label"].tolist() == churned.astype(int).tolist()
    with pytest.raises(DataContractError, match=r"its values are 'Stayed' \(\d+ rows\), 'Gone' .*--churn-value 'Gone'"):
        prepare_table(left.replace({"Churn": {"Left": "Gone"}}), "customerID", "Churn", None)
    coded = frame.assign(Churn=np.where(churned, 1, 2)).astype({"Churn": "float64"})  # 1 churned, 2 stayed
    coded.loc[0, "Churn"] = np.nan  # pandas reads the codes of a column with blanks as 1.0 and 2.0
    table, _ = prepare_table(coded, "customerID", "Churn", None, churn_value="1")
    assert table["label"].iloc[1:].tolist() == churned.iloc[1:].astype(int).tolist() and table["label"].isna()[0]
    table, _ = prepare_table(read_prepared_table(tmp_path / "ibm.csv"), "customerID", "Customer Status", None,
                             churn_value="Churned")  # fmt: skip
    assert table["label"].tolist() == churned.astype(int).tolist()


def test_amounts_and_percents_written_as_text_are_numbers_when_training_and_scoring(tmp_path, capsys):
    """IBM telco's `Total Charges` ('$2,137.25'), `Total Revenue` ('2,351') and a European '€ 1.234,50' were
    dropped as "598 distinct text values (an id or free text)", and '12%' was a category of 30 levels: a model
    without its strongest columns. They are read as numbers, by the decimal mark training read them by at scoring
    too (and by the registered pyfunc): '1.234' of the euro column is a thousand and more, not one and a bit. A
    column of ranges ('$40K - $60K') stays a category, ids stay dropped ('15,634,602' too), and a driver of a
    thousand or more reads 'Total Revenue = 2,351', not '2.35e+03'."""
    rng = np.random.default_rng(5)
    frame = telco_like(600, seed=5)
    monthly = frame.pop("MonthlyCharges")
    total = (frame["tenure"].clip(lower=1) * monthly).round(2)
    yearly = (monthly * 12.5).round(2)
    euros = ["€ " + f"{v:,.2f}".translate(str.maketrans(",.", ".,")) for v in yearly]  # '€ 1.234,50'
    frame = frame.drop(columns=["TotalCharges", "SignupMonth"]).assign(
        **{
            "Total Charges": [f"${v:,.2f}" for v in total],
            "Total Revenue": [f"{v:,.0f}" for v in total * 1.1],
            "Discount": [f"{d}%" for d in rng.integers(0, 30, len(frame))],
            "Yearly Fee": euros,
            "Income": rng.choice(["Less than $40K", "$40K - $60K", "$60K - $80K"], len(frame)),
            "Ref": [f"R-{i:05d}" for i in range(len(frame))],
            "Account No": [f"{15_634_602 + 7 * i:,}" for i in range(len(frame))],  # an id a spreadsheet grouped
            "Credit": [f"USD {v:,.2f}" for v in rng.uniform(500, 30_000, len(frame))],
        }
    )
    frame.loc[3, "Total Charges"] = "-"  # a missing amount, as spreadsheets write one
    table, notes = prepare_table(frame, "customerID", "Churn", None)
    assert table["Total_Charges"].iloc[:3].tolist() == total.iloc[:3].tolist() and np.isnan(table["Total_Charges"][3])
    np.testing.assert_allclose(table["Yearly_Fee"], yearly)
    assert table["Credit"].dtype == "float64" and table["Credit"].notna().all()
    assert table["Discount"].dtype == "float64" and isinstance(table["Income"].dtype, pd.CategoricalDtype)
    assert "Ref" not in table and any(note.startswith("dropped 'Ref'") for note in notes)
    assert "Account_No" not in table and any(note.startswith("dropped 'Account No'") for note in notes)
    read = f"read 'Yearly Fee' as numbers written as text (e.g. {euros[0]!r} is {float(yearly[0])!r}"
    assert f"{read}, with a decimal comma)" in notes
    frame.to_csv(tmp_path / "history.csv", index=False)
    config = _cli_config(tmp_path, tune_trials=0)
    args = ["--id", "customerID", "--config", config]
    code, text = run_cli(["train", "--table", str(tmp_path / "history.csv"), "--label", "Churn", *args], capsys)
    assert code == 0 and "read 'Total Charges' as numbers written as text (e.g. '$" in text, text
    assert "its 1 value without a digit ('-') are taken as missing" in text, text

    book = frame.drop(columns="Churn")
    book.to_csv(tmp_path / "book.csv", index=False)
    numbers = table.drop(columns=["account_id", "label", "as_of", "term_end"])  # the model's names: also taken
    numbers.assign(customerID=book["customerID"]).to_parquet(tmp_path / "book.parquet")  # the amounts as numbers
    scored = {}
    for name in ("book.csv", "book.parquet"):
        out = tmp_path / f"{name}.scores.csv"
        code, text = run_cli(["score", "--table", str(tmp_path / name), "--out", str(out), "--format", "csv", *args],
                             capsys)  # fmt: skip
        assert code == 0, text
        scored[name] = pd.read_csv(out)
    expected = scored["book.parquet"]["churn_probability"]
    pd.testing.assert_series_equal(scored["book.csv"]["churn_probability"], expected)
    drivers = scored["book.csv"]["top_drivers"]
    assert drivers.str.contains(r"Total Revenue = \d,\d{3}\b").any() and not drivers.str.contains("e\\+0").any()

    mlflow.set_tracking_uri(load_settings(config).tracking_uri())
    pyfunc = mlflow.pyfunc.load_model("models:/churn-risk-table@champion")
    np.testing.assert_allclose(pyfunc.predict(book.drop(columns="customerID"))["churn_probability"], expected)
    plain = book.assign(**{"Yearly Fee": [e.removeprefix("€ ") for e in euros]})  # '1.234,50': the dot groups
    plain.to_csv(tmp_path / "plain.csv", index=False)
    out = tmp_path / "plain.scores.csv"
    code, text = run_cli(["score", "--table", str(tmp_path / "plain.csv"), "--out", str(out), "--format", "csv", *args],
                         capsys)  # fmt: skip
    assert code == 0, text
    pd.testing.assert_series_equal(pd.read_csv(out)["churn_probability"], expected)
    whole = book.assign(
        **{"Yearly Fee": [f"{v:,.0f}".replace(",", ".") for v in yearly]}
    )  # '1.277': pandas reads 1.277
    whole.to_csv(tmp_path / "whole.csv", index=False)
    numbers.assign(customerID=book["customerID"], Yearly_Fee=yearly.round()).to_parquet(tmp_path / "whole.parquet")
    for name in ("whole.csv", "whole.parquet"):
        out = tmp_path / f"{name}.scores.csv"
        code, text = run_cli(["score", "--table", str(tmp_path / name), "--out", str(out), "--format", "csv", *args],
                             capsys)  # fmt: skip
        assert code == 0, text
        scored[name] = pd.read_csv(out)["churn_probability"]
    pd.testing.assert_series_equal(scored["whole.csv"], scored["whole.parquet"])
    book.assign(**{"Total Revenue": "12,5"}).to_csv(tmp_path / "odd.csv", index=False)  # not how training wrote it
    code, text = run_cli(["score", "--table", str(tmp_path / "odd.csv"), "--out", str(tmp_path / "o.csv"), *args],
                         capsys)  # fmt: skip
    assert code == 1 and "column 'Total_Revenue': 600 values are not numbers, and the model learnt it as a number " \
        "(row 0: '12,5'" in text, text  # fmt: skip
    assert not (tmp_path / "o.csv").exists()


def test_a_gzipped_csv_trains_and_scores_and_a_csv_not_in_utf8_names_its_line(tmp_path, capsys):
    """A table downloaded as `.csv.gz` (as a data folder's CSV may be) was "unknown format '.gz'"; a CSV a
    spreadsheet saved in its own encoding ('€' as byte 0x80) was "cannot be read ('utf-8' codec can't decode byte
    0x80 in position 0 ...)", naming neither the line nor what to do."""
    frame = telco_like(400, seed=4)
    frame.to_csv(tmp_path / "history.csv.gz", index=False)
    args = ["--id", "customerID", "--config", _cli_config(tmp_path, tune_trials=0)]
    code, text = run_cli(["train", "--table", str(tmp_path / "history.csv.gz"), "--label", "Churn", *args], capsys)
    assert code == 0 and "Validation on held-out rows" in text, text
    frame.drop(columns="Churn").to_csv(tmp_path / "book.csv.gz", index=False)
    out = tmp_path / "scores.csv"
    code, text = run_cli(["score", "--table", str(tmp_path / "book.csv.gz"), "--out", str(out), *args], capsys)
    assert code == 0 and len(pd.read_csv(out)) == 400, text
    frame.assign(Notes="€ 5").to_csv(tmp_path / "excel.csv", index=False, encoding="cp1252")
    with pytest.raises(
        DataContractError, match=r"excel.csv: line 2 is not UTF-8 text: b'0000-CUST,.*; save the file as UTF-8"
    ):
        read_prepared_table(tmp_path / "excel.csv")


def test_a_column_named_in_another_case_or_misspelt_is_suggested(tmp_path, capsys):
    """`--id customerId` was "column 'customerId' not found; columns are [the first 12]", the right one perhaps not
    among them; a table scored with its columns lower-cased listed the model's names (`Monthly_Charges`), not the
    table's (`Monthly Charges`), and not the columns the user meant."""
    frame = telco_like(300).rename(columns={"MonthlyCharges": "Monthly Charges"})
    frame = frame.assign(**{f"extra_{i}": i for i in range(12)})  # the id comes after the 12 columns listed
    frame = frame[[*frame.columns[1:], "customerID"]]
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = _cli_config(tmp_path)
    train = ["train", "--table", str(tmp_path / "t.csv"), "--label", "Churn", "--config", config]
    code, text = run_cli([*train, "--id", "customerId"], capsys)
    assert code == 1 and "column 'customerId' (did you mean 'customerID'?) not found; columns are" in text, text
    code, text = run_cli([*train, "--id", "customerID", "--time", "SignupMnth"], capsys)
    assert code == 1 and "column 'SignupMnth' (did you mean 'SignupMonth'?) not found" in text, text
    assert run_cli([*train, "--id", "customerID"], capsys)[0] == 0
    frame.rename(columns=str.lower).to_csv(tmp_path / "lower.csv", index=False)
    score = ["score", "--table", str(tmp_path / "lower.csv"), "--config", config, "--out", str(tmp_path / "s.csv")]
    code, text = run_cli([*score, "--id", "customerId"], capsys)
    assert code == 1 and "id column 'customerId' (did you mean 'customerid'?) not found" in text, text
    code, text = run_cli([*score, "--id", "customerid"], capsys)
    assert code == 1 and "lower.csv: 3 columns the model was trained on are missing, e.g. 'Contract' (did you mean " \
        "'contract'?), 'Monthly Charges' (did you mean 'monthly charges'?), 'TotalCharges' (did you mean " \
        "'totalcharges'?) (model" in text, text  # fmt: skip


def test_scoring_a_table_says_what_is_wrong_with_it_in_its_own_terms(tmp_path, capsys):
    """An empty table was "No account has a term active at the scoring date"; a column missing from a table
    scored with its own model was advice to use another model; ids on two rows were scored without a word."""
    frame = telco_like(300)
    frame.to_parquet(tmp_path / "t.parquet")
    config = _cli_config(tmp_path)
    code, text = run_cli(["train", "--table", str(tmp_path / "t.parquet"), "--id", "customerID", "--label", "Churn",
                          "--config", config], capsys)  # fmt: skip
    assert code == 0, text

    def score(book: pd.DataFrame, name: str) -> tuple[int, str]:
        book.to_parquet(tmp_path / name)
        args = ["score", "--table", str(tmp_path / name), "--id", "customerID", "--config", config]
        return run_cli([*args, "--out", str(tmp_path / f"scores_{name}")], capsys)

    code, text = score(frame.iloc[:0], "empty.parquet")
    assert code == 1 and "empty.parquet: the table has no rows; nothing to score." in text, text
    code, text = score(frame.drop(columns="tenure"), "short.parquet")
    assert code == 1 and "short.parquet: 1 column the model was trained on is missing, e.g. 'tenure' (model" in text
    code, text = score(frame.assign(customerID=frame["customerID"].where(frame.index != 1, "0000-CUST")), "d.parquet")
    assert code == 0 and "1 id of 'customerID' is on more than one row (row 0: '0000-CUST', row 1: '0000-CUST')" in text
    assert "Scored 300 rows of d.parquet" in text
    # every row was `adopt`, a stage nobody computed: nothing here says how long an account has been a customer
    assert pd.read_parquet(tmp_path / "scores_d.parquet")["lifecycle_stage"].isna().all()
    assert "d.parquet: lifecycle_stage is empty: the table has no tenure_days or days_to_renewal column" in text
    assert "never expand" not in text  # said once: the stage is empty, not only never expand
    blank = frame.assign(tenure=None, Contract=None, MonthlyCharges=None, TotalCharges=" ")  # every row one score
    code, text = score(blank, "blank.parquet")
    assert code == 1 and "blank.parquet: every column the model scores on is empty in all 300 rows (" in text, text
    code, text = score(frame.head(1), "one.parquet")
    assert code == 0 and "Scored 1 row of one.parquet" in text, text
    assert sorted(p.name for p in tmp_path.glob("scores_*")) == ["scores_d.parquet", "scores_one.parquet"]


def test_a_table_with_tenure_and_days_to_renewal_gets_its_lifecycle_stage(tmp_path, capsys):
    """A prepared table with the feature table's `tenure_days` and `days_to_renewal` (and seat growth) gets the
    LAER stage from them, as a data folder does; a row missing one of them gets none, and a warning says so."""
    rng = np.random.default_rng(5)
    frame = telco_like(400).drop(columns=["Notes", "SignupMonth"])
    frame["tenure_days"] = frame["tenure"] * 30.0
    frame["days_to_renewal"] = rng.integers(0, 365, len(frame)).astype(float)
    frame["seat_change_last_renewal"] = rng.choice([0.0, 0.5], len(frame))
    frame.to_parquet(tmp_path / "t.parquet")
    config = _cli_config(tmp_path)
    args = ["--id", "customerID", "--config", config]
    code, text = run_cli(["train", "--table", str(tmp_path / "t.parquet"), "--label", "Churn", *args], capsys)
    assert code == 0, text
    book = frame.drop(columns="Churn").assign(days_to_renewal=frame["days_to_renewal"].where(frame.index != 3))
    book.to_parquet(tmp_path / "book.parquet")
    out = tmp_path / "scores.parquet"
    code, text = run_cli(["score", "--table", str(tmp_path / "book.parquet"), "--out", str(out), *args], capsys)
    assert code == 0 and "lifecycle_stage is empty for 1 row whose tenure_days or days_to_renewal is blank" in text
    stages = pd.read_parquet(out)["lifecycle_stage"]
    expected = np.select(
        [book["days_to_renewal"] <= 90, book["days_to_renewal"].isna(), book["tenure_days"] < 120,
         book["seat_change_last_renewal"] >= 0.1],
        ["renew", None, "land", "expand"], default="adopt",
    )  # fmt: skip
    assert stages.tolist() == pd.Series(expected, dtype=str).tolist()
    assert stages.isna().sum() == 1 and set(stages.dropna()) == {"land", "adopt", "expand", "renew"}
    assert "never expand" not in text


def test_a_table_without_seat_growth_or_utilisation_is_told_it_never_gets_expand(tmp_path, capsys):
    """Seat growth and utilisation are what make an account `expand`: a table with neither got only land, adopt
    and renew, silently, as if no account had grown."""
    rng = np.random.default_rng(6)
    frame = telco_like(300).drop(columns=["Notes", "SignupMonth"])
    frame["tenure_days"] = frame["tenure"] * 30.0
    frame["days_to_renewal"] = rng.integers(0, 365, len(frame)).astype(float)
    frame.to_parquet(tmp_path / "t.parquet")
    args = ["--id", "customerID", "--config", _cli_config(tmp_path)]
    code, text = run_cli(["train", "--table", str(tmp_path / "t.parquet"), "--label", "Churn", *args], capsys)
    assert code == 0, text
    out = tmp_path / "scores.parquet"
    code, text = run_cli(["score", "--table", str(tmp_path / "t.parquet"), "--out", str(out), *args], capsys)
    assert (
        code == 0
        and "t.parquet: lifecycle_stage is never expand: the table has no seat_change_last_renewal or "
        "user_utilisation_30d column"
        in text
    ), text
    assert set(pd.read_parquet(out)["lifecycle_stage"]) == {"land", "adopt", "renew"}


def test_the_registered_model_of_a_table_takes_the_tables_own_column_names(tmp_path, capsys):
    """`churn train --table` renames `Monthly Charges` to `Monthly_Charges` (LightGBM's rule) and `churn score
    --table` takes either name, but the registered pyfunc's signature listed only the renamed one: MLflow
    refused the very table the model was trained on ("Model is missing inputs ['Monthly_Charges']"), and with the
    renamed names still refused its whole numbers ("Can not safely convert int64 to float64"), its numbers as
    text with blanks and its pandas categories."""
    frame = telco_like(400).rename(columns={"MonthlyCharges": "Monthly Charges", "TotalCharges": "Total: Charges"})
    frame.to_parquet(tmp_path / "t.parquet")
    config = _cli_config(tmp_path)
    args = ["--id", "customerID", "--config", config]
    code, text = run_cli(["train", "--table", str(tmp_path / "t.parquet"), "--label", "Churn", *args], capsys)
    assert code == 0 and "renamed 'Monthly Charges' -> 'Monthly_Charges'" in text, text
    out = tmp_path / "scores.parquet"
    code, text = run_cli(["score", "--table", str(tmp_path / "t.parquet"), "--out", str(out), *args], capsys)
    assert code == 0, text
    expected = pd.read_parquet(out)["churn_probability"].to_numpy()
    drivers = pd.read_parquet(out)["top_drivers"]  # in the table's words, not LightGBM's
    assert drivers.str.contains("Monthly Charges = ").any() and not drivers.str.contains("Monthly_Charges").any()

    mlflow.set_tracking_uri(load_settings(config).tracking_uri())
    pyfunc = mlflow.pyfunc.load_model("models:/churn-risk-table@champion")
    table = frame.drop(columns=["customerID", "Churn"])
    np.testing.assert_allclose(pyfunc.predict(table)["churn_probability"].to_numpy(), expected)
    contributions = pyfunc.predict(table, params={"output": "contributions"})  # named as top_drivers name them
    assert {"Monthly Charges", "Total: Charges", "tenure", "bias"} <= set(contributions.columns)
    assert not {"Monthly_Charges", "Total__Charges"} & set(contributions.columns)
    log_odds = pyfunc.predict(table, params={"output": "log_odds"})["churn_log_odds"].to_numpy()
    np.testing.assert_allclose(contributions.sum(axis=1).to_numpy(), log_odds, atol=1e-9)
    renamed = table.rename(columns={"Monthly Charges": "Monthly_Charges", "Total: Charges": "Total__Charges"})
    np.testing.assert_allclose(pyfunc.predict(renamed)["churn_probability"].to_numpy(), expected)
    categories = table.astype({"Contract": "category"})
    np.testing.assert_allclose(pyfunc.predict(categories)["churn_probability"].to_numpy(), expected)
    with pytest.raises(ChurnError, match=r"1 of the model's 4 columns is missing: 'Monthly Charges' \(or "):
        pyfunc.predict(table.drop(columns="Monthly Charges"))
    with pytest.raises(MlflowException, match=r"Model is missing inputs \['tenure'\]"):  # the schema still checks
        pyfunc.predict(table.drop(columns="tenure"))
    assert {"Monthly Charges", "Total: Charges"} <= set(pyfunc.input_example.columns)  # a row of the table


def test_a_csv_header_is_read_as_a_data_folder_reads_one(tmp_path):
    """`customerID, tenure, Churn` (a space after each comma) named columns ' tenure' and ' Churn', so `--label
    Churn` was "not found"; a column named twice was renamed `x.1` by pandas and trained as another feature; a
    file separated by semicolons was "column(s) ['id', 'Churn'] not found; columns are ['id;tenure;Churn']"."""
    (tmp_path / "spaced.csv").write_text("\ufeffcustomerID, tenure , Churn\n007,1,Yes\n008,2,No\n")
    frame = read_prepared_table(tmp_path / "spaced.csv", text_columns=["customerID"])
    assert list(frame.columns) == ["customerID", "tenure", "Churn"] and frame["customerID"].tolist() == ["007", "008"]
    (tmp_path / "twice.csv").write_text("id,x,x,Churn\n1,1,2,Yes\n")
    with pytest.raises(DataContractError, match=r"twice.csv: the header names column 'x' twice"):
        read_prepared_table(tmp_path / "twice.csv")
    (tmp_path / "semicolons.csv").write_text("id;tenure;Churn\n1;2;Yes\n")  # a European spreadsheet's CSV
    with pytest.raises(
        DataContractError, match=r"its header is one column, 'id;tenure;Churn': the file looks separated by ';'"
    ):
        read_prepared_table(tmp_path / "semicolons.csv")


def test_a_time_column_that_cannot_split_out_of_time_is_named():
    """One date for every row was "feature table.as_of: all 300 labelled rows share the date"; numbers in
    the time column went through a pandas path it deprecates (numbers will be read as epochs)."""
    frame = telco_like(300)
    with pytest.raises(DataContractError, match=r"t.csv.SignupMonth: all labelled rows share the date 2024-01-01"):
        prepare_table(frame.assign(SignupMonth="2024-01-01"), "customerID", "Churn", "SignupMonth", source="t.csv")
    years = frame.assign(SignupMonth=2020 + frame.index % 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table, _ = prepare_table(years, "customerID", "Churn", "SignupMonth", source="t.csv")
    assert sorted(table["as_of"].dt.year.unique()) == [2020, 2021, 2022]
    with pytest.raises(DataContractError, match=r"t.csv.SignupMonth: 300 values are not ISO-8601 dates"):
        prepare_table(
            frame.assign(SignupMonth=1.7e9 + frame.index), "customerID", "Churn", "SignupMonth", source="t.csv"
        )


def test_a_column_recorded_with_the_outcome_is_warned_about():
    """IBM's full telco export has `Churn Value` (0/1) and `Churn Reason` beside `Churn Label`: trained on,
    they gave a validation AUC of 1.000 and a champion, without a word."""
    frame = telco_like(600)
    churned = frame["Churn"] == "Yes"
    leaky = frame.assign(**{"Churn Value": churned.astype(int), "Reason": np.where(churned, "Price", None)})
    notes = prepare_table(leaky, "customerID", "Churn", None)[1]
    assert [n.split(":")[0] for n in notes if "alone separates" in n] == [
        "'Churn_Value' alone separates churned from retained rows (AUC 1.000)",
        "'Reason' alone separates churned from retained rows (AUC 1.000)",
    ]
    assert not any("alone separates" in n for n in prepare_table(frame, "customerID", "Churn", None)[1])
    small = frame.head(45).assign(owner=[f"csm{i}" for i in range(45)])  # a level per row (kept: <= 50 levels)
    assert small["Churn"].eq("Yes").sum() >= 10
    assert not any("alone separates" in n for n in prepare_table(small, "customerID", "Churn", None)[1])


def test_numbers_in_a_categorical_column_match_its_levels_as_training_wrote_them():
    """A CSV to score reads a category column of numbers as int or float: `2` and `4.0` are the levels they
    were when the training file held them as text with words beside them."""
    levels = ["2", "4.0", "gold"]
    got = as_trained(pd.Series([2.0, 4.0, np.nan, 5.0]), "tier", levels, "t.csv")
    assert got.tolist() == ["2", "4.0", pd.NA, "5"]
    assert as_trained(pd.Series([2, 5]), "tier", levels, "t.csv").tolist() == ["2", "5"]


def test_duration_columns_are_days_and_nested_columns_are_dropped_with_a_note(tmp_path):
    """A parquet duration read as text ('3 days 04:00:00'): a category level per value, or dropped as "an id or
    free text"; lists and records read as the text of arrays and dicts, category levels the model learnt."""
    frame = telco_like(400)
    table = pa.Table.from_pandas(frame, preserve_index=False).append_column(
        "onboarding", pa.array(np.arange(400) * 3_600 + 1, pa.duration("s"))
    )
    table = table.append_column("tags", pa.array([["a", "b"][: i % 3] for i in range(400)], pa.list_(pa.string())))
    table = table.append_column("owner", pa.array([{"team": "x", "seat": i % 2} for i in range(400)]))
    pq.write_table(table, tmp_path / "t.parquet")
    read = read_prepared_table(tmp_path / "t.parquet")
    prepared, notes = prepare_table(read, "customerID", "Churn", None)
    days = (np.arange(400) * 3_600 + 1) / 86_400
    np.testing.assert_array_equal(prepared["onboarding"].to_numpy(), days)
    assert "dropped 'tags': it holds lists (a nested parquet column), not one value per row" in notes
    assert "dropped 'owner': it holds records (a nested parquet column), not one value per row" in notes
    assert "tags" not in prepared and "owner" not in prepared
    np.testing.assert_array_equal(as_trained(read["onboarding"], "onboarding", None, "--table").to_numpy(), days)


def test_a_table_too_small_or_blank_to_train_on_says_how_many_rows_it_has_and_needs(tmp_path, capsys):
    """A 4-row table stopped with "internal error: ValueError: The test_size = 1 should be greater or equal to the
    number of classes = 2" (scikit-learn's split); ids repeated on every row with "n_splits=5 greater than the
    number of groups: 3"; 10 or 30 rows, or blank feature columns, trained and promoted a model that ranks no one."""
    frame = telco_like(300).drop(columns=["Notes", "SignupMonth"])
    churned = frame["Churn"] == "Yes"
    four = pd.concat([frame[churned].head(2), frame[~churned].head(2)])
    four.to_csv(tmp_path / "four.csv", index=False)
    args = ["--id", "customerID", "--label", "Churn", "--config", _cli_config(tmp_path)]
    code, text = run_cli(["train", "--table", str(tmp_path / "four.csv"), *args], capsys)
    assert code == 1 and "internal error" not in text, text
    assert (
        "four.csv: 4 labelled rows: 2 churned and 2 retained accounts; training needs at least 25 of each, so that "
        "the 20% that validate (model.validation_share) hold at least 5 of each" in text
    )

    def refused(table: pd.DataFrame, time_col: str | None = None, share: float = 0.2) -> str:
        table.to_parquet(tmp_path / "t.parquet")
        with pytest.raises(DataContractError) as err:
            train_prepared_table(tmp_path / "t.parquet", "customerID", "Churn", time_col, _settings(tmp_path,
                                 validation_share=share))  # fmt: skip
        return str(err.value)

    few = pd.concat([frame[churned].head(24), frame[~churned].head(100)])
    assert "124 labelled rows: 24 churned and 100 retained accounts; training needs at least 25 of each" in refused(few)
    # a larger validation share needs fewer to validate on, but the rest must still hold 10 of each to learn from
    fifteen = pd.concat([frame[churned].head(15), frame[~churned].head(100)])
    assert "15 churned and 100 retained accounts; training needs at least 20 of each" in refused(fifteen, share=0.5)
    three = frame.assign(customerID=[f"c{i % 3}" for i in range(len(frame))])
    assert (
        "300 labelled rows of 3 accounts (ids of 'customerID' repeat: a split keeps an account's rows on one side): "
        "3 churned and 3 retained accounts; training needs at least 25 of each"
    ) in refused(three)
    dated = few.assign(month=pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(few)) % 4 * 30, unit="D"))
    assert "124 labelled rows: 24 churned and 100 retained rows; training needs" in refused(dated, "month")
    blank = frame.assign(tenure=np.nan, Contract=None, MonthlyCharges=np.nan, TotalCharges=" ")
    assert refused(blank) == (
        "t.parquet: no usable feature columns besides 'customerID' and 'Churn'; dropped 'tenure': empty in every "
        "row; dropped 'Contract': empty in every row; dropped 'MonthlyCharges': empty in every row; dropped "
        "'TotalCharges': empty in every row."
    )
    table, notes = prepare_table(frame.assign(tenure=np.nan), "customerID", "Churn", None)
    assert "tenure" not in table.columns and "dropped 'tenure': empty in every row" in notes


def test_a_table_whose_features_are_all_constant_is_refused_naming_them(tmp_path, capsys, monkeypatch):
    """Columns that are the same in every row (or blank, dropped) trained a model that gives every account the
    base rate; `churn train --table` refuses, naming each column and its one value, before any training."""
    monkeypatch.chdir(tmp_path)
    frame = telco_like(300)[["customerID", "Churn"]].assign(plan="pro", seats=10, region=None)
    frame.to_csv(tmp_path / "flat.csv", index=False)
    code, text = run_cli(["train", "--table", "flat.csv", "--id", "customerID", "--label", "Churn"], capsys)
    assert code == 1, text
    assert (
        "flat.csv: every feature column is the same in all 300 labelled rows: 'plan' (constant: every row is 'pro'), "
        "'seats' (constant: every row is 10); a model cannot learn who churns from columns that do not differ"
    ) in text
    table, _ = simulate_feature_table(150, seed=2)
    features = [c for c in table.columns if c not in ("account_id", "as_of", "label", "term_end")]
    flat = table.assign(**dict.fromkeys(features, 0.0))  # a feature table built from events
    flat["segment"] = pd.Categorical(["smb"] * len(flat))
    with pytest.raises(DataContractError, match=r"every feature column is the same in all [\d,]+ labelled rows: "):
        train_model(flat, _settings(tmp_path))
    varying = flat.assign(tenure_days=table["tenure_days"])  # one column that varies is enough to try
    assert train_model(varying, _settings(tmp_path, tune_trials=0)).model is not None


def test_a_feature_table_without_a_known_outcome_says_so_not_that_its_features_are_constant(tmp_path):
    """Data whose every snapshot is censored (terms renewing after the data ends) was refused as "every feature
    column is the same in all 0 labelled rows", which sent the user looking at the features, not the history."""
    table, _ = simulate_feature_table(150, seed=2)
    with pytest.raises(DataContractError, match=r"no labelled rows .*use a longer history or a later --data-end"):
        train_model(table.assign(label=np.nan), _settings(tmp_path))
