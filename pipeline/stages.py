"""Stage runners behind the CLI: each calls the pure stage functions and reports to the console.

Stage functions elsewhere return data; these runners add progress bars, file output and MLflow
logging, and hand the results to `pipeline.console` for the few lines a person reads at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pandas as pd
from rich.console import Console

from features.errors import ChurnError, ConfigError, DataContractError, counted, listed
from features.feature_set import FeatureSet
from features.spelling import did_you_mean
from features.table import ACCOUNT_ID, META_COLUMNS, feature_columns
from models.population import ACCOUNT_STATUS
from pipeline.champion import ChampionLoad, champion_uri, check_tracking_server, model_provenance
from pipeline.commit import ScoreOutputs, check_workdir, commit_scoring, recover
from pipeline.config import Settings
from pipeline.console import (
    data_end_said,
    empty_tables_warning,
    print_comparison,
    print_explanation,
    print_notes,
    print_report,
    print_score_run,
    print_training,
    print_warnings,
    warnings_once,
)
from pipeline.history import HistoryRead, later_dates, other_book, partition_path
from pipeline.io import Legacy, check_output_dir, claimed_output_dir, write_output, write_output_file
from pipeline.loading import Dataset, load_dataset
from pipeline.progress import progress_bars
from pipeline.recent_history import read_start
from pipeline.validation import EVERY_TERM_AFTER

log = logging.getLogger("churn")
TABLE_COLUMNS = (*META_COLUMNS, ACCOUNT_STATUS)
"""Columns of the rows a scorecard scores besides features: keys, label, term end, the population's status."""


def run_generate(
    out_dir: Path,
    accounts: int,
    seed: int,
    start: str,
    years: float,
    console: Console,
    world: str = "default",
    optional_tables: bool = True,
    usage_intensity: float = 1.0,
) -> Path:
    from pipeline.synthetic import generate

    with progress_bars() as progress:
        summary = generate(
            Path(out_dir),
            n_accounts=accounts,
            seed=seed,
            start=start,
            years=years,
            progress=progress,
            world=world,
            optional_tables=optional_tables,
            usage_intensity=usage_intensity,
        )
    console.print(f"Generated synthetic history in {out_dir}: {summary}")
    return Path(out_dir)


def load(
    data: Path | str,
    settings: Settings,
    console: Console | None = None,
    read_from: pd.Timestamp | None = None,
    *,
    scorecard: bool = True,
    reported: bool = False,
    repeats: bool = False,
) -> Dataset:
    """Load and validate the data directory; with a console, say which data end is used and what was excluded.

    The exclusions are logged as warnings when nothing prints them (a library call): not with a console or
    for a caller printing them itself (`reported`), where `churn` (`console.LogLines`) would say them twice.

    With `scorecard` (every command that scores health), `accounts` keeps the columns outside the contract
    that the scorecard's segment rules name (`tier`), and a rule naming a column that is neither a feature
    nor one of this data's accounts is refused here, before any feature is built. `repeats`: for a caller
    printing the report (`print_report`), event rows repeated exactly are counted too.

    With `read_from`, the big event tables are read and validated from that day on (`load_dataset`), the
    summaries of their older rows and their checked rows of unchanged files kept in the workdir between runs.
    On the Spark engine, Spark reads and validates the tables itself, from a path or URI (`load_on_spark`).
    """
    cache = settings.workdir_path / "cache"
    config = health_config(settings) if scorecard else None
    attributes = config.rule_attributes(TABLE_COLUMNS) if config is not None else []
    with progress_bars() as progress:
        if settings.engine == "spark":
            dataset = _load_on_spark(data, settings, progress, attributes, repeats)
        else:
            dataset = load_dataset(
                data,
                settings.data.data_end,
                settings.data.grace_days,
                progress,
                read_from=read_from,
                summary_cache=cache / "older-rows" if read_from is not None else None,
                window_cache=cache / "window-rows" if read_from is not None else None,
                attributes=attributes,
                repeats=repeats,
            )
    if config is not None:
        config.check_account_columns(
            dataset.present_columns["accounts"], TABLE_COLUMNS, source=str(settings.healthscore_path())
        )
    report = dataset.report
    log.info("data end %s (%s)", report.data_end.isoformat(), report.data_end_source)
    recent = (
        f"Read {', '.join(dataset.read_from)} from {read_from.date().isoformat()} on (the feature windows of the date; "
        "older rows summarised, not validated: `churn validate` checks them)."
        if dataset.read_from
        else None
    )
    if recent:
        log.info("%s", recent)
    if console is None and not reported:
        for warning in report.exclusions:
            log.warning("%s", warning)
    if console is not None:
        console.print(f"Data end {data_end_said(report)}.", highlight=False)
        if recent:
            console.print(recent, markup=False, highlight=False)
        print_warnings([*map(str, report.exclusions), *filter(None, [empty_tables_warning(dataset)])], console)
    return dataset


def _load_on_spark(data: Path | str, settings: Settings, progress, attributes: list[str], repeats: bool) -> Dataset:
    from pipeline.engines import spark_session
    from pipeline.spark import spark_errors
    from pipeline.spark_loading import load_on_spark

    spark = spark_session(settings)
    with spark_errors():
        return load_on_spark(
            spark,
            str(data),
            settings.data.data_end,
            settings.data.grace_days,
            progress,
            attributes=attributes,
            repeats=repeats,
        )


def snapshot_dates_for(
    dataset: Dataset, settings: Settings, as_of: date | None, start: date | None, end: date | None
) -> list[pd.Timestamp]:
    from features.build import snapshot_dates

    if as_of is not None:
        return [pd.Timestamp(as_of)]
    dates = snapshot_dates(
        dataset,
        settings.features.cadence,
        start=pd.Timestamp(start) if start else None,
        end=pd.Timestamp(end) if end else None,
    )
    if not dates:
        if start or end:
            raise ChurnError("No snapshot dates fall inside the data's history; check --start/--end.")
        raise DataContractError(_no_snapshot_reason(dataset, settings.features.cadence))
    return dates


def _no_snapshot_reason(dataset: Dataset, cadence: str) -> str:
    """Why a history holds no regular snapshot date: train and compare have no --start/--end to check,
    so the error names the dates that decided it (a few months of data is a valid input, just too short)."""
    from features.snapshots import HORIZON_DAYS, first_snapshot_date

    first = first_snapshot_date(dataset, cadence)
    if first is None:
        return "No snapshot dates: subscriptions holds no term, so no account is ever active."
    step = "month start" if cadence == "monthly" else "Monday"
    return (
        f"No {cadence} snapshot date falls inside the data's history: the first would be {first.date()} (the first "
        f"{step} after both the first term start and {HORIZON_DAYS} days of event history, so that every feature "
        f"window lies inside the data), after the data end {pd.Timestamp(dataset.data_end).date()}. Training and "
        f"comparing need a longer history: {HORIZON_DAYS} days of events before the first snapshot, then the "
        "renewals that follow it (`churn features --start DATE` builds earlier snapshots anyway)."
    )


