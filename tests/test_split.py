"""The out-of-time split never lets a training label be observed after the validation start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.errors import DataContractError
from models.split import (
    MIN_VALID_CLASS_ROWS,
    out_of_time_split,
    rolling_origin_folds,
    sample_folds,
    stratified_folds,
    stratified_split,
)
from tests.churn_sim import simulate_feature_table
from tests.helpers import run_cli, tiny_tables, write_tables


def _random_table(seed: int, rows: int, months: int, censored_share: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, months, rows) * 30, unit="D")
    term_end = as_of + pd.to_timedelta(rng.integers(1, 400, rows), unit="D")
    labels = pd.array(rng.integers(0, 2, rows), dtype="Int8")
    labels[rng.random(rows) < censored_share] = pd.NA
    return pd.DataFrame(
        {
            "account_id": [f"a{i % 37}" for i in range(rows)],
            "as_of": as_of,
            "label": labels,
            "term_end": term_end,
            "x": rng.normal(size=rows),
        },
        index=pd.RangeIndex(1000, 1000 + rows),
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    share=st.floats(0.05, 0.6),
    grace=st.integers(0, 90),
    months=st.integers(2, 40),
    censored=st.floats(0.0, 0.5),
)
def test_no_training_label_is_observed_at_or_after_the_validation_start(seed, share, grace, months, censored):
    table = _random_table(seed, 400, months, censored)
    try:
        split = out_of_time_split(table, validation_share=share, grace_days=grace)
    except DataContractError:
        return  # too little history for this draw is a legitimate, explained refusal
    train, valid = table.loc[split.train_index], table.loc[split.valid_index]
    assert (train["term_end"] + pd.Timedelta(days=grace) < split.cutoff).all()
    assert (train["as_of"] < split.cutoff).all()
    assert (valid["as_of"] >= split.cutoff).all()
    assert set(split.train_index).isdisjoint(split.valid_index)
    assert train["label"].notna().all() and valid["label"].notna().all()
    labelled = table[table["label"].notna()]
    # the validation block is the latest dates holding at most `share` of labelled rows (one date at least)
    assert len(valid) <= share * len(labelled) or valid["as_of"].nunique() == 1
    earlier = labelled[labelled["as_of"] < split.cutoff]
    if len(earlier):
        previous_date = earlier["as_of"].max()
        assert (labelled["as_of"] >= previous_date).sum() > share * len(labelled)


def test_default_share_leaves_about_the_last_fifth_of_labelled_history_for_validation():
    table, _ = simulate_feature_table(300, seed=3)
    split = out_of_time_split(table, validation_share=0.2, grace_days=30)
    labelled = table["label"].notna().sum()
    assert 0.12 * labelled <= len(split.valid_index) <= 0.2 * labelled
    assert split.describe()["validation_start"] == split.cutoff.date().isoformat()
    # every row dropped by the gap has a label observed too late, and is otherwise eligible
    gap = table[table["label"].notna() & (table["as_of"] < split.cutoff)].drop(index=split.train_index)
    assert len(gap) == split.details["gap_rows_dropped"] > 0
    assert (gap["term_end"] + pd.Timedelta(days=30) >= split.cutoff).all()


def test_censored_rows_never_train_or_validate():
    table, _ = simulate_feature_table(300, seed=4)
    split = out_of_time_split(table, validation_share=0.2, grace_days=30)
    censored = set(table.index[table["label"].isna()])
    assert censored, "the simulation should censor the latest terms"
    assert censored.isdisjoint(split.train_index) and censored.isdisjoint(split.valid_index)


def test_a_single_snapshot_date_is_refused_with_the_date_named():
    table = _random_table(1, 100, 1, 0.0)
    with pytest.raises(DataContractError, match=r"share the date 2022-01-01"):
        out_of_time_split(table, validation_share=0.2, grace_days=30)


def test_history_shorter_than_the_gap_is_refused_with_the_reason():
    table = _random_table(2, 200, 3, 0.0)
    table["term_end"] = table["as_of"] + pd.Timedelta(days=365)
    with pytest.raises(DataContractError, match=r"no training rows.*term_end \+ 30 grace days"):
        out_of_time_split(table, validation_share=0.2, grace_days=30)


def test_one_class_in_validation_is_refused():
    table = _random_table(3, 300, 12, 0.0)
    table.loc[table["as_of"] >= table["as_of"].max(), "label"] = 0
    last = table["as_of"].max().date()
    with pytest.raises(
        DataContractError, match=rf"validation rows \(snapshots {last} to {last}\) hold only one class \(0 churned"
    ):
        out_of_time_split(table, validation_share=0.05, grace_days=0)


def test_one_class_in_training_names_the_rows_the_gap_left_out():
    """A tiny book whose 3 churners all churn in March: every churned snapshot before the validation start
    waits for an outcome known only after it. The error said 'training rows (snapshots before 2025-02-01) hold
    only one class (0 churned, 90 renewed)' of a table with 27 churned snapshots before that date."""
    dates = pd.date_range("2024-06-01", "2025-03-01", freq="MS")
    table = pd.DataFrame(
        [(f"a{i}", day, int(i < 3), pd.Timestamp("2025-03-09") if i < 3 else day + pd.Timedelta(days=20))
         for day in dates for i in range(10)],
        columns=["account_id", "as_of", "label", "term_end"],
    )  # fmt: skip
    with pytest.raises(DataContractError) as raised:
        out_of_time_split(table, validation_share=0.2, grace_days=30)
    said = str(raised.value)
    assert "training rows (snapshots before 2025-02-01 whose outcome is known by then) hold only one class" in said
    assert "(0 churned, 49 renewed)" in said
    assert "31 more snapshots before it (24 churned) have outcomes known only after it" in said, said
    assert "term_end + 30 grace days" in said


