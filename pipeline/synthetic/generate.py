"""`churn generate`: write a synthetic SaaS history in the input contract, block by block.

Accounts, latent state and contracts are simulated for the whole population first (small: one
row per account or account-week); events, the bulk of the data, are generated and appended to
parquet part files one block of accounts at a time, so memory stays bounded at any size.
Everything is built in a temporary folder next to the target and moved into place at the end.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import EVENT_TABLES, OPTIONAL_SOURCES
from features.errors import ConfigError, counted
from pipeline.io import Legacy, replace_directory
from pipeline.progress import ProgressCallback
from pipeline.synthetic import knobs as k
from pipeline.synthetic.billing import invoices
from pipeline.synthetic.events import HEALTH_SCHEMA, BlockEvents, build_cells, contract_schema
from pipeline.synthetic.population import build_population, simulate_latents
from pipeline.synthetic.renewals import simulate_terms
from pipeline.synthetic.timeline import Timeline, day_to_iso
from pipeline.synthetic.worlds import world_named

TRUTH_DIR = "_truth"
STAGE = "generating accounts"


@dataclass(frozen=True)
class GenerateSummary:
    """What was generated: row counts per table, the period, churn rates and timings."""

    out_dir: Path
    accounts: int
    seed: int
    start: str  # first day of the data
    end: str  # data end (exclusive): no event on or after this day
    rows: dict[str, int]
    churn_rates: dict[str, float]  # observed main terms: "all", "monthly", "annual", "multi-year"
    seconds: float
    table_seconds: dict[str, float] = field(default_factory=dict)  # time spent generating + writing each table
    world: str = "default"

    @property
    def events(self) -> int:
        return sum(self.rows.get(name, 0) for name in EVENT_TABLES)

    @property
    def churn_rate(self) -> float:
        return self.churn_rates["all"]

    def __str__(self) -> str:
        rates = ", ".join(f"{kind} {rate:.1%}" for kind, rate in self.churn_rates.items() if not np.isnan(rate))
        rates = rates or "not observed yet"
        tables = ", ".join(f"{name} {count:,}" for name, count in self.rows.items())
        world = "" if self.world == "default" else f", world {self.world}"
        return (
            f"{counted(self.accounts, 'account')} from {self.start} to {self.end} (seed {self.seed}{world}): {tables}; "
            f"churn per renewal {rates}; {counted(self.events, 'event')} in {self.seconds:.1f} s"
        )


class PartWriter:
    """Appends tables to `folder/part-NNNNN.parquet`, starting a new part every `rows_per_part` rows."""

    def __init__(self, folder: Path, schema: pa.Schema, rows_per_part: int = k.ROWS_PER_PART) -> None:
        folder.mkdir(parents=True)
        self.folder, self.schema, self.rows_per_part = folder, schema, rows_per_part
        self.rows = 0
        self._parts = 0
        self._rows_in_part = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None or self._rows_in_part >= self.rows_per_part:
            self._next_part()
        assert self._writer is not None
        self._writer.write_table(table)
        self._rows_in_part += table.num_rows
        self.rows += table.num_rows

    def _next_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = pq.ParquetWriter(
            self.folder / f"part-{self._parts:05d}.parquet", self.schema, compression="zstd"
        )
        self._parts += 1
        self._rows_in_part = 0

    def close(self) -> None:
        if self._writer is None:  # no rows at all: still leave a readable, empty table
            self._next_part()
        assert self._writer is not None
        self._writer.close()


def generate(
    out_dir: Path,
    n_accounts: int = 2000,
    seed: int = 0,
    start: str = "2023-01-01",
    years: float = 3.0,
    progress: ProgressCallback | None = None,
    world: str = "default",
    optional_tables: bool = True,
    usage_intensity: float = 1.0,
) -> GenerateSummary:
    """Write a synthetic history of `n_accounts` accounts over `years` from `start` into `out_dir`.

    Tables follow the input contract (`accounts.parquet`, `subscriptions.parquet`, and folders of
    parquet parts for the event tables); `_truth/terms.parquet` holds each term's true churn
    probability and outcome, `_truth/health/` the weekly latent state and `_truth/world.json` the
    world's knobs. `world` names what drives churn (see `pipeline/synthetic/worlds.py`); a world may
    write fewer event tables. `optional_tables=False` leaves out invoices, touchpoints and surveys;
    they are drawn after the other tables of each block, so every other file is the same either
    way. `usage_intensity` multiplies the rate of usage events per active user (the bulk of the
    events, as in a product-analytics export) to make large histories without more accounts; the
    default 1.0 leaves every file byte-identical, and the value used is recorded in
    `_truth/world.json` (`usage_per_user`). The same seed and world give byte-identical files.
    `progress(stage, done, total)` is called after each block of accounts.
    """
    began = time.perf_counter()
    if isinstance(n_accounts, bool) or not isinstance(n_accounts, int | np.integer) or n_accounts < 1:
        raise ConfigError(f"generate: accounts must be a positive whole number (got {n_accounts!r}); e.g. 2000.")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"generate: seed must be a whole number >= 0 (got {seed!r}); e.g. 0 or 42.")
    if (
        isinstance(usage_intensity, bool)
        or not isinstance(usage_intensity, int | float)
        or not (math.isfinite(usage_intensity) and usage_intensity > 0)
    ):
        raise ConfigError(
            f"generate: usage intensity must be a positive number (got {usage_intensity!r}); e.g. 1.0 or 6.5."
        )
    mechanics = world_named(world)
    if usage_intensity != 1.0:
        mechanics = replace(mechanics, usage_per_user=mechanics.usage_per_user * usage_intensity)
    out_dir = Path(out_dir)
    timeline = Timeline.build(start, years)

    rng = np.random.default_rng(seed)
    population = build_population(rng, timeline, int(n_accounts), mechanics)
    latents = simulate_latents(rng, population, timeline, mechanics)
    terms = simulate_terms(rng, population, latents, timeline, mechanics)
    blocks = [range(i, min(i + k.CHUNK_ACCOUNTS, population.size)) for i in range(0, population.size, k.CHUNK_ACCOUNTS)]
    block_rngs = rng.spawn(len(blocks))
    tables = [
        name
        for name in EVENT_TABLES
        if name in mechanics.event_tables and (optional_tables or name not in OPTIONAL_SOURCES)
    ]
    seconds = dict.fromkeys(tables, 0.0)

    generated = frozenset({"accounts.parquet", "subscriptions.parquet", *EVENT_TABLES})
    with replace_directory(out_dir, "generate", Legacy(frozenset({TRUTH_DIR}), generated)) as tmp:
        (tmp / TRUTH_DIR).mkdir(parents=True)
        pq.write_table(population.accounts_table(), tmp / "accounts.parquet", compression="zstd")
        pq.write_table(terms.subscriptions_table(population), tmp / "subscriptions.parquet", compression="zstd")
        pq.write_table(terms.truth_table(population), tmp / TRUTH_DIR / "terms.parquet", compression="zstd")
        (tmp / TRUTH_DIR / "world.json").write_text(json.dumps(asdict(mechanics), indent=2) + "\n")
        writers = {name: PartWriter(tmp / name, contract_schema(name)) for name in tables}
        health_writer = PartWriter(tmp / TRUTH_DIR / "health", HEALTH_SCHEMA)
        workflows = tickets = invoiced = 0
        for block, block_rng in zip(blocks, block_rngs, strict=True):
            cells = build_cells(block, population, latents, terms, timeline)
            events = BlockEvents(block_rng, block, population, cells, timeline.end_day, mechanics.usage_per_user)
            for name in tables:
                clock = time.perf_counter()
                if name == "usage_events":
                    table, started = events.usage_events(workflows)
                    workflows += started
                elif name == "support_tickets":
                    table = events.support_tickets(tickets)
                    tickets += table.num_rows
                elif name == "invoices":
                    table = invoices(block_rng, block, population, latents, terms, timeline, invoiced)
                    invoiced += table.num_rows
                else:
                    table = getattr(events, name)()
                writers[name].write(table)
                seconds[name] += time.perf_counter() - clock
            health_writer.write(events.health_truth())
            if progress is not None:
                progress(STAGE, block.stop, population.size)
        for writer in (*writers.values(), health_writer):
            writer.close()

    rows = {"accounts": population.size, "subscriptions": terms.account.size}
    rows.update({name: writer.rows for name, writer in writers.items()})
    return GenerateSummary(
        out_dir=out_dir,
        accounts=population.size,
        seed=int(seed),
        start=day_to_iso(timeline.start_day),
        end=day_to_iso(timeline.end_day),
        rows=rows,
        churn_rates=terms.churn_rates(),
        seconds=time.perf_counter() - began,
        table_seconds=seconds,
        world=mechanics.name,
    )
