"""MLflow tracking and model registry for the renewal-risk model.

- The store comes from `Settings.tracking_uri()`: by default SQLite in the working folder, with
  the experiment's artifacts in `<workdir>/mlartifacts` (never `./mlruns` of whatever directory
  the job happens to run in); a server URI (setting or MLFLOW_TRACKING_URI) decides both itself.
- The model is logged as a pyfunc that returns *calibrated probabilities* (a logged
  LGBMClassifier's pyfunc would return class labels), with explicit pip requirements so MLflow
  neither spawns a process to infer them nor lists the test tools of this environment.
- The pyfunc is "models from code" (`pipeline/model_code.py`) over plain files: no pickle. The
  SHA-256 of every file of the logged model is recorded on the run and the model version (the
  tracking store), and `load_model` downloads the artifacts, checks them against that record and
  reads the plain files itself, so a swapped or corrupted artifact is refused before any of it
  is used, and no code from the artifact store is ever run by churn.
- Promotion to `champion` is earned on validation rows that *neither* model trained on, so a
  champion refitted on all its history is not favoured by scoring rows it has memorised.

MLflow's telemetry is switched off by the entry points (`pipeline.runtime.configure_process`)
before MLflow is imported: it would otherwise do a DNS lookup, and nothing here may reach the
internet.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import mlflow
import mlflow.data
import numpy as np
import pandas as pd
import yaml
from mlflow.entities import Metric, Param
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema
from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM, disable_logging, enable_logging
from sklearn.metrics import roc_auc_score
from sqlalchemy.exc import SQLAlchemyError

from features.errors import ChurnError, ConfigError, counted, signed
from models.population import churned_mask
from models.risk_model import SOURCE_COLUMNS, ChurnRiskModel
from models.scores import SCORECARD_HASH, SCORECARD_NAME, arr_at_risk
from pipeline.champion import CHAMPION, champion_uri
from pipeline.config import ModelSettings, Settings, read_yaml, redact_url

if TYPE_CHECKING:
    from pipeline.compare import ComparisonResult

CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"
MODEL_CODE = Path(__file__).with_name("model_code.py")
ARTIFACTS_KEY = "churn_model"
DOWNLOAD_META = "registered_model_meta"
OUTPUTS = ("probability", "log_odds", "contributions")
# What the pyfunc imports at prediction time; versions are pinned to this environment.
RUNTIME_PACKAGES = ("mlflow", "lightgbm", "numpy", "pandas", "scipy", "scikit-learn", "pydantic", "pyyaml")

# model-version tags the promotion gate reads back from the current champion
TAG_VALID_HASH = "validation_rows_hash"
TAG_VALID_AUC = "validation_roc_auc"
TAG_LAST_AS_OF = "last_labelled_as_of"
TAG_LABEL_HORIZON = "label_horizon"
TAG_REASON = "promotion_reason"
CHANCE_AUC = 0.5
FIRST_CHAMPION_LEVEL = 0.95  # a first champion's cross-fitted AUC lower bound (one-sided) must be above CHANCE_AUC
TAG_MODEL_SHA256 = "model_sha256"  # on the model version and (as churn.model_sha256) on the training run
RUN_TAG_MODEL_SHA256 = "churn.model_sha256"
TAG_TRAINED_ON = "trained_on"  # the data source, on the model version and the training run
NOTES_ARTIFACT = "data/notes.txt"  # warnings of a run: how the data was read, the scorecard adapted


# ---------------------------------------------------------------------------------- the store
def _is_local_store(uri: str) -> bool:
    return urlparse(uri).scheme in ("sqlite", "file", "")


def point_mlflow_at(uri: str) -> None:
    """Point MLflow at `uri`, keeping the environment as the user set it.

    MLflow also exports the URIs as MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI, where the next
    `Settings.tracking_uri()` in this process would take them for the user's choice and ignore
    its own working folder.
    """
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def configure_tracking(settings: Settings) -> str:
    """Point MLflow at the configured store and experiment; returns the experiment id."""
    uri = settings.tracking_uri()
    local = _is_local_store(uri)
    if uri.startswith("sqlite:///"):  # MLflow makes the database file, not its folder
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if folder.resolve() == settings.workdir_path:
            settings.make_workdir()  # its error names the setting
        else:
            folder.mkdir(parents=True, exist_ok=True)
    name = settings.tracking.experiment
    try:
        point_mlflow_at(uri)
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            location = (settings.workdir_path / "mlartifacts").as_uri() if local else None
            experiment_id = client.create_experiment(name, artifact_location=location)
        elif experiment.lifecycle_stage == "deleted":
            raise ConfigError(
                f"MLflow experiment '{name}' at {uri} is deleted; restore it or set tracking.experiment to a new name."
            )
        else:
            experiment_id = experiment.experiment_id
    except MlflowException as exc:
        from pipeline.champion import stopped_answering

        message = stopped_answering(exc, uri) or f"MLflow tracking store {uri} is not usable: {exc.message}"
        raise ChurnError(message) from exc
    except SQLAlchemyError as exc:  # a SQLite file that is not a database, a store of a newer MLflow schema...
        raise ChurnError(
            f"MLflow tracking store {uri} is not usable: {getattr(exc, 'orig', None) or exc}. Restore it from a "
            "backup, or set tracking.uri (or workdir) to another store."
        ) from exc
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


# ---------------------------------------------------------------------------------- run content
def frame_hash(frame: pd.DataFrame) -> str:
    """Order-sensitive SHA-256 of a frame's values (row hashes of pandas, then hashed together)."""
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(row_hashes.tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


def data_fingerprint(table: pd.DataFrame, *, id_col: str, label_col: str, time_col: str | None) -> dict[str, Any]:
    """Row counts, date range and a content hash: enough to tell whether two runs saw the same data."""
    labels = table[label_col]
    fingerprint: dict[str, Any] = {
        "rows": len(table),
        "columns": table.shape[1],
        "accounts": int(table[id_col].nunique()),
        "labelled_rows": int(labels.notna().sum()),
        "churned_rows": int((labels == 1).sum()),
        "sha256": frame_hash(table),
    }
    if time_col is not None:
        dates = pd.to_datetime(table[time_col])
        fingerprint.update(first_as_of=str(dates.min().date()), last_as_of=str(dates.max().date()))
        fingerprint["snapshot_dates"] = int(dates.nunique())
    return fingerprint


DATASET_DIGEST_CHARS = 32  # MLflow stores a dataset digest of at most 36 characters


def log_training_data(table: pd.DataFrame, fingerprint: dict[str, Any], *, name: str, label_col: str) -> None:
    """The training table as the active run's dataset input (`mlflow.data`: schema, size, the label).

    The digest is our hash of every row (`frame_hash`; MLflow's own hashes a sample of the first
    rows), so two runs show the same digest exactly when they trained on the same table; the
    fingerprint (rows, accounts, labels, dates) travels as the input's tags.
    """
    dataset = mlflow.data.from_pandas(
        table, name=name, targets=label_col, digest=fingerprint["sha256"][:DATASET_DIGEST_CHARS]
    )
    with warnings.catch_warnings():  # schema advice for model signatures; a dataset's label may be an integer
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
        mlflow.log_input(dataset, context="training", tags={key: str(value) for key, value in fingerprint.items()})


def log_config_files(paths: list[Path]) -> None:
    """Log each configuration file once under `config/` (the same file may be named twice).

    A file that sets `scoring.alerts.webhook_url` is logged as its settings with the URL redacted
    (the URL may carry a token), not as written.
    """
    for path in dict.fromkeys(Path(p).resolve() for p in paths):
        if not Path(path).is_file():
            raise ConfigError(f"Configuration file {path} does not exist, so it cannot be logged with the run.")
        raw = read_yaml(path) if path.suffix in (".yaml", ".yml") else {}
        scoring = raw.get("scoring")
        alerts = scoring.get("alerts") if isinstance(scoring, dict) else None
        if isinstance(alerts, dict) and isinstance(alerts.get("webhook_url"), str):
            alerts["webhook_url"] = redact_url(alerts["webhook_url"])
            mlflow.log_text(yaml.safe_dump(raw, sort_keys=False), f"config/{path.name}")
        else:
            mlflow.log_artifact(str(path), artifact_path="config")


def log_metrics_table(metrics: pd.DataFrame) -> None:
    """Overall metrics as MLflow metrics (`<score>_<metric>`); every segment as a CSV artifact."""
    overall = metrics[metrics["segment"] == "all"]
    values: dict[str, float] = {}
    for row in overall.to_dict("records"):
        for key, value in row.items():
            if key not in ("score", "segment") and pd.notna(value):
                values[f"{row['score']}_{key}"] = float(value)
    mlflow.log_metrics(values)
    mlflow.log_text(metrics.to_csv(index=False), "evaluation/metrics_by_segment.csv")


def log_selection(selection: dict[str, Any], trials: list[Any], experiment_id: str, parent_run_id: str) -> None:
    """How the model was chosen, on the active (parent) run; one nested run per search trial.

    Trials run before the parent run exists (its content depends on them), so each nested run is
    created afterwards with the trial's own start and end time.
    """
    mlflow.log_metrics({f"selection_{k}": float(v) for k, v in selection.items() if isinstance(v, int | float)})
    if not trials:
        return
    client = mlflow.MlflowClient()
    rows = []
    for trial in trials:
        nested = client.create_run(
            experiment_id,
            start_time=int(trial.started * 1000),
            tags={"mlflow.parentRunId": parent_run_id, "mlflow.runName": f"trial {trial.number}", "state": trial.state},
        )
        metrics = {f"cv_auc_fold_{i}": score for i, score in enumerate(trial.fold_scores)}
        if trial.state == "complete":
            metrics |= {"cv_auc": trial.score, "trees": float(trial.trees), "tree_cost": trial.cost}
        metrics["seconds"] = trial.seconds
        now = int(time.time() * 1000)
        client.log_batch(
            nested.info.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in trial.params.items()],
        )
        client.set_terminated(nested.info.run_id, "FINISHED", end_time=int((trial.started + trial.seconds) * 1000))
        rows.append({"trial": trial.number, "state": trial.state, **trial.params, **metrics})
    mlflow.log_text(pd.DataFrame(rows).to_csv(index=False), "tuning/trials.csv")


