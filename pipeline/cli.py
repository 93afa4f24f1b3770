"""`churn`: the command line that scripts and schedulers call.

Commands are thin: they parse options, load settings and call stage functions. A `ChurnError`
becomes one clear paragraph on stderr and exit code 1; a mistyped command or option prints the
usage and exits 2; SIGINT / SIGTERM exit 130 / 143 after cleaning up; anything else is a bug and
shows its traceback only with `--debug`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from features.errors import ChurnError, counted
from pipeline import interrupts
from pipeline.clock import utc_today
from pipeline.config import Settings, load_settings
from pipeline.progress import set_progress
from pipeline.runtime import configure_process, set_by_user, skip_collection_at_exit

app = typer.Typer(
    name="churn",
    help="Predictive churn pipeline: features, health score, renewal-risk model, scoring and comparison.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
_state: dict[str, bool] = {"debug": False}
MLFLOW_LEVEL = "MLFLOW_LOGGING_LEVEL"

DataOpt = Annotated[Path, typer.Option("--data", help="Data directory (one table per name: parquet, CSV or folder).")]
URI_HELP = "; with --engine spark, also a URI the cluster reads (hdfs://, s3a://, abfss://, file://...)"
SourceOpt = Annotated[
    str, typer.Option("--data", help=f"Data directory (one table per name: parquet, CSV or folder){URI_HELP}.")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML configuration (defaults: config/pipeline.yaml).")
]
GraceOpt = Annotated[
    int | None, typer.Option("--grace-days", help="Days after a term end that a renewal still counts.")
]
DataEndOpt = Annotated[str | None, typer.Option("--data-end", help="End of observed data (default: latest event).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (default from configuration).")]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Also replace an earlier churn output of another kind, or one changed since (never other files).",
    ),
]


EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="duckdb (in-process) or spark (Apache Spark, for histories that outgrow one machine); "
        "default: engine in the configuration.",
    ),
]


FLAGS = {
    "data.grace_days": "--grace-days",
    "data.data_end": "--data-end",
    "features.cadence": "--every",
    "model.seed": "--seed",
    "engine": "--engine",
}
"""The setting each command-line option of `settings_from` sets: a bad value is reported by its option."""


def settings_from(
    config: Path | None,
    grace_days: int | None = None,
    data_end: str | None = None,
    features: dict[str, Any] | None = None,
    engine: str | None = None,
    **model: Any,
) -> Settings:
    """Load settings and apply the command-line overrides that were given (validated like the file)."""
    overrides: dict[str, Any] = {
        "data": {k: v for k, v in {"grace_days": grace_days, "data_end": data_end}.items() if v is not None},
        "features": {k: v for k, v in (features or {}).items() if v is not None},
        "model": {k: v for k, v in model.items() if v is not None},
        "engine": engine,
    }
    return load_settings(config, {k: v for k, v in overrides.items() if v}, source="command-line options", flags=FLAGS)


def refuse_together(ctx: typer.Context, first: str, others: dict[str, object], why: str) -> None:
    """A usage error (exit 2, with the usage) when option `first` is given with any of `others`: one of
    them would otherwise be ignored without a word."""
    given = [name for name, value in others.items() if value is not None]
    if given:
        raise typer.BadParameter(f"cannot be combined with {', '.join(given)}: {why}", ctx=ctx, param_hint=first)


def parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ChurnError(f"{option}: '{value}' is not a date (use YYYY-MM-DD).") from exc


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Do not draw progress bars.")] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", help="Also print churn's log (timings, data end) and the libraries' own warnings (MLflow...)."
        ),
    ] = False,
) -> None:
    _state["debug"] = debug
    if no_progress:
        set_progress(False)
    _log_to_console(verbose)


def _log_to_console(verbose: bool) -> None:
    """Send every log record of the process through `LogLines` on the console: churn's warnings printed
    like the others, the rest (libraries' records, Python warnings) only when `verbose`. Kept for the
    process (Spark's py4j logs when the interpreter exits); a second command in one process reuses it."""
    from pipeline.console import OWN_LOGGERS, LogLines

    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, LogLines)), None)
    if handler is None:
        handler = LogLines(out)
        root.addHandler(handler)
    handler.verbose = verbose
    logging.captureWarnings(True)
    if verbose:
        for name in OWN_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
        if not set_by_user(MLFLOW_LEVEL):  # a level the user set wins
            os.environ[MLFLOW_LEVEL] = "WARNING"  # MLflow has its own handler, set up from this when it loads


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the tables to.")] = Path("data/generated"),
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="Number of accounts.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    start: Annotated[str, typer.Option("--start", help="First day of the history.")] = "2023-01-01",
    years: Annotated[float, typer.Option("--years", min=0.25, help="Length of the history in years.")] = 3.0,
    world: Annotated[
        str,
        typer.Option("--world", help="Named world: what drives churn, which tables exist (see data/README.md)."),
    ] = "default",
    optional_tables: Annotated[
        bool,
        typer.Option(
            "--optional-tables/--no-optional-tables",
            help="Also write the optional invoices, touchpoints and surveys tables (the others stay the same).",
        ),
    ] = True,
    usage_intensity: Annotated[
        float,
        typer.Option(
            "--usage-intensity",
            min=0.01,
            help="Multiplier of usage events per active user (1 = calibrated; e.g. 6 for an event-heavy export).",
        ),
    ] = 1.0,
) -> None:
    """Generate a realistic synthetic SaaS history (with a ground-truth file in _truth/)."""
    from pipeline.stages import run_generate

    run_generate(
        out_dir,
        accounts,
        seed,
        parse_date(start, "--start").isoformat(),
        years,
        out,
        world=world,
        optional_tables=optional_tables,
        usage_intensity=usage_intensity,
    )


