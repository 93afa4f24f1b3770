"""The model of a scoring run, loaded on a second thread while the data is read and the features are built.

Before `churn score` can load its model it imports MLflow (with its SQL stores), LightGBM and
scikit-learn: ~6 CPU s of single-threaded Python, most of a one-date run. The features need the
model's feature set, so with the model loaded first the imports could overlap the data load only.
Here the model is loaded on a daemon thread (`ChampionLoad`) and the main thread builds the features
with the feature set kept, in the workdir, under the SHA-256 the tracking store records for the
model's artifacts (`kept_feature_set`), when it has one: the model's own set, written by the training
that logged the model and by every run that loaded it. The store is asked for that digest cheaply
(`probe`, no MLflow: a read-only SQLite query, or one REST call to an `mlflow server`), which also
tells a missing model or alias early: the run then loads the model through MLflow at once, so its
error comes out, as MLflow words it, before any data is read.

Nothing here is trusted for the scores: once the model is loaded, a feature set that is not the
model's own (a kept file changed or written for another model, an alias moved between the probe and
the load) is thrown away with the features built from it, and the features are built again with
the model's set. Where the store cannot be asked cheaply (a file store, a run URI, a store in another
layout, a server that does not answer or wants client settings the probe does not reproduce) the run
waits for the model before the features, as before.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sqlite3
import threading
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from features.errors import ChurnError
from features.feature_set import FeatureSet
from pipeline.config import redact_url
from pipeline.io import temporary_sibling
from pipeline.summary_cache import prune

if TYPE_CHECKING:
    from models.risk_model import ChurnRiskModel
    from pipeline.config import Settings

log = logging.getLogger(__name__)

DIGEST_TAG = "model_sha256"
"""The model-version tag holding the SHA-256 of the model's artifacts (`tracking.TAG_MODEL_SHA256`:
that module imports MLflow, which is what this one avoids)."""


@dataclass(frozen=True)
class Probe:
    """What the tracking store says of a model URI without MLflow: `found` (with the recorded digest
    of its artifacts, when there is one), `missing` (no such model, version or alias) or `unknown`."""

    state: Literal["found", "missing", "unknown"]
    digest: str | None = None


UNKNOWN = Probe("unknown")


def probe(model_uri: str, tracking_uri: str) -> Probe:
    """Look `model_uri` (`models:/NAME@ALIAS`, `models:/NAME/VERSION`, `@latest` or `/latest`) up in a local
    SQLite store (a read-only query of MLflow's registry tables) or an `mlflow server` (one REST call).

    Any other store or URI, a schema or answer it does not recognise, a database it cannot read or a
    server it cannot reach gives `unknown`, never an error: the answer only decides what the run does
    first, MLflow's own lookup decides what is loaded.
    """
    if not model_uri.startswith("models:/"):
        return UNKNOWN
    name, at, alias = model_uri.removeprefix("models:/").partition("@")
    version = None
    if not at:
        name, _, version = name.partition("/")
        if version.lower() == LATEST:  # `models:/NAME/latest` is the version MLflow's `@latest` names
            at, alias, version = "@", LATEST, None
        elif not version.isdigit():
            return UNKNOWN
    if tracking_uri.startswith(("http://", "https://")):
        return _probe_server(tracking_uri, name, alias if at else None, version)
    if not tracking_uri.startswith("sqlite:///") or "?" in tracking_uri:
        return UNKNOWN
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    if not database.is_file():
        return Probe("missing")  # MLflow would create an empty store: it holds no model
    try:
        with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=1) as con:
            return _probe_registry(con, name, alias if at else None, version)
    except sqlite3.Error:
        return UNKNOWN


LATEST = "latest"
"""The alias MLflow reserves (any case) for a model's highest version not deleted; the stores resolve it."""
SERVER_TIMEOUT_S = 2.0
"""How long the server probe waits for each answer: a slower server only costs the overlap."""
MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
"""The server's error codes for no such model or version (404) and no such alias (400)."""
CUSTOM_CLIENT = (
    "MLFLOW_TRACKING_AUTH",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
)
"""Client settings MLflow honours that the probe does not reproduce: with any of them set, it does not ask."""


def _probe_server(tracking_uri: str, name: str, alias: str | None, version: str | None) -> Probe:
    """The model version from an `mlflow server`'s REST API (`GetModelVersionByAlias` / `GetModelVersion`),
    with the token or user and password MLflow would send from the environment."""
    if any(os.environ.get(key) for key in CUSTOM_CLIENT):
        return UNKNOWN
    if alias is not None:
        path, query = "registered-models/alias", {"name": name, "alias": alias}
    else:
        path, query = "model-versions/get", {"name": name, "version": version}
    try:
        status, body = _ask_server(tracking_uri, f"api/2.0/mlflow/{path}", query)
        answer = json.loads(body)
    except (OSError, ValueError):  # unreachable, timed out, not JSON
        return UNKNOWN
    if status != 200:
        code = answer.get("error_code") if isinstance(answer, dict) else None
        return Probe("missing") if status in (400, 404) and code in MISSING_CODES else UNKNOWN
    found = answer.get("model_version") if isinstance(answer, dict) else None
    if not isinstance(found, dict) or str(found.get("name")) != name:
        return UNKNOWN
    tags = [t.get("value") for t in found.get("tags", []) if isinstance(t, dict) and t.get("key") == DIGEST_TAG]
    return Probe("found", tags[0] if len(tags) == 1 and isinstance(tags[0], str) else None)


class ServerAbsent(OSError):
    """Nothing answers at the tracking server's address: the connection was refused, or the host name
    does not resolve. MLflow's HTTP retries (~4 minutes) cannot change that, unlike an error status."""


def _ask_server(tracking_uri: str, path: str = "", query: dict[str, str] | None = None) -> tuple[int, bytes]:
    """(HTTP status, body) of a GET of `path` under an `mlflow server`'s URI, with the token or user and
    password MLflow would send from the environment (proxies as the environment sets them).

    Raises `ServerAbsent` when nothing answers at the address, another `OSError` when the answer did not
    come (timed out, reset, TLS refused).
    """
    import base64
    import errno
    import socket
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"{tracking_uri.rstrip('/')}/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        request.add_header("Authorization", f"Bearer {token}")
    elif (user := os.environ.get("MLFLOW_TRACKING_USERNAME")) and (
        password := os.environ.get("MLFLOW_TRACKING_PASSWORD")
    ):
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=SERVER_TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:  # an answer, with an error status
        return exc.code, exc.read()
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            raise ServerAbsent("the connection was refused (nothing listens at that host and port)") from exc
        if isinstance(reason, socket.gaierror) and reason.errno != socket.EAI_AGAIN:  # EAI_AGAIN may pass
            host = urllib.parse.urlsplit(tracking_uri).hostname
            raise ServerAbsent(f"the host name '{host}' does not resolve ({reason.strerror})") from exc
        if isinstance(reason, OSError) and reason.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            raise ServerAbsent(f"the host is not reachable ({reason.strerror})") from exc
        raise


def check_tracking_server(settings: Settings) -> None:
    """Stop a command that will use a tracking server at once, before any data is read, when nothing
    answers at its address (connection refused, a host name that does not resolve).

    MLflow retries such a request for ~4 minutes before it fails; a server that answers, even with an
    error status, or does not answer within `SERVER_TIMEOUT_S` (slow, or busy) is left to MLflow and its
    retries, which ride out a transient failure.
    """
    uri = settings.tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return
    try:
        _ask_server(uri)
    except ServerAbsent as exc:
        where = (
            "tracking.uri in the configuration"
            if settings.tracking.uri
            else "the environment variable MLFLOW_TRACKING_URI"
        )
        raise ChurnError(
            f"MLflow tracking server {redact_url(uri)} (set by {where}) cannot be reached: {exc}. Start the server "
            f"or correct the URI; no data was read, nothing was written."
        ) from exc
    except OSError:  # slow, reset, TLS: MLflow's own client and retries decide
        pass


def _probe_registry(con: sqlite3.Connection, name: str, alias: str | None, version: str | None) -> Probe:
    if alias is not None and alias.lower() == LATEST:  # as MLflow's store resolves it (no alias row)
        rows = con.execute(
            "SELECT MAX(version) FROM model_versions WHERE name = ? AND current_stage != 'Deleted_Internal' "
            "GROUP BY workspace",
            (name,),
        ).fetchall()
    elif alias is not None:
        rows = con.execute(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", (name, alias)
        ).fetchall()
    else:
        rows = con.execute(
            "SELECT version FROM model_versions WHERE name = ? AND version = ? AND current_stage != 'Deleted_Internal'",
            (name, int(version)),
        ).fetchall()
    if not rows:
        return Probe("missing")
    if len(rows) > 1:  # the same name in several workspaces: MLflow decides which
        return UNKNOWN
    tags = con.execute(
        "SELECT value FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
        (name, rows[0][0], DIGEST_TAG),
    ).fetchall()
    return Probe("found", tags[0][0] if len(tags) == 1 else None)


def feature_set_cache(settings: Settings) -> Path:
    """Where the feature sets of the models used with this workdir are kept."""
    return settings.workdir_path / "cache" / "feature-sets"


def _feature_set_file(cache: Path, digest: str) -> Path | None:
    return cache / f"{digest}.json" if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) else None