def cadence_note(dataset: Dataset, settings: Settings) -> str | None:
    """A warning when most terms are shorter than the snapshot spacing: a snapshot labels only the term
    running on its date, so the renewals of the terms in between are never learnt from."""
    terms = dataset.subscriptions
    if terms.empty:
        return None
    spacing = 7 if settings.features.cadence == "weekly" else 28
    short = float(((terms["end_date"] - terms["start_date"]).dt.days < spacing).mean())
    if short <= 0.5:
        return None
    return (
        f"{short:.0%} of subscription terms are shorter than the {settings.features.cadence} snapshot cadence: "
        "only the terms running on a snapshot date are labelled, so most renewals and churns are not learnt "
        "from; set features.cadence: weekly in the configuration"
    )


@contextmanager
def blame_cadence(note: str | None) -> Iterator[None]:
    """A split side of one outcome, said with `cadence_note`'s cause and fix when it applies: weekly terms
    under monthly snapshots left the validation window without a churn, and the error advised a longer
    history while only the warning above it named `features.cadence: weekly`."""
    from models.split import OneSidedError  # scikit-learn: train and compare load it anyway

    try:
        yield
    except OneSidedError as exc:
        if note is None:
            raise
        raise DataContractError(f"{exc.fact}, most likely because {note}.") from exc


def build_feature_table(
    dataset: Dataset,
    settings: Settings,
    as_of: date | None = None,
    start: date | None = None,
    end: date | None = None,
    feature_set=None,
    also: Iterable[date] = (),
) -> pd.DataFrame:
    """The snapshot feature table; with a model's `feature_set`, exactly the features it was trained on.

    `also`: more as_of dates built in the same pass (one build's fixed costs instead of two).
    """
    from features.build import build_features
    from pipeline.engines import feature_engine

    dates = [*snapshot_dates_for(dataset, settings, as_of, start, end), *map(pd.Timestamp, also)]
    # A model's features, and the scorecard's columns beside them: a model trained before the data gained a
    # source (logins, a segment column) must not cost the health score that source's categories.
    scored = health_config(settings).required_columns() if feature_set is not None else ()
    with progress_bars() as progress, feature_engine(dataset, settings) as engine:
        return build_features(
            dataset, dates, settings.features, settings.data.grace_days, progress, feature_set, engine, scored
        )


def training_table(dataset: Dataset, settings: Settings, notes: list[str] | None = None) -> pd.DataFrame:
    """The feature table to train on: all of it on DuckDB; on Spark, collected onto this node, as a
    seeded sample of whole accounts when it has more than `spark.train_max_rows` snapshots
    (`sample_accounts`; a note says when it happened)."""
    if settings.engine != "spark":
        return build_feature_table(dataset, settings)
    from features.build import built_features, with_feature_dtypes
    from features.table import with_product_names
    from pipeline.engines import feature_engine, sample_accounts

    dates = snapshot_dates_for(dataset, settings, None, None, None)
    with (
        progress_bars() as progress,
        feature_engine(dataset, settings) as engine,
        built_features(dataset, engine, dates, settings.features, settings.data.grace_days, progress) as built,
    ):
        table, note = sample_accounts(
            engine.dataframe(built.select), settings.spark.train_max_rows, settings.model.seed
        )
        if note is not None and notes is not None:
            notes.append(note)
        return with_product_names(
            with_feature_dtypes(table.orderBy("as_of", "account_id").toPandas()), built.product_names
        )


def write_feature_folder(
    dataset: Dataset,
    settings: Settings,
    out_dir: Path,
    as_of: date | None = None,
    start: date | None = None,
    end: date | None = None,
) -> tuple[int, int, int, int]:
    """Build the feature table on Spark and write it from the cluster as parquet partitioned by as_of
    (`as_of=YYYY-MM-DD/`), never collecting it on the driver; the folder lands whole or not at all.
    Returns (snapshots, dates, labelled, features)."""
    from features.build import built_features
    from features.table import record_names, record_values
    from pipeline.engines import feature_engine
    from pipeline.io import replace_directory

    dates = snapshot_dates_for(dataset, settings, as_of, start, end)
    with (
        progress_bars() as progress,
        feature_engine(dataset, settings) as engine,
        built_features(dataset, engine, dates, settings.features, settings.data.grace_days, progress) as built,
        replace_directory(out_dir, "features") as tmp,
    ):
        table = engine.dataframe(built.select)
        partitioned = table.withColumn("as_of", table["as_of"].cast("date"))
        partitioned.write.mode("overwrite").partitionBy("as_of").parquet(str(tmp))
        if not any(tmp.glob("as_of=*")):  # no row, so no partition: one empty file keeps the columns readable
            partitioned.limit(0).write.mode("overwrite").parquet(str(tmp))
        record_values(tmp, settings.feature_values())
        record_names(tmp, built.product_names)
        written = engine.spark.read.parquet(str(tmp))
        rows, labelled, date_count = written.selectExpr("count(*)", "count(label)", "count(DISTINCT as_of)").first()
    return rows, date_count, labelled, len(feature_columns(table))


def health_config(settings: Settings):
    """The configured scorecard, validated (raises ConfigError naming the file and key)."""
    from pipeline.config import load_scorecard

    return load_scorecard(settings.healthscore_path())


def check_scorecard(settings: Settings) -> None:
    """The configured scorecard, checked as far as it can be without data: valid, and every column it
    scores one that a data folder's feature table can hold (features, and the scored population's status;
    a segment rule may also name a column of accounts, checked when the data is read: `load`); so are the
    features `features.category_overrides` names (a misspelt one was ignored without a word)."""
    from features.registry import all_specs, lookup

    path = settings.healthscore_path()
    health_config(settings).check_feature_names(TABLE_COLUMNS, source=str(path))
    unknown = [name for name in settings.features.category_overrides if lookup(name) is None]
    if unknown:
        raise ConfigError(
            f"{settings.config_file or 'settings'}: features.category_overrides names no feature of a data "
            "folder's feature table: "
            + "; ".join(f"'{n}'{did_you_mean(n, all_specs())}" for n in unknown)
            + ". Its keys are feature names (`churn features` writes them); the values are health categories."
        )


def preflight(settings: Settings) -> None:
    """What stops a command before it reads any data: a scorecard mistake, a working folder that
    cannot be created (found after the data was read and the features built, it cost minutes), a
    tracking server that is not there (found by MLflow after ~4 minutes of retries). The working folder
    is only checked: made here, it stayed behind, empty, when the command then failed."""
    check_scorecard(settings)
    check_tracking_server(settings)
    settings.check_workdir()