@app.command()
def validate(
    data: SourceOpt,
    config: ConfigOpt = None,
    grace_days: GraceOpt = None,
    data_end: DataEndOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Check the data directory against the data contract (and the configuration's scorecard) and print a report."""
    from pipeline.console import print_report
    from pipeline.stages import check_scorecard, load

    settings = settings_from(config, grace_days, data_end, engine=engine)
    check_scorecard(settings)  # a scorecard the scheduled `churn score` would refuse is found here, first
    print_report(load(data, settings, reported=True, repeats=True), out)


@app.command()
def features(
    ctx: typer.Context,
    data: SourceOpt,
    out_file: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Parquet file for the snapshot feature table (a re-run replaces it); with --engine spark, "
            "a folder of parquet partitioned by as_of.",
        ),
    ],
    config: ConfigOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="One snapshot date.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="First snapshot date.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last snapshot date.")] = None,
    every: Annotated[str | None, typer.Option("--every", help="Cadence: monthly or weekly.")] = None,
    grace_days: GraceOpt = None,
    data_end: DataEndOpt = None,
    overwrite: OverwriteOpt = False,
    engine: EngineOpt = None,
) -> None:
    """Build the point-in-time snapshot feature table (with labels)."""
    from features.table import feature_columns, names_metadata, values_metadata
    from pipeline.console import print_warnings
    from pipeline.io import check_output_dir, check_output_file, output_format, write_output
    from pipeline.stages import build_feature_table, empty_feature_table_warning, load, write_feature_folder

    if as_of is not None:
        refuse_together(
            ctx,
            "--as-of",
            {"--start": start, "--end": end, "--every": every},
            "--as-of builds one date, --start/--end/--every a series.",
        )
    settings = settings_from(config, grace_days, data_end, features={"cadence": every}, engine=engine)
    dates = {
        "as_of": parse_date(as_of, "--as-of") if as_of else None,
        "start": parse_date(start, "--start") if start else None,
        "end": parse_date(end, "--end") if end else None,
    }
    if dates["start"] and dates["end"] and dates["start"] > dates["end"]:
        raise ChurnError(f"--start {dates['start']} is after --end {dates['end']}: no snapshot date lies between.")
    if settings.engine == "spark":
        check_output_dir(out_file, "features", [])  # before the work; the folder is swapped in whole
        dataset = load(data, settings, out, scorecard=False)
        rows, date_count, labelled, width = write_feature_folder(dataset, settings, out_file, **dates)
        written = f"{out_file} (parquet partitioned by as_of)"
    else:
        output_format(out_file, allowed=("parquet",))
        check_output_file(out_file, "features", overwrite=overwrite)  # before the work, and again when writing
        dataset = load(data, settings, out, scorecard=False)
        table = build_feature_table(dataset, settings, **dates)
        metadata = values_metadata(settings.feature_values()) | names_metadata(table)
        write_output(table, out_file, "features", overwrite=overwrite, metadata=metadata)
        rows, date_count, labelled = len(table), table["as_of"].nunique(), int(table["label"].notna().sum())
        width, written = len(feature_columns(table)), str(out_file)
    out.print(
        f"Wrote {counted(rows, 'snapshot')} ({counted(date_count, 'date')}, {labelled:,} labelled) x "
        f"{counted(width, 'feature')} to {written}",
        highlight=False,
    )
    if rows == 0:
        print_warnings([empty_feature_table_warning(dataset, settings, **dates)], out)


