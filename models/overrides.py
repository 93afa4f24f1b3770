"""A CSM's judgement as data: manual scores and sentiment ratings, applied on top of the rule score.

An *override* sets the 0-100 score of one health category, or of the whole account, for a period
(`valid_from`, open when unset, through `valid_until` inclusive). A *sentiment* rating (1-5, or
red / yellow / green = 1 / 3 / 5) is not a score: it is the value of the `csm_sentiment` metric,
which a scorecard weighs like any other metric (e.g. in a relationship category). Both carry who
set them and why. This module is pure: the durable store is `pipeline/override_store.py`.

How the health score uses them (`apply_overrides`):
- a category override replaces that category's rule score; the health score is the weighted mean
  of the categories again, with the category weights of the account's scorecard, so an override
  of a category the rule could not measure brings that category's weight back in;
- a whole-account override replaces the health score itself (categories keep their values);
- the band follows the score actually shown; the rule's own values stay beside it in `rule_*`
  columns, and `override_ids` names the overrides applied (how the next run tells which expired).

An override ended early applies to the dates before the day it was ended (re-runs of them keep it).
A withdrawn one (entered by mistake) applies to no date at all, as if never entered, and raises no alert.
When an override applied in the previous run is gone in this one (its period ended, it was ended
early or the store no longer has it), `expiry_reasons` says so in words for the account's alert:
"health score override expired (was 35, set by jane until 2026-12-01); rule score now 41".
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features.judgement import CSM_SENTIMENT
from features.spelling import did_you_mean
from features.table import ACCOUNT_ID, trim_id
from models.alerts import ACCOUNT_TARGET, OVERRIDE_ENDED, SENTIMENT_TARGET, override_rule
from models.healthscore import band_of
from models.scorecard import ScorecardConfig
from models.scores import (
    HEALTH_BAND,
    HEALTH_SCORE,
    HEALTH_SCORECARD,
    OVERRIDE_BY,
    OVERRIDE_HEALTH_SCORE,
    OVERRIDE_IDS,
    OVERRIDE_PREFIX,
    OVERRIDE_REASON,
    OVERRIDE_TEXT_COLUMNS,
    OVERRIDE_UNTIL,
    RULE_HEALTH_BAND,
    RULE_HEALTH_SCORE,
    RULE_PREFIX,
    health_column,
)

KINDS = ("category", "account", "sentiment")
SENTIMENT_WORDS: dict[str, float] = {"red": 1.0, "yellow": 3.0, "green": 5.0}
SENTIMENT_RANGE = (1.0, 5.0)

# The frame of overrides that `in_force` filters and `apply_overrides` applies (the store's read).
RECORD_COLUMNS: tuple[str, ...] = (
    "override_id",
    ACCOUNT_ID,
    "kind",
    "category",
    "value",
    "rating",
    "reason",
    "author",
    "valid_from",
    "valid_until",
    "recorded_at",
    "ended_at",
    "end_kind",
    "end_author",
    "end_reason",
    "withdrawn_at",
    "withdrawn_by",
    "withdraw_reason",
)


class InvalidOverride(ValueError):
    """An override that must not be recorded; the message names every problem."""


@dataclass(frozen=True)
class OverrideRequest:
    """One override as a user gives it (command line or a CSV row), before validation."""

    account_id: str
    kind: str
    category: str | None
    rating: str
    reason: str
    valid_until: str
    valid_from: str | None = None
    author: str = ""

    def target(self) -> str:
        return target_name(self.kind, self.category)


@dataclass(frozen=True)
class ValidOverride:
    """A validated override, ready for the store."""

    account_id: str
    kind: str
    category: str | None
    value: float
    rating: str
    reason: str
    valid_from: date | None
    valid_until: date
    author: str


def target_name(kind: str, category: str | None) -> str:
    """What an override is about, in words: a category name, 'health score' or 'sentiment'."""
    if kind == "category":
        return str(category)
    return ACCOUNT_TARGET if kind == "account" else SENTIMENT_TARGET


def parse_rating(kind: str, rating: object) -> float:
    """The number a rating stands for: 0-100 for scores, 1-5 for sentiment (red/yellow/green = 1/3/5)."""
    text = str(rating).strip()
    if kind == "sentiment" and text.lower() in SENTIMENT_WORDS:
        return SENTIMENT_WORDS[text.lower()]
    try:
        value = float(text)
    except ValueError:
        expected = "1 to 5 or red/yellow/green" if kind == "sentiment" else "a number from 0 to 100"
        raise InvalidOverride(f"'{text}' is not a rating ({expected})") from None
    low, high = SENTIMENT_RANGE if kind == "sentiment" else (0.0, 100.0)
    if not math.isfinite(value) or not low <= value <= high:
        what = "a sentiment rating" if kind == "sentiment" else "a score"
        raise InvalidOverride(f"{what} must lie between {low:g} and {high:g}, got '{text}'")
    return value


def _date(text: str | None, what: str) -> date | None:
    if text is None or not str(text).strip():
        return None
    try:
        return date.fromisoformat(str(text).strip()[:10])
    except ValueError:
        raise InvalidOverride(f"{what} '{text}' is not a date (use YYYY-MM-DD)") from None


def validate_override(
    request: OverrideRequest,
    *,
    today: date,
    categories: Collection[str],
    accounts: Collection[str] | None,
    accounts_from: str = "",
) -> ValidOverride:
    """Check one override; raises InvalidOverride listing every problem found.

    `categories` are the scorecard's categories; `accounts` the known account ids (None: not
    checked here), `accounts_from` where they come from, said after an unknown one. The expiry may
    be today (in force through today) but not earlier; a start, when given, must not be after the expiry.
    """
    problems: list[str] = []
    account = trim_id(request.account_id)
    if not account:
        problems.append("the account id is empty")
    elif accounts is not None and account not in accounts:
        hint = did_you_mean(account, sorted(accounts), cutoff=None)
        problems.append(f"unknown account {account!r}{hint}{accounts_from}")  # repr: a tab in an id is shown
    if request.kind not in KINDS:
        problems.append(f"unknown kind '{request.kind}' (use one of {', '.join(KINDS)})")
    if request.kind == "category" and request.category not in categories:
        known = ", ".join(categories)
        problems.append(f"unknown category '{request.category}' (the scorecard has: {known})")
    value = float("nan")
    try:
        value = parse_rating(request.kind, request.rating)
    except InvalidOverride as exc:
        problems.append(str(exc))
    reason = " ".join(str(request.reason or "").split())
    if not reason:
        problems.append("a reason is required (why does the rule score not hold for this account?)")
    until = start = None
    try:
        until = _date(request.valid_until, "expiry")
        if until is None:
            problems.append("an expiry date is required (--until YYYY-MM-DD)")
        elif until < today:
            problems.append(f"the expiry {until} is in the past (today is {today})")
    except InvalidOverride as exc:
        problems.append(str(exc))
    try:
        start = _date(request.valid_from, "start")
    except InvalidOverride as exc:
        problems.append(str(exc))
    if start is not None and until is not None and start > until:
        problems.append(f"the start {start} is after the expiry {until}")
    author = " ".join(str(request.author or "").split())
    if not author:
        problems.append("who sets the override is unknown (--by NAME)")
    if problems:
        raise InvalidOverride("; ".join(problems))
    assert until is not None  # a missing expiry is a problem above
    return ValidOverride(
        account_id=account,
        kind=request.kind,
        category=request.category if request.kind == "category" else None,
        value=value,
        rating=str(request.rating).strip(),
        reason=reason,
        valid_from=start,
        valid_until=until,
        author=author,
    )


def overlaps(a_from: date | None, a_until: date, b_from: date | None, b_until: date) -> bool:
    """Whether two validity periods (open start when None, inclusive ends) share a day."""
    start_a, start_b = a_from or date.min, b_from or date.min
    return start_a <= b_until and start_b <= a_until


def in_force(records: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The overrides that apply at `as_of`: started (or open), not expired, not ended, not withdrawn; one per target.

    A withdrawn override (a mistake) applies to no date: re-runs of earlier dates lose it too. An
    override ended (early, or superseded by a later one for an overlapping period) applies to no date
    from the day it was ended (UTC) on, but still to the dates before: a re-run of such a date keeps
    the judgement that was in force then, and the next date's run raises the expiry alert.
    Should two qualify for the same account and target, the later recorded wins.
    """
    if records.empty:
        return records.reindex(columns=list(RECORD_COLUMNS))
    day = pd.Timestamp(as_of).normalize()
    starts = pd.to_datetime(records["valid_from"])
    ends = pd.to_datetime(records["valid_until"])
    ended = pd.to_datetime(records["ended_at"]).dt.normalize()
    live = (ended.isna() | (day < ended)) & (starts.isna() | (starts <= day)) & (ends >= day)
    live &= records["withdrawn_at"].isna()
    current = records[live].sort_values("override_id", kind="stable")
    key = [ACCOUNT_ID, "kind", current["category"].fillna("")]
    return current.groupby(key, sort=False, dropna=False).tail(1).reset_index(drop=True)


