"""`churn override` and `churn overrides list|expire|withdraw|history|import`: a CSM's judgement into the store.

Every override is validated completely before anything is written (unknown account or category,
a score outside 0-100, a sentiment outside 1-5 / red-yellow-green, an expiry in the past, a
missing reason): one message lists every problem, the command exits 1 and the store is unchanged.
A CSV import is one transaction too: one bad row and no row is recorded.
"""

from __future__ import annotations

import getpass
from collections.abc import Collection
from datetime import date
from pathlib import Path

import pandas as pd
from rich.console import Console

from features.errors import ChurnError, counted
from features.judgement import CSM_SENTIMENT
from features.table import ACCOUNT_ID, trim_id
from models.overrides import InvalidOverride, OverrideRequest, ValidOverride, validate_override
from pipeline.clock import utc_today
from pipeline.config import Settings
from pipeline.override_store import (
    Recorded,
    describe_target,
    end_overrides,
    read_records,
    record_overrides,
    store_path,
    withdraw_overrides,
)

IMPORT_COLUMNS = ("account_id", "category", "score", "sentiment", "reason", "until", "from", "by")


def current_user(given: str | None) -> str:
    """`--by`, else the login name: every judgement says who made it."""
    if given and given.strip():
        return given.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise ChurnError("Cannot tell who you are: give --by NAME.") from None


def known_accounts(settings: Settings, data: Path | None) -> tuple[set[str], str]:
    """Account ids an override may name: the data's `accounts` table, else every account in the score history;
    and, for an id not among them, where they were looked for (an account no run scored yet is not a typo)."""
    if data is not None:
        from pipeline.stages import load

        return set(load(data, settings, scorecard=False).accounts[ACCOUNT_ID].astype(str)), ""
    from pipeline.history import read_history

    history = read_history(settings.workdir_path / "history", columns=[ACCOUNT_ID])
    if history.empty:
        raise ChurnError(
            f"Cannot check the account ids: no --data DIR given and no score history in {settings.workdir_path}. "
            "Pass --data DIR (the data directory whose accounts table lists them)."
        )
    where = (
        f" (not among the accounts scored so far in the score history of {settings.workdir_path}; give --data DIR "
        "to check the data's accounts table)"
    )
    return set(history[ACCOUNT_ID].astype(str)), where


def scorecard_categories(settings: Settings) -> tuple[list[str], bool]:
    """The configured scorecard's categories, and whether it weighs the CSM sentiment metric."""
    from pipeline.stages import health_config

    config = health_config(settings)
    return config.categories(), CSM_SENTIMENT in config.metrics()


def _validated(
    requests: list[tuple[str, OverrideRequest]], settings: Settings, known: tuple[Collection[str], str], today: date
) -> list[ValidOverride]:
    categories, _ = scorecard_categories(settings)
    accounts, accounts_from = known
    valid, problems = [], []
    for where, request in requests:
        try:
            valid.append(
                validate_override(
                    request, today=today, categories=categories, accounts=accounts, accounts_from=accounts_from
                )
            )
        except InvalidOverride as exc:
            problems.append(f"{where}: {exc}" if where else str(exc))
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        of = f"of {len(requests)} overrides"
        count = counted(len(problems), f"{of} is", f"{of} are") if len(requests) > 1 else "The override is"
        raise ChurnError(f"{count} invalid; nothing was written to the override store:\n  {shown}")
    return valid


def _say_recorded(recorded: list[Recorded], settings: Settings, console: Console) -> None:
    _, weighs_sentiment = scorecard_categories(settings)
    for item in recorded:
        o = item.override
        target = "sentiment" if o.kind == "sentiment" else ("health score" if o.kind == "account" else o.category)
        period = f"from {o.valid_from} " if o.valid_from else ""
        line = (
            f"Recorded override #{item.override_id}: account {o.account_id}, {target} = {o.rating} "
            f"(by {o.author}, {period}until {o.valid_until}): {o.reason}"
        )
        if item.superseded:
            line += f". Replaces #{', #'.join(map(str, item.superseded))} (kept in the history)"
        console.print(line, markup=False, highlight=False)
    if any(item.override.kind == "sentiment" for item in recorded) and not weighs_sentiment:
        console.print(
            f"warning: the scorecard has no '{CSM_SENTIMENT}' metric, so sentiment ratings are kept and shown "
            "but not weighed; add it to a category to count them (see README).",
            markup=False,
            highlight=False,
        )
    console.print(f"Override store: {store_path(settings.workdir_path)}", markup=False, highlight=False)


