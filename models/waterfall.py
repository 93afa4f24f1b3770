"""Waterfall plot of one account's explanation: from the base risk, feature by feature, to its score."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from features.registry import category_map
from models.evaluation import save_figure


def waterfall_plot(contributions: pd.Series, base_value: float, path: str | Path, title: str, top: int = 12) -> Path:
    """Bars of the `top` largest contributions (log-odds; red raises risk), the rest summed into one bar."""
    order = contributions.abs().sort_values(ascending=False).index
    shown = contributions[order[:top]]
    rest = float(contributions[order[top:]].sum())
    steps = [*shown.items(), *([(f"{len(order) - top} other features", rest)] if len(order) > top else [])]
    categories = category_map(list(shown.index))
    labels = [f"{name} ({categories[name]})" if name in categories else name for name, _ in steps]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(steps) + 1.8))
    running = base_value
    for i, (_, value) in enumerate(steps):
        ax.barh(i, value, left=running, color="#c0392b" if value > 0 else "#27ae60")
        ax.text(running + value, i, f" {value:+.2f}", va="center", ha="left" if value > 0 else "right", fontsize=8)
        running += value
    ax.set_yticks(range(len(steps)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(base_value, color="grey", linestyle=":", linewidth=1)
    ax.axvline(running, color="black", linewidth=1)
    ax.set_xlabel(f"log-odds of churn (base {base_value:.2f} -> account {running:.2f})")
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)