def sentiment_values(overrides: pd.DataFrame, accounts: pd.Series) -> np.ndarray:
    """The `csm_sentiment` metric for `accounts` from the overrides in force (NaN without a rating)."""
    sentiment = overrides[overrides["kind"] == "sentiment"]
    values = pd.Series(sentiment["value"].to_numpy(dtype=float), index=sentiment[ACCOUNT_ID].astype(str))
    return values.reindex(accounts.astype(str).to_numpy()).to_numpy(dtype=float)


def _override_column(kind: str, category: str | None) -> str:
    if kind == "category":
        return f"{OVERRIDE_PREFIX}{category}"
    return OVERRIDE_HEALTH_SCORE if kind == "account" else f"{OVERRIDE_PREFIX}{CSM_SENTIMENT}"


def override_columns(categories: Sequence[str]) -> list[str]:
    """The value columns of the scores table for these categories (always present, NaN without an override)."""
    return [*(f"{OVERRIDE_PREFIX}{c}" for c in categories), OVERRIDE_HEALTH_SCORE, f"{OVERRIDE_PREFIX}{CSM_SENTIMENT}"]


def rule_columns(categories: Sequence[str]) -> list[str]:
    return [RULE_HEALTH_SCORE, RULE_HEALTH_BAND, *(f"{RULE_PREFIX}{c}" for c in categories)]