def with_rule_attributes(table: pd.DataFrame, dataset: Dataset, settings: Settings) -> pd.DataFrame:
    """`table` with the accounts columns the scorecard's segment rules name that are not features (`csm`, a
    team's own `tier`), for the rule view only: the model never gets them (`Dataset.with_accounts_columns`)."""
    return dataset.with_accounts_columns(table, health_config(settings).rule_attributes(TABLE_COLUMNS))


def scorecard_for(settings: Settings, columns: Iterable[str]):
    """The configured scorecard adapted to the columns a dataset really has (`ScorecardConfig.adapt_to`):
    what every command that scores health uses; its `notes` are printed as warnings and logged."""
    return health_config(settings).adapt_to(columns)


NEUTRAL_RULE_RISK = 50.0


def rule_risk_of(table: pd.DataFrame, scorecard) -> pd.Series:
    """100 - health score: the rule view as a risk, for baselines and comparisons.

    A row none of whose metrics has a value (a scorecard of sparse sources only, e.g. surveys,
    for an account that answered none) has no health score; it ranks in the middle (risk 50)
    rather than stopping the training run that uses the rule only as a baseline.
    """
    from models.healthscore import health_risk, score_health
    from models.scores import HEALTH_SCORE

    return health_risk(score_health(table, scorecard).frame[HEALTH_SCORE]).fillna(NEUTRAL_RULE_RISK)


def train_on_table(
    table: pd.DataFrame,
    settings: Settings,
    config: Path | None,
    promote: bool,
    console: Console,
    dataset: Dataset | None = None,
    notes: Iterable[str] = (),
    data_source: str | None = None,
):
    """Train on a snapshot feature table, with the rule score as a baseline, and print the outcome.

    With the `dataset` the table was built from, its data end (what the labels were read against) is
    tagged on the training run, its accounts are what the model records it was trained on with
    `data_source` (the data folder: `train_model`), and the baseline's segment rules read its accounts
    columns (`with_rule_attributes`). `notes` (warnings about the data) are printed and logged with the
    run, after the scorecard's adaptations to the table's columns.
    """
    from pipeline.train import train_model

    config_files = [p for p in (config, settings.healthscore_path()) if p is not None]
    rule_rows = table if dataset is None else with_rule_attributes(table, dataset, settings)
    scorecard = scorecard_for(settings, rule_rows.columns)
    accounts = dataset.accounts if dataset is not None else None
    with progress_bars() as progress:
        result = train_model(
            table,
            settings,
            rule_risk=rule_risk_of(rule_rows, scorecard.config),
            scorecard=scorecard.config,
            config_files=config_files,
            promote=promote,
            progress=progress,
            notes=[*notes, *scorecard.notes],
            data_source=data_source,
            accounts=accounts,
        )
    if dataset is not None:
        from pipeline.tracking import tag_run

        tag_run(result.run_id, {"data_end": pd.Timestamp(dataset.data_end).isoformat()})
    print_training(result, console)
    return result


def run_train(
    data: Path | str | None,
    features_file: Path | None,
    settings: Settings,
    config: Path | None,
    promote: bool,
    console: Console,
):
    from features.table import feature_columns, read_feature_table, recorded_values
    from pipeline.tracking import FEATURE_TABLE

    preflight(settings)
    notes: list[str] = []
    dataset, cadence = None, None
    if features_file:
        table = read_feature_table(str(features_file))
        source = f"{FEATURE_TABLE} {Path(features_file).resolve()}"
        settings = _as_built(settings, recorded_values(features_file), feature_columns(table), notes)
    else:
        dataset = load(data, settings, console)
        source = data_source_name(data)
        cadence = cadence_note(dataset, settings)
        notes += filter(None, [cadence])
        table = training_table(dataset, settings, notes)
    with blame_cadence(cadence):
        result = train_on_table(table, settings, config, promote, console, dataset, notes=notes, data_source=source)
    if data is not None:
        print_oracle(Path(data), result, console)
    return result


def _as_built(settings: Settings, recorded: dict[str, int] | None, names: list[str], notes: list[str]) -> Settings:
    """`settings` with the value settings a feature table was built with (`churn features` records them), so
    that the model records, and scoring rebuilds, the values it learnt from, and the split keeps the table's
    grace days; a note for each that differs from the configuration, or that the table records none (written
    by another tool or an older churn) while its features depend on some."""
    from features.feature_set import GRACE_DAYS

    configured = settings.feature_values()
    if recorded is None:
        if depended := FeatureSet.of(names, values=configured).values:
            listed = ", ".join(f"{key} {value}" for key, value in depended.items())
            notes.append(
                "the feature table does not record the settings it was built with (written by another tool or an "
                f"older churn): the model records the configuration's {listed}"
            )
        return settings
    notes += [
        f"{key}: the feature table was built with {recorded[key]}, the configuration says {value}; training uses "
        f"{recorded[key]}"
        for key, value in configured.items()
        if recorded.get(key, value) != value
    ]
    built, _ = FeatureSet.of(names, values=recorded).built_with(settings.features, settings.data.grace_days)
    data = settings.data.model_copy(update={"grace_days": recorded.get(GRACE_DAYS, settings.data.grace_days)})
    return settings.model_copy(update={"features": built, "data": data})


def print_oracle(data: Path, result, console: Console) -> None:
    """On generated data, set the validation AUCs against the true probabilities' AUC."""
    from pipeline.oracle import oracle_report

    line = oracle_report(data, result.validation, result.overall())
    if line:
        console.print(line, markup=False, highlight=False)


def run_train_table(
    table: Path,
    id_col: str,
    label_col: str,
    time_col: str | None,
    settings: Settings,
    promote: bool,
    console: Console,
    churn_value: str | None = None,
):
    from pipeline.tracking import table_model_name
    from pipeline.train import train_prepared_table

    check_tracking_server(settings)
    model = settings.model.model_copy(update={"name": table_model_name(settings)})
    settings = settings.model_copy(update={"model": model})
    with progress_bars() as progress:
        result = train_prepared_table(
            table, id_col, label_col, time_col, settings, promote=promote, progress=progress, churn_value=churn_value
        )
    print_training(result, console)
    return result


def _champion_uri(model_uri: str | None, settings: Settings) -> str:
    return model_uri or champion_uri(settings.model.name)


