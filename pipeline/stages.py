"""Stage runners behind the CLI: each calls the pure stage functions and reports to the console.

Stage functions elsewhere return data; these runners add progress bars, file output and the
few lines a person reads at the end.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from pipeline.config import Settings
from pipeline.errors import ChurnError
from pipeline.loading import Dataset, load_dataset
from pipeline.progress import progress_bars


def _progress_enabled() -> bool:
    from pipeline.cli import show_progress

    return show_progress()


def run_generate(out_dir: Path, accounts: int, seed: int, start: str, years: float, console: Console) -> Path:
    from pipeline.synthetic import generate

    with progress_bars(_progress_enabled()) as progress:
        summary = generate(Path(out_dir), n_accounts=accounts, seed=seed, start=start, years=years, progress=progress)
    console.print(f"Generated synthetic history in {out_dir}: {summary}")
    return Path(out_dir)


def load(data: Path, settings: Settings) -> Dataset:
    with progress_bars(_progress_enabled()) as progress:
        return load_dataset(data, settings.data.data_end, settings.data.grace_days, progress)


def _date(ts: pd.Timestamp | None) -> str:
    return ts.date().isoformat() if ts is not None else "-"


def print_report(dataset: Dataset, console: Console) -> None:
    """The validation report: rows and dates per table, accounts and term outcomes, warnings."""
    report = dataset.report
    table = Table(title="Input tables", title_justify="left")
    for col in ("table", "source", "rows", "first", "last", "warnings"):
        table.add_column(col, justify="right" if col in ("rows", "warnings") else "left")
    for name, stats in report.tables.items():
        table.add_row(
            name,
            Path(dataset.sources.get(name, "")).name,
            f"{stats.rows:,}",
            _date(stats.first),
            _date(stats.last),
            f"{report.warning_count(name):,}",
        )
    console.print(table)
    missing = [t for t in ("usage_events", "logins", "support_tickets", "trainings") if t not in dataset.event_tables]
    if missing:
        console.print(f"Absent event tables (their features are left out): {', '.join(missing)}")
    console.print(
        f"Data end {_date(report.data_end)}; {report.accounts:,} accounts, {report.terms:,} terms: "
        f"{report.renewals:,} renewed, {report.churns:,} churned, {report.censored:,} censored "
        f"(grace {report.grace_days} days)."
    )
    if report.warnings:
        console.print(f"[yellow]{len(report.warnings)} kinds of suspicious rows (usable, not dropped):[/yellow]")
        for warning in report.warnings:
            console.print(f"  - {warning}", highlight=False, markup=False)
    else:
        console.print("[green]No suspicious rows.[/green]")


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
        raise ChurnError("No snapshot dates fall inside the data's history; check --start/--end.")
    return dates


def build_feature_table(
    dataset: Dataset,
    settings: Settings,
    as_of: date | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pd.DataFrame:
    from features.build import build_features

    dates = snapshot_dates_for(dataset, settings, as_of, start, end)
    with progress_bars(_progress_enabled()) as progress:
        return build_features(dataset, dates, settings.features, settings.data.grace_days, progress=progress)
