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

The same REST helper tells every command that uses a tracking server, before it reads any data, when
nothing answers at the server's address (`check_tracking_server`). And once loaded, the model says what it
was trained on (`TrainedOn`, kept in its own files): a run names its model and warns when most of the
accounts it scores were not in that model's training data (`model_provenance`).
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import importlib
import json
import logging
import os
import sqlite3
import threading
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from features.errors import ChurnError, counted
from features.feature_set import FeatureSet
from pipeline.config import redact_url
from pipeline.io import temporary_sibling
from pipeline.leftovers import creating
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


CHAMPION = "champion"
"""The alias of the model batch scoring loads unless told otherwise (SPEC: `models:/<name>@champion`)."""


def champion_uri(name: str) -> str:
    """The URI of model `name`'s champion: the one spelling every command loads and logs by default."""
    return f"models:/{name}@{CHAMPION}"


LATEST = "latest"
"""The alias MLflow reserves (any case) for a model's highest version not deleted; the stores resolve it."""
SERVER_TIMEOUT_S = 2.0
"""How long the server probe waits for each answer: a slower server only costs the overlap."""
SILENT_AFTER_S = 10.0
"""How long the reachability check waits for a tracking server's answer (an `mlflow server` answers in
milliseconds) before it takes the server for hung, unless MLFLOW_HTTP_REQUEST_TIMEOUT says otherwise: MLflow's
own client waits 120 s per request and retries 7 times, so a batch run hung for many minutes before."""
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
    """Nothing answers at the tracking server's address: the connection was refused, the host name does
    not resolve, or the URL names no address. MLflow's HTTP retries (~4 minutes) cannot change that,
    unlike an error status."""


class ServerSilent(OSError):
    """No answer came in time: the connection was not accepted (a firewall dropping the packets) or the
    server accepted it and said nothing (hung)."""


def _ask_server(
    tracking_uri: str, path: str = "", query: dict[str, str] | None = None, timeout: float = SERVER_TIMEOUT_S
) -> tuple[int, bytes]:
    """(HTTP status, body) of a GET of `path` under an `mlflow server`'s URI, with the token or user and
    password MLflow would send from the environment (proxies as the environment sets them).

    Raises `ServerAbsent` when nothing answers at the address, `ServerSilent` when no answer came within
    `timeout` seconds, another `OSError` when the answer did not come otherwise (reset, TLS refused).
    """
    import errno
    import http.client
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
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:  # an answer, with an error status
        return exc.code, exc.read()
    except TimeoutError as exc:  # accepted, then no answer
        raise ServerSilent(str(exc)) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):  # the connection itself was not accepted in time
            raise ServerSilent(str(reason)) from exc
        if isinstance(reason, ConnectionRefusedError):
            raise ServerAbsent("the connection was refused (nothing listens at that host and port)") from exc
        if isinstance(reason, socket.gaierror) and reason.errno != socket.EAI_AGAIN:  # EAI_AGAIN may pass
            host = urllib.parse.urlsplit(tracking_uri).hostname
            raise ServerAbsent(f"the host name '{host}' does not resolve ({reason.strerror})") from exc
        if isinstance(reason, OSError) and reason.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            raise ServerAbsent(f"the host is not reachable ({reason.strerror})") from exc
        raise
    except http.client.InvalidURL as exc:  # a port that is not a number
        raise ServerAbsent(f"it is not a valid URL ({exc})") from exc
    except http.client.HTTPException as exc:  # an answer that is not HTTP
        raise OSError(f"{type(exc).__name__}: {exc}") from exc


def _env_number(name: str, minimum: float) -> float | None:
    """The number an MLflow client setting of the environment holds, None when the user did not set it (unset,
    or churn's own default: `set_by_user`)."""
    from pipeline.runtime import set_by_user

    text = os.environ.get(name, "").strip()
    if not text or not set_by_user(name):
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not minimum <= value < float("inf"):
        raise ChurnError(f"The environment variable {name} must be a number, at least {minimum:g}; got '{text}'.")
    return value