def kept_feature_set(cache: Path, digest: str | None) -> FeatureSet | None:
    """The feature set kept for the model whose artifacts have SHA-256 `digest`, if any (a hint: checked
    against the loaded model before any score is computed)."""
    path = _feature_set_file(cache, digest) if digest else None
    if path is None:
        return None
    try:
        return _read_feature_set(path)
    except FileNotFoundError:
        return None
    except UNREADABLE as exc:
        log.warning("kept feature set %s is not readable (%s); the model's own is used", path, exc)
        return None


UNREADABLE = (OSError, ValueError, KeyError, TypeError)
"""What reading a damaged feature set file raises (`_read_feature_set`)."""


def _read_feature_set(path: Path) -> FeatureSet:
    return FeatureSet.from_dict(json.loads(path.read_text()))


def keep_feature_set(cache: Path, digest: str, feature_set: FeatureSet) -> None:
    """Keep the feature set of the model whose artifacts have SHA-256 `digest` for the next runs (written
    to a temporary name, then renamed; a workdir that cannot take it only costs them the overlap).
    The sets of models not loaded for `summary_cache.UNUSED_DAYS` are removed."""
    path = _feature_set_file(cache, digest)
    if path is None:
        return
    temporary, kept = temporary_sibling(path), None
    try:
        with suppress(*UNREADABLE):  # a damaged file is replaced (its warning given when it was read)
            kept = _read_feature_set(path)
        if kept != feature_set:
            cache.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(feature_set.to_dict(), indent=1))
            os.replace(temporary, path)
        prune(cache, [path])
    except OSError as exc:
        log.warning("could not keep the model's feature set in %s: %s", cache, exc)
    finally:
        with suppress(OSError):
            temporary.unlink()


