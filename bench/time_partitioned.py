"""A time-partitioned copy of a data directory, as lakehouse exports lay events out: `logins` and
`usage_events` as hive folders `event_date=YYYY-MM-DD/` (one parquet file per day), every other
table copied as it is. For `bench/one_date.py`: a daily scoring run then reads the files of its
window only (the generator writes files sorted by account, where every file spans all dates).

    python bench/time_partitioned.py --data DIR --out NEW_DIR [--memory-limit 4GB]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)  # bench/features.py would shadow the `features` package

import duckdb  # noqa: E402

from pipeline.io import literal_glob  # noqa: E402
from pipeline.loading import parquet_files  # noqa: E402

PARTITIONED = ("logins", "usage_events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--memory-limit", default="4GB")
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; give a new folder.")
    args.out.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    for source in sorted(args.data.iterdir()):
        name = source.name.split(".")[0]
        if source.name.startswith((".", "_")):
            continue
        if name not in PARTITIONED:
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, args.out / source.name)
            continue
        files = [literal_glob(f) for f in parquet_files(source)]
        con.read_parquet(files, union_by_name=True).project("*, CAST(ts AS DATE) AS event_date").to_view("rows")
        con.execute(
            "COPY rows TO ? (FORMAT parquet, PARTITION_BY (event_date), ROW_GROUP_SIZE 122880)",
            [str(args.out / name)],
        ).fetchall()
        written = con.execute("SELECT count(*) FROM read_parquet(?)", [f"{args.out / name}/*/*.parquet"]).fetchall()[0][
            0
        ]
        print(f"{name}: {written:,} rows in {len(list((args.out / name).iterdir())):,} day folders")


if __name__ == "__main__":
    main()