@app.command()
def train(
    ctx: typer.Context,
    data: Annotated[str | None, typer.Option("--data", help=f"Data directory{URI_HELP}.")] = None,
    config: ConfigOpt = None,
    table: Annotated[Path | None, typer.Option("--table", help="Prepared per-account table (parquet/CSV).")] = None,
    id_col: Annotated[str | None, typer.Option("--id", help="Id column of --table.")] = None,
    label_col: Annotated[str | None, typer.Option("--label", help="Label column of --table (1 = churned).")] = None,
    time_col: Annotated[
        str | None, typer.Option("--time", help="Time column of --table for an out-of-time split.")
    ] = None,
    churn_value: Annotated[
        str | None,
        typer.Option(
            "--churn-value",
            help="The --label value that means churned (e.g. 'Churned' of Churned/Stayed/Joined); every other "
            "value is retained, a blank unknown.",
        ),
    ] = None,
    features_file: Annotated[Path | None, typer.Option("--features", help="Prebuilt feature table.")] = None,
    promote: Annotated[bool, typer.Option("--promote", help="Make this model champion whatever its score.")] = False,
    grace_days: GraceOpt = None,
    data_end: DataEndOpt = None,
    seed: SeedOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Train the renewal-risk model, evaluate it out of time, log and register it in MLflow."""
    from pipeline.stages import run_train, run_train_table

    if table is not None:
        refuse_together(
            ctx,
            "--table",
            {"--data": data, "--features": features_file},
            "train on a prepared table or on a data folder.",
        )
        refuse_together(
            ctx,
            "--table",
            {"--grace-days": grace_days, "--data-end": data_end, "--engine": engine},
            "a prepared table's labels are given, not built from terms, and it is read in-process.",
        )
    elif churn_value is not None:
        raise typer.BadParameter("needs --table: it reads the --label column of a prepared table.", ctx=ctx,
                                 param_hint="--churn-value")  # fmt: skip
    settings = settings_from(config, grace_days, data_end, engine=engine, seed=seed)
    if table is not None:
        if not id_col or not label_col:
            raise ChurnError("--table needs --id and --label (the id and label column names).")
        run_train_table(table, id_col, label_col, time_col, settings, promote, out, churn_value)
        return
    if data is None and features_file is None:
        raise ChurnError("Give --data DIR (or --features FILE, or --table FILE --id COL --label COL).")
    run_train(data, features_file, settings, config, promote, out)


@app.command()
def score(
    ctx: typer.Context,
    out_file: Annotated[
        Path, typer.Option("--out", help="Scores file (.parquet or .csv); <stem>_alerts and <stem>_drift go beside it.")
    ],
    data: Annotated[str | None, typer.Option("--data", help=f"Data directory{URI_HELP}.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Scoring date (default: today, UTC).")] = None,
    config: ConfigOpt = None,
    model_uri: Annotated[
        str | None,
        typer.Option(
            "--model-uri",
            help="Model to use (default models:/NAME@champion; also models:/NAME@ALIAS, models:/NAME/VERSION, "
            "models:/NAME@latest).",
        ),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="parquet or csv (default: from the --out suffix).")
    ] = None,
    table: Annotated[Path | None, typer.Option("--table", help="Prepared per-account table to score.")] = None,
    id_col: Annotated[str | None, typer.Option("--id", help="Id column of --table.")] = None,
    data_end: DataEndOpt = None,
    history: Annotated[
        bool,
        typer.Option(
            "--history/--no-history",
            help="Append this run to the score history (trends and alerts compare with the history either way).",
        ),
    ] = True,
    overwrite: OverwriteOpt = False,
    include_trials: Annotated[
        bool, typer.Option("--include-trials", help="Score trials too (plan in scoring.trial_plans, or ARR 0).")
    ] = False,
    include_churned: Annotated[
        bool,
        typer.Option("--include-churned", help="Score accounts whose terms have all ended too (on their last day)."),
    ] = False,
    rescore_history: Annotated[
        bool,
        typer.Option(
            "--rescore-history", help="Re-score the other dates of the history with the current scorecard too."
        ),
    ] = False,
    whole_history: Annotated[
        bool,
        typer.Option(
            "--whole-history",
            help="Read and validate every event row (default: logins and usage events from the longest feature "
            "window before the date on; older rows only summarised).",
        ),
    ] = False,
    engine: EngineOpt = None,
) -> None:
    """Score every active account as of a date: churn probability, health score, explanations, alerts."""
    from pipeline.commit import ScoreOutputs
    from pipeline.io import output_format
    from pipeline.stages import run_score, run_score_table

    if table is not None:
        refuse_together(
            ctx,
            "--table",
            {"--data": data, "--data-end": data_end},
            "a prepared table is scored as it is, without a data folder (--as-of only dates its scores).",
        )
        flags = {
            "--include-trials": include_trials,
            "--include-churned": include_churned,
            "--rescore-history": rescore_history,
            "--whole-history": whole_history,
        }
        refuse_together(
            ctx,
            "--table",
            {"--engine": engine, **{flag: True for flag, given in flags.items() if given}},
            "they choose and read a data folder's accounts and history; a prepared table is scored in-process, "
            "every row.",
        )
    settings = settings_from(config, None, data_end, engine=engine)
    if fmt is not None and fmt not in ("parquet", "csv"):
        raise ChurnError(f"--format: '{fmt}' is not supported (use parquet or csv).")
    outputs = ScoreOutputs(out_file, output_format(out_file, fmt=fmt), overwrite)
    if table is not None:
        if not id_col:
            raise ChurnError("--table needs --id (the id column name).")
        dated = parse_date(as_of, "--as-of") if as_of else None
        run_score_table(table, id_col, outputs, model_uri, settings, out, dated)
        return
    if data is None:
        raise ChurnError("Give --data DIR (or --table FILE --id COL).")
    when = parse_date(as_of, "--as-of") if as_of else utc_today()
    run_score(
        data,
        when,
        outputs,
        model_uri,
        settings,
        history,
        out,
        include_trials=include_trials,
        include_churned=include_churned,
        rescore_history=rescore_history,
        whole_history=whole_history,
    )


@app.command()
def explain(
    account_id: Annotated[str, typer.Argument(help="Account to explain.")],
    data: DataOpt,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date (default: today, UTC).")] = None,
    config: ConfigOpt = None,
    model_uri: Annotated[str | None, typer.Option("--model-uri", help="Model to use (default champion).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save a waterfall plot (PNG) here.")] = None,
    data_end: DataEndOpt = None,
) -> None:
    """Show one account's rule view and ML view side by side, category by category."""
    from pipeline.stages import run_explain

    settings = settings_from(config, None, data_end)
    when = parse_date(as_of, "--as-of") if as_of else utc_today()
    run_explain(account_id, data, when, model_uri, plot, settings, out)


@app.command()
def compare(
    data: DataOpt,
    config: ConfigOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the HTML report and tables (default: <workdir>/compare).")
    ] = None,
    grace_days: GraceOpt = None,
    data_end: DataEndOpt = None,
    seed: SeedOpt = None,
) -> None:
    """Backtest the rule-based health score against the ML risk: HTML report, tables, suggested weights."""
    from pipeline.stages import run_compare

    settings = settings_from(config, grace_days, data_end, seed=seed)
    run_compare(data, settings, out_dir or settings.workdir_path / "compare", out)


