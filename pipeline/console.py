"""Everything `churn` prints for a person: rich tables and the few lines read at the end of a stage.

The stage runners (`pipeline.stages`) compute and write; they hand their results here to be shown,
so the wording and layout of the console output live in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from features.contract import EVENT_TABLES
from features.errors import counted, signed
from models.population import churned_mask
from models.scores import (
    ACTIONABLE_LOG_ODDS,
    CHURN_PROBABILITY,
    CONTEXT_LOG_ODDS,
    HEALTH_BAND,
    HEALTH_SCORE,
    HEALTH_SCORECARD,
    RISK_BAND,
    arr_at_risk,
    health_column,
    ml_column,
)
from pipeline.loading import Dataset
from pipeline.validation import ValidationReport


def _date(ts: pd.Timestamp | None) -> str:
    return ts.date().isoformat() if ts is not None else "-"


def data_end_said(report: ValidationReport) -> str:
    """The data end and where it comes from, as every command prints it: the latest event to the second (a data
    end inside a day says where in the day the data stops; an export's microseconds say nothing), a `--data-end`
    day as the day whose rows are kept."""
    end, source = report.data_end, report.data_end_source
    if source != "latest event" and end == end.normalize():
        return f"{end.date().isoformat()} ({source}: its events included)"
    return f"{end.isoformat(sep=' ', timespec='seconds')} ({source})"


def empty_tables_warning(dataset: Dataset) -> str | None:
    """The warning for event tables present with no rows: unlike an absent table, whose features and scorecard
    metrics are left out, an empty one says "none" for every account (no touchpoint, no survey answer...), and
    its health category scores that across the book, often an export of a source the team does not use."""
    empty = dataset.empty_event_tables
    if not empty:
        return None
    return (
        f"{', '.join(empty)}: present with no rows, so every account reads as having none (the features say no "
        "activity and the health categories score that across the book); leave a table out if its source is not "
        "in use: an absent table's features and scorecard metrics are dropped"
    )


def folder_columns_warnings(dataset: Dataset) -> list[str]:
    """A line per table whose folder names hold a column its files do not (`month=2024-01/`): churn reads
    none, and without a word the column seems read, or its rows lost."""
    return [
        f"{name}: {', '.join(keys)} only in the names of the table's folders ({keys[0]}=...), not in its files: "
        f"churn reads no column from folder names, so {'it is' if len(keys) == 1 else 'they are'} not read (every "
        "row is; a column churn should read must be written into the parquet files)"
        for name, keys in dataset.report.folder_columns.items()
    ]


def print_report(dataset: Dataset, console: Console) -> None:
    """The validation report: rows and dates per table, accounts and term outcomes, warnings."""
    report = dataset.report
    table = Table(title="Input tables", title_justify="left")
    for col in ("table", "source", "rows", "excluded", "first", "last", "warnings"):
        table.add_column(col, justify="right" if col in ("rows", "excluded", "warnings") else "left")
    for name, stats in report.tables.items():
        table.add_row(
            escape(name),
            escape(Path(dataset.sources.get(name, "")).name),
            f"{stats.rows:,}",
            f"{stats.excluded:,}",
            _date(stats.first),
            _date(stats.last),
            f"{report.warning_count(name):,}",
        )
    console.print(table)
    missing = [t for t in EVENT_TABLES if t not in dataset.event_tables]
    if missing:
        console.print(f"Absent event tables (their features are left out): {', '.join(missing)}")
    print_warnings([*folder_columns_warnings(dataset), *filter(None, [empty_tables_warning(dataset)])], console)
    console.print(
        f"Data end {data_end_said(report)}; {counted(report.accounts, 'account')}, "
        f"{counted(report.terms, 'term')}: "
        f"{report.renewals:,} renewed, {report.churns:,} churned, {report.censored:,} censored "
        f"(grace {counted(report.grace_days, 'day')})."
    )
    if report.warnings:
        console.print(
            f"[yellow]{counted(len(report.warnings), 'kind')} of suspicious rows "
            "(excluded or kept, as stated):[/yellow]"
        )
        for warning in report.warnings:
            console.print(f"  - {warning}", highlight=False, markup=False)
    else:
        console.print("[green]No suspicious rows.[/green]")


# Consoles inside `warnings_once`, with the warning lines each has shown.
_shown_warnings: dict[int, set[str]] = {}


@contextmanager
def warnings_once(console: Console) -> Iterator[None]:
    """Within the block, a warning line `console` has already shown is not repeated: `churn run`
    trains, scores and compares with the same adapted scorecard, and its adaptation lines said once
    are read; said three times, they are skimmed."""
    _shown_warnings[id(console)] = set()
    try:
        yield
    finally:
        del _shown_warnings[id(console)]


def print_notes(lines: Iterable[str], console: Console) -> None:
    """One line per note, never wrapped: a note names paths and model URIs that a wrap would split."""
    for line in lines:
        console.print(f"note: {line}", markup=False, highlight=False, soft_wrap=True)


def print_warnings(lines: Iterable[str], console: Console) -> None:
    """One line per warning, never wrapped, so logs and scripts see one adaptation per line."""
    shown = _shown_warnings.get(id(console))
    for line in lines:
        if shown is not None:
            if line in shown:
                continue
            shown.add(line)
        console.print(Text.assemble(("warning: ", "yellow"), line), soft_wrap=True, highlight=False)


OWN_LOGGERS = ("churn", "pipeline", "features", "models")
"""The loggers of churn's own packages: their warnings are the user's; every other logger is a library's."""


class LogLines(logging.Handler):
    """Log records as console lines, the one path by which a log record reaches a person running `churn`.

    churn's own warnings (a damaged cache entry, a feature set not kept) are `print_warnings` lines, like
    every other warning the command prints; churn's info records (timings, data end) and every library's
    records (MLflow, py4j, LightGBM, Python warnings) are chatter, shown only with `verbose`. Without a
    handler, Python's last resort printed churn's warnings bare on stderr, with the libraries' warnings.
    """

    def __init__(self, console: Console, verbose: bool = False) -> None:
        super().__init__()
        self.console = console
        self.verbose = verbose

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: logging's own report
            self.handleError(record)
            return
        ours = record.name.partition(".")[0] in OWN_LOGGERS
        if ours and record.levelno >= logging.WARNING:
            print_warnings([message], self.console)
        elif self.verbose and (ours or record.levelno >= logging.WARNING):
            self.console.print(Text(f"{record.name}: {message}", style="dim"), soft_wrap=True, highlight=False)


def _metrics_table(result, console: Console) -> None:
    overall = result.overall()
    # Prepared tables without a time column are validated on held-out rows drawn at random (stratified).
    title = "Out-of-time validation" if result.split.kind == "out_of_time" else "Validation on held-out rows"
    table = Table(title=f"{title} ({counted(len(result.split.valid_index), 'row')})", title_justify="left")
    columns = ["roc_auc", "pr_auc", "brier", "log_loss", "ece", "capture_top10", "capture_top20", "arr_capture_top10"]
    columns = [c for c in columns if any(c in m for m in overall.values())]
    table.add_column("score")
    for column in columns:
        table.add_column(column, justify="right")
    for name, metrics in overall.items():
        table.add_row(name, *(f"{metrics[c]:.3f}" if c in metrics else "-" for c in columns))
    console.print(table)


def _print_selection(result, console: Console) -> None:
    """How the model was chosen (search, CV score with spread) and its calibration per risk band."""
    selection = result.model.selection_
    if "cv_auc" in selection:
        folds = counted(selection["cv_folds"], f"{result.folds.kind.replace('_', '-')} fold")
        spread = f" ± {selection['cv_auc_std']:.3f}" if selection["cv_folds"] > 1 else ""  # one fold has none
        line = (
            f"Cross-validation ({folds}): ROC AUC {selection['cv_auc']:.3f}{spread}, "
            f"{counted(selection['trees'], 'tree')}"
        )
        if selection.get("tuned"):
            line += (
                f"; search: {counted(selection['trials_complete'], 'trial')} complete, "
                f"{selection['trials_pruned']} pruned in "
                f"{selection['tuning_seconds']:.0f} s, chose trial {selection['chosen_trial']} "
                f"(best {selection['best_trial']}: {selection['best_cv_auc']:.3f})"
            )
        console.print(line, markup=False, highlight=False)
    params = result.model.tree_params()
    console.print(
        "Tree settings: "
        + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items()),
        markup=False,
        highlight=False,
    )
    console.print(calibration_table(result.calibration))
    console.print(
        "noise alone: where the observed rate falls 95% of the time if the predictions are exactly right (each "
        "account's renewal drawn once); an observed rate inside it is no evidence of miscalibration",
        markup=False,
        highlight=False,
    )