def scored_population(
    dataset: Dataset,
    when: date,
    settings: Settings,
    include_trials: bool,
    include_churned: bool,
    feature_set=None,
) -> tuple[pd.DataFrame, str]:
    """The feature rows to score as of `when`, with `account_status`, and a sentence on who was left out.

    Trials (plan matching `scoring.trial_plans`, or ARR 0) are dropped unless `include_trials`.
    Accounts whose terms have all ended have no snapshot at `when`; with `include_churned` each is
    scored on its last active day (the end of its last term: features see the data before it),
    dated `when` like the rest of the run.
    """
    from features.table import ACCOUNT_ID, AS_OF
    from models.population import (
        ACCOUNT_STATUS,
        ACTIVE,
        CHURNED,
        TRIAL,
        churned_accounts,
        trial_mask,
        unstarted_accounts,
    )

    churned = churned_accounts(dataset.subscriptions, pd.Timestamp(when))
    last_days = sorted({d.date() for d in churned}) if include_churned else []
    features = build_feature_table(dataset, settings, as_of=when, feature_set=feature_set, also=last_days)
    if last_days:
        # One build for the date and the ended accounts' last days (a snapshot depends only on data
        # before its own as_of): split, each part with its own category levels, as two builds gave.
        now = features[AS_OF] == pd.Timestamp(when)
        ended = _own_levels(features[~now])
        features = _own_levels(features[now])
        ids = ended[ACCOUNT_ID].astype(str)
        ended = ended[ids.isin(churned.index) & (ended[AS_OF] == ids.map(churned))]
        ended = ended.assign(**{AS_OF: pd.Timestamp(when), ACCOUNT_STATUS: CHURNED})
        features = pd.concat([features.assign(**{ACCOUNT_STATUS: ACTIVE}), ended], ignore_index=True)
    else:
        features = features.assign(**{ACCOUNT_STATUS: ACTIVE})
    trial = trial_mask(features, settings.scoring.trial_plans, dataset.subscriptions)
    features.loc[trial, ACCOUNT_STATUS] = TRIAL
    left = []
    if not include_trials and trial.any():
        features = features[~trial].reset_index(drop=True)
        left.append(f"{counted(int(trial.sum()), 'trial')} ({_trial_rule(settings)}; --include-trials)")
    if not include_churned and not churned.empty:
        left.append(f"{counted(len(churned), 'account')} whose terms have all ended (--include-churned)")
    later, never = unstarted_accounts(dataset.accounts[ACCOUNT_ID], dataset.subscriptions, pd.Timestamp(when))
    if later:
        left.append(f"{counted(later, 'account')} whose first term starts on or after {when}")
    # of those, the accounts whose every term was excluded as future-dated have terms, just none the data shows
    waiting = [w for w in dataset.report.warnings if w.problem.startswith(EVERY_TERM_AFTER)]
    left += [f"{counted(w.count, 'account')} {w.problem.removeprefix('accounts ')}" for w in waiting]
    if never > (unseen := sum(w.count for w in waiting)):
        left.append(f"{counted(never - unseen, 'account')} without a term in subscriptions")
    if features.empty:
        from features.errors import DataContractError

        if trial.any():  # accounts are active, and every one of them a trial
            raise DataContractError(
                f"Every account with a term active on {when} is a trial, so there is nothing to score; left out: "
                f"{listed(left)}."
            )
        terms = where_terms_lie(dataset, pd.Timestamp(when), pd.Timestamp(when))
        raise DataContractError(
            f"No account has a term active on {when}, so there is nothing to score: {terms} and the data ends on "
            f"{dataset.data_end.date()}" + (f"; left out: {listed(left)}." if left else ".")
        )
    return features, ("left out of scores and alerts: " + listed(left)) if left else ""


def where_terms_lie(dataset: Dataset, first: pd.Timestamp, last: pd.Timestamp) -> str:
    """Where the subscription terms lie, seen from snapshot dates `first`..`last` that found no active
    account: the date a user needs to choose dates that do."""
    terms = dataset.subscriptions
    if terms.empty:
        return "subscriptions has no terms"
    first_start, last_end = pd.Timestamp(terms["start_date"].min()), pd.Timestamp(terms["end_date"].max())
    if last <= first_start:  # a term starting on the date is not active yet
        return f"the first term in subscriptions starts on {first_start.date()}"
    if first > last_end:
        return f"the latest term in subscriptions ends on {last_end.date()}"
    return f"the terms in subscriptions run from {first_start.date()} to {last_end.date()}"


def empty_feature_table_warning(
    dataset: Dataset, settings: Settings, as_of: date | None, start: date | None, end: date | None
) -> str:
    """Why a feature table came out with no rows: a window outside the book's terms is a valid request, but
    a table of 0 snapshots with exit 0 and no word reads as a pipeline that lost the data."""
    dates = snapshot_dates_for(dataset, settings, as_of, start, end)
    when = (
        f"on {dates[0].date()}"
        if len(dates) == 1
        else f"on any of the {len(dates)} snapshot dates from {dates[0].date()} to {dates[-1].date()}"
    )
    terms = where_terms_lie(dataset, dates[0], dates[-1])
    return f"no account has a term active {when}: {terms}; the table has its columns and no rows"


def _own_levels(part: pd.DataFrame) -> pd.DataFrame:
    """`part` of a feature table, its categorical columns holding only the levels its rows use."""
    categorical = [c for c in part.columns if isinstance(part[c].dtype, pd.CategoricalDtype)]
    part = part.reset_index(drop=True)
    return part.assign(**{c: part[c].cat.remove_unused_categories() for c in categorical})


def rescored_history(
    dataset: Dataset,
    settings: Settings,
    scorecard,
    overrides: pd.DataFrame,
    history_dir: Path,
    when: date,
    feature_set=None,
) -> pd.DataFrame:
    """Every stored run but the one of `when`, its health view re-scored with `scorecard` (nothing written).

    The features of all those dates are built in one pass; the ML view of each run stays as it was
    (the model of that day scored it), and the health trends are recomputed on the re-scored runs.
    """
    from features.build import build_features
    from pipeline.engines import feature_engine
    from pipeline.history import read_history
    from pipeline.score import rescore_health, rescore_trends

    history = read_history(history_dir)
    if history.empty:
        return history
    days = pd.to_datetime(history["as_of"]).dt.normalize()
    dates = sorted(d for d in days.unique() if d != pd.Timestamp(when))
    if not dates:
        return history.iloc[0:0]
    with progress_bars() as progress, feature_engine(dataset, settings) as engine:
        features = build_features(
            dataset,
            [d.date() for d in dates],
            settings.features,
            settings.data.grace_days,
            progress=progress,
            feature_set=feature_set,
            engine=engine,
        )
    features = with_rule_attributes(features, dataset, settings)
    runs = [
        rescore_health(
            history[days == day].reset_index(drop=True),
            features[features["as_of"] == day],
            scorecard,
            overrides,
            settings,
        )
        for day in dates
    ]
    return pd.concat(rescore_trends(runs, settings.scoring.trend_days), ignore_index=True)


