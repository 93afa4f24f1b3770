"""`churn score --data` loads its model (MLflow's, LightGBM's and the scoring code's imports first) on a
second thread while it loads the data and, with the model's feature set kept from an earlier run, builds
the features (`pipeline.champion`). An import that fails there must still stop the run with the error the
import raises, a missing model or alias must stop it before the data is read, a kept feature set that is
not the model's must never be scored with, and nothing may be written by a failed run."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from features.feature_set import FeatureSet
from pipeline.champion import DIGEST_TAG, Probe, kept_feature_set, probe
from pipeline.summary_cache import UNUSED_DAYS
from pipeline.tracking import TAG_MODEL_SHA256, point_mlflow_at
from tests.helpers import (
    book_config,
    book_score,
    book_settings,
    config_file,
    file_tree,
    run_cli,
    running_mlflow_server,
)

BLOCKED = """
import sys
import time
sys.modules["lightgbm"] = None  # `import lightgbm` raises ImportError, as when it is not installed
sys.argv[0] = "churn"
from pipeline.cli import main
main()
"""


def test_a_failing_scoring_import_stops_the_run_with_its_own_error(book, tmp_path: Path) -> None:
    settings, _ = book_settings(book, "startup")
    config = config_file(settings, tmp_path / "config.yaml")
    out = tmp_path / "scores.parquet"
    command = [sys.executable, "-c", BLOCKED, "--no-progress", "score", "--data", str(book[1])]
    command += ["--as-of", "2025-01-15", "--config", str(config), "--out", str(out), "--no-history"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 1, finished.stderr
    assert "internal error: ModuleNotFoundError: import of lightgbm halted; None in sys.modules" in finished.stderr
    assert not out.exists()


@pytest.mark.parametrize("uri", ["models:/no-such-model@champion", "models:/{name}@nope", "models:/{name}/99"])
def test_a_missing_model_or_alias_stops_the_run_before_the_data_is_read(book, tmp_path: Path, capsys, uri) -> None:
    config, workdir = book_config(book, tmp_path, "missing")
    uri = uri.format(name=book_settings(book, "missing")[0].model.name)
    out = tmp_path / "scores.parquet"
    # no data directory at all: a run that read the data first would fail on it, not on the model
    args = book_score(book, config, out)
    args[2] = str(tmp_path / "no-such-data")
    code, text = run_cli([*args, "--model-uri", uri], capsys)
    assert code == 1, text
    assert f"Cannot load model '{uri}'" in text
    if "no-such-model" in uri:
        assert "train one with `churn train`" in text
    else:  # a registered model without that alias or version: told which it has, not to train one
        name = uri.removeprefix("models:/").split("@")[0].split("/")[0]
        said = " ".join(text.split())  # as one line, however the console wrapped it
        listed = rf"model '{name}' has versions? \d+( @\w+)* @champion.*--model-uri models:/{name}/\d+"
        assert re.search(listed, said), said
        assert "train one" not in text
    assert "no-such-data" not in text
    assert not out.exists() and not workdir.exists()  # the working folder was made before the model was looked up


def test_the_features_are_built_with_the_kept_feature_set_only_when_it_is_the_models(
    book, tmp_path: Path, capsys, caplog
) -> None:
    config, workdir = book_config(book, tmp_path, "kept")
    model = book[3].model
    digest = probe(book[3].model_uri, _tracking(book)).digest
    kept = workdir / "cache" / "feature-sets" / f"{digest}.json"
    # a kept set that is not the model's (another model's, a changed file): thrown away, built again
    kept.parent.mkdir(parents=True)
    kept.write_text(json.dumps(FeatureSet.of(model.feature_set_.names[:-3]).to_dict()))
    unused = kept.with_name(f"{'0' * 64}.json")  # a model not loaded for longer than UNUSED_DAYS: removed
    unused.write_text(kept.read_text())
    os.utime(unused, (time.time() - (UNUSED_DAYS + 1) * 86_400,) * 2)
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    with caplog.at_level(logging.INFO, logger="churn"):
        assert run_cli([*book_score(book, config, first), "--no-history"], capsys)[0] == 0
    assert "is not its own; features built again" in caplog.text
    assert kept_feature_set(kept.parent, digest) == model.feature_set_  # the model's own, kept now
    assert not unused.exists()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="churn"):
        assert run_cli([*book_score(book, config, second), "--no-history"], capsys)[0] == 0
    assert "with its kept feature set" in caplog.text and "not its own" not in caplog.text
    pd.testing.assert_frame_equal(pd.read_parquet(second), pd.read_parquet(first), check_exact=True)


@pytest.mark.parametrize("damage", ["a flipped byte", "empty"])
def test_a_damaged_kept_feature_set_is_replaced_and_scores_as_without_it(
    book, tmp_path, capsys, caplog, damage
) -> None:
    """A kept feature set file damaged on disk (a byte flipped in a feature's name: valid JSON naming a
    feature no engine builds; emptied) neither fails the run nor blames the data: one warning, the
    model's own set, the scores of a run without it, and the file kept right again."""
    config, workdir = book_config(book, tmp_path, "damaged")
    digest = probe(book[3].model_uri, _tracking(book)).digest
    kept = workdir / "cache" / "feature-sets" / f"{digest}.json"
    clean, damaged = tmp_path / "clean.parquet", tmp_path / "damaged.parquet"
    assert run_cli([*book_score(book, config, clean), "--no-history"], capsys)[0] == 0
    good = kept.read_text()
    name = book[3].model.feature_set_.names[0]
    kept.write_text(good.replace(f'"{name}"', f'"{name[:-1]}{chr(ord(name[-1]) ^ 1)}"', 1) if damage != "empty" else "")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        code, text = run_cli([*book_score(book, config, damaged), "--no-history"], capsys)
    assert code == 0, text
    assert len([r for r in caplog.records if "feature set" in r.getMessage()]) == 1, caplog.text
    pd.testing.assert_frame_equal(pd.read_parquet(damaged), pd.read_parquet(clean), check_exact=True)
    assert kept.read_text() == good