def log_band_calibration(calibration: pd.DataFrame) -> None:
    """Calibration per risk band on the validation rows, as metrics and as a CSV artifact."""
    values = {}
    for row in calibration.to_dict("records"):
        values[f"model_band_{row['band']}_rows"] = float(row["rows"])
        for key in ("mean_predicted", "observed"):
            if pd.notna(row[key]):
                values[f"model_band_{row['band']}_{key}"] = float(row[key])
    mlflow.log_metrics(values)
    mlflow.log_text(calibration.to_csv(index=False), "evaluation/calibration_by_band.csv")


# -------------------------------------------------------------------------------- the pyfunc
class ChurnModelPyfunc(mlflow.pyfunc.PythonModel):
    """Serving wrapper: calibrated churn probability by default.

    A model of a prepared table takes its columns under the table's names (`Monthly Charges`) or the
    model's (`Monthly_Charges`, LightGBM's rule): the signature lists both, each optional, and `predict`
    refuses a row set holding neither with the feature's name.

    `params={"output": "log_odds"}` returns the booster's raw log-odds, `"contributions"` the
    exact SHAP contribution of every feature (plus `bias`), named as the input names them: a prepared
    table's columns by the table's own names, as `top_drivers` names them. Categorical features are
    passed as strings (MLflow's schema check refuses pandas `category` columns).
    """

    def load_context(self, context: Any) -> None:
        self.model = ChurnRiskModel.load(context.artifacts[ARTIFACTS_KEY])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        output = (params or {}).get("output", "probability")
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if SOURCE_COLUMNS in self.model.metadata_:
            frame = self._as_trained(frame, self.model.metadata_[SOURCE_COLUMNS])
        if output == "probability":
            return pd.DataFrame({"churn_probability": self.model.predict_proba(frame)[:, 1]}, index=frame.index)
        if output == "log_odds":
            return pd.DataFrame({"churn_log_odds": self.model.predict_raw(frame)}, index=frame.index)
        if output == "contributions":
            return self.model.contributions(frame).rename(columns=self.model.metadata_.get(SOURCE_COLUMNS) or {})
        raise ChurnError(f"pyfunc params.output: unknown value '{output}' (use one of {', '.join(OUTPUTS)}).")

    def _as_trained(self, frame: pd.DataFrame, sources: dict[str, str]) -> pd.DataFrame:
        """A prepared table's rows under the model's names, typed as `churn score --table` types them (its
        columns as the file held them: whole numbers, numbers as text with blanks, categories)."""
        from pipeline.prepared_table import typed_as_trained

        renames = {c: f for f, c in sources.items() if c in frame.columns and f not in frame.columns}
        frame = frame.rename(columns=renames) if renames else frame
        names = self.model.feature_names_in_
        if missing := [f for f in names if f not in frame.columns]:
            named = [f"'{sources[f]}' (or '{f}')" if f in sources else f"'{f}'" for f in missing[:5]]
            of = f"of the model's {len(names)} columns"
            raise ChurnError(
                f"pyfunc input: {counted(len(missing), f'{of} is', f'{of} are')} missing: {', '.join(named)}."
            )
        return frame.assign(**typed_as_trained(self.model, frame, "pyfunc input"))