def _patience() -> tuple[float, int, str]:
    """(seconds per attempt, attempts, who chose the seconds) of the reachability check: MLflow's
    MLFLOW_HTTP_REQUEST_TIMEOUT and 1 + MLFLOW_HTTP_REQUEST_MAX_RETRIES when the user set them (how long
    they accept to wait for the server), else `SILENT_AFTER_S` and one attempt."""
    timeout = _env_number("MLFLOW_HTTP_REQUEST_TIMEOUT", 1)
    retries = _env_number("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 0) or 0
    chosen = "churn's default" if timeout is None else "set in the environment"
    return timeout or SILENT_AFTER_S, 1 + int(retries), chosen


def server_absent(tracking_uri: str) -> str | None:
    """Why nothing answers at a tracking server's address (connection refused, a host name that does not
    resolve, no answer within `_patience`: hung, or a firewall dropping the packets), or None: not a server
    URI, or it answered, even with an error status or slowly: that is left to MLflow, whose retries ride out
    a transient failure but take ~4 minutes to give up on an address where nothing listens, and many more
    on one that never answers."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    timeout, attempts, chosen = _patience()
    for _ in range(attempts):
        try:
            _ask_server(tracking_uri, timeout=timeout)
        except ServerAbsent as exc:
            return str(exc)
        except ServerSilent:
            continue
        except OSError:
            return None
        return None
    tries = f"{attempts} attempts of {timeout:g} s" if attempts > 1 else f"{timeout:g} s"
    return (
        f"it did not answer within {tries} (a hung or overloaded server, or a firewall that drops the packets); "
        f"if it is only slow, set MLFLOW_HTTP_REQUEST_TIMEOUT to more seconds (now {timeout:g}, {chosen})"
    )


def stopped_answering(exc: BaseException, tracking_uri: str) -> str | None:
    """The message for an MLflow request that timed out after its retries (a server that answered at the start
    of the command, then hung), or None for any other error: what happened and what to change if the server is
    only slow."""
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException) or "timed out" not in exc.message.lower():
        return None
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT

    timeout, retries = MLFLOW_HTTP_REQUEST_TIMEOUT.get(), MLFLOW_HTTP_REQUEST_MAX_RETRIES.get()
    chosen = "set in the environment" if _env_number("MLFLOW_HTTP_REQUEST_TIMEOUT", 1) else "churn's default"
    return (
        f"MLflow tracking server {redact_url(tracking_uri)} stopped answering during the command: a request got no "
        f"answer in {counted(1 + retries, 'attempt')} of {timeout:g} s (a hung or overloaded server). Restart the "
        f"server and run the command again; if it is only slow, set MLFLOW_HTTP_REQUEST_TIMEOUT to more seconds (now "
        f"{timeout:g}, {chosen})."
    )


def check_tracking_server(settings: Settings) -> None:
    """Stop a command that will use a tracking server at once, before any data is read, when nothing
    answers at its address (`server_absent`), or when the URI is a folder (`./mlruns`) and MLflow refuses its
    file store (this MLflow does unless MLFLOW_ALLOW_FILE_STORE is set): found after the data was read before."""
    from urllib.parse import urlsplit

    uri = settings.tracking_uri()
    where = (
        "tracking.uri in the configuration" if settings.tracking.uri else "the environment variable MLFLOW_TRACKING_URI"
    )
    if (reason := server_absent(uri)) is not None:
        raise ChurnError(
            f"MLflow tracking server {redact_url(uri)} (set by {where}) cannot be reached: {reason}. Start (or "
            f"restart) the server or correct the URI; no data was read, nothing was written."
        )
    if urlsplit(uri).scheme in ("", "file"):
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        except MlflowException as exc:
            raise ChurnError(
                f"MLflow tracking store {uri} (set by {where}) is not usable: {exc.message} Or set it to a database, "
                "e.g. sqlite:///<folder>/mlflow.db (the default, in the working folder); no data was read, nothing "
                "was written."
            ) from exc


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
            creating(cache).mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(feature_set.to_dict(), indent=1))
            os.replace(temporary, creating(path))
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
        # in the command's context: what it writes is noted as the command's (`leftovers.removed_if_failed`)
        load = contextvars.copy_context().run
        self._thread = threading.Thread(target=load, args=(self._load,), name="churn-model-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            from pipeline.tracking import TAG_MODEL_SHA256, load_model, open_model_store

            with self._lock:  # MLflow's store is process-wide: a run that failed must not have it moved
                if self._abandoned:
                    return
                open_model_store(self.uri, self._settings)
            model = load_model(self.uri)  # from the store configured above
            importlib.import_module("pipeline.score")  # the scoring code, while the main thread still works
            digest = model.metadata_.get(TAG_MODEL_SHA256)
            with self._lock:  # a failed run removes what it wrote: nothing may be written after it
                if digest and not self._abandoned:
                    keep_feature_set(self._cache, digest, model.feature_set_)
            self._model = model
        except Exception as exc:  # raised on the main thread by model()
            self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """The run failed: a load still going on stops before it points MLflow at this run's store (a
        later run in the same process may be using MLflow by then), and writes no feature set in the workdir
        (the failed run removes what it wrote, `leftovers.removed_if_failed`)."""
        with self._lock:
            self._abandoned = True

    def model(self) -> ChurnRiskModel:
        """The loaded model (waiting for the thread), or the load's error."""
        if self._thread is not None:
            self._thread.join()
        self._raise()
        assert self._model is not None
        return self._model