def test_training_keeps_the_feature_set_of_the_model_it_logs(book) -> None:
    root, _, _, result = book
    digest = probe(result.model_uri, _tracking(book)).digest
    assert kept_feature_set(root / "work" / "cache" / "feature-sets", digest) == result.model.feature_set_


def _tracking(book) -> str:
    return book_settings(book, "probe")[0].tracking_uri()


def test_the_probe_reads_a_sqlite_store_without_mlflow_and_says_unknown_where_it_cannot(book, tmp_path) -> None:
    from mlflow import MlflowClient

    settings, result = book_settings(book, "probe")
    tracking = settings.tracking_uri()
    name = settings.model.name
    version = MlflowClient(tracking, tracking).get_model_version_by_alias(name, "champion")
    assert DIGEST_TAG == TAG_MODEL_SHA256
    assert probe(f"models:/{name}@champion", tracking) == Probe("found", version.tags[TAG_MODEL_SHA256])
    assert probe(f"models:/{name}/{version.version}", tracking) == Probe("found", version.tags[TAG_MODEL_SHA256])
    for missing in (f"models:/{name}@nope", f"models:/{name}/99", "models:/no-such-model@champion"):
        assert probe(missing, tracking).state == "missing", missing
    assert probe(f"models:/{name}@champion", f"sqlite:///{tmp_path / 'absent.db'}").state == "missing"
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database")
    other_schema = tmp_path / "other.db"
    sqlite3.connect(other_schema).execute("CREATE TABLE t (x)").connection.commit()
    for uri, store in [
        (f"models:/{name}@champion", f"sqlite:///{garbage}"),
        (f"models:/{name}@champion", f"sqlite:///{other_schema}"),
        (f"models:/{name}@champion", "http://127.0.0.1:9"),
        (f"models:/{name}@champion", f"{tracking}?timeout=5"),
        (f"runs:/{result.run_id}/model", tracking),
        (f"models:/{name}/Production", tracking),  # a stage: MLflow's own lookup decides
    ]:
        assert probe(uri, store) == Probe("unknown"), (uri, store)