def run_override(
    account: str,
    *,
    category: str | None,
    score: str | None,
    sentiment: str | None,
    reason: str | None,
    until: str | None,
    start: str | None,
    by: str | None,
    data: Path | None,
    settings: Settings,
    console: Console,
    today: date | None = None,
) -> list[Recorded]:
    """`churn override`: one category, the whole account (no --category), or a sentiment rating.

    `today` (default: the clock) is the day an expiry may not be before.
    """
    if (score is None) == (sentiment is None):
        given = "both were given" if score is not None else "neither was given"
        raise ChurnError(f"Give either --score S (0-100) or --sentiment R (1-5 or red/yellow/green): {given}.")
    if sentiment is not None and category is not None:
        raise ChurnError("--sentiment rates the whole relationship: leave out --category.")
    kind = "sentiment" if sentiment is not None else ("category" if category is not None else "account")
    author = current_user(by)
    request = OverrideRequest(
        account_id=account,
        kind=kind,
        category=category,
        rating=str(sentiment if sentiment is not None else score),
        reason=reason or "",
        valid_until=until or "",
        valid_from=start,
        author=author,
    )
    today = today or utc_today()
    valid = _validated([("", request)], settings, known_accounts(settings, data), today)
    recorded = record_overrides(
        settings.make_workdir(), valid, source="command line", today=today, author_of_ends=author
    )
    _say_recorded(recorded, settings, console)
    return recorded


