"""Benchmark the feature engine: all monthly snapshots over 3 years of generated data, by event count.

    python bench/features.py --events 1M 10M [100M] [--pandas-max 1M] [--root bench/out/features]
    python bench/features.py --data DIR [--profile OUT] [--range-join]   # a given world, e.g. issue 13's 80M
    python bench/features.py --scaling --events 1M 10M 100M [--engines duckdb spark]

For each size it generates (once, cached under --root) a synthetic history with about that many
events, then builds every monthly snapshot in a fresh process -- with the DuckDB engine, and up
to --pandas-max also with the plain-pandas reference -- and reports seconds, events per second
and the process's peak memory (getrusage maxrss, loading and validation included). Results are
printed and merged into the features section of bench/RESULTS.md.

`--range-join` also runs, in the same process after the build, the plain DuckDB baseline of
issue 13: snapshots joined to raw events on account with `ts` in the 90 days before as_of,
computing 24 window counts, sums and distinct counts (4 event tables x 7/30/90 days).
`--profile OUT` writes DuckDB's EXPLAIN ANALYZE of every statement of the build to OUT/ and
prints the statements that took the most CPU (seconds of all threads: comparable on a busy machine).
`--scaling` measures each size with DuckDB and with Spark `local[2]` (driver memory 6g; the JVM's
peak RSS is added to the Python process's) and merges the rows into the scaling section.
Targets on the 2-core machine: 100M events in under 60 s and under 8 GB; at least 10x pandas;
at least 3x faster than the range join (goal 5x).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)  # this script is named like the `features` package it measures
PILOT_ACCOUNTS = 200
BEGIN, END = "<!-- features:begin -->", "<!-- features:end -->"
SCALING_BEGIN, SCALING_END = "<!-- scaling:begin -->", "<!-- scaling:end -->"
SCALING_HEADER = (
    "| events | engine | accounts | snapshots | whole process s | load + validate s + features s | "
    "events/s (features) | peak memory GiB | load average before |\n|---|---|---|---|---|---|---|---|---|"
)
HEADER = (
    "| events | engine | accounts | snapshots | features | load + validate s | features s | events/s | "
    "peak memory GiB | vs pandas | range join (same run): s, features, speed-up |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"event count '{text}' is not a number like 1M, 250k or 5000000")
    return int(float(match.group(1)) * {"": 1, "k": 10**3, "m": 10**6}[match.group(2).lower()])


def label(events: int) -> str:
    return f"{events // 10**6}M" if events % 10**6 == 0 else f"{events:,}"


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def event_count(dataset) -> int:
    if hasattr(dataset, "frames"):  # read by Spark (`SparkDataset`): its kept rows
        return sum(dataset.frames[t].count() for t in dataset.event_tables)
    return sum(dataset.con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in dataset.event_tables)


RANGE_WINDOWS = (7, 30, 90)
RANGE_JOIN = {  # table -> (time column, distinct-count column or None, summed column or None)
    "logins": ("ts", "user_id", None),
    "usage_events": ("ts", "feature", "quantity"),
    "support_tickets": ("opened_at", None, None),
    "trainings": ("ts", "user_id", None),
}


def range_join_sql(table: str) -> str:
    """The plain baseline: each snapshot joined to its account's raw events of the 90 days before as_of."""
    ts, distinct, summed = RANGE_JOIN[table]
    columns = []
    for w in RANGE_WINDOWS:
        recent = f"e.{ts} >= s.as_of - INTERVAL {w} DAY"
        columns.append(f"count(*) FILTER (WHERE {recent}) AS n_{w}")
        if distinct:
            columns.append(f"count(DISTINCT e.{distinct}) FILTER (WHERE {recent}) AS distinct_{w}")
        if summed:
            columns.append(f"sum(e.{summed}) FILTER (WHERE {recent}) AS sum_{w}")
    return f"""
        SELECT s.account_id, s.as_of, {", ".join(columns)}
        FROM __bench_snapshots s JOIN {table} e
          ON e.account_id = s.account_id AND e.{ts} < s.as_of AND e.{ts} >= s.as_of - INTERVAL 90 DAY
        GROUP BY s.account_id, s.as_of
    """


def range_join(dataset, snapshots) -> tuple[float, int]:
    """Seconds and window features of the range-join baseline on the build's own snapshots."""
    keys = snapshots[["account_id", "as_of"]]  # noqa: F841 - read by DuckDB's replacement scan below
    dataset.con.execute("CREATE TEMP TABLE __bench_snapshots AS SELECT * FROM keys").fetchall()
    clock, features = time.perf_counter(), 0
    for table in (t for t in RANGE_JOIN if t in dataset.event_tables):
        features += dataset.con.execute(range_join_sql(table)).df().shape[1] - 2
    return time.perf_counter() - clock, features