@pytest.mark.parametrize(
    ("label", "message"), [(0, "renewed: the data holds no churned"), (1, "churned: the data holds no renewed")]
)
def test_a_history_with_one_outcome_only_says_so(label: int, message: str):
    """It used to blame the history's length or model.validation_share ("training rows hold only one class")."""
    table = _random_table(3, 300, 12, 0.0)
    table["label"] = label
    with pytest.raises(DataContractError, match=rf"all [\d,]+ labelled rows {message} example"):
        out_of_time_split(table, validation_share=0.2, grace_days=0)


def test_no_labels_at_all_is_refused():
    table = _random_table(4, 50, 6, 1.0)
    with pytest.raises(DataContractError, match=r"no labelled rows \(50 rows"):
        out_of_time_split(table, validation_share=0.2, grace_days=30)


def test_stratified_split_keeps_repeated_accounts_on_one_side_and_the_churn_rate():
    table = _random_table(5, 1_000, 12, 0.1)
    split = stratified_split(table, validation_share=0.2, seed=7)
    train_ids = set(table.loc[split.train_index, "account_id"])
    valid_ids = set(table.loc[split.valid_index, "account_id"])
    assert split.kind == "stratified_grouped" and train_ids.isdisjoint(valid_ids)
    again = stratified_split(table, validation_share=0.2, seed=7)
    assert split.valid_index.equals(again.valid_index)


