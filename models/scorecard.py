"""The health-score configuration: a YAML scorecard, validated into typed models.

A scorecard follows the customer-success recipe *categorize -> weigh -> measure*: weighted
categories, each holding weighted metrics, each metric mapped to 0-100 points by a scheme.
Segment scorecards (onboarding, regulated...) are picked per account by rules on its attributes;
they inherit the default scorecard and override only what differs, so a weight changed in the
default reaches every segment that did not redefine it. Every mistake a user can make in the file
is reported as a `ConfigError` naming the key path, the problem and the accepted values.

File layout::

    name: laer
    bands: {green: 70, yellow: 60}        # lower bounds; red is below yellow
    population_by: as_of                  # percentile ranks within each as_of (if the column exists)
    default:
      categories:
        engagement:
          weight: 25
          metrics:
            user_utilisation_30d: {scheme: linear, bad: 0.1, good: 0.7, weight: 3}
            days_since_last_login: {scheme: thresholds, cuts: [3, 8, 15], points: [100, 70, 40, 0]}
    segments:                             # evaluated in file order, first match wins
      onboarding:
        when: tenure_days < 120           # or a list of conditions that must all hold
        categories:
          training: {weight: 25}          # override a weight; metrics: null removes one
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from features.contract import ACCOUNTS
from features.errors import ConfigError, config_error, counted
from features.registry import absence_reason, all_specs, lookup, sources_of
from features.settings import empty_sections_as_defaults, not_yes_no
from features.spelling import closest, did_you_mean
from models.scores import category_clash, category_columns, column_key

SCHEMES = ("linear", "thresholds", "percentile", "boolean")
BAND_NAMES = ("green", "yellow", "red")
DEFAULT_SCORECARD = "default"


MAX_WEIGHT = 1e6  # weights are relative; a bound keeps their sums finite
Number = Annotated[float, BeforeValidator(not_yes_no)]
"""A scorecard number: a YAML yes/no is refused, not read as 1 or 0."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # a NaN weight or cut-off never passes

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, raw: Any) -> Any:
        return empty_sections_as_defaults(cls, raw)


class _Metric(_Model):
    """Fields every scheme shares: its weight within the category and an optional fill value."""

    weight: Number = 1.0
    default: Number | None = Field(
        None, description="Value used when the metric is missing (instead of skipping the metric)."
    )

    @field_validator("weight")
    @classmethod
    def _non_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError(f"weight must not be negative (got {value:g}); use 0 to switch a metric off")
        if value > MAX_WEIGHT:
            raise ValueError(f"weight must be at most {MAX_WEIGHT:g} (got {value:g}); weights are relative")
        return value


class LinearMetric(_Metric):
    """0 points at `bad`, 100 at `good`, straight line between; either direction."""

    scheme: Literal["linear"]
    bad: Number
    good: Number

    @model_validator(mode="after")
    def _distinct_ends(self) -> LinearMetric:
        if self.bad == self.good:
            raise ValueError(f"linear scheme needs bad != good (both are {self.bad:g})")
        return self


class ThresholdMetric(_Metric):
    """Ordered cut-offs to points: below cuts[0] -> points[0]; from cuts[i-1] up to cuts[i] -> points[i]."""

    scheme: Literal["thresholds"]
    cuts: list[Number]
    points: list[Number]

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdMetric:
        if not self.cuts:
            raise ValueError("thresholds scheme needs at least one cut-off in 'cuts'")
        for low, high in zip(self.cuts, self.cuts[1:], strict=False):
            if not low < high:
                raise ValueError(
                    f"thresholds 'cuts' must be strictly increasing, got {self.cuts} ({low:g} then {high:g}); "
                    "express 'lower is healthier' with decreasing points instead"
                )
        if len(self.points) != len(self.cuts) + 1:
            raise ValueError(
                f"thresholds need one more 'points' than 'cuts' (the range below the first cut-off "
                f"and above each one): {counted(len(self.cuts), 'cut')}, {counted(len(self.points), 'point')}"
            )
        outside = [p for p in self.points if not 0 <= p <= 100]
        if outside:
            raise ValueError(f"thresholds 'points' must lie in 0..100, got {outside}")
        return self


