"""Compare a model with the ground truth that `churn generate` writes (never read by the pipeline itself).

The generator knows each term's true churn probability; its AUC on the same validation rows is
the ceiling any model can reach, so "share of the oracle AUC" says how much signal is left.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from features.table import ACCOUNT_ID, LABEL, TERM_END

TRUTH_FILE = Path("_truth") / "terms.parquet"


def oracle_probabilities(data_dir: Path, rows: pd.DataFrame) -> pd.Series | None:
    """True churn probability of the term ending at each row's `term_end` (None without a truth file)."""
    path = Path(data_dir) / TRUTH_FILE
    if not path.exists():
        return None
    truth = pd.read_parquet(path, columns=["account_id", "end_date", "p_churn"])
    truth = truth.assign(account_id=truth["account_id"].astype(str), end_date=pd.to_datetime(truth["end_date"]))
    truth = truth.groupby(["account_id", "end_date"], as_index=False)["p_churn"].max()
    keys = pd.DataFrame({ACCOUNT_ID: rows[ACCOUNT_ID].astype(str), TERM_END: pd.to_datetime(rows[TERM_END])})
    merged = keys.merge(truth, left_on=[ACCOUNT_ID, TERM_END], right_on=["account_id", "end_date"], how="left")
    return pd.Series(merged["p_churn"].to_numpy(), index=rows.index, name="p_churn")


def oracle_auc(data_dir: Path, rows: pd.DataFrame) -> float | None:
    """ROC AUC of the true probabilities on the labelled `rows` (None without truth or both classes)."""
    truth = oracle_probabilities(data_dir, rows)
    if truth is None:
        return None
    known = truth.notna() & rows[LABEL].notna()
    labels = rows.loc[known, LABEL].astype(int)
    if labels.nunique() < 2:
        return None
    return float(roc_auc_score(labels, truth[known]))


def oracle_report(data_dir: Path, validation: pd.DataFrame, overall: dict[str, dict[str, float]]) -> str | None:
    """One line: each score's validation AUC as a share of the oracle AUC on the same rows."""
    ceiling = oracle_auc(data_dir, validation)
    if ceiling is None:
        return None
    shares = ", ".join(
        f"{name} {m['roc_auc']:.3f} ({m['roc_auc'] / ceiling:.0%} of oracle)"
        for name, m in overall.items()
        if "roc_auc" in m
    )
    return f"Oracle AUC (true churn probabilities, same validation rows): {ceiling:.3f}; {shares}"