def cpu_seconds() -> float:
    """User + system CPU of this process (all DuckDB threads): a cost that other jobs on the machine
    do not inflate the way they inflate wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def profiled_engine(con, out: Path):
    """A DuckDB engine that runs every statement under EXPLAIN ANALYZE, saving the plan to `out` and
    recording (wall seconds, CPU seconds, statement name)."""
    from features.sql.engine import DuckDBEngine

    class Profiled(DuckDBEngine):
        def __init__(self) -> None:
            super().__init__(con)
            self.timings: list[tuple[float, float, str]] = []

        def _timed(self, name: str, run):
            clock, cpu = time.perf_counter(), cpu_seconds()
            result = run()
            self.timings.append((time.perf_counter() - clock, cpu_seconds() - cpu, name))
            return result

        def materialize(self, name: str, select_sql: str) -> None:
            sql = f"EXPLAIN ANALYZE CREATE OR REPLACE TEMP TABLE {name} AS {select_sql}"
            plan = self._timed(name, lambda: self.con.execute(sql).fetchall())
            self._made.append(("TABLE", name))
            (out / f"{len(self.timings):03d}_{name}.txt").write_text(plan[0][1])

        def rows(self, select_sql: str) -> list:
            name = "query: " + " ".join(select_sql.split())[:60]
            return self._timed(name, lambda: super(Profiled, self).rows(select_sql))

        def frame(self, select_sql: str):
            return self._timed("assemble (final join to pandas)", lambda: super(Profiled, self).frame(select_sql))

    out.mkdir(parents=True, exist_ok=True)
    return Profiled()


def worker(engine: str, data: Path, with_range_join: bool = False, profile: Path | None = None) -> None:
    """Build all monthly snapshots of `data` in this process and print one JSON line of measurements
    (the build's log of seconds per family goes to stderr)."""
    from features.build import build_features, snapshot_dates
    from features.settings import FeatureSettings
    from features.table import feature_columns
    from pipeline.loading import load_dataset

    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("churn.features").setLevel(logging.INFO)
    extra: dict = {}
    spark = _spark_session(extra) if engine == "spark" else None
    clock, cpu = time.perf_counter(), cpu_seconds()
    dataset = load_dataset(data) if spark is None else _spark_load(spark, data)
    loaded, loaded_cpu = time.perf_counter(), cpu_seconds()
    dates = snapshot_dates(dataset, "monthly")
    profiled = profiled_engine(dataset.con, profile) if profile is not None else None
    if engine == "duckdb":
        table = build_features(dataset, dates, FeatureSettings(), grace_days=30, engine=profiled)
    elif spark is not None:
        table = _spark_build(spark, dataset, dates, extra)
    else:
        table = _pandas_reference().reference_features(dataset, dates, FeatureSettings(), grace_days=30)
    built, built_cpu = time.perf_counter(), cpu_seconds()
    build_peak = peak_gib() + extra.pop("jvm_peak_gib", 0.0)
    measured = extra | {
        "engine": engine,
        "events": event_count(dataset),
        "accounts": len(dataset.accounts),
        "dates": len(dates),
        "snapshots": len(table),
        "features": len(feature_columns(table)),
        "load_s": loaded - clock,
        "features_s": built - loaded,
        "load_cpu_s": loaded_cpu - cpu,
        "peak_gib": build_peak,
    }
    if engine != "spark":  # Spark's work runs in the JVM, not in this process
        measured["features_cpu_s"] = built_cpu - loaded_cpu
    if with_range_join:
        measured["range_join_s"], measured["range_join_features"] = range_join(dataset, table)
        measured["range_join_peak_gib"] = peak_gib()
    if profiled is not None:
        _print_profile(profiled.timings)
    if spark is not None:
        spark.stop()
    print(json.dumps(measured))


def _print_profile(timings: list[tuple[float, float, str]]) -> None:
    """The statements that took the most CPU, each with its wall time and the cores it kept busy (CPU / wall:
    about 1 for a statement that ran on one thread), and the totals over every statement."""
    total, wall = sum(cpu for _, cpu, _ in timings), sum(seconds for seconds, _, _ in timings)
    print(f"profile: CPU seconds per statement (share of the build's {total:.1f} CPU s), wall s", file=sys.stderr)
    for seconds, cpu, name in sorted(timings, key=lambda t: -t[1])[:15]:
        busy = cpu / seconds if seconds else 0.0
        share = 100 * cpu / total
        print(f"profile {cpu:7.2f} s {share:5.1f} %  wall {seconds:7.2f} s  cores {busy:4.2f}  {name}", file=sys.stderr)
    one = [(seconds, cpu) for seconds, cpu, _ in timings if cpu < 1.3 * seconds]
    print(
        f"profile: {len(timings)} statements, {wall:.2f} s wall, {total:.2f} CPU s; on about one core (CPU < 1.3 x "
        f"wall): {len(one)} statements, {sum(s for s, _ in one):.2f} s wall, {sum(c for _, c in one):.2f} CPU s",
        file=sys.stderr,
    )


SPARK_MASTER, SPARK_DRIVER_MEMORY = "local[2]", "6g"


def _spark_session(extra: dict):
    """A Spark local[2] session, its start timed apart (`extra["session_s"]`)."""
    from pipeline.spark import start_spark

    clock = time.perf_counter()
    spark = start_spark(SPARK_MASTER, {"spark.driver.memory": SPARK_DRIVER_MEMORY})
    extra["session_s"] = time.perf_counter() - clock
    return spark


def _spark_load(spark, data: Path):
    """The data read and validated by Spark, as `churn features --engine spark` reads it (the Spark engine
    computes only from tables Spark read itself)."""
    from pipeline.spark_loading import load_on_spark

    return load_on_spark(spark, str(data))


def _spark_build(spark, dataset, dates, extra: dict):
    """All snapshots on Spark; the JVM's peak RSS goes into `extra`."""
    from features.build import build_features
    from features.settings import FeatureSettings
    from features.sql.engine import SparkEngine
    from pipeline.spark_loading import register_tables

    register_tables(spark, dataset)
    table = build_features(dataset, dates, FeatureSettings(), grace_days=30, engine=SparkEngine(spark))
    jvm = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    status = Path(f"/proc/{jvm}/status").read_text()
    extra["jvm_peak_gib"] = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 2**20
    return table


def _pandas_reference():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pandas_reference", HERE / "pandas_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dataset_for(root: Path, events: int) -> Path:
    """A generated 3-year history with about `events` events, made once and reused."""
    from pipeline.synthetic import generate

    target = root / f"events-{label(events)}"
    if (target / "_truth").is_dir():
        return target
    pilot = root / "pilot"
    if not (pilot / "_truth").is_dir():
        generate(pilot, n_accounts=PILOT_ACCOUNTS, seed=11)
    per_account = sum(_rows(f) for f in _event_files(pilot)) / PILOT_ACCOUNTS
    accounts = max(10, math.ceil(events / per_account))
    print(f"generating {accounts:,} accounts for ~{label(events)} events into {target} ...", flush=True)
    generate(target, n_accounts=accounts, seed=11)
    return target


def _event_files(folder: Path) -> list[Path]:
    from features.contract import EVENT_TABLES

    return [f for name in EVENT_TABLES for f in (folder / name).glob("*.parquet")]


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def measure(engine: str, data: Path, with_range_join: bool = False, profile: Path | None = None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, str(data)]
    command += ["--range-join"] if with_range_join else []
    command += ["--profile", str(profile)] if profile is not None else []
    clock = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - clock
    if result.returncode != 0:
        raise SystemExit(f"{engine} run on {data} failed:\n{result.stderr[-3000:]}")
    sys.stderr.write(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"process_s": wall}


def load_average() -> str:
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


def scaling_row(m: dict, target: int, load_before: str) -> str:
    """One row of the scaling curve: whole process, its parts, throughput on the feature build."""
    parts = f"{m['load_s']:.1f} + {m['features_s']:.1f}"
    if "session_s" in m:
        parts += f" (of which JVM start {m['session_s']:.1f})"
    return (
        f"| {label(target)} ({m['events']:,}) | {m['engine']} | {m['accounts']:,} | {m['snapshots']:,} | "
        f"{m['process_s']:.1f} | {parts} | {m['events'] / m['features_s']:,.0f} | {m['peak_gib']:.2f} | "
        f"{load_before} |"
    )


def merge_scaling(path: Path, rows: dict[tuple[str, str], str]) -> None:
    """Replace or add rows (keyed by size and engine) in the scaling section of RESULTS.md."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if SCALING_BEGIN not in text:
        text = text.rstrip() + f"\n\n## Scaling (bench/features.py --scaling)\n\n{SCALING_BEGIN}\n{SCALING_END}\n"
    head, rest = text.split(SCALING_BEGIN, 1)
    section, tail = rest.split(SCALING_END, 1)
    kept = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 2 and cells[1] in ("duckdb", "spark"):
            kept[(cells[0].split()[0], cells[1])] = line
    kept.update(rows)
    ordered = sorted(kept.items(), key=lambda item: (parse_size(item[0][0].replace(",", "")), item[0][1]))
    body = "\n".join([SCALING_HEADER, *(line for _, line in ordered)])
    path.write_text(f"{head}{SCALING_BEGIN}\n{body}\n{SCALING_END}{tail}")


def row(m: dict, target: int, speedup: str) -> str:
    range_join = "-"
    if "range_join_s" in m:
        range_join = (
            f"{m['range_join_s']:.1f} s for {m['range_join_features']} features: "
            f"**{m['range_join_s'] / m['features_s']:.1f}x**"
        )
    return (
        f"| {label(target)} ({m['events']:,}) | {m['engine']} | {m['accounts']:,} | {m['snapshots']:,} "
        f"({m['dates']} dates) | {m['features']} | {m['load_s']:.1f} | {m['features_s']:.1f} | "
        f"{m['events'] / m['features_s']:,.0f} | {m['peak_gib']:.2f} | {speedup} | {range_join} |"
    )


def merge_results(path: Path, rows: dict[tuple[str, str], str]) -> None:
    """Replace or add rows (keyed by size and engine) in the features section of RESULTS.md."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        section, tail = rest.split(END, 1)
    else:
        head, section, tail = text.rstrip() + "\n\n## Features (bench/features.py)\n\n", "", "\n"
    kept = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 2 and cells[1] in ("duckdb", "pandas"):
            kept[(cells[0].split()[0], cells[1])] = line if len(cells) >= 11 else f"{line} - |"  # before range joins
    kept.update(rows)
    ordered = sorted(kept.items(), key=lambda item: (parse_size(item[0][0].replace(",", "")), item[0][1]))
    body = "\n".join([HEADER, *(line for _, line in ordered)])
    path.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", nargs="+", type=parse_size, default=[10**6, 10**7])
    parser.add_argument("--pandas-max", type=parse_size, default=10**6, help="largest size also run with pandas")
    parser.add_argument("--root", type=Path, default=HERE / "out" / "features")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--data", type=Path, help="benchmark this data directory instead of generated sizes")
    parser.add_argument("--range-join", action="store_true", help="also time the plain range-join baseline")
    parser.add_argument("--profile", type=Path, help="save EXPLAIN ANALYZE of every statement to this folder")
    parser.add_argument("--scaling", action="store_true", help="the scaling curve: DuckDB and Spark local[2] by size")
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"], help="engines of the scaling curve")
    parser.add_argument("--worker", nargs=2, metavar=("ENGINE", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]), args.range_join, args.profile)
        return
    if args.scaling:
        print(SCALING_HEADER)
        for events in args.events:
            data = dataset_for(args.root, events)
            for engine in args.engines:
                before = load_average()
                line = scaling_row(measure(engine, data), events, before)
                print(line, flush=True)
                merge_scaling(args.results, {(label(events), engine): line})
        return
    print(HEADER)
    rows = {}
    if args.data is not None:
        engine = measure("duckdb", args.data, args.range_join, args.profile)
        print(json.dumps(engine), file=sys.stderr)  # CPU seconds and the rest, beyond the table's columns
        key = f"{engine['events'] / 10**6:.0f}M"
        rows[(key, "duckdb")] = row(engine, parse_size(key), "-")
        print(rows[(key, "duckdb")], flush=True)
        merge_results(args.results, rows)
        return
    for events in args.events:
        data = dataset_for(args.root, events)
        engine = measure("duckdb", data, args.range_join, args.profile)
        speedup = "-"
        if events <= args.pandas_max:
            pandas = measure("pandas", data)
            speedup = f"{pandas['features_s'] / engine['features_s']:.0f}x faster"
            rows[(label(events), "pandas")] = row(pandas, events, "1x")
            print(rows[(label(events), "pandas")], flush=True)
        rows[(label(events), "duckdb")] = row(engine, events, speedup)
        print(rows[(label(events), "duckdb")], flush=True)
    merge_results(args.results, rows)


if __name__ == "__main__":
    main()