class PercentileMetric(_Metric):
    """Rank within the scored population (optionally within a segment column) -> 0..100."""

    scheme: Literal["percentile"]
    healthier: Literal["higher", "lower"] = "higher"
    within: str | None = Field(None, description="Column whose values split the population (e.g. segment).")


class BooleanMetric(_Metric):
    """100 points when the value's truth (non-zero) equals `healthy`, else 0."""

    scheme: Literal["boolean"]
    healthy: bool = True


MetricRule = Annotated[LinearMetric | ThresholdMetric | PercentileMetric | BooleanMetric, Field(discriminator="scheme")]


class Category(_Model):
    weight: Number = 1.0
    metrics: dict[str, MetricRule]

    @field_validator("weight")
    @classmethod
    def _non_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError(f"weight must not be negative (got {value:g}); use 0 to switch a category off")
        if value > MAX_WEIGHT:
            raise ValueError(f"weight must be at most {MAX_WEIGHT:g} (got {value:g}); weights are relative")
        return value

    @model_validator(mode="after")
    def _some_weight(self) -> Category:
        if not self.metrics:
            raise ValueError("a category needs at least one metric")
        words = [m for m in self.metrics if _categorical(m)]
        if words:  # was found only by `churn score`, after the features were built
            raise ValueError(
                f"{', '.join(words)}: a column of words, not a number a metric can score; pick its accounts with "
                f"a segment rule instead (when: {words[0]} == <value>)"
            )
        if all(m.weight == 0 for m in self.metrics.values()):
            raise ValueError(f"all metric weights are zero ({', '.join(self.metrics)}); at least one must be > 0")
        return self


_OPERATORS = ("<=", ">=", "==", "!=", "<", ">", "not in", "in")
_CONDITION = re.compile(
    r"^\s*(?P<column>[A-Za-z_][\w.]*)\s*(?P<op>"
    + "|".join(re.escape(o) for o in _OPERATORS)
    + r")\s*(?P<value>.+?)\s*$"
)


class Condition(_Model):
    """`<column> <op> <value>` on a row attribute; rows where the column is missing do not match."""

    column: str
    op: Literal["<=", ">=", "==", "!=", "<", ">", "not in", "in"]
    value: Any

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        match = _CONDITION.match(raw)
        if match is None:
            raise ValueError(
                f"cannot read condition {raw!r}: expected '<column> <op> <value>' with op one of "
                f"{', '.join(_OPERATORS)} (e.g. 'tenure_days < 120', 'segment in [smb, mid]')"
            )
        try:
            value = yaml.safe_load(match["value"])
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise ValueError(f"condition {raw!r}: cannot read the value {match['value']!r} ({problem})") from exc
        if match["op"] in ("in", "not in") and not isinstance(value, list):
            raise ValueError(f"condition {raw!r}: '{match['op']}' needs a list, e.g. [smb, mid]")
        if match["op"] in ("<", "<=", ">", ">=") and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"condition {raw!r}: '{match['op']}' needs a number, got {value!r}")
        if match["op"] in ("<", "<=", ">", ">=") and _categorical(match["column"]):
            raise ValueError(
                f"condition {raw!r}: '{match['column']}' holds words, not numbers; compare it with ==, !=, in "
                f"or not in (e.g. '{match['column']} in [<value>, <value>]')"
            )
        return {"column": match["column"], "op": match["op"], "value": value}

    def __str__(self) -> str:
        return f"{self.column} {self.op} {self.value!r}"


