"""Alerts for customer-success managers: what got worse since the last scoring run (computed, not sent).

An account is alerted when, compared with the previous run, its health band worsened, its health
score dropped by more than `score_drop` points, or its churn probability rose across
`probability_level`; when it is under the red line for the first time in the score history; or
when it renews within `renewal_days` while at risk (high churn risk or a red health band). Alerts
are sorted by ARR at risk (ARR x churn probability) so the largest exposure comes first, and carry
the model's top drivers and the health categories that fell most, so the CSM knows where to start.

An account whose terms have all ended (`account_status` churned, scored with `--include-churned`) has
nothing left to save: none of those rules fires for it (its last day's score against the previous run's
is no news a CSM can act on). The run that first sees it churned, after a run that scored it active,
says so once: "churned: its last term ended 12 days ago", with no ARR at risk (it is lost, not at risk).
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd

from features.errors import ChurnError, counted, signed
from features.table import ACCOUNT_ID, AS_OF
from models.explain import renewal_words
from models.healthscore import BAND_ORDER, shown_score
from models.population import churned_mask
from models.scores import HEALTH_BAND, MODEL_VERSION, RISK_BAND, SCORECARD_HASH, health_columns
from models.scoring import risk_band, shown_percent

ALERT_COLUMNS: tuple[str, ...] = (
    ACCOUNT_ID,
    AS_OF,
    "reasons",
    "arr",
    "churn_probability",
    "health_score",
    "health_band",
    "previous_health_band",
    "top_drivers",
    "fallen_categories",
    "arr_at_risk",
    "model_version",
    "rules",
    "alert_id",
)
REASON_SEPARATOR = "; "

# What fired, by name: an alert's identity (with its account and date), unlike its words, which change with
# a number's rounding (another model, the Spark engine) while the alert stays the same.
BAND_WORSENED = "band_worsened"
SCORE_DROP = "score_drop"
FIRST_RED = "first_red"
PROBABILITY_CROSSED = "probability_crossed"
RENEWAL_AT_RISK = "renewal_at_risk"
CHURNED_RULE = "churned"
OVERRIDE_ENDED = "override_ended:"  # + what the override was about (`override_rule`)
ACCOUNT_TARGET, SENTIMENT_TARGET = "health score", "sentiment"  # what the non-category overrides are about
RULE_SEPARATOR = "; "
# How each rule's sentence starts, to read the rules of alerts recorded in words only (ledgers of churn
# before 2026-11): the override sentence is `models.overrides._expiry_sentence`'s.
_RULE_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (BAND_WORSENED, re.compile(r"health band worsened from ")),
    (SCORE_DROP, re.compile(r"health score dropped ")),
    (FIRST_RED, re.compile(r"health under the red line for the first time")),
    (PROBABILITY_CROSSED, re.compile(r"churn probability rose above ")),
    (RENEWAL_AT_RISK, re.compile(r"renews (?:in |today )")),
)
_HOW_ENDED = r"(?:expired|was replaced(?: by #\d+, since withdrawn)?|was ended early by .*) \(was "
_OVERRIDE_WORDS = re.compile(rf"^(.+?) override {_HOW_ENDED}")
_SENTIMENT_WORDS = re.compile(rf"^CSM sentiment rating {_HOW_ENDED}")
_GONE_WORDS = re.compile(r"^override (#\d+) is no longer in the override store")


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype=str)
    return frame[column].astype(str).where(frame[column].notna())


def _percent(value: float) -> str:
    """A probability in whole percents, cut as the risk bands read it (`shown_percent`), a non-zero one under 1%
    as "under 1%": "from 0% to 84%" read as an account that had no risk at all."""
    return "under 1%" if 0 < value < 0.01 else shown_percent(value)


def _drop_words(before: float, now: float) -> str:
    """The drop said as the difference of the scores it shows, each cut as `shown_score` cuts it (in its band):
    whole points when their difference is the rounded drop, else one decimal."""
    shown_before, shown_now = int(shown_score(before)), int(shown_score(now))
    if shown_before - shown_now == round(before - now):
        return f"health score dropped {counted(shown_before - shown_now, 'point')} (from {shown_before} to {shown_now})"
    shown_before, shown_now = shown_score(before, 1), shown_score(now, 1)
    return f"health score dropped {shown_before - shown_now:.1f} points (from {shown_before:.1f} to {shown_now:.1f})"


def score_alerts(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    *,
    score_drop: float,
    probability_level: float,
    renewal_days: int,
    high_risk: float,
    history: pd.DataFrame | None = None,
    n_categories: int = 3,
    extra_reasons: list[list[tuple[str, str]]] | None = None,
) -> pd.DataFrame:
    """Alerted accounts of the current run with their reasons in plain words, largest ARR at risk first, then
    those without an ARR by churn probability.

    `current` is a scores table (account_id, as_of, churn_probability, health_score, health_band,
    health_<category>, days_to_renewal, arr, top_drivers, risk_band; missing columns disable the
    rules that need them); `previous` holds each account's latest earlier score
    (`pipeline.history.latest_before`: the previous run's row, or for an account that run did not
    score the last run that did; None/empty: only the renewal rule can fire). `history` holds the
    earlier runs that tell whether an account was ever red (rows dated on or after the current as_of
    are ignored); without it the previous run is all that is known. `fallen_categories` names the
    `n_categories` health categories that fell most since the previous run, worst first
    ("support -30.0, adoption -12.0"). Columns: ALERT_COLUMNS.
    The thresholds are `scoring.alerts` of the configuration; `high_risk` is the probability from
    which risk is high, for scores without a `risk_band` column. `extra_reasons` holds, per row of
    `current`, (rule, sentence) pairs decided elsewhere (a CSM override that expired); they come first.
    `rules` names what fired (BAND_WORSENED...), `alert_id` is `alert_id` of the account, date and rules.
    """
    if ACCOUNT_ID not in current.columns:
        raise ChurnError(f"Alerts need the '{ACCOUNT_ID}' column in the scores; it has {list(current.columns)[:10]}.")
    now = current.reset_index(drop=True)
    before = _previous_by_account(previous, now[ACCOUNT_ID])

    probability, health = _numeric(now, "churn_probability"), _numeric(now, "health_score")
    band, before_band = _text(now, HEALTH_BAND), _text(before, HEALTH_BAND)
    before_probability, before_health = _numeric(before, "churn_probability"), _numeric(before, "health_score")
    at_risk_band = _text(now, RISK_BAND) if RISK_BAND in now.columns else risk_band(probability, high_risk, 0.0)
    days_to_renewal = _numeric(now, "days_to_renewal")

    # Like with like: a score of another scorecard is no reference for a drop or a band change.
    comparable = same_scorecard(now, before)
    # an account whose terms have all ended (scored with --include-churned): nothing got worse, it is gone
    churned = pd.Series(churned_mask(now), index=now.index)
    live = comparable & ~churned
    band_worsened = (band.map(BAND_ORDER) > before_band.map(BAND_ORDER)).fillna(False).astype(bool) & live
    drop = before_health - health
    score_dropped = (drop > score_drop) & live
    first_red = _first_red(now, band, _comparable_runs(now, previous if history is None else history)) & ~churned
    level = probability_level
    crossed = (before_probability < level) & (probability >= level) & ~churned
    at_risk = at_risk_band.eq("high").fillna(False) | band.eq("red").fillna(False)
    renewing_at_risk = (days_to_renewal <= renewal_days) & at_risk & ~churned
    # said once: in the run after one that scored it not churned (a history without status: not churned)
    earlier = previous[ACCOUNT_ID] if previous is not None and ACCOUNT_ID in previous.columns else []
    scored_before = now[ACCOUNT_ID].isin(earlier)
    was_churned = churned_mask(before)
    newly_churned = churned & scored_before & ~was_churned

    fired: list[list[tuple[str, str]]] = (
        [list(r) for r in extra_reasons] if extra_reasons else [[] for _ in range(len(now))]
    )
    if len(fired) != len(now):
        raise ValueError(f"extra_reasons has {len(fired)} rows for {len(now)} scored accounts")
    for i in np.flatnonzero(band_worsened):
        fired[i].append((BAND_WORSENED, f"health band worsened from {before_band[i]} to {band[i]}"))
    for i in np.flatnonzero(score_dropped):
        fired[i].append((SCORE_DROP, _drop_words(before_health[i], health[i])))
    for i in np.flatnonzero(first_red):
        fired[i].append((FIRST_RED, "health under the red line for the first time"))
    for i in np.flatnonzero(crossed):
        fired[i].append(
            (
                PROBABILITY_CROSSED,
                f"churn probability rose above {_percent(level)} "
                f"(from {_percent(before_probability[i])} to {_percent(probability[i])})",
            )
        )
    for i in np.flatnonzero(renewing_at_risk):
        why = " and ".join(
            text
            for text, hit in (("high churn risk", at_risk_band[i] == "high"), ("red health", band[i] == "red"))
            if hit
        )
        when = "today" if round(days_to_renewal[i]) == 0 else f"in {counted(round(days_to_renewal[i]), 'day')}"
        fired[i].append((RENEWAL_AT_RISK, f"renews {when} with {why}"))
    for i in np.flatnonzero(newly_churned):
        fired[i].append((CHURNED_RULE, _churned_words(days_to_renewal[i])))
    rules = [RULE_SEPARATOR.join(rule for rule, _ in f) for f in fired]

    arr = _numeric(now, "arr")
    as_of = now[AS_OF] if AS_OF in now.columns else pd.Series(pd.NaT, index=now.index)
    alerts = pd.DataFrame(
        {
            ACCOUNT_ID: now[ACCOUNT_ID],
            AS_OF: as_of,
            "reasons": pd.Series([REASON_SEPARATOR.join(text for _, text in f) for f in fired], dtype=str),
            "arr": arr,
            "churn_probability": probability,
            "health_score": health,
            "health_band": band,
            "previous_health_band": before_band,
            "top_drivers": _text(now, "top_drivers").fillna(""),
            "fallen_categories": _fallen_categories(now, before, n_categories).mask(churned, ""),
            "arr_at_risk": (arr * probability).mask(churned),
            "model_version": _text(now, MODEL_VERSION),  # whose probability the alert quotes
            "rules": pd.Series(rules, dtype=str),
            "alert_id": [
                alert_id(day, account, rule) for day, account, rule in zip(as_of, now[ACCOUNT_ID], rules, strict=True)
            ],
        }
    )
    alerts = alerts[[bool(f) for f in fired]]
    # without an ARR (an export without `arr`, a churned account) the churn probability orders them
    order = ["arr_at_risk", "churn_probability"]
    return alerts.sort_values(order, ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def _churned_words(days_to_renewal: float) -> str:
    """The alert of an account first seen churned: when its last term ended (`days_to_renewal` < 0 for it)."""
    if not days_to_renewal < 0:  # unknown (NaN)
        return "churned: all its terms have ended"
    return f"churned: its last {renewal_words(days_to_renewal)}"


def alert_id(as_of: object, account: object, rules: str) -> str:
    """A stable id of the alert of `account` on scoring date `as_of` for `rules` (RULE_SEPARATOR-joined):
    the same on every run of that date whatever the words, so a webhook receiver can drop a duplicate."""
    day = "" if pd.isna(as_of) else f"{pd.Timestamp(as_of):%Y-%m-%d}"
    named = RULE_SEPARATOR.join(sorted(split_rules(rules)))
    return hashlib.sha256(f"{day}\n{account}\n{named}".encode()).hexdigest()[:32]


def split_rules(rules: str) -> set[str]:
    """The rule names of an alert's `rules` text."""
    return {rule for rule in rules.split(RULE_SEPARATOR) if rule}