def test_latest_names_the_highest_version_in_the_probe_and_the_load(book, tmp_path: Path, capsys, caplog) -> None:
    """MLflow resolves `@latest` (any case) and `/latest` to a model's highest version that is not deleted.
    The probe took `@latest` for a missing alias (the run then waited for the model before the features)
    and `churn score --model-uri models:/NAME/latest` was refused."""
    from mlflow import MlflowClient

    store = tmp_path / "mlflow.db"  # a copy of the book's store (its artifacts stay where they are)
    shutil.copyfile(book[0] / "work" / "mlflow.db", store)
    tracking = f"sqlite:///{store}"
    name = book_settings(book, "latest")[0].model.name
    client = MlflowClient(tracking, tracking)
    champion = client.get_model_version_by_alias(name, "champion")
    # MLflow resolves a `models:/m-...` source with the process's default store, not this client's:
    # left pointing at another test's store, the versions below failed with "Logged model ... not found".
    point_mlflow_at(tracking)
    newer = client.create_model_version(name, champion.source, champion.run_id, tags=champion.tags)
    deleted = client.create_model_version(name, champion.source, champion.run_id, tags={TAG_MODEL_SHA256: "0" * 64})
    client.delete_model_version(name, deleted.version)
    assert int(newer.version) > int(champion.version)
    found = Probe("found", champion.tags[TAG_MODEL_SHA256])
    for uri in (f"models:/{name}@latest", f"models:/{name}@Latest", f"models:/{name}/latest"):
        assert probe(uri, tracking) == found, uri
    assert probe("models:/no-such-model@latest", tracking).state == "missing"

    config, workdir = book_config(book, tmp_path, "latest")
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "tracking": {"uri": tracking}}))
    shutil.copytree(book[0] / "work" / "cache" / "feature-sets", workdir / "cache" / "feature-sets")
    for uri in (f"models:/{name}@latest", f"models:/{name}/latest"):
        out = tmp_path / "latest.parquet"
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="churn"):
            code, text = run_cli([*book_score(book, config, out), "--no-history", "--model-uri", uri], capsys)
        assert code == 0, text
        assert "with its kept feature set" in caplog.text, uri  # the probe found it: no wait for the model
        assert set(pd.read_parquet(out)["model_version"]) == {str(newer.version)}, uri