def test_stratified_split_without_repeats_matches_the_requested_share_and_rate():
    table = _random_table(6, 1_000, 12, 0.0)
    table["account_id"] = [f"u{i}" for i in range(len(table))]
    split = stratified_split(table, validation_share=0.25, seed=1)
    assert split.kind == "stratified" and len(split.valid_index) == 250
    rate = table["label"].astype(float)
    assert abs(rate[split.valid_index].mean() - rate[split.train_index].mean()) < 0.01


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    folds=st.integers(1, 6),
    grace=st.integers(0, 90),
    months=st.integers(2, 40),
    censored=st.floats(0.0, 0.5),
)
def test_rolling_origin_folds_never_let_a_validation_period_label_train(seed, folds, grace, months, censored):
    table = _random_table(seed, 600, months, censored)
    result = rolling_origin_folds(table, n_folds=folds, grace_days=grace)
    assert len(result) <= folds
    previous_cut = None
    for split in result.splits:
        train, valid = table.loc[split.train_index], table.loc[split.valid_index]
        # every training outcome was observed before the fold's validation period starts
        assert (train["term_end"] + pd.Timedelta(days=grace) < split.cutoff).all()
        assert (train["as_of"] < split.cutoff).all() and (valid["as_of"] >= split.cutoff).all()
        assert train["label"].notna().all() and valid["label"].notna().all()
        assert valid["label"].astype(int).value_counts().min() >= MIN_VALID_CLASS_ROWS
        if previous_cut is not None:
            assert split.cutoff > previous_cut
        previous_cut = split.cutoff
    # validation blocks are consecutive periods: no row validates twice
    validated = [i for s in result.splits for i in s.valid_index]
    assert len(validated) == len(set(validated))


def test_rolling_origin_folds_cover_the_later_history_in_equal_blocks():
    table, _ = simulate_feature_table(300, seed=3)
    result = rolling_origin_folds(table, n_folds=3, grace_days=30)
    assert len(result) == 3 and result.kind == "rolling_origin" and not result.notes
    sizes = [len(s.valid_index) for s in result.splits]
    assert max(sizes) < 2 * min(sizes)
    train_sizes = [len(s.train_index) for s in result.splits]
    assert train_sizes == sorted(train_sizes)  # expanding window
    last = result.splits[-1]
    assert table.loc[last.valid_index, "as_of"].max() == table.loc[table["label"].notna(), "as_of"].max()


def test_thin_history_gives_fewer_folds_with_a_note_saying_what_is_missing():
    table, _ = simulate_feature_table(40, seed=1, years=2.0)
    result = rolling_origin_folds(table, n_folds=5, grace_days=30)
    assert len(result) < 5
    assert result.notes and all("left out" in n or "CV cut" in n for n in result.notes)
    assert any("needs 10 of each" in n or "needs 5 of each" in n for n in result.notes)


def test_stratified_folds_partition_the_rows_and_keep_an_accounts_rows_together():
    table = _random_table(4, 500, 12, 0.0)
    result = stratified_folds(table, n_folds=4, seed=0)
    assert len(result) == 4 and result.splits[0].kind == "stratified_grouped"
    validated = np.concatenate([np.asarray(s.valid_index) for s in result.splits])
    assert sorted(validated) == sorted(table.index)
    for split in result.splits:
        assert set(table.loc[split.train_index, "account_id"]).isdisjoint(table.loc[split.valid_index, "account_id"])
    few = table.assign(label=pd.array([1] * 6 + [0] * (len(table) - 6), dtype="Int8"))
    thin = stratified_folds(few, n_folds=4, seed=0)
    assert len(thin) == 0 and "6 churned" in thin.notes[0]


def test_sampled_folds_keep_whole_accounts_and_the_fold_dates():
    table, _ = simulate_feature_table(400, seed=6)
    folds = rolling_origin_folds(table, n_folds=3, grace_days=30)
    sampled = sample_folds(folds, table, max_rows=3_000, seed=0)
    assert sampled is not folds and "tuned on" in sampled.notes[0]
    kept = set()
    for full, part in zip(folds.splits, sampled.splits, strict=False):
        assert part.cutoff == full.cutoff and set(part.valid_index) <= set(full.valid_index)
        kept |= set(part.train_index) | set(part.valid_index)
    accounts = set(table.loc[list(kept), "account_id"])
    rows_of_accounts = table.index[table["account_id"].isin(accounts) & table["label"].notna()]
    used = {i for s in folds.splits for i in (*s.train_index, *s.valid_index)}
    assert kept == set(rows_of_accounts) & used
    assert sample_folds(folds, table, max_rows=10**7, seed=0) is folds


