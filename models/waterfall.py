"""Waterfall plot of one account's explanation: from the base risk, feature by feature, to its score.

Drawn by `shap.plots.waterfall` from the exact contributions the scoring core computed; each
feature is labelled with its health category, so the plot reads in the scorecard's vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure


def waterfall_figure(
    contributions: pd.Series,
    values: pd.Series,
    base_value: float,
    categories: Mapping[str, str],
    title: str,
    top: int = 12,
) -> Figure:
    """The `top` largest contributions (log-odds; red raises risk) with the features' values, the rest summed."""
    import matplotlib.pyplot as plt  # shap draws on pyplot's current figure
    import shap

    names = [f"{name} ({categories[name]})" if name in categories else str(name) for name in contributions.index]
    explanation = shap.Explanation(
        values=contributions.to_numpy(dtype=float),
        base_values=float(base_value),
        data=values.reindex(contributions.index).astype(object).where(lambda v: v.notna(), "missing").to_numpy(),
        feature_names=names,
    )
    figure = plt.figure()
    try:
        shap.plots.waterfall(explanation, max_display=top + 1, show=False)
        figure.suptitle(title)
        figure.tight_layout()  # shap leaves its feature labels left of the figure: a saved plot cut them off
    finally:
        plt.close(figure)  # out of pyplot's registry; the figure itself stays usable for saving
    return figure