class ChampionLoad:
    """The model of `model_uri` (`tracking.load_model`), loaded on a daemon thread from construction on,
    with the scoring code imported beside it; `model()` waits for it and raises what the load raised.

    `feature_set` is the kept feature set of the model the store names now (None: the features must
    wait for the model). When the store says the model or alias does not exist, the load runs at once
    on the calling thread, so that its error stops the run before any other work.
    """

    def __init__(self, model_uri: str, settings: Settings) -> None:
        self.uri = model_uri
        self._settings = settings
        self._cache = feature_set_cache(settings)
        found = probe(model_uri, settings.tracking_uri())
        self._model: ChurnRiskModel | None = None
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._abandoned = False
        self.feature_set: FeatureSet | None = None
        if found.state == "missing":
            self._load()  # MLflow's own error, before the data is read (or the model, if the probe was wrong)
            self._raise()
            return
        self.feature_set = kept_feature_set(self._cache, found.digest)
        self._thread = threading.Thread(target=self._load, name="churn-model-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            from pipeline.tracking import TAG_MODEL_SHA256, configure_tracking, load_model

            with self._lock:  # MLflow's store is process-wide: a run that failed must not have it moved
                if self._abandoned:
                    return
                configure_tracking(self._settings)
            model = load_model(self.uri)  # from the store configured above
            importlib.import_module("pipeline.score")  # the scoring code, while the main thread still works
            digest = model.metadata_.get(TAG_MODEL_SHA256)
            if digest:
                keep_feature_set(self._cache, digest, model.feature_set_)
            self._model = model
        except Exception as exc:  # raised on the main thread by model()
            self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """The run failed: a load still going on stops before it points MLflow at this run's store (a
        later run in the same process may be using MLflow by then)."""
        with self._lock:
            self._abandoned = True

    def model(self) -> ChurnRiskModel:
        """The loaded model (waiting for the thread), or the load's error."""
        if self._thread is not None:
            self._thread.join()
        self._raise()
        assert self._model is not None
        return self._model