@app.command()
def run(
    data: Annotated[Path | None, typer.Option("--data", help="Data directory (default: generate one).")] = None,
    config: ConfigOpt = None,
    accounts: Annotated[int, typer.Option("--accounts", min=50, help="Accounts to generate without --data.")] = 1500,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed for generated data (default 0) and the model (default: model.seed)."),
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default: <workdir>/run).")] = None,
    grace_days: GraceOpt = None,
    data_end: DataEndOpt = None,
    engine: EngineOpt = None,
) -> None:
    """The whole job end to end: generate (without --data), validate, features, train, score, alerts, compare."""
    from pipeline.stages import run_all

    settings = settings_from(config, grace_days, data_end, engine=engine, seed=seed)
    run_all(data, settings, config, accounts, 0 if seed is None else seed, out_dir, out)


# ------------------------------------------------------------------------------ CSM overrides
ByOpt = Annotated[str | None, typer.Option("--by", help="Who records it (default: your login name).")]
AccountsDataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Data directory whose accounts table lists the account ids (default: score history)."),
]


@app.command()
def override(
    account_id: Annotated[str, typer.Argument(help="Account the judgement is about.")],
    category: Annotated[
        str | None, typer.Option("--category", help="Health category to override (default: the whole account).")
    ] = None,
    score: Annotated[str | None, typer.Option("--score", help="The score, 0-100.")] = None,
    sentiment: Annotated[
        str | None, typer.Option("--sentiment", help="A CSM sentiment rating instead: 1-5 or red/yellow/green.")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why the rule score does not hold (required).")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last scoring date it applies to, YYYY-MM-DD (required).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First scoring date it applies to (default: any date up to --until).")
    ] = None,
    by: ByOpt = None,
    data: AccountsDataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record a CSM's manual score (or sentiment) in the override store; scoring applies it until it expires."""
    from pipeline.override_commands import run_override

    run_override(
        account_id,
        category=category,
        score=score,
        sentiment=sentiment,
        reason=reason,
        until=until,
        start=start,
        by=by,
        data=data,
        settings=settings_from(config),
        console=out,
    )


