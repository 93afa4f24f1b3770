"""Product usage features (category `adoption`): how much, how broadly and how well the product is used.

Product features are told apart by their key (`feature_key`): the name lower-cased with every
character other than a letter or digit read as `_`, so `Export CSV` and `export-csv` are one feature
(and count once in `feature_breadth_*`). A name with other than ASCII characters is compared in its
Unicode compatibility form, case-folded (`Ｅｘｐｏｒｔ ＣＳＶ` is `export_csv` too); unless that form is
ASCII, its key is a readable ASCII slug of it plus a hash of it (`résumé` -> `resume_<hash>`, a Japanese
name -> `<hash>`): such names stay distinct from each other and from ASCII ones, and their keys, a
function of the name alone, are the same in every run. ASCII names keep the keys they always had.

Per-feature columns `usage_<key>_per_seat_30d` cover the most used features (by events before the
latest as_of of the build; by every event when no account is active on its dates) and the configured
tracked ones the events name by then; at scoring,
exactly the model's own (its `FeatureSet`), whatever the scoring date ranks first. Events are matched on
that key, computed in SQL for ASCII names and, for the others, in Python and matched by the md5 of the
name, so no feature name from the data is ever written into a statement.

One scan rolls the events up to (account, day) -- not (account, feature, day), which has ~5 times
the groups and, with what was derived from it, took ~60 % of the build on 78M events. A small
table numbers the feature keys; each daily row carries a mask of the keys used that day (`bit_or`
of one bit per key, in chunks of 63 keys so any number of features fits: one row per (account,
day, chunk)), so the distinct features of a window are the bits set in the `bit_or` of its days'
masks. The per-feature columns' daily counts ride in the same scan, packed two to a BIGINT sum,
which the windows add up before unpacking.

Workflows: a run is the events of one (account, workflow_id), in time order. It *skips* when a
step exceeds the previous one by more than 1 (or its first step is above 1) and is *in order*
when steps never go back. It is *complete* when it is in order and reaches the process's last
step: the highest step seen for its process (the feature of its first event) on days before the
run started (a process's very first runs, with nothing before them, count when in order). A run
belongs to the 90-day window by its first day and is judged on its events before as_of only:
roll-ups keep, per (account, start day, day), the change in runs completed and skipped that day,
so a run still going at as_of counts with the state it had reached.

Days to first value count from the landing day to the first use on or after it; they are missing for an
account that landed before the usage table's first row (`since_landing`): the gap would be the export's.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from features.errors import DataContractError, named
from features.families.base import Declarations, FamilyContext, family_table
from features.registry import FeatureSpec, data_days_column, register, register_resolver
from features.settings import FeatureSettings
from features.sql.dialect import Dialect
from features.sql.engine import Engine
from features.sql.timeline import (
    ASOF_TABLE,
    LANDED,
    SNAPSHOTS,
    WINDOW_MAP,
    as_double,
    count_where,
    data_days,
    days_since_last,
    ever_before_as_of_sql,
    family_sql,
    ratio,
    rel_change,
    since_landing,
    snapshot_join,
    sum_before,
    sum_in,
    table_start_join,
    table_start_sql,
    tenure,
    windowed_sql,
    within_data,
    zero,
)

SOURCE = "usage_events"
CATEGORY = "adoption"
declare = Declarations(SOURCE, CATEGORY)

EVENTS_PER_SEAT = declare.windowed(
    "events_per_seat_{W}d", "Product events per seat in the last {W} days", "higher",
    "{value:.1f} product events per seat in the last {W} days",
    unseated="{value:.0f} product events in the last {W} days",
)  # fmt: skip
QUANTITY_PER_SEAT = declare.windowed(
    "quantity_per_seat_{W}d", "Usage quantity per seat in the last {W} days", "higher",
    "{value:.1f} units of usage per seat in the last {W} days", requires=("quantity",),
    unseated="{value:.1f} units of usage in the last {W} days",
)  # fmt: skip
BREADTH = declare.windowed(
    "feature_breadth_{W}d", "Distinct product features used in the last {W} days", "higher",
    "{value:.0f} distinct features used in the last {W} days", none="no product feature used in the last {W} days",
)  # fmt: skip
COMPLETION = declare.fixed(
    "workflow_completion_rate_90d",
    "Share of workflow runs started in 90 days that reached the last step in order",
    "higher",
    "{value:.0%} of workflow runs completed in order (90 days)",
    requires=("workflow_id", "step"),
    missing="no workflow run started in the last 90 days",
)
SKIPS = declare.fixed(
    "workflow_skip_rate_90d", "Share of workflow runs started in 90 days that skipped a step", "lower",
    "{value:.0%} of workflow runs skipped steps (90 days)", requires=("workflow_id", "step"),
    missing="no workflow run started in the last 90 days",
)  # fmt: skip
FIRST_VALUE = declare.fixed(
    "days_to_first_value",
    "Days from landing to the first product use (days so far when none yet; missing when the data starts later)",
    "lower",
    "first product use {value:.0f} days after landing",
    never="no product use recorded yet, {tenure_days:.0f} days after landing",
    missing="first product use not known: the account landed before the product usage data starts",
)
DAYS_SINCE = declare.fixed(
    "days_since_last_use",
    "Days since the last product use",
    "lower",
    "last product use {value:.0f} days ago",
    never="no product use recorded after the day it landed, {tenure_days:.0f} days ago",
    since_start="no product use since the product usage data starts, {value:.0f} days ago",
)
TREND = declare.fixed(
    "usage_trend_30d",
    "Product events in the last 30 days vs the 30 before (relative change)",
    "higher",
    "{events_per_seat_30d:.1f} events per seat in 30 days, {value:+.0%} on the previous 30",
    unseated="{events_per_seat_30d:.0f} events in 30 days, {value:+.0%} on the previous 30",
    missing="{events_per_seat_30d:.1f} events per seat in 30 days, none in the 30 before",
    window=60,
)

PER_FEATURE = re.compile(r"^usage_(.+)_per_seat_30d\Z", re.DOTALL)  # any name (`named_columns`)
PER_FEATURE_DAYS = 30  # the window of the per-feature columns
SAFE_KEY = re.compile(r"[a-z0-9_]+")
NAMES = "_ft_usage_names"
KEYS = "_ft_usage_keys"
KEY_PACKS = "_ft_usage_key_packs"
DAILY = "_ft_usage_day"
WORKFLOW_DAILY = "_ft_usage_workflow_day"
WINDOWS = "_ft_usage_win"
FEATURE_WINDOWS = "_ft_usage_feature_win"
WORKFLOW_WINDOWS = "_ft_usage_workflow_win"
LAST = "_ft_usage_last"
FIRST_USE = "_ft_usage_first_use"
START = "_ft_usage_start"


def _old_key(feature: str) -> str:
    """The key of every name before non-ASCII names had keys of their own (8 Japanese names: 4 keys)."""
    return re.sub(r"[^a-z0-9]", "_", feature.lower())


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
HASH_CHARS = 10  # hex digits of a non-ASCII name's hash: 40 bits, no collision among thousands of names


def feature_key(feature: str) -> str:
    """The column-name form of a product feature (see the module docstring): the same for names that
    differ only in case or punctuation, distinct for any others, always of the form [a-z0-9_]+."""
    if feature.isascii():  # what the rule below gives an ASCII name, as it always has
        return _old_key(feature)
    folded = "".join(
        c if unicodedata.category(c)[0] in "LMN" else "_" for c in unicodedata.normalize("NFKC", feature).casefold()
    )
    if folded.isascii():
        return folded
    plain = "".join(c for c in unicodedata.normalize("NFKD", folded) if unicodedata.category(c) != "Mn")
    slug = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")
    digest = hashlib.sha256(folded.encode()).hexdigest()[:HASH_CHARS]
    return f"{slug}_{digest}" if slug else digest


def per_feature_name(key: str) -> str:
    return f"usage_{key}_per_seat_30d"


def named_columns(names: Mapping[str, str]) -> dict[str, str]:
    """The per-feature columns of `product_names` (key -> name) renamed after the name the data spells: the
    column the words render, whose spec (`_per_feature_spec`) says "uses of 検索", not "uses of 1b6b1a6f89"."""
    return {per_feature_name(key): per_feature_name(name) for key, name in names.items()}


def _per_feature_spec(name: str) -> FeatureSpec | None:
    match = PER_FEATURE.match(name)
    if match is None:
        return None
    feature = match.group(1).replace("{", "{{").replace("}", "}}")  # a named column's name is in the templates
    return FeatureSpec(
        name,
        SOURCE,
        CATEGORY,
        f"Uses of {match.group(1)} per seat in the last 30 days",
        "higher",
        f"{{value:.1f}} uses of {feature} per seat in the last 30 days",
        unseated=f"{{value:.0f}} uses of {feature} in the last 30 days",
        window=PER_FEATURE_DAYS,  # its words say how much of it the data holds, as every window's do
        unbuilt_reason=(
            f"no usage event names '{match.group(1)}' before the snapshot date, or it is neither tracked nor among "
            "the top_features"
        ),
    )


register_resolver(_per_feature_spec)
for _tracked in FeatureSettings().tracked_features:
    register(_per_feature_spec(per_feature_name(feature_key(_tracked))))

VALID = "account_id IS NOT NULL AND ts IS NOT NULL"
MASK_BITS = 63  # keys per BIGINT mask (bit 63 would make it negative)
PACKED_BITS = 31  # bits per tracked key's count in a packed sum: two per BIGINT


def key_sql(d: Dialect) -> str:
    """`feature_key` of an ASCII name in SQL."""
    return d.regexp_replace_all("lower(feature)", "[^a-z0-9]", "_")


def _keyed_names(engine: Engine) -> tuple[str, list[str]]:
    """The SELECT of the feature names of `NAMES` with their keys -- `key_sql` for ASCII names,
    `feature_key` for the others, fetched once and matched by the md5 of the name, never the name --
    and those other names."""
    d = engine.dialect
    rows = engine.rows(f"SELECT feature FROM {NAMES} WHERE feature IS NOT NULL AND NOT {d.is_ascii('feature')}")
    others = [name for (name,) in rows]
    if not others:
        return f"SELECT feature, {key_sql(d)} AS key, events_before FROM {NAMES}", others
    keys = ", ".join(f"('{hashlib.md5(name.encode()).hexdigest()}', '{feature_key(name)}')" for name in others)
    keyed = f"""
        SELECT n.feature, coalesce(m.key, {key_sql(d)}) AS key, n.events_before
        FROM {NAMES} n LEFT JOIN (VALUES {keys}) AS m(digest, key) ON md5(n.feature) = m.digest
    """
    return keyed, others


def _refuse_merged_keys(keys: list[str], known: Iterable[str], others: list[str]) -> None:
    """Refuse a model's usage column that counted non-ASCII names as one (trained before they had keys of
    their own): no name has its key now, so it would score as 0 uses."""
    merged: dict[str, list[str]] = {}
    for name in others:
        if (old := _old_key(name)) in keys and old not in known:
            merged.setdefault(old, []).append(name)
    if merged:
        columns = named("column", [per_feature_name(key) for key in sorted(merged)])
        examples = [name for key in sorted(merged) for name in merged[key][:3]][:6]
        raise DataContractError(
            f"usage_events.feature: the model's {columns} counted product features whose names are "
            f"not ASCII as one (e.g. {examples}); they now have a column each, so the model cannot score this "
            "data: retrain it."
        )


def build(engine: Engine, ctx: FamilyContext) -> list[str]:
    d = engine.dialect
    (last_as_of,) = engine.rows(f"SELECT max(as_of) FROM {ASOF_TABLE}")[0]
    # The feature keys, numbered, with their events before the latest as_of (to rank them). A key
    # is computed once per distinct feature name here, never per event. Only `feature` and `ts` are
    # read: account_id is a required column (validation rejects nulls), and decoding it for this
    # count would cost as much as the count. The NULL feature is dropped after numbering: a filter on
    # the key inside the grouped query is pushed below the GROUP BY into the scan, where DuckDB ran
    # the key's regexp on every event (3 of the statement's 4.4 CPU s on 78M events). With a model's
    # keys (scoring) there is nothing to rank, and leaving out the count leaves out the read of `ts`
    # (about half of the statement).
    ranked = ctx.usage_keys is None
    events_before = count_where(_ranked_events(engine, last_as_of)) if ranked else "CAST(0 AS BIGINT)"
    engine.materialize(NAMES, f"SELECT feature, {events_before} AS events_before FROM usage_events GROUP BY feature")
    keyed, others = _keyed_names(engine)
    engine.materialize(
        KEYS,
        f"""
        SELECT feature, key, id, events_before
        FROM (SELECT feature, key, events_before,
                     CAST(dense_rank() OVER (ORDER BY key NULLS LAST) - 1 AS INTEGER) AS id
              FROM ({keyed}) keyed) numbered
        WHERE key IS NOT NULL
        """,
    )
    tracked = _usage_keys(engine, ctx)
    ids = dict(engine.rows(f"SELECT DISTINCT key, id FROM {KEYS}"))
    if ctx.usage_keys is not None:
        _refuse_merged_keys(tracked, ids, others)
    present = [(name, int(ids[name])) for name in tracked if name in ids]  # ids are our own integers
    quantity = ctx.summed(SOURCE, "quantity", "e.quantity")
    packing = _daily_table(engine, present, PACKED_BITS, quantity)
    (most_events,) = engine.rows(f"SELECT coalesce(max(events), 0) FROM {DAILY}")[0] if packing.slots else (0,)
    if most_events * PER_FEATURE_DAYS >= 2**PACKED_BITS:  # a window's count could reach the next slot
        packing = _daily_table(engine, present, MASK_BITS, quantity)  # one count per sum
    has_quantity = ctx.has(SOURCE, "quantity")
    aggregates = {f"events_{w}": sum_in("r.events", w) for w in sorted({*ctx.windows, 30})}
    aggregates["events_prev_30"] = sum_before("r.events", 30)
    if has_quantity:
        aggregates |= {f"quantity_{w}": sum_in("r.quantity", w) for w in ctx.windows}
    aggregates |= {column: sum_in(f"r.{column}", PER_FEATURE_DAYS) for column in packing.columns}
    engine.define(WINDOWS, windowed_sql(DAILY, aggregates))
    engine.define(LAST, ever_before_as_of_sql(DAILY, {"day": ("max", "r.day")}))
    # The first use on or after the landing day (a fact of the account; used only once it is before as_of).
    engine.define(
        FIRST_USE,
        f"""
        SELECT r.account_id, min(r.first_ts) AS first_ts
        FROM {DAILY} r JOIN {LANDED} l ON l.account_id = r.account_id AND r.day >= l.landed_day
        GROUP BY r.account_id
        """,
    )
    engine.define(START, table_start_sql(DAILY))
    engine.define(FEATURE_WINDOWS, _distinct_features_sql(ctx.windows))
    joins = [
        snapshot_join("w", WINDOWS),
        snapshot_join("f", FEATURE_WINDOWS),
        snapshot_join("l", LAST),
        f"LEFT JOIN {FIRST_USE} fv ON fv.account_id = s.account_id",
        table_start_join(START),
    ]

    columns = {EVENTS_PER_SEAT.name(w): ratio(zero(f"w.events_{w}"), "s.seat_norm") for w in ctx.windows}
    if has_quantity:
        columns |= {QUANTITY_PER_SEAT.name(w): ratio(zero(f"w.quantity_{w}"), "s.seat_norm") for w in ctx.windows}
    columns |= {BREADTH.name(w): as_double(zero(f"f.distinct_{w}")) for w in ctx.windows}
    # A key the data lacks counts 0.
    columns |= {per_feature_name(name): ratio(packing.count(name, "w"), "s.seat_norm") for name in tracked}
    if ctx.has(SOURCE, "workflow_id") and ctx.has(SOURCE, "step"):
        _workflow_tables(engine)
        joins.append(snapshot_join("wf", WORKFLOW_WINDOWS))
        columns[COMPLETION] = ratio("wf.completed", "wf.runs")
        columns[SKIPS] = ratio("wf.skipped", "wf.runs")
    first_value = (
        f"CASE WHEN fv.first_ts < s.as_of THEN greatest({d.days_between('s.landed_at', 'fv.first_ts')}, 0.0) "
        f"ELSE {tenure(d)} END"
    )
    columns[FIRST_VALUE] = since_landing(d, first_value)
    columns[DAYS_SINCE] = days_since_last(d, "l.day")
    columns[TREND] = rel_change(zero("w.events_30"), zero("w.events_prev_30"))
    columns[data_days_column(SOURCE)] = data_days(d)
    engine.define(family_table(SOURCE), family_sql(within_data(d, columns), joins))
    return list(columns)


def product_names(engine: Engine, ctx: FamilyContext, columns: Iterable[str]) -> dict[str, str]:
    """The product feature name each per-feature column of `columns` counts, by key, where the name is not the
    key itself (`検索` for `1b6b1a6f89`, `Export CSV` for `export_csv`): the words name the feature as the data
    spells it, not by its column-name form. Of the names sharing a key, the most used before the latest as_of
    (then the first in code-point order); a tracked feature the data lacks, as configured. A name is said on one
    line: its runs of whitespace and control characters as one space. Read from this build's `KEYS` table (one
    row per distinct name), so after `build` and before the intermediates are dropped."""
    keys = [m.group(1) for m in map(PER_FEATURE.match, columns) if m and SAFE_KEY.fullmatch(m.group(1))]
    if not keys:
        return {}
    listed = ", ".join(f"'{key}'" for key in keys)  # of the form [a-z0-9_]+: safe literals
    rows = engine.rows(f"SELECT key, feature, events_before FROM {KEYS} WHERE key IN ({listed})")
    best: dict[str, tuple[int, str]] = {}
    for key, name, events in rows:
        if key not in best or (-int(events), name) < (-best[key][0], best[key][1]):
            best[key] = (int(events), name)
    names = {key: name for key, (_, name) in best.items()}
    for name in ctx.settings.tracked_features:
        names.setdefault(feature_key(name), name)
    said = {key: " ".join(_CONTROLS.sub(" ", names[key]).split()) for key in keys if key in names}
    return {key: name for key, name in said.items() if name and name != key}


def _ranked_events(engine: Engine, last_as_of: datetime) -> str:
    """The condition on usage events that count in the ranking of the per-feature columns: those before the
    latest as_of, so that no row at or after a snapshot's date changes its table; every event where the build
    has no snapshot (a date no account is active on). Ranked on the events before it, such a date (the first
    day of the history) had no per-feature column, where the tables of the other dates had them: its table
    has no row whose features later rows could change, so its columns are those of the whole data."""
    if engine.rows(f"SELECT 1 FROM {SNAPSHOTS} LIMIT 1"):
        return f"ts < {engine.dialect.timestamp(last_as_of)}"
    return "ts IS NOT NULL"


def _usage_keys(engine: Engine, ctx: FamilyContext) -> list[str]:
    """The keys of the per-feature columns: a model's own (its feature set), else the `top_features`
    most used features (by events before the latest as_of), then the tracked ones the events name by then.

    A tracked feature the data never names is absent, not zero: its column of zeros read as "not used" by
    every account, and a scorecard metric on it (the regulated segment's compliance feature) cost its
    accounts points for what is missing data; absent, the metric is dropped like any absent source's."""
    if ctx.usage_keys is not None:
        unsafe = [key for key in ctx.usage_keys if not SAFE_KEY.fullmatch(key)]
        if unsafe:  # keys become SQL literals: only the form feature_key() produces is accepted
            raise DataContractError(f"feature set: usage keys {unsafe[:3]} are not of the form [a-z0-9_]+.")
        return list(ctx.usage_keys)
    settings = ctx.settings
    totals = dict(engine.rows(f"SELECT key, sum(events_before) FROM {KEYS} GROUP BY key HAVING sum(events_before) > 0"))
    ranked = sorted(totals, key=lambda key: (-totals[key], key))[: settings.top_features]
    return ranked + [key for key in map(feature_key, settings.tracked_features) if key in totals and key not in ranked]


@dataclass(frozen=True)
class Packing:
    """Where each tracked key's count sits in the packed sums `pack_<n>` of the daily rows (and of the
    windows, which add the packed sums up and unpack only their totals)."""

    dialect: Dialect
    slot_bits: int
    slots: dict[str, tuple[int, int]]  # key -> (pack, shift)

    @property
    def columns(self) -> list[str]:
        return [f"pack_{pack}" for pack in sorted({pack for pack, _ in self.slots.values()})]

    def count(self, key: str, table: str) -> str:
        """The key's count from the packed sums of `table` (0 for a key the data lacks, or no row)."""
        if key not in self.slots:
            return "0"
        pack, shift = self.slots[key]
        total = zero(f"{table}.pack_{pack}")
        if MASK_BITS // self.slot_bits == 1:  # one count per sum
            return total
        return f"({self.dialect.shift_right(total, shift)} & {2**self.slot_bits - 1})"


def _daily_table(engine: Engine, tracked: list[tuple[str, int]], slot_bits: int, quantity: str) -> Packing:
    """The one scan of all usage events: per (account, day, key chunk) the events, quantity (the sum of
    `quantity`, `FamilyContext.summed`), first use, mask of the keys used and the tracked keys' counts, packed.

    The counts are packed `63 // slot_bits` to a BIGINT: each event adds its key's one-hot value
    (1 shifted to the key's slot), looked up with the key's chunk and mask bit in a table of the
    feature names, so the scan adds up a few packed sums instead of evaluating one conditional count
    per tracked key (-3 of its ~13 CPU s on 78M events); the windows add up the packed sums too and
    unpack the totals. A slot holds counts below 2**slot_bits: the caller rebuilds with one count per
    sum when a window's events could reach that (DuckDB sums BIGINTs as HUGEINT; on Spark, whose BIGINT
    sum raises on overflow, one account's days would need 2**31 events in a window).
    """
    d = engine.dialect
    per_sum = MASK_BITS // slot_bits
    slots = {name: (index // per_sum, index % per_sum * slot_bits) for index, (name, _) in enumerate(tracked)}
    packs = sorted({pack for pack, _ in slots.values()})
    one_hot = {pack: "" for pack in packs}
    for name, key_id in tracked:
        pack, shift = slots[name]
        one_hot[pack] += f" WHEN {key_id} THEN {d.bit(shift)}"
    engine.materialize(
        KEY_PACKS,
        f"""
        SELECT feature, CAST(floor(id / {MASK_BITS}) AS INTEGER) AS chunk, {d.bit(f"id % {MASK_BITS}")} AS bit
               {"".join(f", CASE id{one_hot[pack]} ELSE 0 END AS pack_{pack}" for pack in packs)}
        FROM {KEYS}
        """,
    )
    sums = "".join(f", sum(k.pack_{pack}) AS pack_{pack}" for pack in packs)
    engine.materialize(
        DAILY,
        f"""
        SELECT e.account_id, {d.day_of("e.ts")} AS day, k.chunk, bit_or(k.bit) AS features, count(*) AS events,
               sum({quantity}) AS quantity, min(e.ts) AS first_ts{sums}
        FROM usage_events e LEFT JOIN {KEY_PACKS} k ON k.feature = e.feature
        WHERE e.account_id IS NOT NULL AND e.ts IS NOT NULL
        GROUP BY e.account_id, {d.day_of("e.ts")}, k.chunk
        """,
    )
    return Packing(d, slot_bits, slots)


def _distinct_features_sql(windows: Iterable[int]) -> str:
    """Distinct feature keys used in each window before as_of, as `distinct_<W>`: per key chunk, the
    bits set in the `bit_or` of the window's daily masks, summed over the chunks."""
    windows = sorted(windows)
    masks = ", ".join(f"bit_or(CASE WHEN w.age <= {w} THEN r.features END) AS mask_{w}" for w in windows)
    counts = ", ".join(f"sum(bit_count(mask_{w})) AS distinct_{w}" for w in windows)
    return f"""
        SELECT account_id, as_of, {counts}
        FROM (SELECT r.account_id, w.as_of, r.chunk, {masks}
              FROM {DAILY} r JOIN {WINDOW_MAP} w ON r.day = w.day
              WHERE w.age <= {windows[-1]} AND r.features IS NOT NULL
              GROUP BY r.account_id, w.as_of, r.chunk) chunks
        GROUP BY account_id, as_of
    """


def _workflow_tables(engine: Engine) -> None:
    """Per (account, run start day, day): runs started, and the change in runs complete / skipped.

    A process's step count at a run's start is the highest step seen for it on earlier days: a
    running max over the process's days, up to the day before, joined on the run's start day
    (always one of the process's days).
    """
    d = engine.dialect
    engine.define(
        WORKFLOW_DAILY,
        f"""
        WITH events AS (
            SELECT account_id, workflow_id, {d.day_of("ts")} AS day, step,
                   first_value(feature) OVER run_order AS process,
                   step - coalesce(lag(step) OVER run_order, 0) AS step_delta
            FROM usage_events
            WHERE {VALID} AND workflow_id IS NOT NULL AND step IS NOT NULL
            WINDOW run_order AS (PARTITION BY account_id, workflow_id ORDER BY ts, step, feature NULLS LAST)
        ), run_day AS (
            SELECT account_id, workflow_id, process, day, max(step) AS top_step,
                   bool_or(step_delta > 1) AS skipped, bool_or(step_delta < 0) AS backwards
            FROM events GROUP BY account_id, workflow_id, process, day
        ), process_steps AS (
            SELECT process, day,
                   max(top_step) OVER (PARTITION BY process ORDER BY day
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS steps_before
            FROM (SELECT process, day, max(top_step) AS top_step FROM run_day GROUP BY process, day) process_day
        ), run_state AS (
            SELECT account_id, workflow_id, process, day,
                   min(day) OVER run_days AS start_day,
                   max(top_step) OVER run_days AS top_so_far,
                   bool_or(skipped) OVER run_days AS skipped_so_far,
                   bool_or(backwards) OVER run_days AS backwards_so_far
            FROM run_day
            WINDOW run_days AS (PARTITION BY account_id, workflow_id ORDER BY day)
        ), judged AS (
            SELECT r.account_id, r.workflow_id, r.start_day, r.day,
                   CASE WHEN NOT r.skipped_so_far AND NOT r.backwards_so_far
                             AND r.top_so_far >= coalesce(p.steps_before, r.top_so_far) THEN 1 ELSE 0 END AS completed,
                   CASE WHEN r.skipped_so_far THEN 1 ELSE 0 END AS skipped
            FROM run_state r
            LEFT JOIN process_steps p ON p.process = r.process AND p.day = r.start_day
        )
        SELECT account_id, start_day, day,
               {count_where("day = start_day")} AS runs,
               sum(completed - coalesce(previous_completed, 0)) AS completed,
               sum(skipped - coalesce(previous_skipped, 0)) AS skipped
        FROM (SELECT *, lag(completed) OVER run_days AS previous_completed,
                        lag(skipped) OVER run_days AS previous_skipped
              FROM judged WINDOW run_days AS (PARTITION BY account_id, workflow_id ORDER BY day)) changes
        GROUP BY account_id, start_day, day
        """,
    )
    aggregates = {"runs": "sum(r.runs)", "completed": "sum(r.completed)", "skipped": "sum(r.skipped)"}
    engine.define(
        WORKFLOW_WINDOWS, windowed_sql(WORKFLOW_DAILY, aggregates, "w.age <= 90 AND r.day < w.as_of", "start_day")
    )
