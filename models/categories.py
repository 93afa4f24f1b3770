"""Which health category each model feature's contribution counts in: the active scorecard's vocabulary.

The ML view is summed per category (`ml_<category>`) so that a CSM reads it beside the rule view
(`health_<category>`). The categories are therefore the scorecard's, whatever scheme it uses (the
LAER categories of `healthscore.yaml`, or transformation / experience / engagement of
`healthscore-outcomes.yaml`). For each feature, first match wins:

1. `features.category_overrides` of the configuration;
2. the category the scorecard scores the feature in, when it is one of its metrics (default
   scorecard first, then the segments);
3. the scorecard category that holds most of the metrics of the feature's registry category,
   e.g. every `adoption` feature counts in `transformation` when that is where the scorecard put
   the adoption metrics (ties: the scorecard's category order);
4. `other`, when the scorecard uses none of the features of its registry category (a scheme that
   leaves some out): one `ml_other` column beside the scheme's own, so the contributions still add
   up to the model's score while every other `ml_<category>` is a category of the health score;
5. without a scorecard (prepared tables), its registry category, `account` for columns the
   registry does not know.

A name the scorecard spells otherwise but for case (`Account`) takes the scorecard's spelling (a
scorecard category `other` also holds the features of rule 4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from features.registry import category_map, lookup
from models.scorecard import ScorecardConfig
from models.scores import column_key

OTHER = "other"
"""The ML category of features a scorecard's scheme does not categorise (`ml_other`)."""


def ml_categories(
    features: Iterable[str], scorecard: ScorecardConfig | None, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """feature -> health category (see the module docstring); without a scorecard, the registry's."""
    overrides = dict(overrides or {})
    metric_category = _metric_categories(scorecard) if scorecard is not None else {}
    translated = _translation(metric_category, scorecard.categories()) if scorecard is not None else {}
    # the scorecard's spelling of a name it shares but for case (`Account`): one `ml_` column, not two
    spelled = {column_key(c): c for c in scorecard.categories()} if scorecard is not None else {}
    chosen = {
        name: overrides.get(name) or metric_category.get(name) or translated.get(own, own)
        for name, own in category_map(features).items()
    }
    if scorecard is not None:  # a category of the registry the scheme does not place (not an explicit override)
        chosen |= {n: OTHER for n, c in chosen.items() if n not in overrides and column_key(c) not in spelled}
    return {name: spelled.get(column_key(category), category) for name, category in chosen.items()}


def _metric_categories(scorecard: ScorecardConfig) -> dict[str, str]:
    """metric -> the category it scores in: the default scorecard's placement, then the segments' own metrics."""
    scorecards = scorecard.scorecards()
    categories: dict[str, str] = {}
    for _, card, _ in [*scorecards[-1:], *scorecards[:-1]]:
        for metric, category in card.metric_categories().items():
            categories.setdefault(metric, category)
    return categories


def _translation(metric_category: Mapping[str, str], order: list[str]) -> dict[str, str]:
    """Registry category -> the scorecard category holding most of its metrics (ties: scorecard order)."""
    votes: dict[str, dict[str, int]] = {}
    for metric, category in metric_category.items():
        found = lookup(metric)
        if found is not None:
            target = votes.setdefault(found.category, {})
            target[category] = target.get(category, 0) + 1
    return {registry: max(counts, key=lambda c: (counts[c], -order.index(c))) for registry, counts in votes.items()}