# ----------------------------------------------------------------- what a model was trained on
TRAINED_ON = "trained_on"
"""The key of `model.metadata_` (saved in the model's own files, so covered by their SHA-256) that says
what data the model was trained on (`TrainedOn`)."""
SKETCH_SIZE = 2048
"""Salted account hashes a model keeps (16 KB): the smallest ones, a uniform sample of its accounts that a
scored book is sampled alike against (the same salt, the same range), so the share of scored accounts the
training saw is estimated within a few points whatever the sizes."""
MIN_SAMPLE = 30
"""Scored accounts in the sketch's range below which the share is too uncertain to warn about."""
MIN_SEEN_SHARE = 0.5
"""The share of scored accounts the model's training data had below which scoring warns. A model scoring
the book it was trained on misses only the accounts that landed since: a book growing 30 % a year while
losing 15 % still had ~65 % of its accounts a year later (the warning would take about two years without
retraining); a model trained on another data source has almost none of them."""
ID_AND_LANDED = "account_id+created_at"
ID_ONLY = "account_id"


def account_keys(ids: pd.Series, created_at: pd.Series | None = None) -> pd.DataFrame:
    """What identifies an account across exports of one data source: its id and, when known, the day it
    landed (two sources that number accounts alike, A001, A002..., share ids, not landing days)."""
    keys = {"id": ids.astype(str).to_numpy(dtype=object)}  # ids arrive trimmed (`trim_ids`)
    if created_at is not None:
        landed = (
            pd.to_datetime(created_at, errors="coerce", utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[D]")
        )
        keys["landed"] = landed.astype("int64")  # days since 1970, whatever the unit the loader used
    return pd.DataFrame(keys)


def _hashes(keys: pd.DataFrame, salt: str) -> np.ndarray:
    """The keys' salted 64-bit hashes (pandas' SipHash per column, combined), not deduplicated."""
    return pd.util.hash_pandas_object(keys, index=False, hash_key=salt, categorize=False).to_numpy()


def _check_hash(key: str, salt: str) -> int:
    """The hash of a fixed account in `key`'s layout: a model keeps it, so that accounts hashed otherwise
    since it was trained (another pandas) are not taken for a book of other accounts."""
    landed = pd.Series([pd.Timestamp("2000-01-01")]) if key == ID_AND_LANDED else None
    return int(_hashes(account_keys(pd.Series(["churn account sketch"]), landed), salt)[0])


@dataclass(frozen=True)
class TrainedOn:
    """What a model was trained on: the data source, when, how many accounts, and a sketch of them (the
    smallest `SKETCH_SIZE` of their salted 64-bit hashes: no id can be read back), by which scoring tells how
    many of the accounts it scores the training data had."""

    source: str
    key: str
    accounts: int
    trained_at: str
    salt: str
    hashes: np.ndarray
    check: int
    period: str | None = None

    @classmethod
    def of(cls, keys: pd.DataFrame, *, source: str, key: str, seed: int, period: str | None = None) -> TrainedOn:
        """The record of a model trained with `seed` on the accounts `keys` of `source`. The salt is drawn from
        them (the same training gives the same record, as the seed gives the same trees); it is kept with the
        sketch, so it hides nothing from whoever holds the model, and no id can be read back either way."""
        digest = hashlib.sha256(f"{seed}:{source}:".encode())
        digest.update(np.sort(pd.util.hash_pandas_object(keys, index=False, categorize=False).to_numpy()).tobytes())
        salt = digest.hexdigest()[:16]  # 16 characters, the key pandas' SipHash takes
        hashes = pd.unique(_hashes(keys, salt))
        smallest = np.sort(np.partition(hashes, SKETCH_SIZE)[:SKETCH_SIZE] if len(hashes) > SKETCH_SIZE else hashes)
        trained_at = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
        return cls(source, key, len(hashes), trained_at, salt, smallest, _check_hash(key, salt), period)

    def to_dict(self) -> dict[str, Any]:
        fields = {k: getattr(self, k) for k in ("source", "key", "accounts", "trained_at", "salt", "period")}
        hashes = base64.b64encode(self.hashes.astype("<u8").tobytes()).decode()
        return fields | {"hashes": hashes, "check": str(self.check)}

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> TrainedOn | None:
        """The record of a model's metadata; None for a model trained before models kept one."""
        record = metadata.get(TRAINED_ON)
        try:
            hashes = np.frombuffer(base64.b64decode(record["hashes"]), dtype="<u8")
            return cls(
                str(record["source"]),
                str(record["key"]),
                int(record["accounts"]),
                str(record["trained_at"]),
                str(record["salt"]),
                hashes,
                int(record["check"]),
                record.get("period"),
            )
        except (TypeError, KeyError, ValueError):
            return None

    def seen(self, keys: pd.DataFrame) -> tuple[int, int] | None:
        """(seen, sampled): of the scored accounts whose hash lies in the sketch's range (all of them when
        the sketch holds every training account), how many the training data had; None when this process
        hashes accounts otherwise than the training did."""
        if _check_hash(self.key, self.salt) != self.check:
            return None
        scored = _hashes(keys, self.salt)
        if self.accounts > len(self.hashes):
            scored = scored[scored <= self.hashes[-1]]
        scored = np.unique(scored)
        return int(np.isin(scored, self.hashes).sum()), len(scored)

    def describe(self) -> str:
        period = f"; {self.period}" if self.period else ""
        return f"trained {self.trained_at} on {self.source} ({counted(self.accounts, 'account')}{period})"


def model_provenance(
    model: ChurnRiskModel, ids: pd.Series, accounts: pd.DataFrame | None = None
) -> tuple[str, str | None]:
    """A line naming the model a run uses (name, version, alias or URI, when and on what it was trained),
    and a warning when most of the accounts `ids` it scores were not in its training data.

    `accounts` (`account_id`, `created_at`) gives the landing days of a data folder's accounts, which a
    model trained on one compares too; a model trained on ids only compares ids. Without `accounts` (a
    prepared table) nothing is compared: today's customers are rarely the past ones whose outcomes made the
    training table, and the model's own columns have already proved the table's shape.
    """
    meta = model.metadata_
    uri = str(meta.get("model_uri", "?"))
    version = meta.get("model_version")
    name = meta.get("model_name")
    aliases = "".join(f" @{alias}" for alias in meta.get("aliases", ()))
    label = f"model {name} v{version}{aliases} ({uri})" if name and version else f"model {uri}"
    trained = TrainedOn.from_metadata(meta)
    if trained is None:
        registered = f", registered {meta['registered_at']}" if meta.get("registered_at") else ""
        return f"{label}{registered}; what it was trained on is not recorded (trained by an older churn)", None
    line = f"{label}, {trained.describe()}"
    if accounts is None:
        return line, None
    if trained.key == ID_AND_LANDED:
        import pyarrow as pa
        import pyarrow.compute as pc

        # Arrow's hash set: pandas' `isin` of one text column in another took ~4 s per million accounts
        wanted = pc.is_in(pa.array(accounts["account_id"].astype(str)), value_set=pa.array(ids.astype(str)))
        scored = accounts[wanted.to_numpy(zero_copy_only=False)]
        keys = account_keys(scored["account_id"], scored["created_at"])  # ids are unique in `accounts`
    else:
        keys = account_keys(ids)
    counted = trained.seen(keys)
    if counted is None:
        return f"{line}; its accounts cannot be compared with these (hashed otherwise when it was trained)", None
    seen, sampled = counted
    exhaustive = trained.accounts <= len(trained.hashes)
    if sampled == 0 or (not exhaustive and sampled < MIN_SAMPLE) or seen / sampled >= MIN_SEEN_SHARE:
        return line, None
    how = "" if exhaustive else f" (estimated from {sampled:,} of them)"
    return line, (
        f"{label} was trained on other data: only {seen / sampled:.0%} of the {len(keys):,} accounts scored "
        f"were in its training data{how}, {trained.describe()}; train a model on this data or pass --model-uri"
    )