@pytest.fixture(scope="module")
def server(book, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` over the book's store (the model's artifacts stay files it names), its URL."""
    with running_mlflow_server(_tracking(book), tmp_path_factory.mktemp("server")) as url:
        yield url


def test_the_probe_asks_an_mlflow_server_without_mlflow(book, server, monkeypatch) -> None:
    settings, _ = book_settings(book, "probe")
    name = settings.model.name
    found = probe(f"models:/{name}@champion", _tracking(book))
    assert found.state == "found" and found.digest
    assert probe(f"models:/{name}@champion", server) == found
    assert probe(f"models:/{name}@champion", f"{server}/") == found
    version = sqlite3.connect(_tracking(book).removeprefix("sqlite:///")).execute(
        "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = 'champion'", (name,)
    )
    assert probe(f"models:/{name}/{version.fetchone()[0]}", server) == found
    assert probe(f"models:/{name}@latest", server) == probe(f"models:/{name}/latest", server) == found  # one version
    for missing in (f"models:/{name}@nope", f"models:/{name}/99", "models:/no-such-model@champion"):
        assert probe(missing, server).state == "missing", missing
    assert probe(f"models:/{name}@champion", f"{server}/not-mlflow") == Probe("unknown")
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")  # a client setting the probe does not reproduce
    assert probe(f"models:/{name}@champion", server) == Probe("unknown")


def test_with_a_server_store_the_features_are_built_while_the_model_loads(
    book, server, tmp_path: Path, capsys, caplog
) -> None:
    """Before, a server store made the run wait for the model (MLflow's imports) before the features."""
    config, workdir = book_config(book, tmp_path, "served")
    local = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**local, "tracking": {"uri": server}}))
    shutil.copytree(book[0] / "work" / "cache" / "feature-sets", workdir / "cache" / "feature-sets")
    served, direct = tmp_path / "served.parquet", tmp_path / "direct.parquet"
    with caplog.at_level(logging.INFO, logger="churn"):
        assert run_cli([*book_score(book, config, served), "--no-history"], capsys)[0] == 0
    assert "with its kept feature set" in caplog.text and "not its own" not in caplog.text

    config.write_text(yaml.safe_dump(local))
    assert run_cli([*book_score(book, config, direct), "--no-history"], capsys)[0] == 0
    pd.testing.assert_frame_equal(pd.read_parquet(served), pd.read_parquet(direct), check_exact=True)


FREEZE_PROBE = """
import atexit, gc
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))  # runs after churn's handler
from pipeline.runtime import skip_collection_at_exit
skip_collection_at_exit()
skip_collection_at_exit()  # registered once
atexit.register(lambda: print("handlers after it still run"))
"""


def test_the_process_skips_its_last_garbage_collections_after_every_atexit_handler() -> None:
    finished = subprocess.run([sys.executable, "-c", FREEZE_PROBE], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == ["handlers after it still run", "frozen at exit: True"]


ABANDONED = """
import sys, threading, time, importlib.abc
class SlowTracking(importlib.abc.MetaPathFinder):  # the model load reaches MLflow after the data failed
    def find_spec(self, name, path, target=None):
        if name == "pipeline.tracking":
            time.sleep(2)
        return None
sys.meta_path.insert(0, SlowTracking())
sys.argv = ["churn", *sys.argv[1:]]
from pipeline.cli import main
try:
    main()
except SystemExit as exc:
    for thread in threading.enumerate():
        if thread.name == "churn-model-load":
            thread.join()
    import mlflow
    print("exit", exc.code, "store", mlflow.get_tracking_uri())
"""


def test_a_run_that_fails_on_its_data_leaves_mlflow_where_it_was(book, tmp_path: Path) -> None:
    config, _ = book_config(book, tmp_path, "abandoned")
    out = tmp_path / "scores.parquet"
    args = book_score(book, config, out)
    args[2] = str(tmp_path / "no-such-data")  # the model exists: it loads on its thread while the data fails
    finished = subprocess.run(
        [sys.executable, "-c", ABANDONED, "--no-progress", *args], capture_output=True, text=True, timeout=300
    )
    assert "no-such-data" in finished.stderr, finished.stderr
    exit_line = finished.stdout.strip().splitlines()[-1]
    assert exit_line.startswith("exit 1 store ") and _tracking(book) not in exit_line, finished.stdout
    assert not out.exists()


@pytest.mark.parametrize("command", ["score", "train"])
def test_a_tracking_store_that_is_not_a_database_is_a_clear_error(book, tmp_path: Path, capsys, command) -> None:
    """A workdir whose mlflow.db is damaged (not an SQLite file) used to stop the run with an internal
    sqlalchemy DatabaseError."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "mlflow.db").write_text("not a database")
    config = tmp_path / "c.yaml"
    config.write_text(f"workdir: {work}\nmodel: {{tune_trials: 0, n_estimators: 20}}\n")
    out = tmp_path / "scores.parquet"
    args = (
        [*book_score(book, config, out)]
        if command == "score"
        else ["train", "--data", str(book[1]), "--config", str(config)]
    )
    code, text = run_cli(args, capsys)
    assert code == 1, text
    assert f"MLflow tracking store sqlite:///{work / 'mlflow.db'} is not usable: file is not a database" in text
    assert "internal error" not in text and not out.exists() and not (work / "history").exists()


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_failed_run_leaves_none_of_the_caches_it_wrote(book, tmp_path: Path, capsys) -> None:
    """A run that failed after reading the data left the caches it had written in the working folder (the
    summaries of the older rows, the checked window rows) and the feature set its model-load thread kept: a
    new working folder full of them, or more files in one. Now it removes what it created, never what was
    there before (the caches an earlier run wrote and this one read)."""
    config, workdir = book_config(book, tmp_path, "left")
    out = tmp_path / "scores.parquet"
    args = book_score(book, config, out)
    args[args.index("--as-of") + 1] = "2020-01-01"  # the data is read, the model loads, then nothing to score
    code, text = run_cli(args, capsys)
    assert code == 1 and "No account has a term active on 2020-01-01" in text, text
    time.sleep(1)  # the model-load thread, had it still been going
    assert not workdir.exists(), _tree(workdir)

    ran = book_score(book, config, out)
    code, text = run_cli([*ran, "--no-history"], capsys)
    assert code == 0, text
    out.unlink()
    before = _tree(workdir)
    assert any("window-rows" in p for p in before) and any("feature-sets" in p for p in before), before
    contents = file_tree(workdir)
    code, text = run_cli([*ran, "--model-uri", "runs:/0123456789abcdef0123456789abcdef/model"], capsys)
    assert code == 1 and "Cannot load model 'runs:/0123456789abcdef0123456789abcdef/model'" in text, text
    assert _tree(workdir) == before and file_tree(workdir) == contents

    # A later date, past the window rows' reuse: its run stores new entries and supersedes the earlier date's,
    # which it removed as it read the data even when it then failed; a failed run now takes nothing away.
    later = [*ran, "--model-uri", "runs:/0123456789abcdef0123456789abcdef/model"]
    later[later.index("--as-of") + 1] = "2025-03-15"
    code, text = run_cli(later, capsys)
    assert code == 1 and "Cannot load model" in text, text
    assert _tree(workdir) == before and file_tree(workdir) == contents
    code, text = run_cli([*later[: later.index("--model-uri")], "--no-history"], capsys)  # succeeds: supersedes them
    assert code == 0, text
    windows = [p for p in _tree(workdir) if p.startswith("cache/window-rows/") and p.endswith(".duckdb")]
    assert windows and not set(windows) & set(before), windows