def test_a_stratified_split_of_a_table_with_one_churned_row_says_so():
    """One churned row made scikit-learn's stratified split fail: `churn train --table` showed an internal error."""
    table = _random_table(6, 30, 1, 0.0).assign(label=0)
    table.loc[table.index[0], "label"] = 1
    table["account_id"] = [f"u{i}" for i in range(len(table))]
    with pytest.raises(DataContractError, match=r"labelled rows hold 1 churned and 29 renewed; the table has too few"):
        stratified_split(table, validation_share=0.2, seed=1)


def _weekly_book(directory: Path) -> Path:
    """Weekly terms with logins: 26 accounts that renew every week, 14 that leave in the week of the 1st of a
    month from March 2023 to April 2024, none after; monthly snapshots then validate on renewals only."""
    weeks = pd.date_range("2023-01-02", "2024-12-30", freq="7D")
    leaving = pd.date_range("2023-03-01", periods=14, freq="MS")
    accounts, terms, logins = [], [], []
    for i in range(40):
        account = f"A{i:02d}"
        accounts.append({"account_id": account, "created_at": weeks[0]})
        last = weeks[weeks < leaving[i]].max() if i < len(leaving) else weeks[-1]
        for start in weeks[weeks <= last]:
            terms.append({"account_id": account, "start_date": start, "end_date": start + pd.Timedelta(days=7)})
            logins += [{"account_id": account, "ts": start + pd.Timedelta(hours=h)} for h in (10, 58)]
    tables = {"accounts": accounts, "subscriptions": terms, "logins": logins}
    return write_tables(directory, {name: pd.DataFrame(rows) for name, rows in tables.items()}, "parquet")


def test_a_one_class_side_under_too_sparse_snapshots_names_the_cadence(tmp_path: Path, capsys) -> None:
    """Weekly terms under monthly snapshots: `train` and `compare` failed with "validation rows ... hold only one
    class ...; use a longer history or change model.validation_share", and only the warning of `compare` named
    `features.cadence: weekly`."""
    data = _weekly_book(tmp_path / "data")
    config = tmp_path / "config.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\nmodel:\n  tune_trials: 0\n")
    out = tmp_path / "compare"
    for command in (["train"], ["compare", "--out", str(out)]):
        code, said = run_cli([*command, "--data", str(data), "--config", str(config)], capsys)
        assert code != 0, said
        error = said.split("error: ")[1]
        assert error.startswith("validation rows (snapshots"), said
        assert "hold only one class (0 churned" in error and "set features.cadence: weekly" in error, said
        assert "longer history" not in error
    assert not out.exists()


def test_a_book_whose_every_outcome_is_censored_says_so_in_train_and_compare(tmp_path: Path, capsys) -> None:
    """Every term running past the end of the data: `train` blamed the features ("every feature column is the same
    in all 0 labelled rows") and `compare` said "no labelled rows (0 rows, ...)" of a book of snapshots."""
    tables = tiny_tables()
    tables["subscriptions"] = pd.DataFrame(
        {"account_id": ["A", "B", "C"], "start_date": ["2023-01-01", "2023-02-01", "2023-06-01"],
         "end_date": ["2025-06-01"] * 3, "seats": [5, 20, 100]}
    )  # fmt: skip
    data = write_tables(tmp_path / "data", tables)
    config = tmp_path / "config.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\nmodel:\n  tune_trials: 0\n")
    said_by = {}
    for command in (["train"], ["compare", "--out", str(tmp_path / "compare")]):
        code, said = run_cli([*command, "--data", str(data), "--config", str(config)], capsys)
        assert code == 1, said
        said_by[command[0]] = said.split("error: ")[1]
    assert said_by["train"] == said_by["compare"], said_by
    assert said_by["train"].startswith("feature table: no labelled rows (") and "(0 rows" not in said_by["train"]
