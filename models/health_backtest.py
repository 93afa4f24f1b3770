"""Does the rule-based score rank churners below renewers? Measured on labelled snapshots.

The scorecard is configuration, not a fitted model, so any labelled period is out of sample for
it as long as its thresholds were not tuned there; `start` restricts the evaluation to snapshots
from a date on (e.g. the model's validation period) so both views are compared on the same rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.errors import DataContractError
from features.table import AS_OF, LABEL
from models.healthscore import health_risk, score_health
from models.scorecard import BAND_NAMES, ScorecardConfig
from models.scores import HEALTH_BAND, HEALTH_COVERAGE, HEALTH_SCORE, HEALTH_SCORECARD


def backtest_health(
    feature_table: pd.DataFrame, config: ScorecardConfig, start: str | pd.Timestamp | None = None
) -> dict[str, Any]:
    """Score labelled snapshots and report how well 100 - health_score separates churners.

    Returns {"rows", "churners", "churn_rate", "auc" (ROC AUC of 100 - score vs label; None when
    only one class), "mean_coverage", "bands": {band: {"count", "churners", "churn_rate"}},
    "bands_ordered" (red > yellow > green churn rate), "scorecards": {name: count}}.
    """
    if LABEL not in feature_table.columns:
        raise DataContractError(f"Health backtest needs a '{LABEL}' column (1 = churned, 0 = renewed).")
    table = feature_table[feature_table[LABEL].notna()]
    if start is not None:
        if AS_OF not in table.columns:
            raise DataContractError(f"Health backtest: 'start' given but the table has no '{AS_OF}' column.")
        table = table[pd.to_datetime(table[AS_OF]) >= pd.Timestamp(start)]
    if table.empty:
        raise DataContractError(
            "Health backtest: no labelled rows to evaluate" + (f" from {start}" if start else "") + "."
        )
    scores = score_health(table, config).frame
    scored = scores[HEALTH_SCORE].notna()
    label = table[LABEL].astype(float).to_numpy()[scored.to_numpy()]
    risk = health_risk(scores.loc[scored, HEALTH_SCORE].to_numpy())
    auc = float(roc_auc_score(label, risk)) if np.unique(label).size == 2 else None
    bands: dict[str, dict[str, float | int | None]] = {}
    for band in BAND_NAMES:
        in_band = (scores[HEALTH_BAND] == band).to_numpy()
        churners = int(table[LABEL].to_numpy(dtype=float)[in_band].sum())
        count = int(in_band.sum())
        bands[band] = {"count": count, "churners": churners, "churn_rate": churners / count if count else None}
    rates = [bands[b]["churn_rate"] for b in ("red", "yellow", "green")]
    return {
        "rows": int(scored.sum()),
        "churners": int(label.sum()),
        "churn_rate": float(label.mean()),
        "auc": auc,
        "mean_coverage": float(scores[HEALTH_COVERAGE].mean()),
        "bands": bands,
        "bands_ordered": all(r is not None for r in rates) and rates[0] > rates[1] > rates[2],
        "scorecards": scores[HEALTH_SCORECARD].value_counts().to_dict(),
    }
