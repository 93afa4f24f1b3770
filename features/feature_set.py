"""The feature set a model was trained on, saved with it so that scoring builds exactly that set.

Which per-feature usage columns exist depends on the data (the most used product features of the
training history), and the health category of each feature depends on the scorecard the model was
compared against. Both are decided once, at training, and travel with the model: the engine then
builds these columns and no others (`build_features(..., feature_set=...)`), whatever the
scoring date ranks first, and the model's contributions keep the categories it was trained with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from features.families.usage import PER_FEATURE
from features.registry import category_map


@dataclass(frozen=True)
class FeatureSet:
    """Feature names in model order, the usage keys among them, each feature's health category, and
    the scorecard (`name@version`) the categories follow (None: the registry's own categories)."""

    names: tuple[str, ...]
    categories: Mapping[str, str] = field(default_factory=dict)
    scorecard: str | None = None

    @classmethod
    def of(
        cls, names: Iterable[str], categories: Mapping[str, str] | None = None, scorecard: str | None = None
    ) -> FeatureSet:
        """The set of `names`; without `categories`, each feature's registry category."""
        names = tuple(str(n) for n in names)
        return cls(names, dict(categories) if categories is not None else category_map(names), scorecard)

    @property
    def usage_keys(self) -> tuple[str, ...]:
        """Product features that have their own `usage_<key>_per_seat_30d` column."""
        return tuple(match.group(1) for match in map(PER_FEATURE.match, self.names) if match)

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "usage_keys": list(self.usage_keys),
            "categories": dict(self.categories),
            "scorecard": self.scorecard,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSet:
        return cls.of(raw["names"], raw.get("categories"), raw.get("scorecard"))