def override_rule(target: str, *, category: bool) -> str:
    """The alert rule of an ended override about `target` (`models.overrides.target_name`). A category named
    like another target ('health score', 'sentiment', or '#12', a vanished override) gets `category:` before
    its name, so the webhook sees its alert and theirs as two alerts; every other name keeps the rule that
    ledgers already hold."""
    taken = target in (ACCOUNT_TARGET, SENTIMENT_TARGET) or target.startswith(("#", "category:"))
    return f"{OVERRIDE_ENDED}category:{target}" if category and taken else OVERRIDE_ENDED + target


def rules_in_words(reasons: str) -> set[str]:
    """The rules an alert's `reasons` text names, for alerts recorded in words only (webhook ledgers of
    earlier churn versions); a sentence not of this module's wording names none."""
    found = set()
    for sentence in reasons.split(REASON_SEPARATOR):
        found |= {rule for rule, words in _RULE_WORDS if words.match(sentence)}
        if _SENTIMENT_WORDS.match(sentence):
            found.add(override_rule(SENTIMENT_TARGET, category=False))
        elif match := _GONE_WORDS.match(sentence):
            found.add(f"{OVERRIDE_ENDED}{match.group(1)}")
        elif match := _OVERRIDE_WORDS.match(sentence):  # a category, or the whole account's 'health score'
            found.add(override_rule(match.group(1), category=match.group(1) != ACCOUNT_TARGET))
    return found


