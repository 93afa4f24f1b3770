"""Waterfall plot of one account's explanation: from the base risk, feature by feature, to its score.

Drawn by `shap.plots.waterfall` from the exact contributions the scoring core computed; each
feature is labelled with its health category, so the plot reads in the scorecard's vocabulary, and by
the name the words give it (a usage column by its product feature, `usage_検索_per_seat_30d`) where the
plot's fonts can draw that name, else by its column (a font without Japanese drew boxes).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox


def waterfall_figure(
    contributions: pd.Series,
    values: pd.Series,
    base_value: float,
    categories: Mapping[str, str],
    title: str,
    top: int = 12,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """The `top` largest contributions (log-odds; red raises risk) with the features' values, the rest summed.
    `labels`: feature -> the name to show where the fonts can draw it (`models.scoring.said_columns`)."""
    import shap

    def label(name: str) -> str:
        said = (labels or {}).get(name, name)
        return said if _drawable(said) else name

    names = [
        f"{label(name)} ({categories[name]})" if name in categories else label(name) for name in contributions.index
    ]
    explanation = shap.Explanation(
        values=contributions.to_numpy(dtype=float),
        base_values=float(base_value),
        data=values.reindex(contributions.index).astype(object).where(lambda v: v.notna(), "missing").to_numpy(),
        feature_names=names,
    )
    # shap writes a bar's value inside the bar when it fits the bar's width as drawn; tight_layout then narrows
    # the axes to make room for the feature labels, and a value that no longer fits ran out of its bar, white on
    # white ("+0." for "+0.08"). So a first drawing finds the laid-out axes, and the plot is drawn into them.
    laid_out = _draw(explanation, top, title, None).axes[0].get_position()
    return _draw(explanation, top, title, laid_out)


def _draw(explanation: Any, top: int, title: str, position: Bbox | None) -> Figure:
    """shap's waterfall on a new figure: laid out to keep its labels inside, or drawn into axes at `position`."""
    import matplotlib.pyplot as plt  # shap draws on pyplot's current figure
    import shap

    figure = plt.figure()
    if position is not None:
        figure.add_axes(position)  # the current axes: shap draws into it
    try:
        shap.plots.waterfall(explanation, max_display=top + 1, show=False)
        figure.suptitle(title)
        if position is None:
            figure.tight_layout()  # shap leaves its feature labels left of the figure: a saved plot cut them off
    finally:
        plt.close(figure)  # out of pyplot's registry; the figure itself stays usable for saving
    return figure


def _drawable(text: str) -> bool:
    """Whether the fonts matplotlib draws sans-serif text with (its fallback list) have every character of `text`."""
    return all(ord(c) in _glyphs() for c in text)


@cache
def _glyphs() -> frozenset[int]:
    import matplotlib as mpl
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    paths = set()
    for family in mpl.rcParams["font.sans-serif"]:
        try:
            paths.add(font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False))
        except ValueError:  # not installed
            continue
    paths.add(font_manager.findfont(font_manager.FontProperties()))
    return frozenset(code for path in paths for code in FT2Font(path).get_charmap())