def calibration_table(calibration: pd.DataFrame) -> Table:
    """`models.comparison.calibration_by_band` as printed. Its churned count is of snapshot rows (an account has
    one a month): beside the band's accounts it is said as 'churned rows', not 'churners' (503 of 198 accounts)."""
    table = Table(title="Calibration by risk band (validation rows)", title_justify="left")
    for column in ("band", "rows", "accounts", "churned rows", "mean predicted", "observed", "noise alone (95%)"):
        table.add_column(column, justify="left" if column == "band" else "right")
    for row in calibration.itertuples():
        table.add_row(
            row.band,
            f"{row.rows:,}",
            f"{row.accounts:,}",
            f"{row.churners:,}",
            "-" if pd.isna(row.mean_predicted) else f"{row.mean_predicted:.3f}",
            "-" if pd.isna(row.observed) else f"{row.observed:.3f}",
            "-" if pd.isna(row.noise_low) else f"{row.noise_low:.3f}-{row.noise_high:.3f}",
        )
    return table


def print_training(result, console: Console) -> None:
    _metrics_table(result, console)
    _print_selection(result, console)
    print_warnings(result.notes, console)
    verdict = "[green]promoted to @champion[/green]" if result.promoted else "[yellow]kept as @challenger[/yellow]"
    console.print(f"Model version {result.model_version} ({result.model_uri}) {verdict}: ", end="")
    console.print(result.promotion_reason, markup=False, highlight=False)
    console.print(f"MLflow run {result.run_id} (experiment {result.experiment_id})")