overrides_app = typer.Typer(
    help="List, end, import and trace the CSM overrides in the store (<workdir>/overrides.db).",
    no_args_is_help=True,
)
app.add_typer(overrides_app, name="overrides")


@overrides_app.command("list")
def overrides_list(
    ctx: typer.Context,
    account_id: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="In force on this date (default: today, UTC).")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every override ever recorded, in force or not.")] = False,
    config: ConfigOpt = None,
) -> None:
    """The overrides in force on a date (default today, UTC)."""
    from pipeline.override_commands import run_list

    if everything:
        refuse_together(ctx, "--all", {"--as-of": as_of}, "--all lists every override ever recorded, on no date.")
    when = parse_date(as_of, "--as-of") if as_of else None
    run_list(account=account_id, as_of=when, everything=everything, settings=settings_from(config), console=out)


@overrides_app.command("expire")
def overrides_expire(
    account_id: Annotated[str | None, typer.Argument(help="End this account's live overrides.")] = None,
    ids: Annotated[list[int] | None, typer.Option("--id", help="End this override (repeatable).")] = None,
    category: Annotated[str | None, typer.Option("--category", help="Only the override of this category.")] = None,
    whole_account: Annotated[bool, typer.Option("--whole-account", help="Only the whole-account override.")] = False,
    sentiment: Annotated[bool, typer.Option("--sentiment", help="Only the sentiment rating.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why it no longer holds (required).")] = None,
    by: ByOpt = None,
    config: ConfigOpt = None,
) -> None:
    """End overrides now: the next scoring run uses the rule score again and alerts the account's CSM."""
    from pipeline.override_commands import run_expire

    run_expire(
        ids=list(ids or []),
        account=account_id,
        category=category,
        whole_account=whole_account,
        sentiment=sentiment,
        reason=reason,
        by=by,
        settings=settings_from(config),
        console=out,
    )


