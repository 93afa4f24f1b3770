"""Feature SQL written once for DuckDB and Spark: the dialect spellings, the engines, snapshot time."""