def _counts(values: pd.Series, order: list[str]) -> str:
    counts = values.value_counts()
    return ", ".join(f"{int(counts.get(level, 0)):,} {level}" for level in order)


def print_score_run(run, paths: dict[str, Path], console: Console) -> None:
    """What a person reads after a scoring run: the book, drift, notes, warnings, top alerts, files."""
    # the book is the accounts still under contract; a churned one (--include-churned) is said once, apart
    gone = churned_mask(run.scores)
    scores = run.scores[~gone]
    bands = _counts(scores["health_band"], ["green", "yellow", "red"])
    risk = _counts(scores["risk_band"], ["low", "medium", "high"])
    at_risk, without_arr = arr_at_risk(scores)
    exposure = "unknown (no account has an ARR)" if at_risk is None else f"{at_risk:,.0f}"
    if at_risk is not None and without_arr:
        exposure += f" ({counted(without_arr, 'account')} without an ARR left out)"
    churned = f" Also {counted(int(gone.sum()), 'churned account')} (terms all ended), in none of these counts."
    churned = churned if gone.any() else ""
    console.print(
        f"Scored {counted(len(scores), 'account')} as of {pd.Timestamp(run.scores['as_of'].iloc[0]).date()} with "
        f"model version {run.model_version}: health {bands}; ML risk {risk}; ARR at risk {exposure}.{churned}"
    )
    print_warnings(filter(None, [drift_warning(run.drifted, len(run.scores))]), console)  # churned too
    print_notes(run.notes, console)
    print_warnings(run.warnings, console)
    print_alerts(run.alerts, console)
    if paths:
        console.print("Wrote " + ", ".join(f"{k} {v}" for k, v in paths.items()), markup=False, highlight=False)


def drift_warning(drifted: list[str], accounts: int, most: int = 8) -> str | None:
    """The warning for features that drifted from the training data (None when none did): the first `most`
    named, and how many more; the churn probability (monitored too) is the score, not a feature."""
    if not drifted:
        return None
    features = [name for name in drifted if name != CHURN_PROBABILITY]
    what = [counted(len(features), "feature")] if features else []
    what += ["the churn probabilities"] if CHURN_PROBABILITY in drifted else []
    shown = ", ".join(features[:most]) + (f" and {len(features) - most} more" if len(features) > most else "")
    return (
        f"{' and '.join(what)} drifted from the training data (PSI past the threshold and past what sampling noise "
        f"gives {counted(accounts, 'account')})" + (f": {shown}" if shown else "")
    )


def print_alerts(alerts: pd.DataFrame, console: Console, limit: int = 10) -> None:
    from models.healthscore import shown_score
    from models.scoring import shown_percent

    if alerts.empty:
        console.print("[green]No alerts.[/green]")
        return
    shown = alerts.head(limit)
    with_arr = shown["arr_at_risk"].notna()
    any_arr = bool(with_arr.any())
    # the order of `models.alerts.score_alerts`: ARR at risk, then churn probability for alerts without an ARR
    order = (
        "ARR at risk" if with_arr.all() else "ARR at risk, then churn probability" if any_arr else "churn probability"
    )
    table = Table(title=f"Alerts ({len(alerts)}; top {len(shown)} by {order})", title_justify="left")
    columns = ("account", "ARR at risk", "churn p", "health", "why", "top drivers")
    for column in columns if any_arr else [c for c in columns if c != "ARR at risk"]:
        table.add_column(column, overflow="fold")
    for row in shown.itertuples():
        exposure = [f"{row.arr_at_risk:,.0f}" if pd.notna(row.arr_at_risk) else "-"] if any_arr else []
        table.add_row(
            str(row.account_id),
            *exposure,
            shown_percent(row.churn_probability) if pd.notna(row.churn_probability) else "-",
            f"{shown_score(row.health_score):.0f} {row.health_band}" if pd.notna(row.health_score) else "-",
            str(row.reasons) + (f" (fell most: {row.fallen_categories})" if row.fallen_categories else ""),
            str(row.top_drivers),
        )
    console.print(table)


