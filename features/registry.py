"""The feature registry: the single source of truth for feature names, sources and health categories.

Each feature family module declares its features here with `register(...)`. Everything else
(health score validation, SHAP-to-category mapping, explanations in words) asks the registry and
never hard-codes a feature name or category.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["higher", "lower", "neutral"]
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class FeatureSpec:
    """What a feature means.

    `template` is a `str.format` pattern rendered with `value=` the feature's value and every
    other column of the same row as keyword arguments, so a template may cite a companion
    feature (e.g. the previous window) to say "down 60% on the previous 30 days".
    `healthier` says which direction of the value means a healthier account.
    """

    name: str
    source: str
    category: str
    description: str
    healthier: Direction
    template: str
    kind: Kind = "numeric"


_REGISTRY: dict[str, FeatureSpec] = {}


def register(spec: FeatureSpec) -> FeatureSpec:
    """Add (or replace, when re-declared with the same definition) a feature spec."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing != spec:
        raise ValueError(f"feature '{spec.name}' registered twice with different definitions")
    _REGISTRY[spec.name] = spec
    return spec


def all_specs() -> dict[str, FeatureSpec]:
    """Every declared feature, loading the family modules first so the registry is complete."""
    import features.families  # noqa: F401  (registers on import)

    return dict(_REGISTRY)


def spec(name: str) -> FeatureSpec:
    specs = all_specs()
    if name not in specs:
        raise KeyError(f"unknown feature '{name}'")
    return specs[name]


def category_map(
    names: Iterable[str], overrides: Mapping[str, str] | None = None, default: str = "account"
) -> dict[str, str]:
    """feature -> health category for the given columns; unregistered columns fall to `default`.

    Unregistered columns occur with prepared tables (`--table`); overrides come from configuration.
    """
    specs = all_specs()
    overrides = dict(overrides or {})
    return {
        name: overrides.get(name) or (specs[name].category if name in specs else default) for name in names
    }


def describe(name: str, value: Any, row: Mapping[str, Any] | None = None) -> str:
    """Render a feature value in plain words with its template (fallback: 'name = value')."""
    specs = all_specs()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{specs[name].description if name in specs else name}: no data"
    if name not in specs:
        return f"{name} = {_fmt(value)}"
    context = {k: _clean(v) for k, v in (row or {}).items()}
    context["value"] = _clean(value)
    try:
        return specs[name].template.format(**context)
    except (KeyError, ValueError, TypeError, IndexError):
        return f"{specs[name].description}: {_fmt(value)}"


def _clean(value: Any) -> Any:
    """NaN companions render as 0 so a template never crashes on missing history."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.0
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