def pip_requirements() -> list[str]:
    return [f"{name}=={installed_version(name)}" for name in RUNTIME_PACKAGES]


def serving_example(model: ChurnRiskModel, X: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """A few rows in the pyfunc's input format (model features under a prepared table's own column names,
    categoricals as strings)."""
    example = model.prepare(X.head(rows)).rename(columns=model.metadata_.get(SOURCE_COLUMNS, {}))
    return example.astype({model.metadata_.get(SOURCE_COLUMNS, {}).get(n, n): "object" for n in model.categories_})


def _signature(model: ChurnRiskModel, example: pd.DataFrame, output: pd.DataFrame) -> ModelSignature:
    """The pyfunc's signature. A prepared table's model lists its columns with any type, typed by `predict`
    as `churn score --table` types them (MLflow refused a column of whole numbers for a double, and the
    numbers-as-text the model was trained on), and a renamed column under both names, each optional
    (MLflow refuses a missing required column and drops those it does not list before `predict` runs)."""
    signature = infer_signature(example, output, params={"output": "probability"})
    sources = model.metadata_.get(SOURCE_COLUMNS)
    if sources is None or signature.inputs is None:
        return signature
    renamed = {source: feature for feature, source in sources.items()}
    inputs: list[ColSpec] = []
    for spec in signature.inputs.inputs:
        if spec.name in renamed:
            inputs += [ColSpec(AnyType(), spec.name, required=False), ColSpec(AnyType(), renamed[spec.name], False)]
        else:
            inputs.append(ColSpec(AnyType(), spec.name, spec.required))
    return ModelSignature(Schema(inputs), signature.outputs, signature.params)


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Hide MLflow's per-call chatter during logging: pickling advice (its logger), and the registration
    notices it prints to its own stream ("Successfully registered model...", "Created version..."), which
    `churn train` says in its own words."""
    logger = logging.getLogger("mlflow")
    previous, printed = logger.level, MLFLOW_LOGGING_STREAM.enabled
    logger.setLevel(logging.ERROR)
    disable_logging()
    try:
        yield
    finally:
        logger.setLevel(previous)
        if printed:
            enable_logging()


def artifact_digest(root: Path) -> str:
    """SHA-256 over every file under `root` (relative path and content hash, in path order).

    Links are refused: a model directory holds plain files only. MLflow's `registered_model_meta`,
    which the downloader writes (it names the URI used), is not part of the stored model.
    """
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.parent == root and path.name == DOWNLOAD_META:
            continue
        if path.is_symlink():
            raise ChurnError(f"Model artifact {path.relative_to(root)} is a symbolic link; refusing the model.")
        if path.is_file():
            content = hashlib.sha256(path.read_bytes()).hexdigest()
            digest.update(f"{path.relative_to(root).as_posix()}\0{content}\n".encode())
    return digest.hexdigest()


def log_model(model: ChurnRiskModel, X_example: pd.DataFrame, settings: Settings, tags: dict[str, str]) -> ModelVersion:
    """Log the pyfunc (models from code) in the active run, register it, record its hash, alias `challenger`."""
    example = serving_example(model, X_example)
    pyfunc = ChurnModelPyfunc()
    pyfunc.model = model
    signature = _signature(model, example, pyfunc.predict(None, example))
    with tempfile.TemporaryDirectory() as tmp, _quiet_mlflow():
        model_dir = model.save(Path(tmp) / ARTIFACTS_KEY)
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(MODEL_CODE),
            artifacts={ARTIFACTS_KEY: str(model_dir)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
            registered_model_name=settings.model.name,
        )
        stored = Path(mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri, dst_path=str(Path(tmp) / "s")))
        digest = artifact_digest(stored)
    client = mlflow.MlflowClient()
    version = str(info.registered_model_version)
    for key, value in {**tags, TAG_MODEL_SHA256: digest}.items():
        client.set_model_version_tag(settings.model.name, version, key, value)
    client.set_tag(info.run_id, RUN_TAG_MODEL_SHA256, digest)
    client.set_registered_model_alias(settings.model.name, CHALLENGER, version)
    return client.get_model_version(settings.model.name, version)


def open_model_store(model_uri: str, settings: Settings) -> str:
    """Point MLflow at the configured store to load `model_uri` from it (`configure_tracking`; returns the
    experiment id), refusing a local SQLite store that does not exist (it holds no model) before MLflow creates
    an empty one, and the working folder around it, for a command that then fails."""
    uri = settings.tracking_uri()
    if uri.startswith("sqlite:///") and "?" not in uri and not Path(uri.removeprefix("sqlite:///")).exists():
        raise ChurnError(
            f"Cannot load model '{model_uri}' from {uri}: the tracking store does not exist yet, so it holds no "
            "model (train one with `churn train`, or pass --model-uri)."
        )
    return configure_tracking(settings)


def load_model(uri: str, settings: Settings | None = None) -> ChurnRiskModel:
    """The ChurnRiskModel of a logged model (`models:/NAME@champion`, `models:/NAME/3`, `runs:/RUN/model`).

    The artifacts are downloaded, checked against the SHA-256 recorded when the model was logged,
    and read as plain files; nothing from the artifact store is unpickled or run. With
    `settings`, the configured tracking store is used; otherwise the current MLflow URI.
    `model.metadata_` gets the URI, the artifacts' SHA-256 and, for registry URIs, the resolved version.
    """
    if settings is not None:
        open_model_store(uri, settings)
    try:
        expected, resolved = _recorded_digest(uri)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
            actual = artifact_digest(local)
            if actual != expected:
                raise ChurnError(
                    f"Model '{uri}': its artifacts do not match the SHA-256 recorded when it was logged "
                    f"(recorded {expected[:12]}..., found {actual[:12]}...); the artifact store was changed or "
                    "corrupted since. Refusing to load it; retrain or restore the artifacts."
                )
            model = ChurnRiskModel.load(_plain_model_dir(local, uri))
    except MlflowException as exc:
        raise ChurnError(
            f"Cannot load model '{uri}' from {mlflow.get_tracking_uri()}: {exc.message} ({_load_hint(uri)})."
        ) from exc
    model.metadata_["model_uri"] = uri
    model.metadata_[TAG_MODEL_SHA256] = expected
    if resolved is not None:
        model.metadata_["model_name"] = resolved.name
        model.metadata_["model_version"] = str(resolved.version)
        model.metadata_["run_id"] = resolved.run_id
        model.metadata_["aliases"] = sorted(resolved.aliases or ())
        if resolved.creation_timestamp:
            registered = pd.Timestamp(resolved.creation_timestamp, unit="ms", tz="UTC")
            model.metadata_["registered_at"] = registered.strftime("%Y-%m-%d %H:%M UTC")
    return model


def _recorded_digest(uri: str) -> tuple[str, ModelVersion | None]:
    """The artifact hash the tracking store recorded for `uri`, and its model version (registry URIs)."""
    client = mlflow.MlflowClient()
    resolved = _registry_version(uri)
    if resolved is not None:
        digest = resolved.tags.get(TAG_MODEL_SHA256)
        where = f"version {resolved.version} of '{resolved.name}'"
    elif uri.startswith("runs:/") and uri.removeprefix("runs:/").partition("/")[2].strip("/") == MODEL_ARTIFACT:
        run_id = uri.removeprefix("runs:/").partition("/")[0]
        digest = client.get_run(run_id).data.tags.get(RUN_TAG_MODEL_SHA256)
        where = f"run {run_id}"
    else:
        raise ChurnError(
            f"Model URI '{uri}': churn loads registered models (models:/NAME@ALIAS, models:/NAME/VERSION, "
            f"models:/NAME/latest) or runs:/RUN_ID/{MODEL_ARTIFACT}, whose artifact hash the tracking store records."
        )
    if not digest:
        raise ChurnError(
            f"Model '{uri}': {where} has no recorded artifact hash (it was logged by an older churn, as a pickle, "
            "which churn no longer loads); retrain it with `churn train`."
        )
    return digest, resolved


def _plain_model_dir(local: Path, uri: str) -> Path:
    """The folder of plain model files inside a downloaded pyfunc (from its MLmodel, read as safe YAML)."""
    try:
        spec = yaml.safe_load((local / "MLmodel").read_text())
        relative = spec["flavors"]["python_function"]["artifacts"][ARTIFACTS_KEY]["path"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ChurnError(f"Model '{uri}' is not a churn-risk model (its MLmodel names no {ARTIFACTS_KEY}).") from exc
    folder = (local / relative).resolve()
    if not folder.is_relative_to(local.resolve()) or not folder.is_dir():
        raise ChurnError(f"Model '{uri}': its MLmodel points outside the model ({relative}); refusing it.")
    return folder


def _load_hint(uri: str) -> str:
    """What to do about a registry URI that does not resolve: the versions its model does have, when it
    has some (a model registered but never made champion was told to train one, as if there were none)."""
    reference, at, alias = uri.removeprefix("models:/").partition("@")
    name = reference.partition("/")[0] if uri.startswith("models:/") else ""
    client = mlflow.MlflowClient()
    try:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'")) if name else []
        aliases = client.get_registered_model(name).aliases if versions else {}
    except MlflowException:
        versions = []
    if not versions:
        return "train one with `churn train`, or pass --model-uri"
    named = {v: sorted(a for a, w in aliases.items() if str(w) == str(v)) for v in versions}
    listed = ", ".join(f"{v}" + "".join(f" @{a}" for a in named[v]) for v in versions[-5:])
    them = "version" if len(versions) == 1 else "versions"
    hint = f"model '{name}' has {them} {listed}: pass --model-uri models:/{name}/{versions[-1]} to score with one"
    if alias == CHAMPION and CHAMPION not in aliases:
        with suppress(MlflowException):
            if why := client.get_model_version(name, str(versions[-1])).tags.get(TAG_REASON):
                hint = f"{hint} (training said: {why})"
    if at:
        hint += (
            f", or make one @{alias} (`churn train --promote` trains and promotes a new one; MLflow's "
            "set_registered_model_alias moves an alias to an existing version)"
        )
    return hint


def _registry_version(uri: str) -> ModelVersion | None:
    if not uri.startswith("models:/"):
        return None
    reference = uri.removeprefix("models:/")
    client = mlflow.MlflowClient()
    if "@" in reference:
        name, alias = reference.split("@", 1)
        return client.get_model_version_by_alias(name, alias)
    name, _, version = reference.partition("/")
    if version.lower() == "latest":  # MLflow's `models:/NAME/latest`: the version its stores resolve `@latest` to
        return client.get_model_version_by_alias(name, "latest")
    return client.get_model_version(name, version) if version.isdigit() else None


# ---------------------------------------------------------------------- prepared-table models
TABLE_MODEL_SUFFIX = "-table"
SOURCE_TAG = "source"  # the training run's tag naming what it trained on ("prepared table X.csv", "data folder book")
PREPARED_TABLE = "prepared table"
FEATURE_TABLE = "feature table"
DATA_FOLDER = "data folder"


def table_model_name(settings: Settings) -> str:
    """The name `churn train --table` registers under and `churn score --table` loads: `model.name` with
    `-table` when it is the default, so that a prepared table's model never becomes the champion that
    `churn score --data` loads (nor the reverse); a name the user set is theirs to share or not."""
    name = settings.model.name
    return name + TABLE_MODEL_SUFFIX if name == ModelSettings.model_fields["name"].default else name


def table_champion_uri(settings: Settings) -> tuple[str, str | None]:
    """The model `churn score --table` loads by default, and a note when it is not the table name's.

    In a store where prepared-table models were registered under the default name (before they had one of
    their own) and none is under the new name yet, that name's champion is used when a prepared table
    trained it; otherwise a missing model names both the table name and how to train one.
    """
    name = table_model_name(settings)
    uri = champion_uri(name)
    open_model_store(uri, settings)
    if name == settings.model.name or current_champion(name) is not None:
        return uri, None
    shared = current_champion(settings.model.name)
    source = ""
    if shared is not None:
        with suppress(MlflowException):  # its training run was deleted: what it trained on is unknown
            source = shared.tags.get(TAG_TRAINED_ON) or mlflow.MlflowClient().get_run(shared.run_id).data.tags.get(
                SOURCE_TAG, ""
            )
    if source.startswith(PREPARED_TABLE):
        legacy = champion_uri(settings.model.name)
        return legacy, (
            f"no model is registered as {name}, the name prepared-table models get now: using {legacy} "
            f"(version {shared.version}, trained on a {source}); the next `churn train --table` registers as {name}"
        )
    raise ChurnError(
        f"No model is registered as {uri}: prepared tables are scored with a model `churn train --table` "
        f"trained (registered as {name}; models trained on a data folder are {settings.model.name}); train one, "
        "or pass --model-uri."
    )


# --------------------------------------------------------------------------------- promotion
class NoFairComparison(Exception):
    """The champion and the challenger share no validation rows that both saw out of sample."""


@dataclass(frozen=True)
class OutOfSample:
    """Labelled rows scored by models that did not train on them, with each row's account."""

    labels: np.ndarray
    scores: np.ndarray
    accounts: pd.Series

    @cached_property  # 400 resamples of every labelled row: said in the reason and judged, computed once
    def auc_lower_bound(self) -> float:
        """The one-sided `FIRST_CHAMPION_LEVEL` lower bound of the ROC AUC (bootstrap over accounts)."""
        from models.comparison import auc_lower_bound  # the comparison code, only when a first model is judged

        return auc_lower_bound(self.labels, self.scores, self.accounts, level=FIRST_CHAMPION_LEVEL)

    def describe(self) -> str:
        """'ROC AUC 0.672 over 3,065 rows of 426 accounts (189 churned), lower bound 0.595 at 95 %'."""
        auc = float(roc_auc_score(self.labels, self.scores))
        accounts = counted(self.accounts.nunique(), "account")
        return (
            f"ROC AUC {auc:.3f} over {counted(len(self.labels), 'row')} of {accounts}"
            f" ({int(self.labels.sum()):,} churned), lower bound {self.auc_lower_bound:.3f} at "
            f"{FIRST_CHAMPION_LEVEL:.0%} by a bootstrap over the accounts"
        )


@dataclass(frozen=True)
class ValidationEvidence:
    """The challenger's validation rows and its scores on them.

    `scores` rank (the pre-refit booster's log-odds). `as_of` and `label_known` (the date each
    row's outcome became observable) tell which rows an earlier model could have trained on;
    both are None for prepared tables without a time column. `cross_fitted`: every labelled row
    scored out of fold by models trained like the deployed one (its calibration's scores), the
    evidence a first champion's ranking is judged on (`_first_champion`).
    """

    X: pd.DataFrame
    labels: np.ndarray
    scores: np.ndarray
    rows_hash: str
    cross_fitted: OutOfSample
    as_of: pd.Series | None = None
    label_known: pd.Series | None = None

    @property
    def roc_auc(self) -> float:
        return float(roc_auc_score(self.labels, self.scores))


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str
    challenger_auc: float
    champion_version: str | None = None
    champion_auc: float | None = None
    compared_rows: int = 0
    at_chance: bool = False  # judged by `_chance_test` (when it mattered) and not credibly better than chance


def current_champion(name: str) -> ModelVersion | None:
    try:
        return mlflow.MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def version_tags(
    evidence: ValidationEvidence, labelled_as_of: pd.Series | None, labelled_known: pd.Series | None
) -> dict[str, str]:
    """What a later promotion gate needs to know about this model: its validation and its data."""
    tags = {TAG_VALID_HASH: evidence.rows_hash, TAG_VALID_AUC: repr(evidence.roc_auc)}
    if labelled_as_of is not None and labelled_known is not None:
        tags[TAG_LAST_AS_OF] = pd.Timestamp(labelled_as_of.max()).isoformat()
        tags[TAG_LABEL_HORIZON] = pd.Timestamp(labelled_known.max()).isoformat()
    return tags


def _unseen_by(champion: ModelVersion, evidence: ValidationEvidence) -> np.ndarray:
    """Validation rows the champion cannot have trained on: snapshots or outcomes after its data."""
    last_as_of, horizon = champion.tags.get(TAG_LAST_AS_OF), champion.tags.get(TAG_LABEL_HORIZON)
    if evidence.as_of is None or evidence.label_known is None or not last_as_of or not horizon:
        raise NoFairComparison("the champion was validated on other rows and its training period is unknown")
    later_snapshot = pd.to_datetime(evidence.as_of).to_numpy() > np.datetime64(pd.Timestamp(last_as_of))
    known_later = pd.to_datetime(evidence.label_known).to_numpy() > np.datetime64(pd.Timestamp(horizon))
    return later_snapshot | known_later


def _compare(champion: ModelVersion, evidence: ValidationEvidence, model_name: str) -> tuple[float, float, int, str]:
    """(challenger AUC, champion AUC, rows compared, on which rows) on rows fair to both models."""
    if champion.tags.get(TAG_VALID_HASH) == evidence.rows_hash:
        recorded = float(champion.tags[TAG_VALID_AUC])
        return evidence.roc_auc, recorded, len(evidence.labels), "on the same validation rows, out of sample for both"
    unseen = _unseen_by(champion, evidence)
    labels = evidence.labels[unseen]
    if labels.min(initial=1) == 1 or labels.max(initial=0) == 0:
        raise NoFairComparison(
            f"only {int(unseen.sum())} validation rows were labelled after the champion's data ended, "
            "too few to hold both churned and renewed accounts"
        )
    try:
        champion_model = load_model(f"models:/{model_name}/{champion.version}")
        champion_scores = champion_model.predict_raw(evidence.X.loc[unseen])
    except ChurnError as exc:
        raise NoFairComparison(f"the champion cannot score this table: {exc}") from exc
    return (
        float(roc_auc_score(labels, evidence.scores[unseen])),
        float(roc_auc_score(labels, champion_scores)),
        int(unseen.sum()),
        "on the validation rows labelled after the champion's data ended",
    )


def promote_if_better(
    settings: Settings, version: ModelVersion, evidence: ValidationEvidence, *, promote: bool = False
) -> PromotionDecision:
    """Move `champion` to `version` when it beats the champion's ROC AUC on fair rows and its ranking is credibly
    better than chance (`_chance_test`), or when forced."""
    name = settings.model.name
    champion = current_champion(name)
    challenger_auc = evidence.roc_auc
    if champion is None:
        decision = _first_champion(version, evidence, promote)
    elif promote:
        learned, measured = _chance_test(evidence)
        although = "" if learned else f" although its ranking is not credibly better than chance ({measured})"
        decision = PromotionDecision(
            True,
            f"promoted on request (--promote), replacing champion v{champion.version}{although}",
            challenger_auc,
            str(champion.version),
            at_chance=not learned,
        )
    else:
        try:
            challenger_auc, champion_auc, compared, how = _compare(champion, evidence, name)
        except NoFairComparison as exc:
            reason = (
                f"kept champion v{champion.version}: no fair comparison possible ({exc}); use --promote to override"
            )
            learned, measured = _chance_test(evidence)
            reason += "" if learned else _no_better_than_a_coin(measured)
            decision = PromotionDecision(False, reason, challenger_auc, str(champion.version), at_chance=not learned)
            return _record(settings, version, decision)
        gain = challenger_auc - champion_auc
        beats = gain > settings.model.promotion_min_gain
        verdict = "beats" if beats else "does not beat"
        reason = (
            f"v{version.version} {verdict} champion v{champion.version}: ROC AUC {challenger_auc:.4f} vs "
            f"{champion_auc:.4f} ({signed(gain, '.4f')}, needed > {signed(settings.model.promotion_min_gain, '.4f')}) "
            f"{how} ({counted(compared, 'row')})"
        )
        # a champion that ranks at chance (forced with --promote) is beaten by any other coin; one that loses is
        # still scored by `churn run`, and its user is told that it ranks no better than a coin either way
        learned, measured = _chance_test(evidence)
        if not learned and beats:
            reason += (
                f"; but it is not made champion: its ranking is not credibly better than chance ({measured}; "
                f"{_CHANCE_RULE}), so it stays @challenger. {_CHANCE_ADVICE}"
            )
        elif not learned:
            reason += _no_better_than_a_coin(measured)
        decision = PromotionDecision(
            beats and learned,
            reason,
            challenger_auc,
            str(champion.version),
            champion_auc,
            compared,
            at_chance=not learned,
        )
    return _record(settings, version, decision)


_CHANCE_RULE = f"a champion needs both above {CHANCE_AUC}, the cross-fitted one by its lower bound"
_CHANCE_ADVICE = (
    "Train on more history or on data that carries churn signal, or pass --promote to make it champion anyway"
)


def _no_better_than_a_coin(measured: str) -> str:
    """What a challenger kept as @challenger is told when it ranks at chance too: `churn run` scores with it."""
    return (
        f"; and its ranking is not credibly better than chance ({measured}): its probabilities tell accounts apart "
        "no better than a coin"
    )


def _chance_test(evidence: ValidationEvidence) -> tuple[bool, str]:
    """(whether the ranking is credibly better than chance, the figures that say so) -- the test every champion
    passes (unless forced): a model that learned nothing would otherwise be served, its near-flat probabilities
    read as risk by every scoring run after it. Judged on the cross-fitted scores of every labelled row (the
    validation rows alone, a few dozen churners on a small book, leave a model with signal inside the noise)
    and, so that a ranking which did not hold on the later period is not served, on the validation AUC being
    above chance too."""
    auc = evidence.roc_auc
    sample = evidence.cross_fitted
    measured = f"cross-fitted {sample.describe()}; held-out validation ROC AUC {auc:.3f}"
    return sample.auc_lower_bound > CHANCE_AUC and auc > CHANCE_AUC, measured


def _first_champion(version: ModelVersion, evidence: ValidationEvidence, promote: bool) -> PromotionDecision:
    """With no champion, `version` becomes it when it passes `_chance_test` (or when forced)."""
    auc = evidence.roc_auc
    learned, measured = _chance_test(evidence)
    if learned:
        return PromotionDecision(
            True, f"no champion yet; v{version.version} becomes champion, it ranks better than chance ({measured})", auc
        )
    if promote:
        return PromotionDecision(
            True,
            f"no champion yet; v{version.version} becomes champion on request (--promote) although its ranking is "
            f"not credibly better than chance ({measured})",
            auc,
            at_chance=True,
        )
    return PromotionDecision(
        False,
        f"no champion yet, and v{version.version} is not made champion: its ranking is not credibly better than "
        f"chance ({measured}; {_CHANCE_RULE}), so its probabilities would tell accounts apart no better than a "
        f"coin. {_CHANCE_ADVICE}",
        auc,
        at_chance=True,
    )


def _record(settings: Settings, version: ModelVersion, decision: PromotionDecision) -> PromotionDecision:
    client = mlflow.MlflowClient()
    client.set_model_version_tag(settings.model.name, version.version, TAG_REASON, decision.reason)
    if decision.promoted:
        client.set_registered_model_alias(settings.model.name, CHAMPION, version.version)
    return decision


def tag_run(run_id: str, tags: dict[str, str]) -> None:
    """Add tags to a (finished) run of the configured store, e.g. the data end training used."""
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


# ------------------------------------------------------------------------------- scoring runs
COMMIT_TAG = "churn.commit"
COMMIT_STATE_TAG = "churn.commit_state"


def log_scoring_run(
    settings: Settings,
    scores: pd.DataFrame,
    alerts: pd.DataFrame,
    drift: pd.DataFrame,
    *,
    commit_id: str | None = None,
    data_end: pd.Timestamp | None = None,
    notes: Sequence[str] = (),
    model_uri: str | None = None,
    model_name: str | None = None,
    source: str | None = None,
) -> str:
    """Log a batch scoring run (book summary, drift per feature, alerts, notes) next to the training runs.

    `model_uri` and `model_name` are the model the run scored with (`--model-uri` may name another than
    `model.name`); without them, `model.name`'s champion. `source` (the data folder scored) and the scorecard
    the scores carry are parameters too: a run's band shares move with an edited scorecard or another export.

    With `commit_id` the run is left RUNNING and tagged as staged: the scoring commit finishes it
    (`finish_scoring_run`) once everything is in place, or deletes it (`discard_scoring_run`).
    """
    experiment_id = configure_tracking(settings)
    as_of = str(pd.Timestamp(scores["as_of"].iloc[0]).date())
    version = str(scores["model_version"].iloc[0])
    # the book's metrics are the accounts still under contract, as the console says; churned ones are counted apart
    gone = churned_mask(scores)
    book = scores[~gone]
    bands = book["health_band"].value_counts(normalize=True) if "health_band" in book else pd.Series(dtype=float)
    tags = {"kind": "scoring", "model_version": version}
    if commit_id is not None:
        tags |= {COMMIT_TAG: commit_id, COMMIT_STATE_TAG: "staged"}
    params = {
        "as_of": as_of,
        "model_version": version,
        "model_name": model_name or settings.model.name,
        "model_uri": model_uri or champion_uri(settings.model.name),
    }
    if data_end is not None:
        params["data_end"] = pd.Timestamp(data_end).isoformat()
    if source is not None:
        params["data"] = source
    if {SCORECARD_NAME, SCORECARD_HASH} <= set(scores.columns):
        cards = (scores[SCORECARD_NAME].astype(str) + "@" + scores[SCORECARD_HASH].astype(str)).unique()
        params["scorecard"] = ", ".join(sorted(cards))
    metrics = {
        "accounts": float(len(book)),
        "churned_accounts": float(gone.sum()),
        "alerts": float(len(alerts)),
        "mean_churn_probability": float(book["churn_probability"].mean()),
        **{f"share_{band}": float(share) for band, share in bands.items()},
    }
    if (at_risk := arr_at_risk(scores)[0]) is not None:  # no metric where no account has an ARR
        metrics["arr_at_risk"] = at_risk
    if not drift.empty:
        metrics |= {"psi_max": float(drift["psi"].max()), "drifted_features": float(drift["drifted"].sum())}
        metrics |= {f"psi.{name}": float(psi) for name, psi in zip(drift["feature"], drift["psi"], strict=True)}
    client = mlflow.MlflowClient()
    try:
        run_id = client.create_run(experiment_id, run_name=f"score {as_of}", tags=tags).info.run_id
        now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
        values = [Metric(key, value, now, 0) for key, value in metrics.items() if np.isfinite(value)]
        client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        for start in range(0, len(values), 1000):
            client.log_batch(run_id, metrics=values[start : start + 1000])
        if not drift.empty:
            client.log_text(run_id, drift.to_csv(index=False), "drift.csv")
        client.log_text(run_id, alerts.to_csv(index=False), "alerts.csv")
        if notes:
            client.log_text(run_id, "\n".join(notes), NOTES_ARTIFACT)
        if commit_id is None:
            client.set_terminated(run_id)
    except MlflowException as exc:
        raise ChurnError(
            f"Could not log the scoring run to MLflow at {settings.tracking_uri()}: {innermost_cause(exc)}"
        ) from exc
    return run_id


def innermost_cause(exc: BaseException) -> str:
    """The first line of the deepest exception an error wraps: MLflow passes on a database's own words
    ("attempt to write a readonly database") inside SQLAlchemy's, with the whole SQL statement and its values."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _commit_runs(client: mlflow.MlflowClient, experiment_id: str, commit_id: str) -> list[Any]:
    from mlflow.entities import ViewType

    return client.search_runs(
        [experiment_id], filter_string=f"tags.`{COMMIT_TAG}` = '{commit_id}'", run_view_type=ViewType.ACTIVE_ONLY
    )


def finish_scoring_run(tracking_uri: str, experiment_id: str, commit_id: str) -> None:
    """Mark the staged scoring run of a commit as committed and FINISHED (idempotent)."""
    try:
        client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        for run in _commit_runs(client, experiment_id, commit_id):
            client.set_tag(run.info.run_id, COMMIT_STATE_TAG, "committed")
            if run.info.status != "FINISHED":
                client.set_terminated(run.info.run_id, "FINISHED")
    except MlflowException as exc:
        raise ChurnError(
            f"The scoring run was committed but MLflow at {tracking_uri} could not be updated ({exc.message}); "
            "the next `churn score` finishes it."
        ) from exc


def discard_scoring_run(tracking_uri: str, experiment_id: str, commit_id: str) -> None:
    """Delete the staged scoring run of a commit that is rolled back (idempotent)."""
    try:
        client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        for run in _commit_runs(client, experiment_id, commit_id):
            client.set_terminated(run.info.run_id, "FAILED")
            client.delete_run(run.info.run_id)
    except MlflowException as exc:
        raise ChurnError(
            f"An unfinished scoring run could not be removed from MLflow at {tracking_uri} ({exc.message}); "
            "the next `churn score` tries again."
        ) from exc


@contextmanager
def compare_run(settings: Settings) -> Iterator[None]:
    """The MLflow run of `churn compare`: what `log_comparison` logs goes into it."""
    configure_tracking(settings)
    with mlflow.start_run(run_name="compare", tags={"kind": "compare"}):
        yield


def log_comparison(result: ComparisonResult) -> None:
    """Into the active MLflow run: the comparison's headline figures as metrics, its written files
    under `compare/`, and how the scorecard was adapted to the data (`data/notes.txt`)."""
    headline = result.headline()
    numbers = {
        f"compare_{key}": float(value)
        for key, value in headline.items()
        if isinstance(value, int | float) and math.isfinite(value)
    }
    numbers.update(
        {f"compare_rule_churn_rate_{band}": rate for band, rate in headline["rule_churn_rate_by_band"].items()}
    )
    mlflow.log_metrics(numbers)
    for path in result.files.values():
        mlflow.log_artifact(str(path), artifact_path="compare")
    if result.scorecard_notes:
        mlflow.log_text("\n".join(result.scorecard_notes), NOTES_ARTIFACT)
