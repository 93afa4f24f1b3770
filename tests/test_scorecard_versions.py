"""Scorecard versions and history (issue 14, item 4): every score row carries the scorecard's name and
content hash; trends and score-drop alerts compare like with like; `--rescore-history` re-scores the
past with the new scorecard. Real generated data, a real model, the real score history."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from pipeline.config import load_scorecard
from pipeline.history import read_history
from pipeline.stages import score_date
from tests.helpers import book_settings, run_cli

FIRST, SECOND = pd.Timestamp("2025-04-01"), pd.Timestamp("2025-05-01")


def reweighted(settings, tmp_path: Path) -> Path:
    """The default scorecard with training weighing most: most scores fall, for no change in the accounts."""
    raw = yaml.safe_load(Path(settings.healthscore_path()).read_text())
    for name, category in raw["default"]["categories"].items():
        category["weight"] = 80 if name == "training" else 5
    path = tmp_path / "training-first.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_hash_follows_what_scores_not_the_wording(tmp_path: Path) -> None:
    from pipeline.config import Settings

    default = Path(Settings().healthscore_path())
    raw = yaml.safe_load(default.read_text())
    reworded = tmp_path / "reworded.yaml"
    reworded.write_text(yaml.safe_dump({**raw, "description": "other words"}))
    assert load_scorecard(reworded).content_hash() == load_scorecard(default).content_hash()
    raw["bands"]["green"] = 75
    rebanded = tmp_path / "rebanded.yaml"
    rebanded.write_text(yaml.safe_dump(raw))
    assert load_scorecard(rebanded).content_hash() != load_scorecard(default).content_hash()


def test_a_new_scorecard_raises_no_drop_alert_and_rescoring_the_history_compares_like_with_like(
    book, tmp_path: Path
) -> None:
    _, _, dataset, _ = book
    settings, result = book_settings(book, "versions")
    first = score_date(dataset, FIRST.date(), settings, result.model_uri, history=True).scores
    laer = load_scorecard(settings.healthscore_path())
    assert (first["scorecard_name"] == laer.name).all() and (first["scorecard_hash"] == laer.content_hash()).all()

    changed = settings.model_copy(update={"healthscore": str(reweighted(settings, tmp_path))})
    run = score_date(dataset, SECOND.date(), changed, result.model_uri, history=True)
    second = run.scores
    new_hash = load_scorecard(changed.healthscore_path()).content_hash()
    assert (second["scorecard_hash"] == new_hash).all() and new_hash != laer.content_hash()
    # the change alone would look like a wave of drops...
    both = (
        first.set_index("account_id")["health_score"]
        .to_frame("before")
        .join(second.set_index("account_id")["health_score"].rename("after"), how="inner")
    )
    assert ((both["before"] - both["after"]) > changed.scoring.alerts.score_drop).sum() > 20
    # ...but it is reported as a change of scorecard, not as drops
    reasons = " ".join(run.alerts["reasons"])
    assert "health score dropped" not in reasons and "health band worsened" not in reasons
    assert "under the red line for the first time" not in reasons
    assert any(f"the scorecard changed since the previous run (laer {laer.content_hash()} -> laer {new_hash})" in w
               for w in run.warnings)  # fmt: skip
    assert second["health_score_change_30d"].isna().all()  # no trend across scorecards
    stored = read_history(changed.workdir_path / "history")
    assert stored.groupby("as_of")["scorecard_hash"].unique().map(list).tolist() == [
        [laer.content_hash()],
        [new_hash],
    ]

    # re-scoring the history puts the past on the new scorecard: trends come back, still no drop wave
    run = score_date(dataset, SECOND.date(), changed, result.model_uri, history=True, rescore_history=True)
    stored = read_history(changed.workdir_path / "history")
    assert set(stored["scorecard_hash"]) == {new_hash}
    past = stored[stored["as_of"] == FIRST].set_index("account_id")
    assert past["churn_probability"].tolist() == first.set_index("account_id")["churn_probability"].tolist()
    assert (past["health_score"] != first.set_index("account_id")["health_score"]).mean() > 0.5
    assert run.scores["health_score_change_30d"].notna().mean() > 0.8
    assert not any("scorecard changed" in w for w in run.warnings)
    assert any("re-scored 1 earlier run of" in n for n in run.notes)


def test_trend_spans_are_configurable(book, capsys, tmp_path: Path) -> None:
    _, data, dataset, _ = book
    settings, result = book_settings(book, "spans", scoring={"trend_days": [7, 30, 45]})
    score_date(dataset, FIRST.date(), settings, result.model_uri, history=True)
    scores = score_date(dataset, SECOND.date(), settings, result.model_uri, history=True).scores
    assert {"health_score_change_7d", "health_score_change_30d", "health_score_change_45d"} <= set(scores.columns)
    assert "health_score_change_90d" not in scores.columns
    assert scores["health_score_change_30d"].notna().mean() > 0.8 and scores["health_score_change_7d"].isna().all()
    config = tmp_path / "bad.yaml"
    config.write_text("scoring: {trend_days: [0, 30]}\n")
    code, text = run_cli(
        ["score", "--data", str(data), "--out", str(tmp_path / "s.parquet"), "--config", str(config)], capsys
    )
    assert code == 1 and "scoring.trend_days" in text