class Scorecard(_Model):
    categories: dict[str, Category]

    @model_validator(mode="after")
    def _some_weight(self) -> Scorecard:
        if not self.categories:
            raise ValueError("a scorecard needs at least one category")
        if all(c.weight == 0 for c in self.categories.values()):
            raise ValueError(f"all category weights are zero ({', '.join(self.categories)}); at least one must be > 0")
        return self

    @model_validator(mode="after")
    def _metric_in_one_category(self) -> Scorecard:
        seen: dict[str, str] = {}
        for cat, category in self.categories.items():
            for metric in category.metrics:
                if metric in seen:
                    raise ValueError(
                        f"metric '{metric}' appears in categories '{seen[metric]}' and '{cat}'; "
                        "a metric scores in one category only"
                    )
                seen[metric] = cat
        return self

    def rules(self) -> list[tuple[str, MetricRule]]:
        """(metric, rule) of every metric, in category order."""
        return [(metric, rule) for category in self.categories.values() for metric, rule in category.metrics.items()]

    def metric_categories(self) -> dict[str, str]:
        """metric -> the category it scores in."""
        return {metric: cat for cat, category in self.categories.items() for metric in category.metrics}


class Segment(Scorecard):
    when: list[Condition]
    inherit: bool = Field(True, description="Start from the default scorecard and override it.")

    @field_validator("when", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and not value:
            raise ValueError("'when' needs at least one condition")
        return value


class Bands(_Model):
    """Lower bounds of the colour bands: green >= green, yellow >= yellow, red below."""

    green: Number = 70.0
    yellow: Number = 60.0

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        for name, value in (("green", self.green), ("yellow", self.yellow)):
            if not 0 < value <= 100:
                raise ValueError(f"band '{name}' lower bound must lie in (0, 100], got {value:g}")
        if self.green <= 1:  # 0.7 for 70 %: every account with a score above 1 point of 100 would be green
            raise ValueError(
                f"bands are points of the 0-100 health score, not shares: green {self.green:g} would make almost "
                f"every account green; write e.g. {{green: {self.green * 100:g}, yellow: {self.yellow * 100:g}}}"
            )
        if not self.yellow < self.green:
            raise ValueError(
                f"yellow ({self.yellow:g}) must be below green ({self.green:g}): the bands would overlap "
                "(they are lower bounds: a score >= green is green, >= yellow is yellow, below yellow is red)"
            )
        return self


class ScorecardConfig(_Model):
    """A validated health scorecard: the default and its segment scorecards, bands and ranking scope."""

    name: str = "health"
    description: str = ""
    bands: Bands = Field(default_factory=Bands)
    population_by: str | None = Field(
        "as_of",
        description="Percentile schemes rank within groups of this column when the scored table has it "
        "(one scoring date = one population); the whole table otherwise.",
    )
    default: Scorecard
    segments: dict[str, Segment] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _inherit_default(cls, raw: Any) -> Any:
        """Resolve segment inheritance: each segment = default categories overridden by its own."""
        if not isinstance(raw, dict) or not isinstance(raw.get("segments"), dict):
            return raw
        base = (raw.get("default") or {}).get("categories") if isinstance(raw.get("default"), dict) else None
        if DEFAULT_SCORECARD in raw["segments"]:
            raise ValueError(f"segment name '{DEFAULT_SCORECARD}' is reserved for the default scorecard")
        segments = {}
        for name, segment in raw["segments"].items():
            if isinstance(segment, dict) and segment.get("inherit", True) and isinstance(base, dict):
                own = segment.get("categories") or {}
                for category, spec in own.items() if isinstance(own, dict) else ():
                    if category not in base and isinstance(spec, dict) and "metrics" not in spec:
                        raise ValueError(
                            f"segment '{name}': category '{category}' is not in the default scorecard, so it "
                            "inherits no metrics: give it its own metrics, or remove it from the segment "
                            f"({category}: null)"
                        )
                segment = {**segment, "categories": _merge_categories(base, own)}
            segments[name] = segment
        return {**raw, "segments": segments}

    @field_validator("default")
    @classmethod
    def _default_names(cls, default: Scorecard) -> Scorecard:
        problems = _category_name_problems(default.categories, {})
        if problems:
            raise ValueError("; ".join(problems))
        return default

    @field_validator("segments")
    @classmethod
    def _segment_names(cls, segments: dict[str, Segment], info: ValidationInfo) -> dict[str, Segment]:
        """A segment's own categories (the inherited ones were checked with the default), against every name
        before them."""
        default = info.data.get("default")
        if default is None:  # the default is invalid (reported): its names, which segments inherit, are unknown
            return segments
        taken = {column_key(c): c for c in default.categories}
        problems = [
            f"segment '{name}': {problem}"
            for name, segment in segments.items()
            for problem in _category_name_problems([c for c in segment.categories if c not in taken.values()], taken)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return segments

    def scorecards(self) -> list[tuple[str, Scorecard, list[Condition]]]:
        """(name, scorecard, conditions) in evaluation order: segments in file order, default last."""
        chosen: list[tuple[str, Scorecard, list[Condition]]] = [
            (name, seg, seg.when) for name, seg in self.segments.items()
        ]
        chosen.append((DEFAULT_SCORECARD, self.default, []))
        return chosen

    def version(self) -> str:
        """`<name>@<content hash>`: which scorecard, exactly (two files with the same content agree)."""
        return f"{self.name}@{self.content_hash()}"

    def scorecard(self, name: str) -> Scorecard:
        if name == DEFAULT_SCORECARD:
            return self.default
        if name not in self.segments:
            raise ConfigError(f"scorecard '{self.name}' has no segment '{name}' (has: {', '.join(self.segments)})")
        return self.segments[name]

    def content_hash(self) -> str:
        """12 hex digits of SHA-256 over what decides the scores (everything but name and description).

        Score rows carry it, so trends and alerts compare a score only with scores of the same
        scorecard: editing a weight changes the hash, rewording the description does not.
        """
        content = self.model_dump(mode="json", exclude={"name", "description"})
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]

    def categories(self) -> list[str]:
        """Every category name, default scorecard's order first, then those only segments use."""
        return _unique(cat for _, card, _ in _default_first(self.scorecards()) for cat in card.categories)

    def metrics(self) -> list[str]:
        """Every metric (feature/column) any scorecard uses, in category order."""
        return _unique(
            metric
            for _, card, _ in _default_first(self.scorecards())
            for category in card.categories.values()
            for metric in category.metrics
        )

    def required_columns(self, rules: bool = True) -> dict[str, str]:
        """column -> where the configuration uses it (metrics, segment rules unless `rules=False`, percentile
        groups)."""
        used: dict[str, str] = {}
        for name, card, conditions in _default_first(self.scorecards()):
            for cat, category in card.categories.items():
                for metric, rule in category.metrics.items():
                    used.setdefault(metric, f"metric in {name}.{cat}")
                    if isinstance(rule, PercentileMetric) and rule.within:
                        used.setdefault(rule.within, f"percentile 'within' of {name}.{cat}.{metric}")
            for condition in conditions if rules else ():
                used.setdefault(condition.column, f"rule of segment '{name}' ({condition})")
        return used

    def validate_columns(self, available: Collection[str]) -> None:
        """Raise ConfigError listing every configured column that is not in `available`."""
        available = set(available)
        missing = {col: where for col, where in self.required_columns().items() if col not in available}
        if missing:
            raise ConfigError(self._unknown_columns(missing, available))

    def rule_attributes(self, table_columns: Collection[str] = ()) -> list[str]:
        """The columns segment rules name that no feature family produces, besides `table_columns`:
        attributes of the accounts table (the SPEC's `csm`, a team's own `tier` or `country`) that the
        rule view reads from it, never the model (`Dataset.with_accounts_columns`)."""
        return _unique(
            condition.column
            for _, _, conditions in self.scorecards()
            for condition in conditions
            if lookup(condition.column) is None and condition.column not in table_columns
        )

    def check_feature_names(self, extra: Collection[str] = (), source: str | None = None) -> None:
        """Raise ConfigError naming every column no feature family can produce besides `extra`, where no
        data can hold it: a metric, a percentile group or `population_by` (the feature table holds the
        registry's features only), or a segment rule naming a near miss of a feature (`tenure_dys`).

        A command that builds a data folder's feature table knows this before it reads any data;
        `adapt_to` found it after the features were built (minutes on a large history). Any other column a
        rule names may be one of the data's accounts (`check_account_columns`, when the data is read)."""
        scored = {c: where for c, where in self._scored_columns().items() if c not in extra and lookup(c) is None}
        rules = self.required_columns()
        typos = {
            column: rules[column]
            for column in self.rule_attributes(extra)
            if column not in scored and column not in ACCOUNT_COLUMNS and _near_feature(column)
        }
        if scored or typos:
            message = self._unknown_columns({**scored, **typos}, {*all_specs(), *extra}, source)
            if scored:
                message += (
                    "\nA metric, percentile group or population_by reads a feature of the feature table (`churn "
                    "features` writes them); a column of accounts that is not a feature (csm, or one of your own "
                    "such as tier) can only pick a scorecard, in a segment rule (when: csm == <value>)."
                )
            raise ConfigError(message)

    def check_account_columns(
        self, accounts: Collection[str], extra: Collection[str] = (), source: str | None = None
    ) -> None:
        """Raise ConfigError naming every column a segment rule names that is neither a feature, nor in
        `extra`, nor a column of this data's `accounts` (the raw table's columns), with the closest of them.

        An optional accounts column of the SPEC (`csm`) that this data lacks is no mistake: as for any
        absent source, `adapt_to` skips the segments whose rules need it, with a note."""
        rules = self.required_columns()
        unknown = {
            column: rules[column]
            for column in self.rule_attributes(extra)
            if column not in accounts and column not in ACCOUNT_COLUMNS
        }
        if unknown:
            listing = (
                "A segment rule reads a feature (`churn features` writes them) or a column of accounts; this "
                f"data's accounts has: {', '.join(accounts)}."
            )
            raise ConfigError(self._unknown_columns(unknown, {*all_specs(), *accounts}, source, listing))

    def _scored_columns(self) -> dict[str, str]:
        """column -> where, of the columns the scorecard scores or groups by (all but segment rules)."""
        used = self.required_columns(rules=False)
        if self.population_by:  # used where the table has it: a misspelt one ranked across dates without a word
            used.setdefault(self.population_by, "population_by")
        return used

    def _unknown_columns(
        self, missing: dict[str, str], candidates: Collection[str], source: str | None = None, listing: str = ""
    ) -> str:
        """The error's text: each column, where it is used and the closest candidate, then `listing` (by
        default the first candidates)."""
        named = source or f"'{self.name}'"
        unknown = counted(len(missing), "unknown feature or column", "unknown features or columns")
        lines = [f"Health scorecard {named} uses {unknown}:"]
        for col, where in missing.items():
            lines.append(f"  '{col}' ({where}){did_you_mean(col, sorted(candidates), clause=True)}")
        lines.append(listing or f"Available columns include: {', '.join(sorted(candidates)[:12])}")
        return "\n".join(lines)

    def adapt_to(self, available: Collection[str]) -> AdaptedScorecard:
        """This scorecard fitted to the columns a dataset really has, with one note per change.

        The SPEC lets any event table and any optional column be absent. A metric whose feature
        the registry knows but the data cannot produce (its source table or column is absent) is
        dropped and its weight goes to the other metrics of its category; a category left with no
        metric is dropped and the category weights renormalise over the others; a segment whose
        rule needs an absent column is skipped (its accounts fall to the next scorecard); a
        percentile's `within` column that is absent ranks the whole population. A name that no
        feature family can produce is a typo: ConfigError with a did-you-mean, as before.
        """
        available = set(available)
        missing = {col: where for col, where in self.required_columns().items() if col not in available}
        if not missing:
            return AdaptedScorecard(self, ())
        rule_only = set(self.rule_attributes()) - set(self._scored_columns())
        typos = {
            col: where
            for col, where in missing.items()
            if lookup(col) is None and not (col in ACCOUNT_COLUMNS and col in rule_only)
        }
        if typos:
            message = self._unknown_columns(typos, available | set(all_specs()))
            if rule_only & set(typos):
                message += (
                    "\nA segment rule on a column of accounts that is not a feature reads it from the data "
                    "folder's accounts (--data); a feature table (--features FILE) holds features only."
                )
            raise ConfigError(message)
        sources = sources_of(available)

        def why(column: str) -> str:
            if lookup(column) is None:  # an optional accounts column of the SPEC (csm)
                return f"accounts has no column '{column}'"
            return absence_reason(column, sources, available)

        raw = self.model_dump(mode="python")
        cards = {DEFAULT_SCORECARD: raw["default"], **raw["segments"]}
        notes: list[str] = []
        dropped_metrics: dict[str, set[str]] = {}  # metric -> categories it left that kept other metrics
        dropped_categories: dict[str, list[str]] = {}  # category -> its metrics, where it was dropped whole
        for name, card in cards.items():
            absent_rule = next((c for c in card.get("when") or [] if c["column"] in missing), None)
            if absent_rule is not None:
                rule = str(Condition.model_validate(absent_rule))
                reason = why(absent_rule["column"])
                notes.append(f"segment scorecard '{name}' skipped: its rule '{rule}' cannot be evaluated ({reason})")
                del raw["segments"][name]
                continue
            if name != DEFAULT_SCORECARD:
                card["inherit"] = False  # already merged with the default; re-parsing must not merge again
            for cat, category in list(card["categories"].items()):
                metrics = category["metrics"]
                gone = [m for m in metrics if m in missing]
                for metric in gone:
                    del metrics[metric]
                for metric, rule in metrics.items():
                    if rule.get("within") in missing:
                        notes.append(
                            f"metric '{metric}' ranks within the whole population: its percentile group "
                            f"'{rule['within']}' is absent ({why(rule['within'])})"
                        )
                        rule["within"] = None
                if metrics and any(rule["weight"] > 0 for rule in metrics.values()):
                    for metric in gone:
                        dropped_metrics.setdefault(metric, set()).add(cat)
                elif gone:
                    listed = dropped_categories.setdefault(cat, [])
                    listed += [m for m in gone if m not in listed]
                    del card["categories"][cat]
            if not any(c["weight"] > 0 for c in card["categories"].values()):
                if name == DEFAULT_SCORECARD:
                    raise ConfigError(
                        f"Health scorecard '{self.name}': none of its metrics can be computed from this data "
                        f"({'; '.join(f'{m}: {why(m)}' for m in missing)}). Add metrics on the features the data "
                        "has (see `churn features`) or configure another scorecard."
                    )
                notes.append(f"segment scorecard '{name}' skipped: none of its metrics can be computed from this data")
                del raw["segments"][name]
        for metric, categories in dropped_metrics.items():
            notes.append(f"{'/'.join(sorted(categories))} metric '{metric}' dropped ({why(metric)})")
        for cat, metrics in dropped_categories.items():
            notes.append(f"category '{cat}' dropped ({'; '.join(dict.fromkeys(map(why, metrics)))})")  # its sources
        adapted = parse_scorecard(raw, source=f"scorecard '{self.name}' adapted to the data")
        named = [f"health scorecard '{self.name}': {n}" for n in dict.fromkeys(notes)]
        # where the weight went, said once rather than at the end of every dropped metric's and category's line
        went = []
        if dropped_metrics:
            went.append("a dropped metric's weight goes to the other metrics of its category")
        if dropped_categories:
            went.append(
                f"a dropped category's weight goes to the categories left ({', '.join(raw['default']['categories'])})"
            )
        if went:
            named.insert(0, f"health scorecard '{self.name}' adapted to this data: {'; '.join(went)}")
        return AdaptedScorecard(adapted, tuple(named))


@dataclass(frozen=True)
class AdaptedScorecard:
    """A scorecard fitted to a dataset's columns and the changes made, one line each (empty: unchanged), after
    one line saying where the weight of what was dropped went.

    Every command that scores health (train's rule baseline, score, explain, compare) gets its
    scorecard from `ScorecardConfig.adapt_to`, prints the notes as warnings and logs them to MLflow.
    """

    config: ScorecardConfig
    notes: tuple[str, ...]


def _category_name_problems(names: Iterable[str], taken: dict[str, str]) -> list[str]:
    """What is wrong with these category names, each of which becomes columns of the scores table
    (health_<name>, ml_<name>, rule_<name>, override_<name>): they must make new, readable columns, distinct
    from those of the names in `taken` (column key -> name, updated) also to SQL engines, which ignore case.
    A name also ends an alert rule (`override_ended:<name>`), so it must not hold the rules' separator."""
    from models.alerts import RULE_SEPARATOR  # not at the top: models.alerts imports this module

    problems = []
    for name in names:
        other = taken.setdefault(column_key(name), name)
        if other != name:
            problems.append(
                f"categories '{other}' and '{name}' differ only in case (or Unicode form), so their columns "
                f"{category_columns(other)[0]!r} and {category_columns(name)[0]!r} are one column to SQL engines; "
                "use one name"
            )
        elif not name.strip():
            problems.append("a category name must not be empty")
        elif name != name.strip() or any(unicodedata.category(ch).startswith("C") for ch in name):
            problems.append(
                f"category {name!r} has spaces around it or control characters, which its column "
                f"{category_columns(name)[0]!r} would hide; write it as {' '.join(name.split())!r}"
            )
        elif RULE_SEPARATOR in name:
            problems.append(
                f"category {name!r} contains {RULE_SEPARATOR!r}, which separates the alert rules "
                f"('override_ended:{name}') in the alerts table and the webhook ledger, so one rule would read "
                f"as two; write it as {name.replace(RULE_SEPARATOR, ' & ')!r}"
            )
        elif (clash := category_clash(name)) is not None:
            problems.append(
                f"category '{name}' would make the column {clash}, which the scores table has already; "
                "rename the category"
            )
    return problems


ACCOUNT_COLUMNS = frozenset(column.name for column in ACCOUNTS.columns)
"""The accounts columns of the SPEC: a segment rule on an optional one this data lacks is skipped."""


def _near_feature(column: str) -> bool:
    """A name so close to a feature's (`tenure_dys`) that it is a typo of it, not a column of accounts."""
    return closest(column, all_specs(), cutoff=0.85) is not None


def _categorical(column: str) -> bool:
    """A feature the registry knows as words (segment, plan...): no scheme scores it, no `<` orders it."""
    found = lookup(column)
    return found is not None and found.kind == "categorical"


def _default_first(cards: list[tuple[str, Scorecard, list[Condition]]]) -> list[tuple[str, Scorecard, list[Condition]]]:
    return cards[-1:] + cards[:-1]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_categories(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Override categories/metrics of `base`; `null` removes one; a metric entry without a
    `scheme` only changes fields of the inherited metric, one with a scheme replaces it."""
    if not isinstance(override, dict):
        return override
    merged = {k: v for k, v in base.items()}
    for cat, spec in override.items():
        if spec is None:
            merged.pop(cat, None)
            continue
        inherited = merged.get(cat, {})  # a category of the segment's own: its `null` metrics remove nothing
        if not isinstance(spec, dict) or not isinstance(inherited, dict):
            merged[cat] = spec
            continue
        category = {**inherited, **{k: v for k, v in spec.items() if k != "metrics"}}
        metrics = dict(inherited.get("metrics") or {})
        for metric, rule in (spec.get("metrics") or {}).items():
            if rule is None:
                metrics.pop(metric, None)
            elif isinstance(rule, dict) and "scheme" not in rule and isinstance(metrics.get(metric), dict):
                metrics[metric] = {**metrics[metric], **rule}
            else:
                metrics[metric] = rule
        category["metrics"] = metrics
        merged[cat] = category
    return merged


def parse_scorecard(raw: dict[str, Any], source: str = "scorecard") -> ScorecardConfig:
    """Validate a scorecard mapping; every problem becomes one line of a ConfigError."""
    try:
        return ScorecardConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error(
            f"Health scorecard {source}", exc, noun="problem", tags=SCHEMES, model=ScorecardConfig
        ) from exc