def print_comparison(result, console: Console) -> None:
    """After `churn compare`: how the scorecard was adapted, how the backtest model split, the headline."""
    print_warnings(filter(None, [*result.scorecard_notes, result.comparison.few_churners]), console)
    if "inner_split" in result.model.metadata_:
        print_warnings([result.model.metadata_["inner_split"]], console)
    for line in result.summary_lines():
        console.print(line, markup=False, highlight=False)


def _in_all(scores: pd.Series, column: str, what: str) -> str:
    value = scores.get(column)
    return "" if value is None or pd.isna(value) else f" ({what} in all: {signed(value, '.2f')} log-odds)"


def _overrides_in_force(scores: pd.Series, overrides: pd.DataFrame) -> str:
    """The CSM's judgements applied to one account as one sentence, each with its value, who set it, until when
    and why, and the rules' own health score where they changed it: the line read "CSM overrides in force (rule
    score 58): adoption: sponsor left (by adoption: li; until adoption: 2026-01-01)" of a single override."""
    from models.healthscore import shown_score
    from pipeline.override_store import describe_target

    ids = scores["override_ids"].split(",")
    applied = overrides[overrides["override_id"].astype(str).isin(ids)].sort_values("override_id")
    items = []
    for _, record in applied.iterrows():
        by = f" by {record['author']}" if record["author"] else ""
        until = pd.Timestamp(record["valid_until"]).date()
        items.append(
            f"{describe_target(record)} set to {record['rating']}{by} until {until} (reason: {record['reason']})"
        )
    rule, shown = f"{shown_score(scores['rule_health_score']):.0f}", f"{shown_score(scores[HEALTH_SCORE]):.0f}"
    alone = "" if rule == shown else f"; the rules alone score the account {rule}"
    return f"{counted(len(items), 'CSM override')} in force: {'; '.join(items)}{alone}."


def print_explanation(
    account_id: str,
    when: date,
    scores: pd.Series,
    categories: list[str],
    console: Console,
    unscored: Collection[str] = (),
    overrides: pd.DataFrame | None = None,
) -> None:
    """`churn explain`: both views of one account category by category, its drivers, context and overrides.

    `unscored`: categories the account's own scorecard leaves out (the onboarding card has no `account`): "not
    in onboarding", where "no data" would say the account lacks data it was never scored on. `overrides`: the
    override records in force (`in_force`), of which those `scores` names in `override_ids` are said."""
    from models.healthscore import shown_score
    from models.scoring import shown_percent

    table = Table(title=f"Account {account_id} as of {when}", title_justify="left")
    for column in ("category", "rule score (0-100)", "ML contribution (log-odds)"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for category in categories:
        health = scores.get(health_column(category))
        rule = "no data" if health_column(category) in scores.index else "-"  # `other`: not in the scorecard
        if category in unscored:
            rule = f"not in {scores.get(HEALTH_SCORECARD)}"
        table.add_row(
            category,
            f"{health:.0f}" if pd.notna(health) else rule,
            signed(scores.get(ml_column(category), 0.0), ".3f"),
        )
    table.add_row(
        "[bold]overall[/bold]",
        f"{shown_score(scores[HEALTH_SCORE]):.0f} ({scores[HEALTH_BAND]})",
        f"{shown_percent(scores[CHURN_PROBABILITY])} churn ({scores[RISK_BAND]} risk)",
    )
    console.print(table)
    console.print(f"Rule view, points lost: {scores['health_drivers'] or 'none'}", markup=False, highlight=False)
    # how much of the risk a CSM can work on: the context row of the table can outweigh every driver listed
    raising = scores["top_drivers"] or "none"
    console.print(
        f"ML view, raising risk: {raising}{_in_all(scores, ACTIONABLE_LOG_ODDS, 'actionable features')}",
        markup=False,
        highlight=False,
    )
    console.print(
        f"Context: {scores['context'] or 'none'}{_in_all(scores, CONTEXT_LOG_ODDS, 'context')}",
        markup=False,
        highlight=False,
    )
    if scores["override_ids"] and overrides is not None:
        console.print(_overrides_in_force(scores, overrides), markup=False, highlight=False)
    from models.explain import renewal_words  # loads LightGBM, which `churn explain` has loaded already

    console.print(f"Lifecycle stage: {scores['lifecycle_stage']}; {renewal_words(scores['days_to_renewal'])}.")
