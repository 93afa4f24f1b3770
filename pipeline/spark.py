"""The Spark engine's session: started only when `--engine spark` is asked for, with the settings that
make Spark compute what DuckDB computes.

Nothing here imports pyspark at module level, so the DuckDB path never needs it (nor a JVM).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from features.errors import ChurnError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

SUPPORTED_JAVA = (17, 21)
INSTALL_HINT = (
    "Install PySpark with `pip install 'churn-pipeline[spark]'` and a Java runtime 17 or 21 "
    "(e.g. `apt-get install openjdk-17-jre-headless`, or set JAVA_HOME to one), or run with --engine duckdb."
)

# Same answers as DuckDB: naive UTC timestamps (TIMESTAMP_NTZ), UTC session clock, ANSI arithmetic
# (errors instead of silent overflow / NULL). Local sessions keep Spark's 200 shuffle partitions,
# which adaptive execution coalesces to the data's size, and let the joins push checkpointed blocks
# (memory and disk) to disk below Spark's default storage share: the 100M-event build of
# bench/features.py failed for lack of memory on 6g with 8 partitions, then with these settings too,
# and completes once each family's table is stored (`Engine.store`) with them.
QUIET_CONF_DIR = Path(__file__).parent / "defaults" / "spark"
"""SPARK_CONF_DIR of a local session (unless the user set one): its log4j2.properties logs errors only."""


def _local_driver_memory() -> str:
    """Half the machine's memory, in whole GiB: a local session's only JVM is its driver, and Spark's 1g
    default is short even for small books (the test suite's shared 1g session ran out building a broadcast
    join; the 100M-event build of bench/features.py needs 6g)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no such counters (not POSIX): Spark's own default
        return "1g"
    return f"{max(1, total // 2**31)}g"


LOCAL_CONF: dict[str, str] = {"spark.memory.storageFraction": "0.1"}
if "SPARK_DRIVER_MEMORY" not in os.environ:  # the launcher's own variable says what the user wants
    LOCAL_CONF["spark.driver.memory"] = _local_driver_memory()
WAREHOUSE = "spark.sql.warehouse.dir"
"""A local session's is a scratch folder (`_scratch_warehouse`) unless the configuration's `spark:` or the
user's spark-defaults.conf sets one."""
DEFAULT_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.ansi.enabled": "true",
    # Spark has no nanosecond timestamps: such parquet columns are read as their epoch count, and the
    # loader converts them (pipeline/spark_loading.py) where Spark would refuse the file.
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",  # churn draws its own progress
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}


def _scratch_warehouse() -> str:
    """An empty folder for a local session's warehouse, removed when the process ends. churn keeps no
    tables there, but Spark makes the folder when a query first reaches its catalog (an unknown function
    or view is looked up there): by default as `spark-warehouse` in the user's working directory."""
    folder = tempfile.mkdtemp(prefix="churn-spark-warehouse-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _users_spark_defaults() -> set[str]:
    """The keys the user's own spark-defaults.conf sets (in the SPARK_CONF_DIR they exported), which
    Spark reads only when no setting of the session's builder overrides them."""
    folder = os.environ.get("SPARK_CONF_DIR")
    if not folder or Path(folder) == QUIET_CONF_DIR:
        return set()
    try:
        lines = (Path(folder) / "spark-defaults.conf").read_text().splitlines()
    except OSError:
        return set()
    # a java.util.Properties file: the key ends at whitespace, '=' or ':'
    return {
        re.split(r"[\s=:]", line.strip(), maxsplit=1)[0] for line in lines if line.strip()[:1] not in {"", "#", "!"}
    }


def java_version(java: str) -> int | None:
    """Major version of a `java` executable (None when it does not run)."""
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False).stderr
    except OSError:
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def spark_problem() -> str | None:
    """Why the Spark engine cannot start here, in words a user can act on; None when it can."""
    if importlib.util.find_spec("pyspark") is None:
        return f"--engine spark: PySpark is not installed. {INSTALL_HINT}"
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if java is None or not os.path.exists(java):
        where = f"JAVA_HOME={java_home} has no bin/java" if java_home else "no `java` on PATH and JAVA_HOME is unset"
        return f"--engine spark: no Java runtime found ({where}). {INSTALL_HINT}"
    version = java_version(java)
    if version not in SUPPORTED_JAVA:
        return (
            f"--engine spark: {java} is Java {version or 'of unknown version'}; Spark 4 runs on Java "
            f"{' or '.join(map(str, SUPPORTED_JAVA))}. {INSTALL_HINT}"
        )
    return None


def start_spark(master: str = "local[2]", conf: Mapping[str, str] | None = None) -> SparkSession:
    """A Spark session with DEFAULT_CONF overridden by `conf` (the configuration's `spark:` section).

    Under spark-submit (or on Databricks) the launcher has already chosen the master: `master`
    is then left to it, and a session that is already active is used with churn's settings.
    """
    problem = spark_problem()
    if problem is not None:
        raise ChurnError(problem)
    from pyspark.logger import PySparkLogger
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("churn")
    launched = SparkSession.getActiveSession() is not None or "PYSPARK_GATEWAY_PORT" in os.environ
    if not launched:
        builder = builder.master(master)
    # Python workers (mapInPandas scoring) must run this interpreter, not whatever `python3` is on PATH;
    # PySpark reads only the environment variable for that, when the context starts.
    local = master.startswith("local") and not launched
    users_file = _users_spark_defaults() if local else set()
    if local:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_CONF_DIR", str(QUIET_CONF_DIR))
    # PySpark 4 warns on every run under pandas 3; the parity tests (tests/test_spark_*.py) prove that
    # what churn uses of it (Arrow conversion, mapInPandas) gives DuckDB's results under pandas 3.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    # churn's local defaults yield to the user's own: the configuration's `spark:` and their spark-defaults.conf
    users = {*(conf or {}), *users_file}
    local_conf = {key: value for key, value in LOCAL_CONF.items() if key not in users} if local else {}
    if local and WAREHOUSE not in users:
        local_conf[WAREHOUSE] = _scratch_warehouse()
    for key, value in {**local_conf, **DEFAULT_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # PySpark logs every SQL error as a JSON record with the JVM stack on stderr, even when the caller
    # handles it; errors reach the user through `spark_errors` instead.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)
    return spark


def spark_error_message(exc: BaseException) -> str:
    """One paragraph for a Spark error: its condition and first message line, no JVM frames."""
    condition = getattr(exc, "getCondition", lambda: None)()
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = re.sub(r"\s*SQLSTATE: \w+", "", first)
    if condition:
        first = first.removeprefix(f"[{condition}]").strip()
        return f"Spark failed ({condition}): {first}"
    return f"Spark failed: {first}"


@contextmanager
def spark_errors() -> Iterator[None]:
    """Turn an error raised by Spark into a ChurnError of one paragraph (no JVM stack on the terminal)."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JError) as exc:
        raise ChurnError(spark_error_message(exc)) from exc