def same_scorecard(now: pd.DataFrame, before: pd.DataFrame) -> pd.Series:
    """Per row, whether the earlier score was computed with the same scorecard (content hash).

    Rows without a hash on either side (runs of earlier churn versions, tables without a
    scorecard) count as comparable: nothing says the scorecard changed.
    """
    if SCORECARD_HASH not in now.columns or SCORECARD_HASH not in before.columns:
        return pd.Series(True, index=now.index)
    current, earlier = now[SCORECARD_HASH], before[SCORECARD_HASH]
    return (current.isna() | earlier.isna() | (current == earlier)).astype(bool)


def _comparable_runs(now: pd.DataFrame, history: pd.DataFrame | None) -> pd.DataFrame | None:
    """The earlier rows scored with the scorecard of the current run (or without a known one)."""
    if history is None or history.empty or SCORECARD_HASH not in history.columns or SCORECARD_HASH not in now:
        return history
    current = set(now[SCORECARD_HASH].dropna())
    return history[history[SCORECARD_HASH].isna() | history[SCORECARD_HASH].isin(current)]


def _previous_by_account(previous: pd.DataFrame | None, accounts: pd.Series) -> pd.DataFrame:
    """The previous run's rows in the order of `accounts` (all-missing for accounts it did not score)."""
    if previous is None or previous.empty:
        return pd.DataFrame(index=accounts.index)
    latest = previous.drop_duplicates(ACCOUNT_ID, keep="last").set_index(ACCOUNT_ID)
    return latest.reindex(accounts.to_numpy()).set_index(accounts.index)


