"""The feature engine's own settings (the `features:` section of the configuration).

They live with the engine so that it never reaches up into the pipeline for them; the pipeline's
configuration composes this section with its own. `SettingsSection` is the base of every
section: unknown keys, NaN and infinity are refused everywhere, and errors never echo the input.
"""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

MAX_DAYS = 3650  # ten years: the longest span any day-count setting may name


def empty_sections_as_defaults(model: type[BaseModel], raw: Any) -> Any:
    """`raw` without the sections left empty: in YAML, a section whose keys are all commented out
    (`alerts:` and nothing under it) is null, and a user who wrote that means its defaults, not an error.
    Only fields holding a mapping and having a default are sections; a null anywhere else is still refused."""
    if not isinstance(raw, dict):
        return raw
    return {key: value for key, value in raw.items() if value is not None or not _is_section(model, key)}


def no_yes_no_numbers(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """`value` for a field of `model`, refused by `not_yes_no` when the field takes numbers but no yes/no."""
    field = model.model_fields.get(info.field_name or "")
    kinds = _leaf_types(field.annotation) if field is not None else set()
    if bool in kinds or not kinds & {int, float}:
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
    for item in items:
        not_yes_no(item)
    return value


def not_yes_no(value: Any) -> Any:
    """`value`, refused when it is a YAML yes/no where a number goes: pydantic takes `true` as 1 for a number,
    so `grace_days: true` ran with one day of grace and a scorecard's `weight: yes` weighed 1."""
    if isinstance(value, bool):
        raise ValueError("true/false (or yes/no, on/off) is not a number here: write the number")
    return value


def _leaf_types(annotation: Any) -> set[Any]:
    """The plain types an annotation is made of (`list[int] | None` -> {int, NoneType})."""
    args = get_args(annotation)
    return {leaf for arg in args for leaf in _leaf_types(arg)} if args else {annotation}


def _is_section(model: type[BaseModel], key: Any) -> bool:
    field = model.model_fields.get(key) if isinstance(key, str) else None
    if field is None or field.is_required():
        return False
    kind = field.annotation
    return get_origin(kind) is dict or (isinstance(kind, type) and issubclass(kind, BaseModel))


class SettingsSection(BaseModel):
    # NaN and infinity are never a meaningful setting: refuse them everywhere, not per field.
    # Errors never echo the rejected input: a webhook URL may carry a token.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, hide_input_in_errors=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, raw: Any) -> Any:
        return empty_sections_as_defaults(cls, raw)

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_no_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        return no_yes_no_numbers(cls, value, info)


class FeatureSettings(SettingsSection):
    windows: list[int] = Field(default_factory=lambda: [7, 30, 90], description="Trailing windows in days.")
    cadence: Literal["monthly", "weekly"] = "monthly"
    top_features: int = Field(8, ge=0, le=200, description="Per-feature usage columns for the N most used features.")
    tracked_features: list[str] = Field(
        default_factory=lambda: ["compliance_audit"],
        description="Features that get their own usage columns whenever the events name them (a compliance feature).",
    )
    new_customer_days: int = Field(120, ge=0, le=MAX_DAYS)
    onboarding_days: int = Field(60, ge=0, le=MAX_DAYS)
    category_overrides: dict[str, str] = Field(
        default_factory=dict, description="feature name -> health category, overriding the registry and scorecard."
    )

    @model_validator(mode="before")
    @classmethod
    def _retired_keys(cls, raw: Any) -> Any:
        """`categories` (a list that nothing read) is accepted from older files and ignored: the ML
        categories follow the scorecard's."""
        if isinstance(raw, dict) and "categories" in raw:
            raw = {k: v for k, v in raw.items() if k != "categories"}
        return raw

    @field_validator("windows")
    @classmethod
    def _positive_windows(cls, value: list[int]) -> list[int]:
        if not value or any(w <= 0 or w > MAX_DAYS for w in value):
            raise ValueError(f"windows must be a non-empty list of day counts between 1 and {MAX_DAYS}")
        return sorted(set(value))

    @field_validator("tracked_features")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        blank = [v for v in value if not str(v).strip()]
        if blank:
            raise ValueError("names must not be empty")
        return value