@dataclass(frozen=True)
class Applied:
    """Scores with the overrides applied, and what could not be applied (one line per override)."""

    scores: pd.DataFrame
    notes: tuple[str, ...]


def apply_overrides(scores: pd.DataFrame, overrides: pd.DataFrame, config: ScorecardConfig) -> Applied:
    """Apply the overrides in force to a scores table (see the module docstring); rule values kept beside.

    `scores` has account_id, health_score, health_band, health_scorecard and health_<category>;
    `overrides` holds the overrides in force (`in_force`), for any accounts. Adds `rule_*`,
    `override_*` and the text columns OVERRIDE_TEXT_COLUMNS to every row, overrides or not, so the
    table has the same columns in every run.
    """
    categories = config.categories()
    out = scores.copy()
    out[RULE_HEALTH_SCORE] = out[HEALTH_SCORE].astype(float)
    out[RULE_HEALTH_BAND] = out[HEALTH_BAND]
    for category in categories:
        out[f"{RULE_PREFIX}{category}"] = out[health_column(category)].astype(float)
    for column in override_columns(categories):
        out[column] = np.nan
    texts: dict[str, list[list[str]]] = {c: [[] for _ in range(len(out))] for c in OVERRIDE_TEXT_COLUMNS}
    notes: list[str] = []
    position = pd.Series(np.arange(len(out)), index=out[ACCOUNT_ID].astype(str).to_numpy())
    position = position[~position.index.duplicated()]
    scored = overrides[overrides[ACCOUNT_ID].astype(str).isin(position.index)]
    weights = {name: {c: cat.weight for c, cat in card.categories.items()} for name, card, _ in config.scorecards()}
    touched = np.zeros(len(out), dtype=bool)
    for record in scored.sort_values("override_id", kind="stable").itertuples(index=False):
        row = int(position[str(record.account_id)])
        kind, category = record.kind, record.category if record.kind == "category" else None
        target = target_name(kind, category)
        if kind == "category":
            card = str(out[HEALTH_SCORECARD].iat[row])
            if category not in weights.get(card, {}):
                where = "any scorecard" if category not in categories else f"its scorecard '{card}'"
                notes.append(
                    f"override #{record.override_id} of {target} for account {record.account_id} not applied: "
                    f"the category is not on {where}"
                )
                continue
            touched[row] = True
        out.iloc[row, out.columns.get_loc(_override_column(kind, category))] = float(record.value)
        texts[OVERRIDE_IDS][row].append(str(record.override_id))
        texts[OVERRIDE_BY][row].append(f"{target}: {record.author}")
        texts[OVERRIDE_REASON][row].append(f"{target}: {record.reason}")
        texts[OVERRIDE_UNTIL][row].append(f"{target}: {pd.Timestamp(record.valid_until).date()}")
    for column, values in texts.items():
        separator = "," if column == OVERRIDE_IDS else "; "
        out[column] = pd.Series([separator.join(v) for v in values], index=out.index, dtype=str)

    for category in categories:
        given = out[f"{OVERRIDE_PREFIX}{category}"]
        out[health_column(category)] = given.where(given.notna(), out[health_column(category)])
    score = out[RULE_HEALTH_SCORE].to_numpy(dtype=float).copy()
    for row in np.flatnonzero(touched):
        score[row] = _weighted_mean(out, row, weights[str(out[HEALTH_SCORECARD].iat[row])])
    whole = out[OVERRIDE_HEALTH_SCORE].to_numpy(dtype=float)
    score = np.where(np.isnan(whole), score, whole)
    out[HEALTH_SCORE] = score
    changed = touched | ~np.isnan(whole)
    out[HEALTH_BAND] = np.where(changed, band_of(score, config), out[RULE_HEALTH_BAND].to_numpy(dtype=object))
    return Applied(out, tuple(notes))


