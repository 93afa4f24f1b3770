"""The Spark engine starts only on request, says what to install when it cannot, and reports Spark
errors in one paragraph without JVM frames."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from features.errors import ChurnError
from pipeline.spark import LOCAL_CONF, spark_error_message, spark_problem, start_spark


def test_no_java_on_path_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    problem = spark_problem()
    if problem is not None and "PySpark is not installed" in problem:
        pytest.skip("PySpark absent: the Java check is not reached")
    assert problem is not None
    assert "no Java runtime found" in problem and "openjdk-17-jre-headless" in problem
    with pytest.raises(ChurnError, match="no Java runtime found"):
        start_spark()


def test_an_unsupported_java_is_named_with_its_version(monkeypatch, tmp_path):
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    problem = spark_problem()
    if problem is not None and "PySpark is not installed" in problem:
        pytest.skip("PySpark absent: the Java check is not reached")
    assert problem is not None and "Java 11" in problem and "17 or 21" in problem


def test_the_duckdb_path_never_imports_pyspark(tiny_data_dir):
    """Building features and reading the configuration on DuckDB starts no JVM, not even an import."""
    import subprocess
    import sys

    code = (
        "import sys; from pipeline.config import load_settings; from pipeline.stages import load, build_feature_table; "
        f"settings = load_settings(None); build_feature_table(load({str(tiny_data_dir)!r}, settings), settings); "
        "print('pyspark' in sys.modules, 'py4j' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip().splitlines()[-1] == "False False"


@pytest.mark.spark
def test_a_spark_sql_error_is_one_paragraph_without_jvm_frames(spark, capfd):
    with pytest.raises(Exception) as caught:
        spark.sql("SELECT to_days(1)").collect()
    message = spark_error_message(caught.value)
    assert message.startswith("Spark failed (UNRESOLVED_ROUTINE)")
    assert "to_days" in message.lower() and "\n" not in message and "at org.apache" not in message
    assert "at org.apache" not in capfd.readouterr().err


@pytest.mark.slow
def test_a_local_spark_session_prints_nothing_but_errors(spark_runs, tmp_path):
    """Spark's default log profile prints a banner and WARN lines (host name, native Hadoop library) on
    every run, and PySpark warns about pandas 3 in the driver and in its Python workers; churn's own
    log configuration keeps stderr for errors. The one line left is the JVM's own notice of the vector
    module Spark 4 adds, printed before any configuration is read. A query that reaches Spark's catalog (an
    unknown function is looked up there) made an empty `spark-warehouse` folder in the working directory.
    Its driver gets half the machine's memory (`LOCAL_CONF`), not Spark's 1g."""
    code = (
        "from pipeline.spark import start_spark\n"
        "s = start_spark('local[1]')\n"
        "print(s.sparkContext.getConf().get('spark.driver.memory'))\n"
        "doubled = s.range(4).mapInPandas(lambda frames: (f.assign(id=f.id * 2) for f in frames), 'id long')\n"
        "print(sorted(r.id for r in doubled.collect()))\n"
        "try:\n    s.sql('SELECT to_days(1)').collect()\nexcept Exception:\n    pass\n"
        "print(s.conf.get('spark.sql.warehouse.dir').removeprefix('file:')); s.stop()"
    )
    env = {key: value for key, value in os.environ.items() if key != "SPARK_CONF_DIR"}
    command = [sys.executable, "-c", code]
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    memory, doubled, warehouse = run.stdout.strip().splitlines()
    assert memory == LOCAL_CONF["spark.driver.memory"]
    machine = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert memory.endswith("g") and machine / 2 - 2**30 < int(memory[:-1]) * 2**30 <= machine / 2
    assert doubled == "[0, 2, 4, 6]"
    noise = [line for line in run.stderr.splitlines() if line.strip() and "Using incubator modules" not in line]
    assert noise == []
    assert list(tmp_path.iterdir()) == []  # nothing left in the working directory either
    assert not Path(warehouse).exists() and not Path(warehouse).is_relative_to(tmp_path)  # a scratch folder, removed


@pytest.mark.slow
def test_a_local_session_keeps_the_warehouse_of_the_users_spark_defaults(spark_runs, tmp_path):
    """churn's scratch warehouse, memory share and driver memory are defaults for a local session: a user who
    exported SPARK_CONF_DIR with a spark-defaults.conf setting them keeps theirs (a builder setting would win)."""
    conf_dir, warehouse = tmp_path / "conf", tmp_path / "team-warehouse"
    conf_dir.mkdir()
    (conf_dir / "spark-defaults.conf").write_text(
        f"# the team's settings\nspark.sql.warehouse.dir   {warehouse}\nspark.memory.storageFraction=0.3\n"
        "spark.driver.memory 768m\n"
    )
    code = (
        "from pipeline.spark import start_spark\n"
        "s = start_spark('local[1]')\n"
        "print(s.conf.get('spark.sql.warehouse.dir').removeprefix('file:'))\n"
        "print(s.conf.get('spark.memory.storageFraction'))\n"
        "print(s.sparkContext.getConf().get('spark.driver.memory')); s.stop()"
    )
    env = {**os.environ, "SPARK_CONF_DIR": str(conf_dir)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines() == [str(warehouse), "0.3", "768m"]