def refuse_table_model(model, data: Path | str, command: str) -> None:
    """Stop `command` (score, explain) on event data with a model `churn train --table` trained: its features
    are the table's columns, which no data folder produces, and the build's own error ("not a feature this
    engine builds") did not say why or what to run."""
    from pipeline.champion import TrainedOn
    from pipeline.tracking import PREPARED_TABLE

    trained = TrainedOn.from_metadata(model.metadata_)
    if trained is not None and trained.source.startswith(PREPARED_TABLE):
        raise ChurnError(
            f"Model {model.metadata_.get('model_uri', '')} was trained by `churn train --table` on {trained.source}: "
            f"its features are that table's columns, not features of event data, so it can {command} no account of "
            f"{data}. {command.capitalize()} with a model trained on event data (`churn train --data`, or "
            "--model-uri); score the table's accounts with `churn score --table`."
        )


def score_date(
    dataset: Dataset,
    when: date,
    settings: Settings,
    model_uri: str | None,
    history: bool,
    outputs: ScoreOutputs | None = None,
    *,
    deliver_alerts: bool = True,
    include_trials: bool = False,
    include_churned: bool = False,
    rescore_history: bool = False,
    champion: ChampionLoad | None = None,
    data_source: str | None = None,
):
    """Score every active account as of `when` with the registered model and commit the run as one unit.

    Trials and accounts whose terms have all ended are left out unless included (`scored_population`).
    With `rescore_history` every other date of the history is re-scored with the current scorecard
    (`rescored_history`) in the same commit, so trends and alerts compare like with like.

    The scores, alerts and drift files (with `outputs`), the history partition (with `history`)
    and the MLflow scoring run land together or not at all; then the alerts are posted to the
    configured webhook, where a failure is a warning, not an error.

    With `champion` (the model `model_uri` names, loading on a second thread) the features are built
    while it loads when its feature set is kept from an earlier run, and built again if the loaded
    model's own set is not that one. `data_source` (the data folder) is recorded in the history, and named
    when a later run of the workdir scores another book (`refuse_other_book`).
    """
    from pipeline.override_store import read_records, store_version

    # The CSM overrides first: a store that is corrupt or locked stops the run before any work, so a
    # run never lands without the judgements it should have applied.
    overrides = read_records(settings.workdir_path)
    champion = champion or ChampionLoad(_champion_uri(model_uri, settings), settings)
    try:
        model = None if champion.feature_set is not None else champion.model()
        feature_set = champion.feature_set or model.feature_set_
        if model is None:
            log.info("features built while model %s loads, with its kept feature set", champion.uri)
        try:
            features, left_out = scored_population(
                dataset, when, settings, include_trials, include_churned, feature_set=feature_set
            )
        except ChurnError:  # a kept set not the model's (a damaged file) may name features no data has
            refuse_table_model(model or champion.model(), data_source or "this data", "score")
            if model is not None or champion.model().feature_set_ == feature_set:
                raise
            features = None
    except Exception:
        champion.abandon()
        raise
    model = champion.model()
    if features is None or model.feature_set_ != feature_set:  # the kept set was not this model's
        log.warning("the feature set kept for model %s is not its own; features built again", champion.uri)
        features, left_out = scored_population(
            dataset, when, settings, include_trials, include_churned, feature_set=model.feature_set_
        )
    from features.table import ACCOUNT_ID
    from pipeline.score import score_book, with_judgement  # after the model: imported by its thread

    features = with_rule_attributes(with_judgement(features, overrides), dataset, settings)
    # Trends and alerts always compare with the history; `history=False` (--no-history) only keeps this
    # run out of it, so a trial run raises the alerts the real one would.
    history_dir = settings.workdir_path / "history"
    refuse_other_book(history_dir, features, data_source)
    history_read = HistoryRead.now(history_dir, pd.Timestamp(when), every_date=rescore_history and history)
    scorecard = scorecard_for(settings, features.columns)
    rescored = None
    if rescore_history and history:
        rescored = rescored_history(
            dataset, settings, scorecard.config, overrides, history_dir, when, feature_set=model.feature_set_
        )
    scores, notes = None, ()
    if settings.engine == "spark":
        scores, notes = _spark_scores(features, model, scorecard.config, settings)
    with progress_bars() as progress:
        run = score_book(
            features,
            model,
            scorecard.config,
            settings,
            history_dir=history_dir,
            record=history,
            overrides=overrides,
            rescored=rescored,
            progress=progress,
            scores=scores,
            score_notes=notes,
        )
    used, unseen = model_provenance(model, features[ACCOUNT_ID], dataset.accounts)
    if rescored is not None:
        dates = sorted(pd.to_datetime(rescored["as_of"]).dt.date.unique())
        run.notes.append(
            f"re-scored {counted(len(dates), 'earlier run')} of the history with scorecard {scorecard.config.name} "
            f"{scorecard.config.content_hash()}" + (f" ({dates[0]} to {dates[-1]})" if dates else "")
        )
    run.warnings.extend(
        filter(None, [unseen, coverage_warning(when, dataset, model.feature_set_, settings), *scorecard.notes])
    )
    if not overrides.empty:
        run.notes.append(f"override store: {store_version(overrides)}")
    if left_out:
        run.notes.insert(0, left_out)
    run.notes.insert(0, used)  # first: which model, trained on what
    scored_before = history and partition_path(history_dir, pd.Timestamp(when)).exists()
    result, recovered = commit_scoring(
        settings,
        run.scores,
        run.alerts,
        run.drift,
        outputs=outputs,
        history_dir=history_dir if history else None,
        data_end=dataset.data_end,
        notes=run.warnings,
        history_extra=rescored,
        model_uri=model.metadata_.get("model_uri"),
        model_name=model.metadata_.get("model_name"),
        history_read=history_read,
        source=data_source,
    )
    run.warnings += recovered
    run.notes.append(f"MLflow scoring run {result.run_id} (drift per feature, alerts)")
    if history and (later := later_dates(history_dir, when)):
        shown = ", ".join(later[:5]) + (f" and {len(later) - 5} more" if len(later) > 5 else "")
        compared = "with this date as it was scored before" if scored_before else "without this date"
        run.notes.append(
            f"runs of later dates ({shown}) were compared {compared}: their trends and alerts stand "
            "(re-score them, oldest first, to compare them with this run)"
        )
    if deliver_alerts:
        _deliver(run, settings)
    return run


def data_source_name(data: str | Path) -> str:
    """The data folder as the score history and MLflow record it: a local path made absolute, a URI the
    Spark engine reads (s3a://, hdfs://, file://...) as given; `Path` made 'file:///d' '<cwd>/file:/d'."""
    text = str(data)
    return text if "://" in text else str(Path(text).resolve())


