"""Batch scoring: every active account as of a date, in both views (rule health score and ML risk).

The score rows come from the scoring core (`models.scoring.score_accounts`); `score_book` adds
what the score history says (trends, alerts against the previous run) and drift monitoring.
Neither writes anything: the scoring commit (`pipeline/commit.py`) puts a run in place as one unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import ChurnError, DataContractError, counted
from features.judgement import CSM_SENTIMENT
from features.table import ACCOUNT_ID, AS_OF
from models.alerts import score_alerts
from models.drift import drift_report
from models.healthscore import explain_health, near_miss_segment_values, score_health
from models.overrides import RECORD_COLUMNS, apply_overrides, expiry_reasons, in_force, sentiment_values
from models.risk_model import DATE_SPREAD, NUMBER_FORMATS, SOURCE_COLUMNS, TIME_COLUMN, ChurnRiskModel
from models.scorecard import ScorecardConfig
from models.scores import CHURN_PROBABILITY, MODEL_VERSION, SCORECARD_HASH, SCORECARD_NAME, health_columns
from models.scoring import Scored, said_columns, score_accounts
from pipeline.config import Settings
from pipeline.history import latest_before, read_history, trends
from pipeline.progress import ProgressCallback


@dataclass
class ScoreRun:
    """One batch scoring run: the scores table, its alerts and the drift report."""

    scores: pd.DataFrame
    alerts: pd.DataFrame
    drift: pd.DataFrame
    model_version: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. how the scorecard was adapted to the data
    named: Mapping[str, str] = field(default_factory=dict)  # column -> as the words say it (`said_columns`)

    @property
    def drifted(self) -> list[str]:
        """The drifted features, as the words name them (a usage column by its product feature's name)."""
        drifted = self.drift.loc[self.drift["drifted"], "feature"].tolist() if not self.drift.empty else []
        return [self.named.get(name, name) for name in drifted]


def score_features(
    features: pd.DataFrame,
    model: ChurnRiskModel,
    scorecard: ScorecardConfig | None,
    settings: Settings,
    *,
    progress: ProgressCallback | None = None,
) -> Scored:
    """The scoring core on a feature table (rows renumbered 0..n-1), with the configured scoring rules."""
    return score_accounts(
        model, features.reset_index(drop=True), scorecard, settings.scoring_rules(), progress=progress
    )


def score_table(
    features: pd.DataFrame,
    model: ChurnRiskModel,
    scorecard: ScorecardConfig | None,
    settings: Settings,
    *,
    progress: ProgressCallback | None = None,
) -> pd.DataFrame:
    """The scores table of SPEC.md for a snapshot feature table (one row per account).

    Without a scorecard (prepared tables whose columns no scorecard names) the health columns
    are left out and only the ML view is given.
    """
    return score_features(features, model, scorecard, settings, progress=progress).scores


def score_prepared(
    path: Path, id_col: str, model: ChurnRiskModel, settings: Settings, as_of: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Score an already aggregated per-account table (`churn score --table`), ML view only; returns the
    scores and warnings (values of a categorical column the model never saw, which score as missing; the
    lifecycle stages the table's columns cannot give). `as_of`: the date the table's values were taken
    (`--as-of`), which every score carries; without it, each row's date in the column that dated the
    training rows (`churn train --table --time`), else empty.

    The table holds the columns the model was trained on (`churn train --table`), typed as training
    typed them (`as_trained`), whatever the file format; a label column, if present, is ignored.
    """
    from models.lifecycle import expand_gap, stage_gaps
    from pipeline.champion import TrainedOn
    from pipeline.prepared_table import (
        as_text,
        column_hint,
        feature_name,
        parse_ids,
        parse_times,
        read_prepared_table,
        repeated_ids,
        typed_as_trained,
    )
    from pipeline.tracking import PREPARED_TABLE

    sources = model.metadata_.get(SOURCE_COLUMNS) or {}  # columns named as the training table named them
    formats = model.metadata_.get(NUMBER_FORMATS) or {}
    # amounts as the text they are: a CSV's `1.234` of a column of `12,50` is not the number pandas reads
    frame = read_prepared_table(path, text_columns=[id_col, *formats, *(sources.get(name, name) for name in formats)])
    if id_col not in frame.columns:
        raise ChurnError(
            f"--table {path}: id column '{id_col}'{column_hint(id_col, frame.columns)} not found; columns are "
            f"{list(frame.columns)[:12]}."
        )
    if frame.empty:
        raise DataContractError(f"--table {path}: the table has no rows; nothing to score.")
    ids = parse_ids(frame[id_col], id_col, f"--table {path}").astype(str)
    warnings = []
    if repeated := repeated_ids(ids, id_col):
        warnings.append(f"--table {path}: {repeated}; each row is scored")
    features = frame.drop(columns=[id_col])
    wanted = set(model.feature_names_in_) - set(features.columns)
    renamed = {c: feature_name(c) for c in features.columns if feature_name(c) in wanted}
    if len(set(renamed.values())) < len(renamed):  # e.g. `a b` and `a:b`, both feature `a_b`
        name = next(n for n in renamed.values() if list(renamed.values()).count(n) > 1)
        raise DataContractError(
            f"--table {path}: columns {[c for c, n in renamed.items() if n == name]} are all feature '{name}' "
            "of the model; keep one of them."
        )
    time_col = model.metadata_.get(TIME_COLUMN)  # the column that dated the training rows (`--time`)
    dated: pd.Timestamp | pd.Series = as_of if as_of is not None else pd.NaT
    if as_of is None and time_col in frame.columns:
        why = "each score is dated by it, as the model's training rows were (or pass --as-of to date them all)"
        dated = parse_times(frame[time_col], f"--table {path}.{time_col}", why)
    elif as_of is None and time_col is not None:
        warnings.append(
            f"--table {path}: no column '{time_col}', which dated the rows the model was trained on: the scores are "
            "undated (pass --as-of to date them)"
        )
    features = features.rename(columns=renamed).assign(**{ACCOUNT_ID: ids, AS_OF: dated})
    missing = [c for c in model.feature_names_in_ if c not in features.columns]
    trained = TrainedOn.from_metadata(model.metadata_)
    if missing and trained is not None and trained.source.startswith(PREPARED_TABLE):
        lacking = counted(len(missing), "column the model was trained on is", "columns the model was trained on are")
        shown = [sources.get(name, name) for name in missing[:5]]
        shown = ", ".join(f"'{name}'{column_hint(name, frame.columns)}" for name in shown)
        raise DataContractError(
            f"--table {path}: {lacking} missing, e.g. {shown} "
            f"(model {model.metadata_.get('model_uri', '')}, trained on {trained.source}); add them (blank values "
            "score as missing) or train a model on tables like this one."
        )
    if missing:  # most often the champion of event data (`churn train --data`), not the table's own model
        version = model.metadata_.get("model_version")
        of = f"of the {len(model.feature_names_in_)} features of model {model.metadata_.get('model_uri', '')}"
        of += f" (version {version})" if version else ""
        raise DataContractError(
            f"--table {path}: {counted(len(missing), f'{of} is not a column', f'{of} are not columns')} of the table, "
            f"e.g. {missing[:5]}; score it with the model `churn train --table` trained on a table like it "
            "(--model-uri models:/NAME@champion, or its model.name in the configuration)."
        )
    typed = typed_as_trained(model, features, f"--table {path}")
    for name in model.feature_names_in_:
        levels = model.categories_.get(name)
        if levels is not None:
            unseen = typed[name].notna() & ~typed[name].isin(levels)
            what = "values the model never saw in training"
        else:  # '?', '-', as the training table wrote a missing number
            unseen = typed[name].isna() & as_text(features[name]).str.strip().replace("", pd.NA).notna()
            what = "values that are not numbers"
        if unseen.any():
            examples = ", ".join(repr(v) for v in (features if levels is None else typed)[name][unseen].unique()[:3])
            warnings.append(
                f"--table {path}: column '{sources.get(name, name)}' holds {what} in "
                f"{counted(int(unseen.sum()), 'row')} (e.g. {examples}); they are scored as missing"
            )
    if all(values.isna().all() for values in typed.values()):  # each row would get the model's one blank score
        names = list(model.feature_names_in_)
        raise DataContractError(
            f"--table {path}: every column the model scores on is empty in all {counted(len(frame), 'row')} "
            f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}); every account would get the same score, "
            "which ranks no one: check that the table was exported with its values."
        )
    features = features.assign(**typed)
    if gap := expand_gap(features.columns):
        warnings.append(f"--table {path}: {gap}")
    scores = score_table(features, model, None, settings)
    if gaps := stage_gaps(scores):
        warnings.append(f"--table {path}: {gaps}")
    return scores, warnings


def scorecard_changes(scores: pd.DataFrame, previous: pd.DataFrame) -> list[str]:
    """A change of scorecard since the previous run, said as such (its drops and band changes are not alerted)."""
    if SCORECARD_HASH not in scores.columns or SCORECARD_HASH not in previous.columns:
        return []
    before = previous.drop_duplicates(ACCOUNT_ID, keep="last").set_index(ACCOUNT_ID)
    earlier = before.reindex(scores[ACCOUNT_ID].to_numpy())
    changed = earlier[SCORECARD_HASH].notna().to_numpy() & (
        earlier[SCORECARD_HASH].to_numpy() != scores[SCORECARD_HASH].to_numpy()
    )
    if not changed.any():
        return []
    was = earlier.loc[changed, [SCORECARD_NAME, SCORECARD_HASH]].drop_duplicates()
    old = ", ".join(f"{name} {digest}" for name, digest in was.itertuples(index=False, name=None))
    new = f"{scores[SCORECARD_NAME].iloc[0]} {scores[SCORECARD_HASH].iloc[0]}"
    return [
        f"the scorecard changed since the previous run ({old} -> {new}) for {counted(int(changed.sum()), 'account')}: "
        "their score changes are not alerted as drops or band changes and their health trends start again; "
        "`churn score --rescore-history` re-scores the past dates with this scorecard"
    ]


def rescore_health(
    stored: pd.DataFrame,
    features: pd.DataFrame,
    scorecard: ScorecardConfig,
    overrides: pd.DataFrame,
    settings: Settings,
) -> pd.DataFrame:
    """One stored run with its health view re-computed by `scorecard` (and the overrides in force then).

    The ML view, status and everything else stay as the run wrote them: only what the scorecard
    decides changes -- health score, band, categories, drivers, rule and override columns, and the
    scorecard's name and hash. Rows without features at that date keep their old values and hash.
    """
    as_of = pd.Timestamp(stored[AS_OF].iloc[0])
    features = with_judgement(
        features[features[ACCOUNT_ID].astype(str).isin(stored[ACCOUNT_ID].astype(str))], overrides
    )
    features = features.reset_index(drop=True)
    if features.empty:
        return stored
    health = score_health(features, scorecard)
    fresh = pd.concat([features[[ACCOUNT_ID]].astype(str), health.frame.reset_index(drop=True)], axis=1)
    fresh["health_drivers"] = explain_health(features, health, scorecard, n=settings.scoring.top_drivers).to_numpy()
    fresh[SCORECARD_NAME] = scorecard.name
    fresh[SCORECARD_HASH] = scorecard.content_hash()
    fresh = apply_overrides(fresh, in_force(overrides, as_of), scorecard).scores.set_index(ACCOUNT_ID)
    out = stored.assign(**{ACCOUNT_ID: stored[ACCOUNT_ID].astype(str)}).set_index(ACCOUNT_ID)
    out = out.drop(columns=[c for c in health_columns(out) if c not in fresh.columns])  # categories no longer scored
    rows = out.index.intersection(fresh.index)
    for column in fresh.columns:
        if column not in out.columns:
            out[column] = pd.Series(np.nan, index=out.index, dtype=fresh[column].dtype)
        out.loc[rows, column] = fresh.loc[rows, column].to_numpy()
    return out.reset_index()


def rescore_trends(runs: list[pd.DataFrame], days: list[int]) -> list[pd.DataFrame]:
    """Health trends of re-scored runs (oldest first) recomputed against the re-scored runs before them."""
    done: list[pd.DataFrame] = []
    for run in runs:
        if done:
            changes = trends(pd.concat(done, ignore_index=True), run, days)
            health = [c for c in changes.columns if c.startswith("health_score_change_")]
            run = run.assign(**{c: changes[c].to_numpy() for c in health})
        done.append(run)
    return done


def no_overrides() -> pd.DataFrame:
    """An override store with nothing in it (the shape `pipeline.override_store.read_records` returns)."""
    return pd.DataFrame(columns=list(RECORD_COLUMNS))


def with_judgement(features: pd.DataFrame, overrides: pd.DataFrame) -> pd.DataFrame:
    """The features with the `csm_sentiment` metric of the ratings in force at the table's as_of.

    Added before the scorecard is adapted to the columns, so a scorecard that weighs the metric
    keeps it (NaN without a rating: its weight goes to the other metrics of the category).
    """
    if features.empty:
        return features
    forced = in_force(overrides, pd.Timestamp(features[AS_OF].iloc[0]))
    return features.assign(**{CSM_SENTIMENT: sentiment_values(forced, features[ACCOUNT_ID])})


def score_book(
    features: pd.DataFrame,
    model: ChurnRiskModel,
    scorecard: ScorecardConfig,
    settings: Settings,
    *,
    history_dir: Path | None,
    record: bool = True,
    overrides: pd.DataFrame | None = None,
    rescored: pd.DataFrame | None = None,
    progress: ProgressCallback | None = None,
    scores: pd.DataFrame | None = None,
    score_notes: tuple[str, ...] = (),
) -> ScoreRun:
    """Score, apply the CSM overrides in force, then compare with the previous run in the history (for
    an account it did not score, with the last run that did): trends, alerts (an override applied last
    time and gone now is an alert) and drift (reads only).

    `record` says whether the run will be added to the history (the note says so when it is not).
    `overrides` is every record of the override store (`read_records`), ended ones included: they
    say why an override the previous run applied is gone. `rescored` holds past runs re-scored with
    this scorecard (`rescore_history`): they stand in for the stored runs of their dates.
    `scores` and `score_notes`: the scoring core's table of `features` (same rows, same order) and
    its notes, when another engine computed them (Spark).
    """
    records = no_overrides() if overrides is None else overrides
    features = features.reset_index(drop=True)
    if scores is None:
        scored = score_features(features, model, scorecard, settings, progress=progress)
        scores, score_notes = scored.scores, scored.notes
    as_of = pd.Timestamp(scores[AS_OF].iloc[0])
    applied = apply_overrides(scores, in_force(records, as_of), scorecard)
    scores = applied.scores
    notes: list[str] = []
    warnings = [*applied.notes, *near_miss_segment_values(features, scorecard)]
    overridden = int(scores["override_ids"].str.len().gt(0).sum())
    if overridden:
        applied_to = counted(overridden, "account")
        notes.append(f"CSM overrides applied to {applied_to}; their rule scores are in the rule_* columns")
    previous = history = None
    if history_dir is not None:
        history = read_history(history_dir)
        if rescored is not None and not rescored.empty:
            replaced = pd.to_datetime(history[AS_OF]).isin(pd.to_datetime(rescored[AS_OF]).unique())
            history = pd.concat([history[~replaced], rescored], ignore_index=True)
        previous = latest_before(history, as_of)
        # A workdir's first run has the trend columns too, empty: a scores file keeps one schema from day one.
        scores = pd.concat([scores, trends(history, scores, settings.scoring.trend_days)], axis=1)
        notes.append(
            f"score history: {history_dir}"
            + ("" if record else " (compared with; this run is not added: --no-history)")
        )
    if previous is None or previous.empty:
        notes.append("no earlier scoring run in the history: alerts use only the renewal rule")
    else:
        warnings += scorecard_changes(scores, previous)
    alerts_settings = settings.scoring.alerts
    alerts = score_alerts(
        scores,
        previous,
        score_drop=alerts_settings.score_drop,
        probability_level=alerts_settings.probability_level,
        renewal_days=alerts_settings.renewal_days,
        high_risk=settings.scoring.risk_bands.high,
        history=history,
        extra_reasons=expiry_reasons(scores, previous, records),
    )

    monitored = [*model.feature_names_in_, CHURN_PROBABILITY]
    # Only the monitored columns: the wide feature frame is fragmented, and drift reads no other.
    current = features[model.feature_names_in_].assign(**{CHURN_PROBABILITY: scores[CHURN_PROBABILITY].to_numpy()})
    drift = (
        drift_report(
            model.reference_,
            current,
            monitored,
            settings.scoring.drift_psi_threshold,
            spread=model.metadata_.get(DATE_SPREAD),
        )
        if not model.reference_.empty
        else pd.DataFrame(columns=["feature", "psi", "noise_level", "date_spread", "drifted"])
    )
    return ScoreRun(
        scores=scores,
        alerts=alerts,
        drift=drift,
        model_version=str(scores[MODEL_VERSION].iloc[0]),
        notes=notes,
        warnings=[*score_notes, *warnings],
        named=said_columns(model),
    )
