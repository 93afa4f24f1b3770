"""The feature set a model was trained on, saved with it so that scoring builds exactly that set.

Which per-feature usage columns exist depends on the data (the most used product features of the
training history), and the health category of each feature depends on the scorecard the model was
compared against. Both are decided once, at training, and travel with the model: the engine then
builds these columns and no others (`build_features(..., feature_set=...)`), whatever the
scoring date ranks first, and the model's contributions keep the categories it was trained with.
So do the settings that decide a feature's value (`VALUE_SETTINGS`): the engine builds the model's
features with the values it learnt them with, whatever the configuration says at scoring, and the
trailing windows its features are for (`features.windows` decides which features exist; the names
say which ones the model has: `logins_per_seat_30d` needs the 30-day window).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from features.families.account import NEW_CUSTOMER, RENEWALS, SEAT_CHANGE
from features.families.base import windows_of
from features.families.training import ONBOARDING
from features.families.usage import PER_FEATURE, named_columns
from features.registry import category_map
from features.settings import FeatureSettings

# The settings that decide a feature's value (not which features exist), by configuration key, and
# the features whose value each decides: the renewal rule's grace period counts renewals too.
NEW_CUSTOMER_DAYS = "features.new_customer_days"
ONBOARDING_DAYS = "features.onboarding_days"
GRACE_DAYS = "data.grace_days"
VALUE_SETTINGS: dict[str, tuple[str, ...]] = {
    NEW_CUSTOMER_DAYS: (NEW_CUSTOMER,),
    ONBOARDING_DAYS: (ONBOARDING,),
    GRACE_DAYS: (RENEWALS, SEAT_CHANGE),
}


def setting_values(settings: FeatureSettings, grace_days: int) -> dict[str, int]:
    """The value settings of a configuration, by configuration key."""
    return {
        NEW_CUSTOMER_DAYS: settings.new_customer_days,
        ONBOARDING_DAYS: settings.onboarding_days,
        GRACE_DAYS: int(grace_days),
    }


@dataclass(frozen=True)
class FeatureSet:
    """Feature names in model order, the usage keys among them, each feature's health category, the
    scorecard (`name@version`) the categories follow (None: the registry's own categories), and the
    value settings its features were built with (`VALUE_SETTINGS` keys; none recorded by models
    trained before they were, or on a prepared table), and the product feature each usage key counts where
    its name is not the key (`usage.product_names`: `1b6b1a6f89` -> `検索`), for the words of any data it scores."""

    names: tuple[str, ...]
    categories: Mapping[str, str] = field(default_factory=dict)
    scorecard: str | None = None
    values: Mapping[str, int] = field(default_factory=dict)
    product_names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        names: Iterable[str],
        categories: Mapping[str, str] | None = None,
        scorecard: str | None = None,
        values: Mapping[str, int] | None = None,
        product_names: Mapping[str, str] | None = None,
    ) -> FeatureSet:
        """The set of `names`; without `categories`, each feature's registry category. Of `values` (a
        configuration's value settings) it keeps those some feature of the set depends on, of `product_names`
        (a feature table's, `features.table.product_names`) those of its usage keys."""
        names = tuple(str(n) for n in names)
        kept = {key: int(value) for key, value in (values or {}).items() if key in _depended_on(names)}
        keys = {match.group(1) for match in map(PER_FEATURE.match, names) if match}
        spelt = {str(key): str(name) for key, name in (product_names or {}).items() if key in keys}
        categories = dict(categories) if categories is not None else category_map(names)
        return cls(names, categories, scorecard, kept, spelt)

    def built_with(self, settings: FeatureSettings, grace_days: int) -> tuple[FeatureSettings, int]:
        """`settings` and `grace_days` with the values this set was trained with in place of the configured
        ones, and its features' windows in place of the configured windows (kept when it has none)."""
        values = {**setting_values(settings, grace_days), **self.values}
        update: dict[str, Any] = {
            "new_customer_days": values[NEW_CUSTOMER_DAYS],
            "onboarding_days": values[ONBOARDING_DAYS],
        }
        if self.windows:
            update["windows"] = list(self.windows)
        return settings.model_copy(update=update), values[GRACE_DAYS]

    @property
    def windows(self) -> tuple[int, ...]:
        """The trailing windows this set's features are for (read from their names, so older models have them too)."""
        return windows_of(self.names)

    def window_note(self, configured: Iterable[int]) -> str | None:
        """A note when the set needs windows `features.windows` does not configure: scoring builds them anyway."""
        configured = sorted(configured)
        missing = sorted(set(self.windows) - set(configured))
        if not missing:
            return None
        return (
            f"features.windows: the model's features need the windows {list(self.windows)}, the configuration says "
            f"{configured} (without {missing}); scoring builds the model's windows as it learnt them"
        )

    def value_notes(self, configured: Mapping[str, int], defaults: Mapping[str, int]) -> tuple[str, ...]:
        """A note per value setting the set depends on whose configured value is not the one scoring uses:
        one the model recorded otherwise, or, for a model that recorded none, one that is not the default."""
        notes = []
        for key in _depended_on(self.names):
            if key in self.values and self.values[key] != configured[key]:
                notes.append(
                    f"{key}: the model was trained with {self.values[key]}, the configuration says "
                    f"{configured[key]}; scoring uses {self.values[key]} as the model learnt"
                )
            elif key not in self.values and configured[key] != defaults[key]:
                notes.append(
                    f"{key}: the model does not record the value it was trained with (trained before models "
                    f"recorded it); scoring uses the configuration's {configured[key]} (default {defaults[key]}): "
                    "retrain if the model was trained with another"
                )
        return tuple(notes)

    @property
    def usage_keys(self) -> tuple[str, ...]:
        """Product features that have their own `usage_<key>_per_seat_30d` column."""
        return tuple(match.group(1) for match in map(PER_FEATURE.match, self.names) if match)

    def named_columns(self) -> dict[str, str]:
        """Column -> the column to render it as, naming its product feature as the data spells it (`named_columns`)."""
        return named_columns(self.product_names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "usage_keys": list(self.usage_keys),
            "categories": dict(self.categories),
            "scorecard": self.scorecard,
            "values": dict(self.values),
            "product_names": dict(self.product_names),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSet:
        return cls.of(
            raw["names"], raw.get("categories"), raw.get("scorecard"), raw.get("values"), raw.get("product_names")
        )


def _depended_on(names: Iterable[str]) -> list[str]:
    """The value settings some of `names` depend on."""
    present = set(names)
    return [key for key, features in VALUE_SETTINGS.items() if present.intersection(features)]