def refuse_other_book(history_dir: Path, features: pd.DataFrame, data_source: str | None) -> None:
    """Stop a run, before anything is written, whose accounts are another book's than the workdir's score
    history holds (`other_book`): its trends and alerts would compare them with that book's accounts of the
    same ids, the webhook would send those alerts to CSMs, and a run of the same date would replace that
    book's history. A book's daily or weekly export in a new dated folder is the same book: it passes."""
    if "tenure_days" not in features.columns:
        return
    book = other_book(history_dir, features[["account_id", "as_of", "tenure_days"]])
    if book is None:
        return
    this = f"--data {data_source}" if data_source else "this run's data"
    that = f"data {book.source}" if book.source else "its data folder not recorded: scored by an earlier churn"
    alike = f" ({counted(book.alike, 'id is', 'ids are')} alike but landed on other days)" if book.alike else ""
    raise ChurnError(
        f"{this} is another book than the score history of {history_dir.parent} holds: of the {book.now:,} "
        f"accounts this run scores and the {book.earlier:,} of its run of {book.as_of} ({that}), accounts of "
        f"both (same id and created_at): only {book.same:,}{alike}. Its trends and alerts would compare them with that "
        "book's scores, and alert CSMs for it. Nothing was written. Score each book with its own working folder "
        "(`workdir:` in a configuration file per book, --config); if this is the same book whose ids or "
        f"created_at dates changed, move {history_dir} aside to start its history again."
    )


def coverage_warning(when: date, dataset: Dataset, feature_set: FeatureSet, settings: Settings) -> str | None:
    """A warning when the scoring date lies where the data does not show the accounts' activity, so every
    account looks idle and a CSM gets a book of red, risky accounts for a gap in the data, not in the
    customers' behaviour: more than the model's shortest feature window past the end of the data (`churn score`
    dates default to today: a stale export), or less than the training history's lead (`HORIZON_DAYS`,
    the longest window) after its first event (a date before the export starts, or just after: no
    training snapshot has such empty windows)."""
    from features.snapshots import HORIZON_DAYS

    data_end = dataset.data_end
    gap = (pd.Timestamp(when) - pd.Timestamp(data_end).normalize()).days - 1
    if gap > min(feature_set.built_with(settings.features, settings.data.grace_days)[0].windows):
        return (
            f"the scoring date {when} is {counted(gap, 'day')} after the end of the data "
            f"({pd.Timestamp(data_end).date()}): the features see no activity in those days, so health scores fall "
            "and risk rises for that reason alone; "
            f"check that the data is current, or score as of {latest_scoring_date(data_end)}"
        )
    first = dataset.first_event
    if first is None:
        return None
    lead = (pd.Timestamp(when) - first.normalize()).days
    if lead >= HORIZON_DAYS:
        return None
    days = counted(lead, "day")
    where, seen = ("on or before", "no activity") if lead <= 0 else (f"{days} after", f"only {days}")
    return (
        f"the scoring date {when} is {where} the first event of the data ({first.date()}): the feature windows "
        f"see {seen}, so health scores fall and risk rises for that reason alone (training snapshots start "
        f"{HORIZON_DAYS} days into the data); check that the data covers the date, or score as of "
        f"{(first.normalize() + pd.Timedelta(days=HORIZON_DAYS)).date()} or later"
    )


def _spark_scores(features: pd.DataFrame, model, scorecard, settings: Settings) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The scoring core run by Spark tasks (mapInPandas) over the accounts to score (built on Spark,
    chosen and judged on the driver like on DuckDB), and its notes; the scores in the rows' order."""
    from pipeline.engines import spark_session
    from pipeline.spark import spark_errors
    from pipeline.spark_scoring import collect_scores, score_on_spark, spark_frame

    with spark_errors():
        scores, notes, dtypes = score_on_spark(
            spark_frame(spark_session(settings), features), model, scorecard, settings
        )
        collected = collect_scores(scores, dtypes)
    order = features[["account_id"]].astype(str).reset_index(drop=True)  # one date: one row per account
    return order.merge(collected, on="account_id", how="left", validate="one_to_one")[collected.columns], notes


def _deliver(run, settings: Settings) -> None:
    from pipeline.webhook import LEDGER_FOLDER, UnrecordedDelivery, deliver

    try:
        delivery = deliver(run.alerts, settings.scoring.alerts, settings.workdir_path / LEDGER_FOLDER)
    except UnrecordedDelivery as exc:  # delivered: saying "not delivered" would be wrong
        run.warnings.append(str(exc))  # the run's warnings are printed: a warning record would be said twice
        log.info("%s", exc)
        return
    except Exception as exc:  # the run is committed already: a delivery problem of any kind is a warning
        # an unexpected error's text may quote the URL with its secrets: name the error type only
        reason = str(exc) if isinstance(exc, ChurnError) else f"unexpected {type(exc).__name__}"
        run.warnings.append(f"the alerts were not delivered: {reason}")
        log.info("alerts not delivered: %s", reason)
        return
    if delivery is None:
        return
    earlier = f"{delivery.skipped} delivered by an earlier run of {', '.join(delivery.dates)}"
    if not delivery.sent:
        run.notes.append(f"no alert delivered to the webhook: all {earlier} (not sent again)")
    else:
        skipped = f"; {earlier} were not sent again" if delivery.skipped else ""
        run.notes.append(f"{counted(delivery.sent, 'alert')} delivered to the webhook{skipped}")


def _print_recovered(settings: Settings, console: Console) -> None:
    print_warnings(recover(settings), console)


def _read_start(when: date, feature_set: FeatureSet | None, settings: Settings) -> pd.Timestamp:
    """Where the date's trailing windows start: the model's windows (`FeatureSet.built_with`), or the
    configured ones while its feature set is unknown."""
    features = settings.features
    if feature_set is not None:
        features = feature_set.built_with(features, settings.data.grace_days)[0]
    return read_start([when], features)


def run_score(
    data: Path | str,
    when: date,
    outputs: ScoreOutputs,
    model_uri: str | None,
    settings: Settings,
    history: bool,
    console: Console,
    *,
    include_trials: bool = False,
    include_churned: bool = False,
    rescore_history: bool = False,
    whole_history: bool = False,
):
    """`churn score --data`: load what the date needs, score, commit, print."""
    outputs.check()  # before any work: a refused target, scorecard or workdir costs nothing
    preflight(settings)
    check_workdir(settings, settings.workdir_path / "history" if history else None)
    _print_recovered(settings, console)
    # One date needs the trailing windows before it (and the facts older rows leave, summarised):
    # unless other dates are built too (ended accounts' last days, the re-scored history) or Spark
    # reads the files itself, the big event tables are read from the window start on.
    one_date = not (whole_history or include_churned or rescore_history or settings.engine == "spark")
    # The model loads (MLflow's, LightGBM's and the scoring code's imports first) on a second thread while
    # the data is read and, with its feature set kept from an earlier run, the features are built (DuckDB
    # works without holding the GIL); a missing model or alias stops the run here, before the data is read.
    champion = ChampionLoad(_champion_uri(model_uri, settings), settings)
    try:
        read_from = _read_start(when, champion.feature_set, settings) if one_date else None
        dataset = load(data, settings, console, read_from)
        if read_from is not None and champion.feature_set is None:  # the features wait for the model anyway
            needed = _read_start(when, champion.model().feature_set_, settings)
            if needed < read_from:  # its windows reach further back than the configured ones
                dataset = load(data, settings, console, needed)
    except Exception:
        champion.abandon()
        raise
    run = score_date(
        dataset,
        when,
        settings,
        model_uri,
        history,
        outputs,
        include_trials=include_trials,
        include_churned=include_churned,
        rescore_history=rescore_history,
        champion=champion,
        data_source=data_source_name(data),
    )
    print_score_run(run, outputs.targets(), console)
    return run


