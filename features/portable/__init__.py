"""Spike (issue 13): feature SQL written once, run on DuckDB and on Spark.

Families write portable SQL; the few spellings that differ between the engines come from a
`Dialect` (`dialect.py`), and statements run through an `Engine` (`engine.py`) that knows how to
materialise an intermediate table on its engine. ASOF joins are replaced by forms both engines run
with equality joins and ordered windows (`timeline.py`). Only the snapshots/labels and the logins
family are ported so far; `build.py` assembles what is ported.
"""
