"""Process settings for the libraries churn drives, applied by its entry points, never on import.

Importing a churn module changes nothing in the process; the `churn` command (and the test suite,
and the benchmarks) call `configure_process` first, before MLflow or LightGBM load, since both
read these variables when they load. A value the user already set wins.
"""

from __future__ import annotations

import atexit
import gc
import os

PROCESS_DEFAULTS: dict[str, str] = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # no DNS lookups from a batch job; nothing may reach the internet
    "MLFLOW_LOGGING_LEVEL": "ERROR",  # its warnings are advice to MLflow's users, not churn's (`churn --verbose`)
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # batch logs, not terminals
    # A tracking server that hangs mid-run: MLflow waits 120 s per request and retries 7 times (over 15 minutes
    # per request); with these a request gives up after ~75 s (4 attempts of 15 s, 2 + 4 + 8 s of backoff between
    # them, which still ride out a server restarting for ~15 s).
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    # Idle OpenMP threads sleep instead of spinning: on shared or busy cores (batch hosts, CI)
    # spinning made small LightGBM fits ~10x slower.
    "OMP_WAIT_POLICY": "PASSIVE",
}


SET_BY_CHURN: dict[str, str] = {}
"""The defaults `configure_process` put in this process's environment (it held none of them), and their values."""


def configure_process() -> None:
    """Set the defaults above where the environment does not say otherwise."""
    for name, value in PROCESS_DEFAULTS.items():
        if name not in os.environ:
            os.environ[name] = value
            SET_BY_CHURN[name] = value


def set_by_user(name: str) -> bool:
    """Whether the environment's `name` is the user's, not a default `configure_process` put there: told by who
    set it, not by its value (a user who sets churn's own 15 s timeout means it)."""
    return name in os.environ and SET_BY_CHURN.get(name) != os.environ[name]


def skip_collection_at_exit() -> None:
    """At exit, once the atexit handlers registered after this call have run, freeze every object
    (`gc.freeze`) so that the interpreter's last garbage collections skip them.

    A `churn` process ends holding MLflow, SQLAlchemy, scikit-learn and pandas: collecting that heap's
    cycles while the interpreter shuts down took ~1.3 s of a ~10 s one-date `churn score`, for memory
    the operating system frees anyway. Every atexit handler still runs (files, logs and stores are
    closed by then); only finalizers of objects still in cycles at exit are skipped, which Python
    never promises to run. Registered once however often it is called (the tests run the CLI in-process).
    """
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