def run_score_table(
    table: Path,
    id_col: str,
    outputs: ScoreOutputs,
    model_uri: str | None,
    settings: Settings,
    console: Console,
    as_of: date | None = None,
) -> pd.DataFrame:
    """Score a prepared per-account table with a model trained by `churn train --table`; `as_of` (`--as-of`)
    dates its scores."""
    from pipeline.io import check_output_file
    from pipeline.score import score_prepared
    from pipeline.tracking import load_model, table_champion_uri

    check_output_file(outputs.path, "scores", overwrite=outputs.overwrite)
    check_tracking_server(settings)
    note = None
    if model_uri is None:
        model_uri, note = table_champion_uri(settings)
    model = load_model(model_uri, settings)
    scores, warnings = score_prepared(table, id_col, model, settings, pd.Timestamp(as_of) if as_of else None)
    used, _ = model_provenance(model, scores["account_id"])  # a table's ids are not compared (no accounts)
    write_output(scores, outputs.path, "scores", fmt=outputs.fmt, overwrite=outputs.overwrite)
    print_notes(filter(None, [note, used]), console)
    print_warnings(warnings, console)
    console.print(
        f"Scored {counted(len(scores), 'row')} of {table.name} with model version {scores['model_version'].iloc[0]}; "
        f"wrote {outputs.path}",
        markup=False,
        highlight=False,
    )
    return scores


def _trial_rule(settings: Settings) -> str:
    """What makes an account a trial that `churn score` leaves out (`models.population.trial_mask`), in words."""
    return f"plan matching {', '.join(settings.scoring.trial_plans)} or ARR 0"


def run_explain(
    account_id: str,
    data: Path,
    when: date,
    model_uri: str | None,
    plot: Path | None,
    settings: Settings,
    console: Console,
) -> pd.DataFrame:
    """Rule view and ML view of one account, category by category, with an optional waterfall plot."""
    from features.table import trim_id
    from models.overrides import apply_overrides, in_force
    from models.population import trial_mask
    from models.scores import HEALTH_SCORECARD
    from pipeline.io import check_output_path
    from pipeline.override_store import read_records
    from pipeline.score import score_features, with_judgement
    from pipeline.tracking import load_model

    preflight(settings)
    if plot is not None:
        check_output_path(Path(plot), "plot", ".png")
    account_id = trim_id(account_id)
    if not account_id:  # refused before the data loads: no account could match
        raise ChurnError("The account id to explain is empty; pass one of the ids in accounts.account_id.")
    dataset = load(data, settings, reported=True)
    model = load_model(_champion_uri(model_uri, settings), settings)
    refuse_table_model(model, data, "explain")
    coverage = coverage_warning(when, dataset, model.feature_set_, settings)
    exclusions = map(str, dataset.report.exclusions)
    print_warnings([*exclusions, *filter(None, [empty_tables_warning(dataset), coverage])], console)
    features = build_feature_table(dataset, settings, as_of=when, feature_set=model.feature_set_)
    used, unseen = model_provenance(model, features[ACCOUNT_ID], dataset.accounts)
    print_notes([used], console)
    print_warnings(filter(None, [unseen]), console)
    found = features[ACCOUNT_ID].astype(str) == str(account_id)
    if not found.any():
        raise ChurnError(f"Account '{account_id}' {_why_not_explained(dataset, account_id, when)}")
    # Scored among the accounts `churn score` ranks it with on the date (a percentile metric, a capacity risk
    # band): the active non-trials, or with the trials when it is one (--include-trials); alone, it got
    # other scores than the scoring run's.
    trial = trial_mask(features, settings.scoring.trial_plans, dataset.subscriptions)
    is_trial = bool(trial[found].any())
    population = features if is_trial else features[~trial]
    if is_trial:  # said, or the analyst looks for its row in the scores in vain
        print_notes(
            [
                f"churn score leaves {account_id} out of its scores and alerts: a trial ({_trial_rule(settings)}); "
                "explained as --include-trials scores it"
            ],
            console,
        )
    overrides = read_records(settings.workdir_path)
    population = with_rule_attributes(with_judgement(population, overrides), dataset, settings).reset_index(drop=True)
    adapted = scorecard_for(settings, population.columns)
    print_warnings(adapted.notes, console)
    scorecard = adapted.config
    scored = score_features(population, model, scorecard, settings)
    print_warnings(scored.notes, console)
    # scores, contributions and overrides keep the population's rows in order (0..n-1)
    at = int(population.index[population[ACCOUNT_ID].astype(str) == str(account_id)][0])
    applying = in_force(overrides, pd.Timestamp(when))
    scores = apply_overrides(scored.scores, applying, scorecard).scores.iloc[at]
    # the scheme's categories, then `other` (features it does not place) and any category of an override
    categories = list(dict.fromkeys([*scorecard.categories(), *scored.categories.values()]))
    own = scorecard.scorecard(scores[HEALTH_SCORECARD]) if pd.notna(scores.get(HEALTH_SCORECARD)) else None
    unscored = [c for c in scorecard.categories() if own is not None and c not in own.categories]  # not `other`
    print_explanation(account_id, when, scores, categories, console, unscored, applying)
    if plot is not None:
        from models.scoring import said_columns
        from models.waterfall import waterfall_figure
        from pipeline.io import FIGURE_DPI

        figure = waterfall_figure(
            scored.explanation.contributions.iloc[at],
            population.iloc[at],
            scored.explanation.base_value,
            scored.categories,
            title=f"Account {account_id}",
            labels=said_columns(model),  # product features named as the drivers name them
        )
        write_output_file(
            plot,
            "plot",
            lambda tmp: figure.savefig(tmp, dpi=FIGURE_DPI, format="png", bbox_inches="tight"),
            suffix=".png",
        )
        console.print(f"Waterfall plot: {plot}", markup=False, highlight=False)
    return scores.to_frame().T