def _weighted_mean(scores: pd.DataFrame, row: int, weights: Mapping[str, float]) -> float:
    """The category level of the health score (`models.healthscore._score_rows`) for one row."""
    values = np.array([scores[health_column(c)].iat[row] for c in weights], dtype=float)
    w = np.array(list(weights.values()), dtype=float)
    counted = ~np.isnan(values) & (w > 0)
    if not counted.any():
        return float("nan")
    return float(np.clip((values[counted] * w[counted]).sum() / w[counted].sum(), 0.0, 100.0))


def _ids(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [part for part in str(value).split(",") if part.strip()]


def expiry_reasons(
    current: pd.DataFrame, previous: pd.DataFrame | None, records: pd.DataFrame
) -> list[list[tuple[str, str]]]:
    """Per row of `current`, one (alert rule, sentence) per override the previous run applied and this one
    does not; the rule names what the override was about (`override_rule`), or its id
    when the store no longer has it.

    Overrides replaced by a newer one for the same target are not expiries (the target still has
    an override), nor are withdrawn ones: a mistake taken back did not "end", it never held.
    `records` (every override the store holds, ended ones too) tells why each one
    went: its period ended, it was ended early (by whom, why), or the store no longer has it. The
    sentence gives the rule value now in force for the target.
    """
    reasons: list[list[tuple[str, str]]] = [[] for _ in range(len(current))]
    if previous is None or previous.empty or OVERRIDE_IDS not in previous.columns:
        return reasons
    before = previous.drop_duplicates(ACCOUNT_ID, keep="last")
    before = before.set_index(before[ACCOUNT_ID].astype(str))
    by_id = records.set_index(records["override_id"].astype(str)) if not records.empty else records
    now_ids = current[OVERRIDE_IDS] if OVERRIDE_IDS in current.columns else pd.Series("", index=current.index)
    for i, (account, ids_now) in enumerate(zip(current[ACCOUNT_ID].astype(str), now_ids, strict=True)):
        if account not in before.index:
            continue
        now = set(_ids(ids_now))
        now_targets = {_target_of(by_id, x) for x in now}
        for gone in (x for x in _ids(before.at[account, OVERRIDE_IDS]) if x not in now):
            target = _target_of(by_id, gone)
            if target is not None and (target in now_targets or pd.notna(by_id.at[gone, "withdrawn_at"])):
                continue  # replaced by a newer override of the same target, or withdrawn as a mistake
            if target is None:
                rule = f"{OVERRIDE_ENDED}#{gone}"
            else:
                rule = override_rule(target_name(*target), category=target[0] == "category")
            reasons[i].append((rule, _expiry_sentence(gone, by_id, current.iloc[i])))
    return reasons


def _target_of(by_id: pd.DataFrame, override_id: str) -> tuple[str, str] | None:
    if override_id not in by_id.index:
        return None
    record = by_id.loc[override_id]
    return str(record["kind"]), str(record["category"] if record["kind"] == "category" else "")


def _withdrawn_replacement(record: pd.Series, by_id: pd.DataFrame) -> str | None:
    """The id of the override that replaced `record` when that one was withdrawn since, else None."""
    replacement = record.get("superseded_by")
    if replacement is None or pd.isna(replacement) or str(int(replacement)) not in by_id.index:
        return None
    return str(int(replacement)) if pd.notna(by_id.at[str(int(replacement)), "withdrawn_at"]) else None


def _expiry_sentence(override_id: str, by_id: pd.DataFrame, row: pd.Series) -> str:
    if override_id not in by_id.index:
        return f"override #{override_id} is no longer in the override store; rule values apply again"
    record = by_id.loc[override_id]
    kind, category = str(record["kind"]), record["category"]
    target = target_name(kind, category)
    set_by = f"was {record['rating']}, set by {record['author']} until {pd.Timestamp(record['valid_until']).date()}"
    how = "expired"
    ended = pd.Timestamp(record["ended_at"])  # an end recorded after its last day changed nothing: it expired
    if pd.notna(ended) and ended.normalize() <= pd.Timestamp(record["valid_until"]):
        if record["end_kind"] != "superseded":
            how = f"was ended early by {record['end_author']}"
            set_by += f"; ended because: {record['end_reason']}"
        elif (replacement := _withdrawn_replacement(record, by_id)) is None:
            how = "was replaced"
        else:  # nothing replaces it now: the replacement was a mistake, and this one stays ended
            how = f"was replaced by #{replacement}, since withdrawn"
            set_by += "; record it again if it still applies"
    if kind == "sentiment":
        return f"CSM sentiment rating {how} ({set_by}); the scorecard no longer counts it"
    rule = row.get(f"{RULE_PREFIX}{category}" if kind == "category" else RULE_HEALTH_SCORE, float("nan"))
    now = "no rule score" if pd.isna(rule) else f"rule score now {float(rule):.0f}"
    shown = row.get(HEALTH_SCORE, float("nan"))
    if kind == "account" and not pd.isna(rule) and not pd.isna(shown) and round(float(shown)) != round(float(rule)):
        # the account's category overrides still in force: the rule's score is not the one shown
        now = f"health score now {float(shown):.0f} with the overrides still in force (rule score {float(rule):.0f})"
    return f"{target} override {how} ({set_by}); {now}"