def read_import_file(path: Path) -> pd.DataFrame:
    """The CSV of a bulk import as text (UTF-8, comma-separated, header row)."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError as exc:
        raise ChurnError(f"Override file {path} does not exist.") from exc
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ChurnError(f"Override file {path} is not a readable UTF-8 CSV file: {exc}") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    unknown = [c for c in frame.columns if c not in IMPORT_COLUMNS]
    missing = [c for c in ("account_id", "reason", "until") if c not in frame.columns]
    if missing or unknown or not ({"score", "sentiment"} & set(frame.columns)):
        raise ChurnError(
            f"Override file {path}: columns {list(frame.columns)}; it needs account_id, reason, until and score "
            f"and/or sentiment (optional: category, from, by; unknown: {unknown or 'none'})."
        )
    if frame.empty:
        raise ChurnError(f"Override file {path} has no rows; nothing to record.")
    return frame


def run_import(
    path: Path,
    *,
    by: str | None,
    data: Path | None,
    settings: Settings,
    console: Console,
    today: date | None = None,
) -> list[Recorded]:
    """`churn overrides import FILE`: every row validated first, then all recorded in one transaction.

    Rows for the same account and target are recorded in file order, so a later row replaces an
    earlier one (which is kept in the history), as if they had been entered one by one.
    """
    frame = read_import_file(path)
    default_author = current_user(by)
    requests = []
    for line, row in zip(range(2, len(frame) + 2), frame.to_dict("records"), strict=True):
        score, sentiment = row.get("score", "").strip(), row.get("sentiment", "").strip()
        category = row.get("category", "").strip() or None
        if sentiment and (score or category):
            where = f"{path.name} line {line}"
            raise ChurnError(f"{where}: a sentiment row leaves score and category empty; nothing was written.")
        kind = "sentiment" if sentiment else ("category" if category else "account")
        requests.append(
            (
                f"{path.name} line {line}",
                OverrideRequest(
                    account_id=row["account_id"],
                    kind=kind,
                    category=category,
                    rating=sentiment or score,
                    reason=row.get("reason", ""),
                    valid_until=row.get("until", ""),
                    valid_from=row.get("from") or None,
                    author=row.get("by", "").strip() or default_author,
                ),
            )
        )
    today = today or utc_today()
    valid = _validated(requests, settings, known_accounts(settings, data), today)
    recorded = record_overrides(
        settings.make_workdir(), valid, source=f"import {path.name}", today=today, author_of_ends=default_author
    )
    _say_recorded(recorded, settings, console)
    return recorded


def _status(record: pd.Series, today: pd.Timestamp) -> str:
    if pd.notna(record["withdrawn_at"]):
        return (
            f"withdrawn {record['withdrawn_at'].date()} by {record['withdrawn_by']}, applies to no date: "
            f"{record['withdraw_reason']}"
        )
    if pd.notna(record["ended_at"]):
        if record["end_kind"] == "superseded":
            return f"replaced by #{int(record['superseded_by'])} on {record['ended_at'].date()}"
        return f"ended {record['ended_at'].date()} by {record['end_author']}: {record['end_reason']}"
    if record["valid_until"] < today:
        return f"expired after {record['valid_until'].date()}"
    if pd.notna(record["valid_from"]) and record["valid_from"] > today:
        return f"starts {record['valid_from'].date()}"
    return "in force"


def _print_records(records: pd.DataFrame, title: str, today: pd.Timestamp, console: Console) -> None:
    """One line per override (never wrapped: scripts and logs read them), after a title with the count."""
    console.print(title, markup=False, highlight=False)
    for _, record in records.iterrows():
        start = "" if pd.isna(record["valid_from"]) else f"from {record['valid_from'].date()} "
        console.print(
            f"#{record['override_id']} {record[ACCOUNT_ID]}: {describe_target(record)} = {record['rating']} "
            f"by {record['author']}, {start}until {record['valid_until'].date()}, recorded {record['recorded_at']} "
            f"[{_status(record, today)}]: {record['reason']}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def run_list(
    *, account: str | None, as_of: date | None, everything: bool, settings: Settings, console: Console
) -> pd.DataFrame:
    """`churn overrides list`: the overrides in force at a date (default today, UTC), or all with --all."""
    from models.overrides import in_force

    records = read_records(settings.workdir_path)
    if account is not None:
        records = records[records[ACCOUNT_ID] == trim_id(account)]
    day = pd.Timestamp(as_of or utc_today())
    shown = records if everything else in_force(records, day)
    what = "All overrides" if everything else f"Overrides in force on {day.date()}"
    _print_records(shown, f"{what} ({len(shown)}):", pd.Timestamp(utc_today()), console)
    return shown


def run_history(*, account: str | None, settings: Settings, console: Console) -> pd.DataFrame:
    """`churn overrides history [ACCOUNT]`: every judgement recorded, oldest first, with what became of it."""
    records = read_records(settings.workdir_path)
    if account is not None:
        account = trim_id(account)
        records = records[records[ACCOUNT_ID] == account]
        if records.empty:
            console.print(f"No override was ever recorded for account {account}.", markup=False, highlight=False)
            return records
    title = f"Override history{f' of account {account}' if account else ''} ({len(records)})"
    _print_records(records, f"{title}:", pd.Timestamp(utc_today()), console)
    return records


def run_expire(
    *,
    ids: list[int],
    account: str | None,
    category: str | None,
    whole_account: bool,
    sentiment: bool,
    reason: str | None,
    by: str | None,
    settings: Settings,
    console: Console,
) -> pd.DataFrame:
    """`churn overrides expire`: end live overrides now, by id or by account (and target)."""
    if bool(ids) == (account is not None):
        given = "both were given" if ids else "neither was given"
        raise ChurnError(f"Give override ids (--id N, repeatable) or an ACCOUNT: {given}.")
    if sum([category is not None, whole_account, sentiment]) > 1:
        raise ChurnError("Choose at most one of --category, --whole-account and --sentiment.")
    author = current_user(by)

    def select(live: pd.DataFrame) -> pd.DataFrame:
        if ids:
            missing = sorted(set(ids) - set(live["override_id"].astype(int)))
            if missing:
                raise ChurnError(
                    f"No live override with id {', '.join(map(str, missing))} (ended, replaced, withdrawn or never "
                    "recorded; "
                    "see `churn overrides history`); nothing was changed."
                )
            return live[live["override_id"].isin(ids)]
        chosen = live[live[ACCOUNT_ID] == trim_id(account)]
        if category is not None:
            chosen = chosen[(chosen["kind"] == "category") & (chosen["category"] == category)]
        elif whole_account:
            chosen = chosen[chosen["kind"] == "account"]
        elif sentiment:
            chosen = chosen[chosen["kind"] == "sentiment"]
        if chosen.empty:
            raise ChurnError(f"Account {account} has no live override to end (see `churn overrides list --all`).")
        return chosen

    ended = end_overrides(settings.workdir_path, select, reason=reason or "", author=author)
    today = pd.Timestamp.now(tz="UTC").date()  # the store's ends are recorded in UTC
    for _, record in ended.iterrows():
        console.print(
            f"Ended override #{record['override_id']} ({record[ACCOUNT_ID]}, {describe_target(record)} = "
            f"{record['rating']}); from scoring date {today} on the rule score applies and the account's CSM is "
            "alerted (re-runs of earlier dates keep it).",
            markup=False,
            highlight=False,
        )
    return ended


def run_withdraw(
    *, ids: list[int], reason: str | None, by: str | None, settings: Settings, console: Console
) -> pd.DataFrame:
    """`churn overrides withdraw ID...`: overrides entered by mistake apply to no date, as if never entered."""
    if not ids:
        raise ChurnError("Give the ids of the overrides to withdraw (see `churn overrides history`).")
    withdrawn = withdraw_overrides(settings.workdir_path, ids, reason=reason or "", author=current_user(by))
    replaced_by = read_records(settings.workdir_path).dropna(subset=["superseded_by"])
    for _, record in withdrawn.iterrows():
        line = (
            f"Withdrew override #{record['override_id']} ({record[ACCOUNT_ID]}, {describe_target(record)} = "
            f"{record['rating']}): it applies to no scoring date, re-runs of earlier dates included, and raises no "
            "alert; it stays in `churn overrides history`."
        )
        replaced = replaced_by.loc[replaced_by["superseded_by"] == record["override_id"], "override_id"].astype(str)
        if not replaced.empty:
            line += f" Override #{', #'.join(replaced)} that it replaced stays ended: record it again if it applies."
        console.print(line, markup=False, highlight=False)
    return withdrawn