def _why_not_explained(dataset: Dataset, account_id: str, when: date) -> str:
    """Why `explain` found no row for an account, with what to try: the dates its terms cover (an ended
    account is explained as of a date in one of them) or the id as the data spells it."""
    ids = dataset.accounts[ACCOUNT_ID].astype(str)
    if not ids.eq(account_id).any():
        return f"is not in accounts{did_you_mean(account_id, ids, cutoff=None)}; nothing to explain."
    terms = dataset.subscriptions[dataset.subscriptions[ACCOUNT_ID].astype(str) == account_id]
    if terms.empty:
        return "has no term in subscriptions; nothing to explain."
    first, last = pd.Timestamp(terms["start_date"].min()).date(), pd.Timestamp(terms["end_date"].max()).date()
    return (
        f"has no term active on {when}; nothing to explain (its terms run from {first} to {last}: "
        "pass an --as-of inside one of them)."
    )


def _compare_files() -> list[str]:
    from pipeline.compare import OUTPUT_FILES

    return list(OUTPUT_FILES.values())


# What a `compare` / `run` folder written before folders were marked holds, and must hold.
COMPARE_LEGACY = Legacy(frozenset({"backtest_scores.parquet", "suggested_healthscore.yaml"}))
RUN_LEGACY = Legacy(frozenset({"features.parquet", "scores.parquet"}), frozenset({"data"}))


def run_compare(data: Path, settings: Settings, out_dir: Path, console: Console):
    preflight(settings)
    with claimed_output_dir(out_dir, "compare", _compare_files(), COMPARE_LEGACY):
        dataset = load(data, settings, console)
        cadence = cadence_note(dataset, settings)
        print_warnings(filter(None, [cadence]), console)
        with blame_cadence(cadence):
            return compare_dataset(dataset, settings, out_dir, console)


def compare_dataset(
    dataset: Dataset,
    settings: Settings,
    out_dir: Path,
    console: Console,
    table: pd.DataFrame | None = None,
    model=None,
):
    """Backtest rule vs ML on the dataset (reusing a built feature table when given) and print the headline.

    `model` (a just-trained ChurnRiskModel) lends its tuned tree settings so the backtest does not
    search again. The comparison is an MLflow run of its own (headline metrics, the output files,
    the scorecard's adaptations to the data)."""
    from pipeline.compare import compare_history, write_comparison
    from pipeline.tracking import compare_run, log_comparison

    with (
        claimed_output_dir(out_dir, "compare", _compare_files(), COMPARE_LEGACY),
        compare_run(settings),
        progress_bars() as progress,
    ):
        computed = compare_history(dataset, settings, model=model, progress=progress, table=table)
        result = write_comparison(computed, settings, out_dir, progress)
        log_comparison(result)
    print_comparison(result, console)
    return result


def latest_scoring_date(data_end: pd.Timestamp) -> date:
    """The day after the data end: the first date whose snapshot sees every row of the data."""
    return (pd.Timestamp(data_end).normalize() + pd.Timedelta(days=1)).date()


def run_all(
    data: Path | None,
    settings: Settings,
    config: Path | None,
    accounts: int,
    seed: int,
    out_dir: Path | None,
    console: Console,
) -> dict[str, Path]:
    """generate (without --data) -> validate -> features -> train -> score (last two months) -> alerts -> compare.

    Every output goes into `out_dir`, which must be new, empty or an earlier `churn run` folder;
    everything it will write is checked before the work starts.
    """
    preflight(settings)
    out_dir = Path(out_dir) if out_dir else settings.workdir_path / "run"
    outputs = ScoreOutputs(out_dir / "scores.parquet", "parquet")
    names = ["features.parquet", *(p.name for p in outputs.targets().values()), "compare"]
    check_output_dir(out_dir / "compare", "compare", _compare_files(), COMPARE_LEGACY)
    claimed = names if data is not None else [*names, "data"]
    with claimed_output_dir(out_dir, "run", claimed, RUN_LEGACY), warnings_once(console):
        outputs.check()
        return _run_all(data, settings, config, accounts, seed, out_dir, outputs, console)


def _run_all(
    data: Path | None,
    settings: Settings,
    config: Path | None,
    accounts: int,
    seed: int,
    out_dir: Path,
    outputs: ScoreOutputs,
    console: Console,
) -> dict[str, Path]:
    from features.table import names_metadata, values_metadata

    _print_recovered(settings, console)
    if data is None:
        data = out_dir / "data"
        console.rule("generate")
        run_generate(data, accounts, seed, "2023-01-01", 3.0, console)
    console.rule("validate")
    dataset = load(data, settings, reported=True, repeats=True)
    print_report(dataset, console)
    console.rule("features")
    notes: list[str] = []
    table = training_table(dataset, settings, notes)
    metadata = values_metadata(settings.feature_values()) | names_metadata(table)  # as `churn features` records
    features = write_output(table, out_dir / "features.parquet", "features", metadata=metadata)
    paths = {"data": Path(data), "features": features}
    width = counted(len(feature_columns(table)), "feature")
    shape = f"{counted(len(table), settings.features.cadence + ' snapshot')} x {width}"
    console.print(f"{shape} -> {paths['features']}")
    console.rule("train")
    result = train_on_table(
        table,
        settings,
        config,
        promote=False,
        console=console,
        dataset=dataset,
        notes=notes,
        data_source=data_source_name(data),
    )
    print_oracle(Path(data), result, console)
    console.rule("score")
    if result.at_chance:  # scored all the same: the health scores and the comparison still hold
        champion = (
            "has no champion until a model with signal is trained (or one is promoted with `churn train --promote`)"
            if result.champion_version is None
            else f"keeps scoring with champion version {result.champion_version}"
        )
        print_warnings(
            [
                f"the book is scored with the model just trained (version {result.model_version}, @challenger), "
                "whose ranking is not credibly better than chance: its churn probabilities and risk bands do not "
                f"tell accounts apart, read the health scores instead; `churn score` {champion}"
            ],
            console,
        )
    elif not result.promoted:  # run scores with what it trained; a scheduled `churn score` would not
        print_notes(
            [
                f"the book is scored with the model just trained (version {result.model_version}, @challenger); "
                "`churn score` uses @champion unless given --model-uri"
            ],
            console,
        )
    latest = latest_scoring_date(dataset.data_end)
    month_before = (pd.Timestamp(latest) - pd.DateOffset(months=1)).date()
    # The month before gives trends and alerts a base; its alerts are not news, so they are not posted.
    source = data_source_name(data)
    score_date(
        dataset, month_before, settings, result.model_uri, history=True, deliver_alerts=False, data_source=source
    )
    run = score_date(dataset, latest, settings, result.model_uri, history=True, outputs=outputs, data_source=source)
    print_score_run(run, outputs.targets(), console)
    paths |= outputs.targets()
    console.rule("compare")
    comparison = compare_dataset(dataset, settings, out_dir / "compare", console, table=table, model=result.model)
    paths["report"] = comparison.report_path
    paths["mlflow"] = Path(settings.tracking_uri().removeprefix("sqlite:///"))
    console.rule("done")
    for name, path in paths.items():
        console.print(f"{name:>9}: {path}", markup=False, highlight=False)
    return paths
