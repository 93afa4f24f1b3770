"""The `churn train` stage: tune, fit, evaluate out of time against two baselines, log, register, gate.

The labelled rows are split out of time: the latest `validation_share` validates, and nothing
that learns — the hyperparameter search (cross-validation folds inside the earlier rows), the
tree count, the calibrator used for the validation probabilities — sees them. The deployed
model is then refitted on every labelled row and calibrated on out-of-sample scores of models
trained like it (see models/risk_model.py).

One MLflow run per training holds everything needed to trust or reject the model later: the
parameters and configuration files, the training table (a dataset input, with its fingerprint),
the search (one nested run per trial, the chosen setting and its CV score with spread), metrics of the model and of the
logistic and rule baselines on the same validation rows (overall, per segment, calibration per
risk band), plots, the feature list with each feature's health category, the validation
predictions, and the model.

Prepared per-account tables (`churn train --table`) are turned into the feature-table format
first, so both paths share one implementation.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import DataContractError, counted, listed, named
from features.feature_set import FeatureSet
from features.progress import report
from features.spelling import did_you_mean
from features.table import (
    ACCOUNT_ID,
    AS_OF,
    DATA_DAYS_COLUMNS,
    LABEL,
    META_COLUMNS,
    TERM_END,
    categorical_columns,
    feature_columns,
    product_names,
    trim_ids,
)
from models.baselines import fit_logistic_baseline
from models.categories import ml_categories
from models.comparison import calibration_by_band
from models.drift import date_spread
from models.evaluation import ALL_SEGMENTS, evaluate, evaluation_figures
from models.risk_model import (
    BASE_VALUE,
    DATE_SPREAD,
    MISSING_MARKERS,
    NUMBER_FORMATS,
    SOURCE_COLUMNS,
    TIME_COLUMN,
    ChurnRiskModel,
)
from models.scorecard import ScorecardConfig
from models.scores import CHURN_PROBABILITY
from models.scoring import risk_band
from models.split import (
    MIN_TRAIN_CLASS_ROWS,
    MIN_VALID_CLASS_ROWS,
    Folds,
    Split,
    out_of_time_split,
    rolling_origin_folds,
    sample_folds,
    stratified_folds,
    stratified_split,
)
from pipeline import tracking
from pipeline.champion import (
    ID_AND_LANDED,
    ID_ONLY,
    TRAINED_ON,
    TrainedOn,
    account_keys,
    feature_set_cache,
    keep_feature_set,
)
from pipeline.config import Settings
from pipeline.io import save_figures
from pipeline.progress import ProgressCallback

SHAP_SAMPLE_ROWS = 5_000
STEPS = ("split", "tune and fit model", "fit logistic baseline", "evaluate", "plots", "log to MLflow")
HIGH_CARDINALITY_SHARE = 0.5  # text columns with more distinct values than this share of rows are ids/free text
MAX_MISSING_MARKERS = 3
"""A column of numbers but for up to this many distinct values without a digit ('?', '-', 'unknown': how an export
writes a missing number) is read as numbers, those values missing; more are words, and the column is text."""
OUTCOME_AUC = 0.995  # a feature separating the outcomes this well on its own was most likely recorded with them
UNSAFE_IN_NAME = re.compile(r'[\s",:\[\]{}]')
"""What LightGBM cannot keep in a feature name: whitespace (it writes `_`, so the column named by the model
is not found when scoring) and JSON punctuation (it refuses the name)."""


@dataclass
class TrainResult:
    """What a training run produced; `metrics` has one row per (score, segment)."""

    run_id: str
    experiment_id: str
    model_version: str
    model_uri: str
    promoted: bool
    promotion_reason: str
    metrics: pd.DataFrame
    split: Split
    model: ChurnRiskModel
    validation: pd.DataFrame
    calibration: pd.DataFrame  # validation rows per risk band: rows, mean predicted, observed
    folds: Folds | None = None
    notes: list[str] = field(default_factory=list)
    at_chance: bool = False  # its validation ranking is not credibly better than chance (`tracking._chance_test`)
    champion_version: str | None = None  # the champion there was when it was trained (None: there was none)

    def overall(self) -> dict[str, dict[str, float]]:
        """{score: {metric: value}} for all validation rows."""
        rows = self.metrics[self.metrics["segment"] == ALL_SEGMENTS].set_index("score").drop(columns="segment")
        return {score: {k: float(v) for k, v in row.items() if pd.notna(v)} for score, row in rows.iterrows()}


def train_model(
    table: pd.DataFrame,
    settings: Settings,
    *,
    rule_risk: pd.Series | None = None,
    scorecard: ScorecardConfig | None = None,
    config_files: Sequence[Path] = (),
    promote: bool = False,
    progress: ProgressCallback | None = None,
    notes: Sequence[str] = (),
    data_source: str | None = None,
    accounts: pd.DataFrame | None = None,
) -> TrainResult:
    """Train on a snapshot feature table (see features/table.py) with an out-of-time split.

    `rule_risk` (100 - health score, indexed like `table`) is evaluated as the rule baseline;
    `scorecard` (the one the rule risk comes from) gives the feature set saved with the model the
    categories its contributions are summed by; `notes` (e.g. how the scorecard was adapted to the
    data) are logged with the run. `data_source` (the data folder or file) and `accounts` (its accounts
    table, with the days they landed) are what the model records it was trained on (`TrainedOn`), so
    that scoring can tell a book it was not trained on.
    """
    missing = [c for c in META_COLUMNS if c not in table.columns]
    if missing:
        raise DataContractError(
            f"feature table: columns {missing} are missing; expected {list(META_COLUMNS)} followed by features."
        )
    if not table.index.is_unique:
        raise DataContractError(
            "feature table: the row index repeats (e.g. after pd.concat); reset it, and align rule_risk with it."
        )
    _report(progress, 0)
    split = out_of_time_split(  # first: without both outcomes, which the split refuses, no feature could vary
        table, validation_share=settings.model.validation_share, grace_days=settings.data.grace_days
    )
    require_varying_feature(table, data_source or "feature table")
    folds = rolling_origin_folds(
        table.loc[split.train_index], n_folds=settings.model.cv_folds, grace_days=settings.data.grace_days
    )
    source = run_source(data_source, from_folder=accounts is not None)
    evaluated = fit_and_evaluate(
        table, split, folds, settings, grace_days=settings.data.grace_days, rule_risk=rule_risk, scorecard=scorecard,
        progress=progress, source=source, notes=list(notes), feature_values=settings.feature_values(),
    )  # fmt: skip
    trained_on = trained_on_record(table, data_source or "a feature table", accounts, settings.model.seed)
    model = evaluated.model  # every snapshot of a date, censored ones too: the book a scoring run at that date sees
    snapshots = table[model.feature_names_in_]
    snapshots = snapshots.assign(**{CHURN_PROBABILITY: model.predict_proba(snapshots)[:, 1]})
    model.metadata_[DATE_SPREAD] = date_spread(model.reference_, snapshots, table[AS_OF], list(snapshots.columns))
    return log_and_register(
        evaluated, split, folds, settings, config_files=config_files, promote=promote, progress=progress,
        source=source, trained_on=trained_on,
    )  # fmt: skip


def run_source(data_source: str | None, *, from_folder: bool) -> str:
    """What a training run is named and tagged by: the data folder's or the feature table file's name ("data folder
    book", "feature table features.parquet"), as a prepared table's run names its file; the model's `TrainedOn`
    keeps the whole path."""
    if data_source is None:
        return tracking.FEATURE_TABLE
    if from_folder:
        return f"{tracking.DATA_FOLDER} {Path(data_source).name}"
    return f"{tracking.FEATURE_TABLE} {Path(data_source.removeprefix(tracking.FEATURE_TABLE).strip()).name}"


def trained_on_record(table: pd.DataFrame, source: str, accounts: pd.DataFrame | None, seed: int) -> TrainedOn:
    """What the model keeps of its training data: the accounts of the data folder by id and landing day
    (`accounts`), or else the ids of the table, with the source and the snapshot dates."""
    dates = table[AS_OF].dropna()
    period = f"snapshots {dates.min().date()} to {dates.max().date()}" if len(dates) else None
    if accounts is not None:
        keys = account_keys(accounts[ACCOUNT_ID], accounts["created_at"])
        return TrainedOn.of(keys, source=source, key=ID_AND_LANDED, seed=seed, period=period)
    return TrainedOn.of(account_keys(table[ACCOUNT_ID]), source=source, key=ID_ONLY, seed=seed, period=period)


def train_prepared_table(
    path: str | Path,
    id_col: str,
    label_col: str,
    time_col: str | None = None,
    settings: Settings | None = None,
    *,
    config_files: Sequence[Path] = (),
    promote: bool = False,
    progress: ProgressCallback | None = None,
    churn_value: str | None = None,
) -> TrainResult:
    """Train on an already aggregated table: out of time on `time_col` if given, else stratified.

    The time column is taken as the moment each row's label was observed (no grace gap); `churn_value`: the
    label's value that means churned (`--churn-value`), every other retained.
    """
    settings = settings or Settings()
    frame = read_prepared_table(path, text_columns=[id_col])
    table, notes = prepare_table(frame, id_col, label_col, time_col, Path(path).name, churn_value)
    require_enough_outcomes(table, settings.model.validation_share, id_col, Path(path).name, by_account=not time_col)
    require_varying_feature(table, Path(path).name)
    _report(progress, 0)
    n_folds, seed = settings.model.cv_folds, settings.model.seed
    if time_col is not None:
        split = out_of_time_split(table, validation_share=settings.model.validation_share, grace_days=0)
        folds = rolling_origin_folds(table.loc[split.train_index], n_folds=n_folds, grace_days=0)
    else:
        split = stratified_split(table, validation_share=settings.model.validation_share, seed=seed)
        folds = stratified_folds(table.loc[split.train_index], n_folds=n_folds, seed=seed)
    source = f"{tracking.PREPARED_TABLE} {Path(path).name}"
    evaluated = fit_and_evaluate(
        table, split, folds, settings, grace_days=0, rule_risk=None, scorecard=None, progress=progress, source=source,
        notes=notes,
    )  # fmt: skip
    trained_on = trained_on_record(table, f"{tracking.PREPARED_TABLE} {Path(path).resolve()}", None, seed)
    # the pyfunc takes the table's own column names too (its signature lists both); an empty map still says
    # "a prepared table's model", whose pyfunc types its input as `churn score --table` does
    evaluated.model.metadata_[SOURCE_COLUMNS] = {
        feature_name(c): str(c) for c in frame.columns if feature_name(c) != str(c) and feature_name(c) in table
    }
    evaluated.model.metadata_[MISSING_MARKERS] = missing_markers(frame, table)
    evaluated.model.metadata_[NUMBER_FORMATS] = table.attrs[NUMBER_FORMATS]
    if time_col is not None:
        evaluated.model.metadata_[TIME_COLUMN] = time_col
    return log_and_register(
        evaluated, split, folds, settings, config_files=config_files, promote=promote, progress=progress,
        source=source, trained_on=trained_on,
    )  # fmt: skip


def require_enough_outcomes(
    table: pd.DataFrame, validation_share: float, id_col: str, source: str, *, by_account: bool
) -> None:
    """Refuse a prepared table too small to train and judge a model on, saying how many churned and retained
    rows (accounts, `by_account`: a stratified split keeps an id's rows on one side) it has and how many are
    needed: enough that the validation share holds `MIN_VALID_CLASS_ROWS` of each outcome (an AUC from fewer
    is noise) and the rest `MIN_TRAIN_CLASS_ROWS` of each. Smaller tables failed inside scikit-learn's split
    or trained a model that ranks no one."""
    share = validation_share
    needed = int(max(np.ceil(MIN_VALID_CLASS_ROWS / share), np.ceil(MIN_TRAIN_CLASS_ROWS / (1 - share))))
    labelled = table[table[LABEL].notna()]
    churned = labelled[LABEL].astype(int) == 1
    if by_account:
        counts = labelled.loc[churned, ACCOUNT_ID].nunique(), labelled.loc[~churned, ACCOUNT_ID].nunique()
    else:
        counts = int(churned.sum()), int((~churned).sum())
    if min(counts) >= needed:
        return
    unit = "account" if by_account else "row"
    rows = counted(len(labelled), "labelled row")
    if by_account and labelled[ACCOUNT_ID].duplicated().any():
        rows += f" of {counted(labelled[ACCOUNT_ID].nunique(), 'account')} (ids of '{id_col}' repeat: a split keeps "
        rows += "an account's rows on one side)"
    raise DataContractError(
        f"{source}: {rows}: {counts[0]:,} churned and {counted(counts[1], f'retained {unit}')}; training needs at "
        f"least {needed} of each, so that the {share:.0%} that validate (model.validation_share) hold at least "
        f"{MIN_VALID_CLASS_ROWS} of each (an AUC from fewer is noise) and the rest {MIN_TRAIN_CLASS_ROWS} of each to "
        "learn from."
    )


def require_varying_feature(table: pd.DataFrame, source: str, shown: int = 8) -> None:
    """Refuse a table none of whose features varies over the labelled rows (a missing value counts as a
    value): no split of a tree can separate anything, and the model trained would give every account the
    base rate, read downstream as each one's risk. One varying column is enough to try."""
    labelled = table[table[LABEL].notna()]
    features = feature_columns(labelled)
    if not features or any(labelled[name].nunique(dropna=False) > 1 for name in features):
        return

    def constant(name: str) -> str:
        value = labelled[name].iloc[0] if len(labelled) else None
        if pd.isna(value):
            return f"'{name}' (empty in every row)"
        shown_value = f"{value:g}" if isinstance(value, int | float | np.number) else repr(str(value))
        return f"'{name}' (constant: every row is {shown_value})"

    listed = ", ".join(constant(name) for name in features[:shown])
    more = f" and {len(features) - shown:,} more" if len(features) > shown else ""
    raise DataContractError(
        f"{source}: every feature column is the same in all {counted(len(labelled), 'labelled row')}: {listed}"
        f"{more}; a model cannot learn who churns from columns that do not differ between accounts (it would give "
        "every account the base rate). Add columns that vary, or check the export that made them constant."
    )


# ----------------------------------------------------------------------------- prepared tables
def read_prepared_table(path: str | Path, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """The table as pandas reads it, with `text_columns` of a CSV read as text: an id `007` stays `007`
    (pandas would read the number 7 and score account `7`). A CSV header is read as a data folder's is
    (`header_names`): names trimmed (`customerID, Churn` names `Churn`), a name given twice refused (pandas
    would rename the second `x.1`); a parquet file's names alike (pandas kept the spaces of the CSV it read), so
    the two files of one table train the same model."""
    from pipeline.loading import csv_header, first_line_not_utf8, header_names

    path = Path(path)
    if not path.exists():
        raise DataContractError(f"--table {path}: the file does not exist.")
    try:
        if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
            table.columns = header_names(path.stem, path, [str(c) for c in table.columns])  # as its CSV's
            return table
        if path.name.lower().endswith((".csv", ".txt", ".csv.gz")):  # gzipped as a data folder's CSV may be
            names = header_names(path.stem, path, csv_header(path.stem, path))  # a ';'-separated file is refused
            return pd.read_csv(path, header=0, names=names, dtype=dict.fromkeys(text_columns, str))
    except UnicodeDecodeError as exc:  # a spreadsheet's CSV in its own encoding: pandas said "position 0"
        line, text = first_line_not_utf8(path) or (0, b"")
        raise DataContractError(
            f"--table {path}: line {line} is not UTF-8 text: {text!r}; save the file as UTF-8 (a spreadsheet's "
            "'CSV UTF-8') or as parquet."
        ) from exc
    except (OSError, ValueError) as exc:
        raise DataContractError(f"--table {path}: cannot be read ({exc}).") from exc
    raise DataContractError(
        f"--table {path}: unknown format '{path.suffix}' (use .parquet, .csv, .csv.gz or a parquet folder)."
    )


_BOOLEAN_WORDS = {"true": 1, "false": 0, "t": 1, "f": 0, "yes": 1, "no": 0, "y": 1, "n": 0}
_OUTCOME_WORDS = dict.fromkeys(("churned", "churn", "cancelled", "canceled", "attrited", "exited", "left", "lost"), 1)
# active, existing, current: a CRM's status beside churned
_OUTCOME_WORDS |= dict.fromkeys(("retained", "stayed", "renewed", "active", "existing", "current"), 0)
# a word naming who the outcome is of (BankChurners' `Attrited Customer` / `Existing Customer`) and a full stop after
# a word (the UCI churn table's `True.` / `False.`) say nothing more than the outcome
_WHO = re.compile(r"\s+(?:customer|client|account|user|subscriber|member)s?$|(?<=[a-z])\.$")
_LABEL_WORDS = {**_BOOLEAN_WORDS, **_OUTCOME_WORDS, "1": 1, "0": 0, "1.0": 1, "0.0": 0}


def _parse_labels(values: pd.Series, name: str, source: str, churn_value: str | None = None) -> pd.Series:
    """1 = churned, 0 = stayed, <NA> = unknown; accepts 0/1, booleans, yes/no/true/false and outcome words
    (churned/cancelled/attrited/exited/left, retained/stayed/renewed/active/existing, `Attrited Customer` too), or with
    `churn_value` (`--churn-value`) that value as churned and every other as retained: a status of three values
    (Churned/Stayed/Joined) is the user's to read. Both outcomes must be there: a model learns from both."""
    text = as_text(values).str.strip().replace("", pd.NA)  # a label 1/2 with blanks reads 1.0/2.0: said `1`
    if churn_value is not None:
        wanted = churn_value.strip().lower()
        if not text.str.lower().eq(wanted).any():
            raise DataContractError(
                f"{source}, label column '{name}': no value is '{churn_value}' (--churn-value); its values are "
                f"{_label_values(text)}."
            )
        parsed = text.str.lower().eq(wanted).astype("Float64")
    else:
        parsed = text.str.lower().str.replace(_WHO, "", regex=True).map(_LABEL_WORDS, na_action="ignore")
    bad = parsed.isna() & text.notna()
    if bad.any():
        examples = ", ".join(f"row {i}: {v!r}" for i, v in values[bad].head(3).items())
        churned = text[parsed == 1]  # the value to suggest: one that reads as churned, else the commonest unread one
        example = churned.iloc[0] if len(churned) else text[bad].value_counts().index[0]
        raise DataContractError(
            f"{source}, label column '{name}': {counted(int(bad.sum()), 'value is', 'values are')} not an outcome "
            f"({examples}); its values are {_label_values(text)}. Use 1/0, true/false, yes/no or churned/retained "
            f"(or active), or say which value means churned with --churn-value (e.g. --churn-value '{example}': "
            "every other value is then retained; a blank label is an unknown outcome)."
        )
    outcomes = parsed.dropna().astype(int)
    if outcomes.nunique() < 2:
        held = counted(len(outcomes), "labelled row is", "labelled rows are")
        only = "no labelled row" if outcomes.empty else f"all {held} {outcomes.iloc[0]}"
        raise DataContractError(
            f"{source}, label column '{name}': {only}; a churn model needs churned (1) and retained (0) rows."
        )
    return parsed.astype("Int8")


def _label_values(text: pd.Series, shown: int = 8) -> str:
    """A label column's distinct values with their row counts ("'Stayed' (410 rows), 'Churned' (166 rows)")."""
    counts = text.value_counts()
    listed = ", ".join(f"{value!r} ({counted(int(n), 'row')})" for value, n in counts.head(shown).items())
    return listed + (f" and {len(counts) - shown:,} more" if len(counts) > shown else "")


def as_text(values: pd.Series) -> pd.Series:
    """Values as text, a whole number stored as a float written as an integer (`2`, not `2.0`)."""
    if not pd.api.types.is_float_dtype(values):
        return values.astype("string")
    whole = values.notna() & (values % 1 == 0)
    return values.astype("string").mask(whole, values[whole].astype("int64").astype("string"))


def parse_ids(values: pd.Series, name: str, source: str = "--table") -> pd.Series:
    """The id column of a prepared table, trimmed as a data folder's ids are (`trim_ids`); a missing id is
    refused (it would train or score as an account named 'nan' or '  '). A whole number stored as a
    float reads as an integer, as in a data folder (R and pandas write integer ids with gaps as doubles)."""
    ids = trim_ids(as_text(values)).replace("", pd.NA)
    missing = ids.isna()
    if missing.any():
        examples = ", ".join(f"row {i}: {'' if pd.isna(v) else v!r}" for i, v in values[missing].head(3).items())
        said = counted(int(missing.sum()), "value is missing", "values are missing")
        raise DataContractError(f"{source} id column '{name}': {said} ({examples}).")
    return ids


def repeated_ids(ids: pd.Series, id_col: str) -> str | None:
    """What a prepared table's ids on more than one row are, with example rows ("2 ids of 'id' are on more than
    one row (row 3: 'A', ...)"), or None: training and scoring each say what they then do."""
    repeated = ids[ids.duplicated(keep=False)]
    if repeated.empty:
        return None
    examples = ", ".join(f"row {i}: {v!r}" for i, v in repeated.head(3).items())
    ones = counted(repeated.nunique(), "id")
    return f"{ones} of '{id_col}' {'is' if repeated.nunique() == 1 else 'are'} on more than one row ({examples})"


def parse_times(stamps: pd.Series, where: str, why: str) -> pd.Series:
    """A prepared table's time column (`--time`) as naive UTC timestamps: ISO-8601 text or dates, a year as a
    number; a value that is no date or is missing is refused, naming `where` (`table.column`) and `why`."""
    raw = stamps
    if pd.api.types.is_numeric_dtype(stamps) or pd.api.types.is_bool_dtype(stamps):
        stamps = as_text(stamps)  # a year 2024 as text, as pandas reads it now (it will read numbers as epochs)
    when = pd.to_datetime(stamps, errors="coerce", utc=True, format="ISO8601").dt.tz_localize(None)
    bad = when.isna() & raw.notna()
    if bad.any():
        examples = ", ".join(f"row {i}: {v!r}" for i, v in raw[bad].head(3).items())
        said = counted(int(bad.sum()), "value is not an ISO-8601 date", "values are not ISO-8601 dates")
        raise DataContractError(f"{where}: {said} ({examples}).")
    if when.isna().any():
        rows = ", ".join(str(i) for i in when.index[when.isna()][:3])
        said = counted(int(when.isna().sum()), "value is missing", "values are missing")
        raise DataContractError(f"{where}: {said} (rows {rows}); {why}.")
    return when.astype("datetime64[us]")


def prepare_table(
    frame: pd.DataFrame,
    id_col: str,
    label_col: str,
    time_col: str | None,
    source: str = "--table",
    churn_value: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Turn a per-account table into the feature-table format; returns it and notes on dropped columns.

    Numbers stored as text become numeric (amounts such as '$6,143.31' too: the table's `attrs[NUMBER_FORMATS]`
    says by which decimal mark, for scoring to read them alike), other text becomes categorical; text columns with
    nearly one value per row (ids, names, free text) and timestamps other than `time_col` are
    dropped, because a model cannot generalise from them.
    """
    needed = [c for c in (id_col, label_col, time_col) if c is not None]
    if len(set(needed)) < len(needed):  # read as ids and as outcomes at once, it failed as neither
        flags = {"--id": id_col, "--label": label_col, "--time": time_col}
        twice = [flag for flag, column in flags.items() if column is not None and needed.count(column) > 1]
        raise DataContractError(
            f"{source}: {listed(twice)} name the same column '{next(flags[f] for f in twice)}'; the id, the label "
            "and the time (--time) of each row are columns of their own."
        )
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise DataContractError(
            f"{source}: {'column' if len(absent) == 1 else 'columns'} "
            f"{listed([repr(c) + column_hint(c, frame.columns) for c in absent])} not found; "
            f"columns are {list(frame.columns)[:12]}."
        )
    others = [c for c in frame.columns if c not in needed]
    if BASE_VALUE in map(feature_name, others):
        raise DataContractError(
            f"{source}: feature column '{BASE_VALUE}' has the name the model's contributions give their base value "
            f"(the registered model's `contributions` output has a '{BASE_VALUE}' column beside the features); "
            "rename or drop it."
        )
    by_name: dict[str, list[object]] = {}
    for column in others:
        by_name.setdefault(feature_name(column), []).append(column)
    if twice := {name: columns for name, columns in by_name.items() if len(columns) > 1}:
        name, columns = next(iter(twice.items()))
        raise DataContractError(
            f"{source}: columns {columns} would all be feature '{name}' (a model feature name holds no "
            'whitespace nor any of ",:[]{}); rename one of them.'
        )
    table = pd.DataFrame(
        {
            ACCOUNT_ID: parse_ids(frame[id_col], id_col, source),
            LABEL: _parse_labels(frame[label_col], label_col, source, churn_value),
        },
        index=frame.index,
    )
    if time_col is not None:
        when = parse_times(frame[time_col], f"{source}.{time_col}", "the out-of-time split needs the date of every row")
        dates = when[table[LABEL].notna()].unique()
        if len(dates) == 1:
            raise DataContractError(
                f"{source}.{time_col}: all labelled rows share the date {pd.Timestamp(dates[0]).date()}; an "
                "out-of-time split needs at least two dates (without --time the split is stratified)."
            )
        table[AS_OF] = when
        table[TERM_END] = table[AS_OF]
    else:
        table[AS_OF] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
        table[TERM_END] = table[AS_OF]
    notes: list[str] = []
    columns: dict[str, pd.Series] = {}
    formats: dict[str, str] = {}  # feature -> the decimal mark of the amounts it was read from ('$6,143.31')
    for name in others:
        column, note = _feature_column(frame[name], name)
        if column is not None and NUMBER_FORMATS in column.attrs:
            formats[feature_name(name)] = column.attrs[NUMBER_FORMATS]
        if column is not None and column.isna().all():  # a model cannot split on it: an export or join left it blank
            column, note = None, f"dropped '{name}': empty in every row"
        if note:
            notes.append(note)
        if column is not None:
            columns[feature_name(name)] = column
    reserved = [*META_COLUMNS, *sorted(DATA_DAYS_COLUMNS)]  # a column dropped above (a date `as_of`) is no clash
    if clashes := [c for c in others if feature_name(c) in reserved and feature_name(c) in columns]:
        raise DataContractError(
            f"{source}: {named('feature column', clashes)} {'clashes' if len(clashes) == 1 else 'clash'} with "
            f"reserved names {reserved}; rename or drop {'it' if len(clashes) == 1 else 'them'}."
        )
    if renamed := [
        f"'{c}' -> '{feature_name(c)}'" for c in others if feature_name(c) in columns and feature_name(c) != c
    ]:
        notes.append(f"renamed {', '.join(renamed)}: a model feature name holds no whitespace nor any of " + '",:[]{}')
    table = pd.concat([table, pd.DataFrame(columns, index=frame.index)], axis=1)  # one block: wide tables stay fast
    table.attrs[NUMBER_FORMATS] = {name: mark for name, mark in formats.items() if name in columns}
    if time_col is None and (repeated := repeated_ids(table[ACCOUNT_ID], id_col)):  # with --time, snapshots
        notes.append(
            f"{repeated}: each account's rows stay on one side of the split (pass --time if they are snapshots at "
            "different dates)"
        )
    elif time_col is not None and (twice := table.duplicated([ACCOUNT_ID, AS_OF], keep=False)).any():
        rows = table[twice].groupby([ACCOUNT_ID, AS_OF], sort=False).groups
        examples = "; ".join(
            f"rows {', '.join(map(str, index))}: {id_!r} at {when.date()}"
            for (id_, when), index in list(rows.items())[:3]
        )
        notes.append(
            f"{counted(len(rows), 'id')} of '{id_col}' {'is' if len(rows) == 1 else 'are'} on more than one row of the "
            f"same '{time_col}' ({examples}): an account's snapshot repeated (by a join, or an export that doubled "
            "rows?), trained on as many times as it is there"
        )
    notes += [
        f"'{name}' alone separates churned from retained rows (AUC {auc:.3f}): it is likely recorded with or after "
        "the outcome (a churn flag or reason); drop it from the table unless it is known before the outcome"
        for name, auc in _outcome_like(table)
    ]
    if unknown := int(table[LABEL].isna().sum()):
        notes.append(
            f"{counted(unknown, 'row has', 'rows have')} no label in '{label_col}' (an unknown outcome): not "
            "trained or validated on"
        )
    if not feature_columns(table):
        dropped = "".join(f"; {note}" for note in notes if note.startswith("dropped "))
        raise DataContractError(f"{source}: no usable feature columns besides '{id_col}' and '{label_col}'{dropped}.")
    return table, notes


def missing_markers(frame: pd.DataFrame, table: pd.DataFrame) -> dict[str, list[str]]:
    """The values of each numeric feature's text column in `frame` that `prepare_table` read as missing numbers
    ('?', '-', 'unknown'), by feature name: what scoring reads as missing too (`as_trained`)."""
    markers, features = {}, set(feature_columns(table))
    for column in frame.columns:
        name, values = feature_name(column), frame[column]
        if name not in features or not pd.api.types.is_float_dtype(table[name]):
            continue
        if pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values):
            text = values.astype("string").str.strip().replace("", pd.NA)
            if found := sorted(text[text.notna() & table[name].isna()].unique()):
                markers[name] = found
    return markers


def _outcome_like(table: pd.DataFrame, min_rows: int = 10) -> list[tuple[str, float]]:
    """Features whose values alone rank churned above retained rows with an AUC of `OUTCOME_AUC` or more
    (either direction; a missing value is a value, so a churn reason blank for every retained row counts):
    the model would score 1.000 on them and nothing on the accounts it scores before they churn."""
    labelled = table[table[LABEL].notna()]
    y = labelled[LABEL].astype(int).to_numpy()
    if min(y.sum(), len(y) - y.sum()) < min_rows:
        return []
    found = []
    for name in feature_columns(labelled):
        values = labelled[name]
        if isinstance(values.dtype, pd.CategoricalDtype):  # each level (missing too) by its churn rate
            if values.nunique(dropna=False) * min_rows > len(values):  # levels of a few rows are pure by chance
                continue
            rates = [pd.Series(y).groupby(values.cat.codes.to_numpy()).transform("mean").to_numpy()]
        else:
            x = values.to_numpy(dtype="float64", na_value=np.nan)
            if np.isnan(x).all():
                continue
            low, high = np.nanmin(x), np.nanmax(x)
            rates = [np.where(np.isnan(x), low - 1, x), np.where(np.isnan(x), high + 1, x)]
        auc = max(abs(_auc(y, r) - 0.5) + 0.5 for r in rates)
        if auc >= OUTCOME_AUC:
            found.append((name, auc))
    return found


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties count half), without scikit-learn's per-call checks: one
    call per column of a wide table."""
    ranks = pd.Series(score).rank().to_numpy()
    positives = int(y.sum())
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * (len(y) - positives)))


def column_hint(name: str, columns: Iterable[object]) -> str:
    """ " (did you mean 'customerID'?)" for a column named in another letter case or spacing, or misspelt: a wide
    table's error lists only its first columns, and the one meant may not be among them."""
    return did_you_mean(name, (str(c) for c in columns), cutoff=0.8)


def feature_name(column: object) -> str:
    """The model's name for a prepared table's column: `Monthly Charges` is feature `Monthly_Charges`, at
    training and at scoring alike (`UNSAFE_IN_NAME`)."""
    return UNSAFE_IN_NAME.sub("_", str(column))


def _feature_column(values: pd.Series, name: str) -> tuple[pd.Series | None, str | None]:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return _unless_row_numbers(values.astype("float64"), name)
    if pd.api.types.is_timedelta64_dtype(values):
        return _unless_row_numbers(_days(values), name)
    if nested := _nested(values):
        return None, f"dropped '{name}': it holds {nested} (a nested parquet column), not one value per row"
    if pd.api.types.is_datetime64_any_dtype(values):
        return None, f"dropped '{name}': a timestamp (pass it as --time to split on it)"
    text = values.astype("string").str.strip().replace("", pd.NA)
    numbers = pd.to_numeric(text, errors="coerce")
    present = text.notna()
    if present.any() and numbers[present].notna().all():
        return _unless_row_numbers(numbers.astype("float64"), name)
    if read := read_amounts(text):
        amounts, decimal = read
        shown = text[present & pd.to_numeric(text, errors="coerce").isna() & amounts.notna()].iloc[0]
        note = f"read '{name}' as numbers written as text (e.g. {shown!r} is {float(amounts[text == shown].iloc[0])!r}"
        note += ", with a decimal comma)" if decimal == "," else ")"
        if len(markers := text[present & amounts.isna()]):
            said = counted(len(markers), "value", "values")
            note += (
                f"; its {said} without a digit ({', '.join(repr(v) for v in markers.unique())}) are taken as missing"
            )
        amounts, dropped = _unless_row_numbers(amounts, name)
        if amounts is not None:
            amounts.attrs[NUMBER_FORMATS] = decimal  # which `prepare_table` records: scoring reads the column by it
        return amounts, dropped or note
    if present.any() and pd.to_datetime(text[present], errors="coerce", format="ISO8601").notna().all():
        return None, f"dropped '{name}': a timestamp (pass it as --time to split on it)"
    distinct = text.nunique()
    if distinct > max(50, HIGH_CARDINALITY_SHARE * text.notna().sum()):
        markers = text[present & numbers.isna()]
        if markers.nunique() <= MAX_MISSING_MARKERS and not markers.str.contains(r"\d").any():
            shown = ", ".join(repr(v) for v in markers.unique())
            said = counted(len(markers), "value", "values")
            note = f"read '{name}' as numbers: its {said} without a digit ({shown}) are taken as missing"
            numbers, dropped = _unless_row_numbers(numbers.astype("float64"), name)
            return numbers, dropped or note
        shown = ", ".join(repr(v) for v in text.dropna().unique()[:3])
        return None, f"dropped '{name}': {distinct:,} distinct text values (an id or free text; e.g. {shown})"
    return text.astype("category"), None


_CURRENCY = "[$€£¥₹]|USD|EUR|GBP|CHF|CAD|AUD|JPY|INR"  # a sign or the code of a major currency
_UNIT = f"{_CURRENCY}|%"
_AMOUNT = rf"([-+]?)\s*({_CURRENCY})?\s*([-+]?)(\d[\d.,]*)\s*({_UNIT})?"
# the digits of an amount by its decimal mark: plain (1234.5), or grouped in threes by the other mark (1,234.5)
_DIGITS = {".": r"(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?", ",": r"(?:\d+|\d{1,3}(?:\.\d{3})+)(?:,\d+)?"}


def amount_values(text: pd.Series, decimal: str) -> pd.Series:
    """Each trimmed text value read as an amount with `decimal` as its decimal mark ('$6,143.31', '-€ 12,50',
    '1.234,50 EUR', '12%': the number as written, its unit dropped), NaN for any other value: one currency sign or
    code before or after or a '%' after, a sign, thousands grouped in threes by the other mark. Training and
    scoring read a column alike."""
    parts = _spaced(text).str.extract(f"^{_AMOUNT}$")
    sign, unit_before, signed, number, unit_after = (part for _, part in parts.items())
    ok = number.str.fullmatch(_DIGITS[decimal]).fillna(False).astype(bool)
    ok &= ~(sign.fillna("").ne("") & signed.fillna("").ne("")) & ~(unit_before.notna() & unit_after.notna())
    digits = number.where(ok).str.replace("," if decimal == "." else ".", "", regex=False)
    values = pd.to_numeric(digits.str.replace(decimal, ".", regex=False), errors="coerce").astype("float64")
    return values.where(~(sign.eq("-") | signed.eq("-")).fillna(False).astype(bool), -values).rename(text.name)


def _spaced(text: pd.Series) -> pd.Series:
    """Text with a no-break space (`€\u00a012,50`, `1\u202f234`'s narrow one) as a plain space, as spreadsheets and
    locales write amounts."""
    return text.astype("string").str.replace("\u00a0", " ", regex=False).str.replace("\u202f", " ", regex=False)


def read_amounts(text: pd.Series) -> tuple[pd.Series, str] | None:
    """A text column (trimmed, blanks missing) read as amounts and the decimal mark it was read by, or None when it
    is not clearly a column of them: some value must be one that is not a plain number ('$6,143.31', '1,234',
    '12%', '€ 12,50'), every value with a digit an amount, all of one unit, and up to `MAX_MISSING_MARKERS` values
    without a digit, fewer than the amounts, missing ('-', 'n/a'); whole numbers without a unit, each in one row,
    are ids ('15,634,602'), not amounts. A comma is the decimal mark when one is not followed by a group of three
    digits ('12,50') or follows a dot ('1.234,50'), else a thousands mark ('1,234')."""
    present = text.dropna()
    digits = present[present.str.contains(r"\d")]
    markers = present[~present.str.contains(r"\d")]
    if digits.empty or pd.to_numeric(digits, errors="coerce").notna().all():
        return None
    if not _spaced(digits).str.fullmatch(_AMOUNT).all():  # free text and ids: said no before reading each value
        return None
    if markers.nunique() > MAX_MISSING_MARKERS or len(markers) >= len(digits):
        return None
    if digits.str.count(_UNIT).gt(1).any() or digits.str.extract(f"({_UNIT})")[0].nunique() > 1:
        return None
    both = digits[digits.str.contains(",") & digits.str.contains(r"\.")]
    last = both.str.replace(r"[^.,]", "", regex=True).str[-1].unique()
    if len(last) > 1:
        return None
    commas = digits[digits.str.contains(",")]
    grouped = amount_values(commas, ".").notna().all()
    decimal = last[0] if len(last) else "." if grouped else ","
    numbers = amount_values(text, decimal)
    if numbers[digits.index].isna().any():
        return None
    amounts = numbers[digits.index]
    if not digits.str.contains(_UNIT).any() and (amounts % 1 == 0).all() and amounts.is_unique:
        return None  # ids written with thousands marks ('15,634,602'): whole, each once, of no unit
    return numbers, decimal


def _days(durations: pd.Series) -> pd.Series:
    """A duration column (a parquet duration: time to onboard, since the last login) as its length in days,
    the unit of the pipeline's own day counts; pandas read it as text such as '3 days 04:00:00'."""
    return durations.dt.total_seconds() / 86_400


def _nested(values: pd.Series) -> str | None:
    """What a column of parquet lists, maps or structs holds ('lists', 'records'), None for plain values:
    pandas reads them as arrays and dicts, whose text was taken for category levels."""
    for value in values.dropna().head(1000):
        if isinstance(value, dict):
            return "records"
        if isinstance(value, list | tuple | np.ndarray):
            return "lists"
    return None


def _unless_row_numbers(numbers: pd.Series, name: str) -> tuple[pd.Series | None, str | None]:
    """The column, unless it numbers the rows 0..n-1 or 1..n, each once: the index pandas' `to_csv` writes
    (blank-named, `column0` here) or a row number, which ranks the outcomes of any export sorted by one."""
    values = np.sort(numbers.to_numpy())
    for first in (0, 1):
        if len(values) >= 10 and np.array_equal(values, np.arange(first, first + len(values))):
            return None, (
                f"dropped '{name}': its values number the rows {first} to {first + len(values) - 1}, each once "
                "(an index written with the table, or a row number), not a feature"
            )
    return numbers, None


def as_trained(
    values: pd.Series,
    name: str,
    levels: Sequence[str] | None,
    source: str,
    markers: Sequence[str] = (),
    decimal: str | None = None,
) -> pd.Series:
    """A column of a table to score, typed as `_feature_column` typed it at training: a categorical
    feature (`levels`) as trimmed text, numbers included (a CSV of `1`/`2` reads as numbers, its training
    levels were `'1'`/`'2'`); a numeric one as numbers, parsed from text (booleans as 1/0) when given so, the
    `markers` its training table wrote for a missing number ('?', '-': `MISSING_MARKERS`) missing, amounts
    written as text ('$6,143.31') by the `decimal` mark training read them by (`NUMBER_FORMATS`)."""
    if levels is not None:
        text = as_text(values).str.strip().replace("", pd.NA)
        if pd.api.types.is_float_dtype(values):  # levels written `4.0` at training (pandas' integers with gaps)
            plain = values.astype("string")
            text = text.mask(~text.isin(levels) & plain.isin(levels), plain)
        return text
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values
    if pd.api.types.is_timedelta64_dtype(values):
        return _days(values)
    text = values.astype("string").str.strip().replace("", pd.NA)
    if decimal is not None:  # '1,234' is a thousand and more, or one and a bit, as training read it
        parsed = amount_values(text, decimal)
    else:
        parsed = pd.to_numeric(text, errors="coerce").fillna(text.str.lower().map(_BOOLEAN_WORDS).astype("Float64"))
    bad = parsed.isna() & text.notna() & ~text.isin(markers)
    if bad.any():
        examples = ", ".join(f"row {i}: {v!r}" for i, v in values[bad].head(3).items())
        said = counted(int(bad.sum()), "value is not a number", "values are not numbers")
        raise DataContractError(f"{source}, column '{name}': {said}, and the model learnt it as a number ({examples}).")
    return parsed.astype("float64")


# ------------------------------------------------------------------------------------ the core
def _report(progress: ProgressCallback | None, done: int) -> None:
    report(progress, "train", done, len(STEPS))


def feature_set(
    features: Sequence[str],
    scorecard: ScorecardConfig | None,
    overrides: dict[str, str],
    values: Mapping[str, int] | None = None,
    names: Mapping[str, str] | None = None,
) -> FeatureSet:
    """The model's feature set: its columns, each in its category of `scorecard` (the registry's
    without one; `features.category_overrides` first), which scorecard that was, the value
    settings (`values`, of a table the engine built) its features depend on and the product feature
    names its usage columns count (`names`, the table's `product_names`)."""
    categories = ml_categories(features, scorecard, overrides)
    return FeatureSet.of(features, categories, scorecard.version() if scorecard is not None else None, values, names)


@dataclass
class Evaluated:
    """A fitted model with everything its evaluation measured: what the logging step records."""

    model: ChurnRiskModel
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    validation: pd.DataFrame
    evidence: tracking.ValidationEvidence
    tags: dict[str, str]
    figures_input: dict
    table: pd.DataFrame  # the training table (all rows), logged as the run's dataset input
    fingerprint: dict
    params: dict
    categories: dict[str, str]
    trials: list
    notes: list[str]


def fit_and_evaluate(
    table: pd.DataFrame,
    split: Split,
    folds: Folds,
    settings: Settings,
    *,
    grace_days: int,
    rule_risk: pd.Series | None,
    scorecard: ScorecardConfig | None,
    progress: ProgressCallback | None,
    source: str,
    notes: list[str] | None = None,
    feature_values: Mapping[str, int] | None = None,
) -> Evaluated:
    """Tune and fit the model, fit the logistic baseline, evaluate all on the validation rows (no I/O).
    `feature_values`: the value settings the engine built `table` with, recorded with the model."""
    notes = [*(notes or []), *folds.notes]
    features = feature_columns(table)
    labelled = table[table[LABEL].notna()]
    train, valid = table.loc[split.train_index], table.loc[split.valid_index]
    y_train, y_valid = train[LABEL].astype(int), valid[LABEL].astype(int).to_numpy()
    rule_scores = None if rule_risk is None else _rule_scores(rule_risk, valid.index)
    if 0 < len(folds) < folds.requested:
        notes.append(f"cross-validation on {len(folds)} of the {folds.requested} requested folds (model.cv_folds)")
    tuning = sample_folds(folds, table, max_rows=settings.model.tune_max_rows, seed=settings.model.seed)
    if tuning is not folds and settings.model.tune_trials > 0:
        notes.extend(tuning.notes)
    _report(progress, 1)

    trials: list = []
    features_used = feature_set(
        features, scorecard, settings.features.category_overrides, feature_values, product_names(table)
    )
    model = settings.model.estimator().fit(
        labelled[features],
        labelled[LABEL],
        train_index=split.train_index,
        valid_index=split.valid_index,
        folds=folds.pairs(),
        tuning_folds=tuning.pairs() if tuning is not folds else None,
        groups=labelled[ACCOUNT_ID],
        progress=progress,
        on_trial=trials.append,
        feature_set=features_used,
    )
    notes.extend(model.notes_)
    if model.search_ is not None and model.search_.cut_by_timeout:
        notes.append(
            f"the search was cut by model.tune_timeout_s = {settings.model.tune_timeout_s:g} s after "
            f"{len(model.search_.trials)} of {settings.model.tune_trials} trials: not reproducible, another machine "
            "or load may choose other settings (raise the timeout, or set it to null, for the full trial budget)"
        )
    if settings.model.tune_trials == 0:
        notes.append("model.tune_trials = 0: trained with the configured tree settings, no search")
    _report(progress, 2)
    logistic = fit_logistic_baseline(train[features], y_train, categorical_columns(table), seed=settings.model.seed)
    logistic_proba = logistic.predict_proba(valid[features])[:, 1]
    _report(progress, 3)

    # ranking uses the evaluation model's log-odds; probabilities come from a calibrator that never saw these rows
    scores = {"model": model.validation_raw_, "logistic": logistic_proba}
    if rule_scores is not None:
        scores["rule"] = rule_scores
    probabilities = {"model": model.validation_proba_, "logistic": logistic_proba}
    metrics = evaluate(
        y_valid,
        scores,
        probabilities=probabilities,
        segments=valid["segment"] if "segment" in valid.columns else None,
        arr=valid["arr"] if "arr" in valid.columns else None,
    )
    risk_bands = settings.scoring.risk_bands
    bands = risk_band(pd.Series(model.validation_proba_), risk_bands.high, risk_bands.medium)
    calibration = calibration_by_band(y_valid, model.validation_proba_, bands, valid[ACCOUNT_ID], valid[TERM_END])
    validation = valid[[ACCOUNT_ID, AS_OF, TERM_END, LABEL]].assign(
        model_score=model.validation_raw_,
        churn_probability=model.validation_proba_,
        logistic_probability=logistic_proba,
        **({"rule_risk": rule_scores} if rule_scores is not None else {}),
    )
    _report(progress, 4)
    if np.unique(model.validation_raw_).size == 1:
        notes.append(
            f"the model learned nothing from these rows: it gives every validation row the same probability "
            f"({float(model.validation_proba_[0]):.3f}), so its scores rank no account above another "
            f"({int(y_train.sum()):,} churned of {len(y_train):,} training rows; more history or churners are needed)"
        )

    has_time = bool(table[AS_OF].notna().any())
    evidence = tracking.ValidationEvidence(
        X=valid[features],
        labels=y_valid,
        scores=model.validation_raw_,
        rows_hash=tracking.frame_hash(valid[[ACCOUNT_ID, AS_OF, LABEL]].reset_index(drop=True)),
        as_of=valid[AS_OF] if has_time else None,
        label_known=valid[TERM_END] + pd.Timedelta(days=grace_days) if has_time else None,
        cross_fitted=tracking.OutOfSample(
            labels=labelled[LABEL].astype(int).to_numpy()[model.calibration_positions_],
            scores=model.calibration_raw_,
            accounts=labelled[ACCOUNT_ID].iloc[model.calibration_positions_].reset_index(drop=True),
        ),
    )
    tags = tracking.version_tags(
        evidence,
        labelled[AS_OF] if has_time else None,
        labelled[TERM_END] + pd.Timedelta(days=grace_days) if has_time else None,
    )
    categories = dict(features_used.categories)
    plots_input = {
        "labels": y_valid,
        "scores": scores,
        "probabilities": probabilities,
        "importance": model.feature_importance("gain"),
        "contributions": model.contributions(
            valid[features].sample(min(SHAP_SAMPLE_ROWS, len(valid)), random_state=settings.model.seed)
        ),
        "categories": categories,
    }
    fingerprint = tracking.data_fingerprint(
        table, id_col=ACCOUNT_ID, label_col=LABEL, time_col=AS_OF if has_time else None
    )
    params = {
        **{f"model_{k}": v for k, v in model.get_params().items()},
        **split.describe(),
        **{f"data_{k}": v for k, v in fingerprint.items()},
        "source": source,
        "features": len(features),
        "categorical_features": len(model.categories_),
        "best_iteration": model.best_iteration_,
        "cv_kind": folds.kind,
        "cv_folds_used": len(folds),
        "cv_cutoffs": ",".join(s.cutoff.date().isoformat() for s in folds.splits if s.cutoff is not None) or "-",
    }
    return Evaluated(
        model=model,
        metrics=metrics,
        calibration=calibration,
        validation=validation,
        evidence=evidence,
        tags=tags,
        figures_input=plots_input,
        table=table,
        fingerprint=fingerprint,
        params=params,
        categories=categories,
        trials=trials,
        notes=notes,
    )


def log_and_register(
    evaluated: Evaluated,
    split: Split,
    folds: Folds,
    settings: Settings,
    *,
    config_files: Sequence[Path],
    promote: bool,
    progress: ProgressCallback | None,
    source: str,
    trained_on: TrainedOn,
) -> TrainResult:
    """Log the run to MLflow, register the model as @challenger and promote it when it wins; the model
    keeps `trained_on` in its own files, its version and run say the source in a tag."""
    model, notes, categories, trials = evaluated.model, evaluated.notes, evaluated.categories, evaluated.trials
    validation, evidence = evaluated.validation, evaluated.evidence

    experiment_id = tracking.configure_tracking(settings)
    import mlflow  # after pipeline.tracking (telemetry off)

    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=f"train {source}") as run:
        tmp_dir = Path(tmp)
        save_figures(evaluation_figures(**evaluated.figures_input), tmp_dir / "plots")
        _report(progress, 5)
        mlflow.log_params(evaluated.params)
        mlflow.set_tags({"stage": "train", tracking.SOURCE_TAG: source, "tuned": str(model.search_ is not None)})
        tracking.log_training_data(evaluated.table, evaluated.fingerprint, name=source, label_col=LABEL)
        if model.search_ is not None:
            mlflow.set_tag("search_cut_by_timeout", str(model.search_.cut_by_timeout))
        if notes:
            mlflow.log_text("\n".join(notes), tracking.NOTES_ARTIFACT)
        tracking.log_config_files([*config_files, *_healthscore_file(settings)])
        mlflow.log_dict(settings.model_dump(mode="json"), "config/settings_resolved.json")
        tracking.log_metrics_table(evaluated.metrics)
        tracking.log_selection(model.selection_, trials, experiment_id, run.info.run_id)
        tracking.log_band_calibration(evaluated.calibration)
        mlflow.log_metrics({"best_iteration": model.best_iteration_, "fit_rows": model.fit_rows_})
        mlflow.log_artifacts(str(tmp_dir / "plots"), artifact_path="plots")
        mlflow.log_dict(
            {"features": model.feature_names_in_, "categorical": list(model.categories_)}, "features/features.json"
        )
        mlflow.log_dict(categories, "features/feature_categories.json")
        validation.to_parquet(tmp_dir / "validation_predictions.parquet", index=False)
        mlflow.log_artifact(str(tmp_dir / "validation_predictions.parquet"), artifact_path="evaluation")
        model.metadata_[TRAINED_ON] = trained_on.to_dict()
        mlflow.set_tag(tracking.TAG_TRAINED_ON, trained_on.source)
        version = tracking.log_model(
            model, evidence.X, settings, evaluated.tags | {tracking.TAG_TRAINED_ON: trained_on.source}
        )
        version_id = str(version.version)
        # the first scoring run with this model can build its features while the model loads
        keep_feature_set(feature_set_cache(settings), version.tags[tracking.TAG_MODEL_SHA256], model.feature_set_)
        decision = tracking.promote_if_better(settings, version, evidence, promote=promote)
        mlflow.set_tags(
            {"model_version": version_id, "promoted": str(decision.promoted), "promotion_reason": decision.reason}
        )
    _report(progress, 6)
    model.metadata_.update(model_version=version_id, run_id=run.info.run_id)
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_version=version_id,
        model_uri=f"models:/{settings.model.name}/{version_id}",
        promoted=decision.promoted,
        promotion_reason=decision.reason,
        metrics=evaluated.metrics,
        split=split,
        model=model,
        validation=validation,
        calibration=evaluated.calibration,
        folds=folds,
        notes=notes,
        at_chance=decision.at_chance,
        champion_version=decision.champion_version,
    )


def _rule_scores(rule_risk: pd.Series, index: pd.Index) -> np.ndarray:
    aligned = pd.to_numeric(rule_risk.reindex(index), errors="coerce")
    if aligned.isna().any():
        examples = aligned.index[aligned.isna()][:3].tolist()
        raise DataContractError(
            f"rule_risk: no value for {counted(int(aligned.isna().sum()), 'validation row')} (index {examples}); "
            "pass 100 - health score for every row of the feature table."
        )
    return aligned.to_numpy(dtype=float)


def _healthscore_file(settings: Settings) -> list[Path]:
    path = settings.healthscore_path()
    return [path] if path.is_file() else []