def _first_red(now: pd.DataFrame, band: pd.Series, history: pd.DataFrame | None) -> pd.Series:
    """Red now and never red in the earlier runs, a new account included; never on the very first run.

    The first run has nothing to compare with, so every red account would look new: that is noise,
    not news. A history without bands (runs of tables without a scorecard) cannot tell either.
    """
    none = pd.Series(False, index=now.index)
    if history is None or history.empty or HEALTH_BAND not in history.columns:
        return none
    earlier = history
    if AS_OF in history.columns and AS_OF in now.columns:
        run_date = pd.Series(pd.to_datetime(now[AS_OF]).to_numpy(), index=now[ACCOUNT_ID].astype(str))
        run_date = run_date[~run_date.index.duplicated(keep="last")]
        accounts = history[ACCOUNT_ID].astype(str)
        earlier = history[pd.to_datetime(history[AS_OF]) < accounts.map(run_date)]
        if earlier.empty:
            return none
    ever_red = set(earlier.loc[earlier[HEALTH_BAND] == "red", ACCOUNT_ID].astype(str))
    return band.eq("red").fillna(False).astype(bool) & ~now[ACCOUNT_ID].astype(str).isin(ever_red)


def _fallen_categories(now: pd.DataFrame, before: pd.DataFrame, n: int) -> pd.Series:
    """Per account, the `n` health categories with the largest falls since the previous run, worst first; a
    fall that rounds to 0.0 points at the precision said is no fall ("support -0.0" read as one)."""
    categories = [c for c in health_columns(now) if c in before.columns]
    if not categories:
        return pd.Series("", index=now.index, dtype=str)
    change = now[categories].astype(float).to_numpy() - before[categories].apply(
        pd.to_numeric, errors="coerce"
    ).to_numpy(dtype=float)
    names = [c.removeprefix("health_") for c in categories]
    texts = []
    for row in change:
        worst = [i for i in np.argsort(row, kind="stable") if round(row[i], 1) < 0][:n]
        texts.append(", ".join(f"{names[i]} {signed(row[i], '.1f')}" for i in worst))
    return pd.Series(texts, index=now.index, dtype=str)
