"""What every feature family shares: the build context and compact feature declarations.

A family module declares its features with `Declarations` at import (so the registry is complete
without building anything) and exposes `SOURCE` (the table it reads) and
`build(engine, ctx) -> list[str]`, which materialises the table `_ft_<SOURCE>` through the engine,
with one row per snapshot of `_ft_snap`, and returns the feature columns it made. The SQL is
written once in the subset DuckDB and Spark SQL share (`features/sql/`), so both engines run the
same definitions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from features.registry import Direction, FeatureSpec, Kind, register, register_resolver
from features.settings import FeatureSettings
from features.snapshots import HORIZON_DAYS
from features.sql.timeline import exact

DEFAULT_WINDOWS: tuple[int, ...] = tuple(FeatureSettings().windows)
_WINDOWED: list[Windowed] = []  # every family's per-window features, for `windows_of`


@dataclass(frozen=True)
class FamilyContext:
    """Everything a family needs besides the data: settings and which columns the data really has."""

    settings: FeatureSettings
    grace_days: int
    present: Mapping[str, tuple[str, ...]]
    usage_keys: tuple[str, ...] | None = None  # a model's per-feature usage columns; None: rank from the data
    exact_sums: Mapping[str, frozenset[str]] | None = None  # per table, the columns to sum as decimals; None: all

    @property
    def windows(self) -> tuple[int, ...]:
        return tuple(self.settings.windows)

    @property
    def horizon(self) -> int:
        """Days the window map must reach back: every configured window and the fixed 90 days."""
        return max(*self.windows, HORIZON_DAYS)

    def needs_exact(self, table: str, *columns: str) -> bool:
        """Whether sums of these columns must be exact decimals (`timeline.exact`): the data's values are not
        whole numbers whose sums are exact as doubles too (`exact_sums`, from validation)."""
        return self.exact_sums is None or any(c in self.exact_sums.get(table, frozenset()) for c in columns)

    def summed(self, table: str, column: str, value: str | None = None) -> str:
        """A column the features add up (`value`: its SQL, default its name), as they add it: an exact decimal
        where `needs_exact`, else as it is, which adds up faster (`usage_events.quantity`: ~0.06 s of a 2 s
        build on 8.7M events)."""
        value = value or column
        return exact(value) if self.needs_exact(table, column) else value

    def has(self, table: str, column: str) -> bool:
        """Whether the data had this column (absent optional columns yield no features, not defaults)."""
        return column in self.present.get(table, ())


def family_table(source: str) -> str:
    return f"_ft_{source}"


@dataclass(frozen=True)
class Windowed:
    """A feature computed for each trailing window; `{W}` in the texts stands for the window in days."""

    pattern: str
    source: str
    category: str
    description: str
    healthier: Direction
    template: str
    requires: tuple[str, ...] = ()
    actionable: bool = True
    unseated: str | None = None
    none: str | None = None

    def name(self, window: int) -> str:
        return self.pattern.replace("{W}", str(window))

    def spec(self, window: int) -> FeatureSpec:
        def fill(text: str) -> str:
            return text.replace("{W}", str(window))

        return FeatureSpec(
            self.name(window),
            self.source,
            self.category,
            fill(self.description),
            self.healthier,
            fill(self.template),
            requires=self.requires,
            actionable=self.actionable,
            unseated=fill(self.unseated) if self.unseated is not None else None,
            none=fill(self.none) if self.none is not None else None,
            window=window,
        )

    def window(self, name: str) -> int | None:
        """The window `name` is this feature for, or None when it is not one of its names."""
        regex = "^" + re.escape(self.pattern).replace(re.escape("{W}"), r"(\d+)") + "$"
        match = re.match(regex, name)
        return int(match.group(1)) if match and int(match.group(1)) > 0 else None

    def resolve(self, name: str) -> FeatureSpec | None:
        window = self.window(name)
        return self.spec(window) if window is not None else None


def windows_of(names: Iterable[str]) -> tuple[int, ...]:
    """The trailing windows `names` were built for (`features.windows` at their training), in order: which
    windows exist decides which features do, so a model's names say the windows scoring must build."""
    found = {family[1] for name in names if (family := window_family(name)) is not None}
    return tuple(sorted(found))


def window_family(name: str) -> tuple[str, int] | None:
    """The per-window feature `name` is one window of, by its pattern (`events_per_seat_{W}d`), and that window;
    None for a feature of no window."""
    import features.families  # noqa: F401  (every family declares its per-window features on import)

    return next(((feature.pattern, w) for feature in _WINDOWED if (w := feature.window(name)) is not None), None)


class Declarations:
    """Declares one family's features in the registry: fixed names and per-window names."""

    def __init__(self, source: str, category: str, *, actionable: bool = True) -> None:
        self.source = source
        self.category = category
        self.actionable = actionable  # see FeatureSpec: behaviour a CSM can change, or context
        self._windowed: list[Windowed] = []
        register_resolver(self._resolve)

    def fixed(
        self,
        name: str,
        description: str,
        healthier: Direction,
        template: str,
        kind: Kind = "numeric",
        requires: tuple[str, ...] = (),
        *,
        missing: str | None = None,
        never: str | None = None,
        since_start: str | None = None,
        unseated: str | None = None,
        none: str | None = None,
        window: int | None = None,
    ) -> str:
        """Declare a feature; `requires`: the optional columns of the source table it needs; `missing`,
        `never`, `since_start`, `unseated` and `none`: its words for a missing value, for an event that never
        happened (since the landing, since a later start of the table), for an account without a seat count and
        for a value of zero; `window`: the days it reads back, by default those its name ends with (`_90d`), for
        a trend or change both periods it compares (`whole` past 90 days)."""
        if window is None and (days := re.search(r"_(\d+)d$", name)) is not None:
            window = int(days.group(1))
        register(
            FeatureSpec(
                name,
                self.source,
                self.category,
                description,
                healthier,
                template,
                kind,
                self._qualify(requires),
                actionable=self.actionable,
                missing=missing,
                never=never,
                unseated=unseated,
                none=none,
                since_start=since_start,
                window=window,
            )
        )
        return name

    def windowed(
        self,
        pattern: str,
        description: str,
        healthier: Direction,
        template: str,
        requires: tuple[str, ...] = (),
        *,
        unseated: str | None = None,
        none: str | None = None,
    ) -> Windowed:
        """Declare a feature for each trailing window; `unseated` and `none`: as in `fixed`, with `{W}` too."""
        feature = Windowed(
            pattern,
            self.source,
            self.category,
            description,
            healthier,
            template,
            self._qualify(requires),
            self.actionable,
            unseated,
            none,
        )
        for window in DEFAULT_WINDOWS:
            register(feature.spec(window))
        self._windowed.append(feature)
        _WINDOWED.append(feature)
        return feature

    def _qualify(self, columns: tuple[str, ...]) -> tuple[str, ...]:
        """`column` of this family's source table, or `table.column` of another table, as `table.column`."""
        return tuple(c if "." in c else f"{self.source}.{c}" for c in columns)

    def _resolve(self, name: str) -> FeatureSpec | None:
        return next((found for w in self._windowed if (found := w.resolve(name)) is not None), None)