@overrides_app.command("withdraw")
def overrides_withdraw(
    ids: Annotated[list[int], typer.Argument(help="Ids of the overrides entered by mistake (`overrides history`).")],
    reason: Annotated[str | None, typer.Option("--reason", help="What the mistake was (required).")] = None,
    by: ByOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Take back overrides entered by mistake: they apply to no date (re-runs too), raise no alert, stay in history."""
    from pipeline.override_commands import run_withdraw

    run_withdraw(ids=ids, reason=reason, by=by, settings=settings_from(config), console=out)


@overrides_app.command("history")
def overrides_history(
    account_id: Annotated[str | None, typer.Argument(help="Only this account.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Every override ever recorded (replaced, ended and withdrawn ones too) and what became of it."""
    from pipeline.override_commands import run_history

    run_history(account=account_id, settings=settings_from(config), console=out)


@overrides_app.command("import")
def overrides_import(
    file: Annotated[
        Path,
        typer.Argument(help="CSV: account_id, reason, until, score or sentiment; optional category, from, by."),
    ],
    by: ByOpt = None,
    data: AccountsDataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record many overrides from a CSV file: all rows are checked first, then recorded together or not at all."""
    from pipeline.override_commands import run_import

    run_import(file, by=by, data=data, settings=settings_from(config), console=out)


def main() -> None:
    """Entry point: usage errors exit 2 (click's own handling), user-facing errors 1, interrupts 130/143."""
    configure_process()
    skip_collection_at_exit()
    interrupts.install()
    from pipeline.leftovers import removed_if_failed

    try:
        with removed_if_failed():  # a failed command leaves nothing behind: caches it wrote, folders it made
            app(prog_name="churn")  # standalone mode: prints usage errors itself and always ends in SystemExit
    except SystemExit:
        raise
    except BaseException as exc:
        signum = interrupts.received(exc)
        if signum is not None:
            name = signal.Signals(signum).name
            _print_error("interrupted", f"stopped by {name}; no output file was left half-written.")
            sys.exit(128 + signum)
        if _state["debug"] or not isinstance(exc, Exception):
            raise
        if isinstance(exc, ChurnError):
            _print_error("error", str(exc))
        elif (hung := _stopped_answering(exc)) is not None:
            _print_error("error", hung)
        else:
            _print_error(
                "internal error",
                f"{type(exc).__name__}: {exc}\n"
                "This is a bug in the churn pipeline; rerun with --debug for the traceback and report it.",
            )
        sys.exit(1)


def _stopped_answering(exc: Exception) -> str | None:
    """`champion.stopped_answering` for an error of MLflow (loaded by then), None for any other."""
    if "mlflow" not in sys.modules:
        return None
    import mlflow

    from pipeline.champion import stopped_answering

    return stopped_answering(exc, mlflow.get_tracking_uri())


def _print_error(kind: str, message: str) -> None:
    """Print to stderr without interpreting brackets in the message as markup."""
    err = Console(stderr=True)
    err.print(f"[bold red]{kind}:[/bold red] ", end="")
    err.print(message, markup=False, highlight=False, soft_wrap=True)
