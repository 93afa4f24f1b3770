"""Quality benchmark: does the default model hold up on data it was not developed on?

    python bench/quality.py [--quick] [--datasets NAME ...] [--record NAME] [--list]

For each dataset, the project's model -- whatever `churn train` produces with the default
configuration -- is set against logistic regression (the project's baseline pipeline),
scikit-learn `HistGradientBoostingClassifier()` defaults, LightGBM defaults and the rule score,
on the same rows, with bootstrap intervals: ROC AUC, PR AUC, ECE, mean predicted vs observed
churn, calibration per risk band, and the AUC of the true probabilities (oracle) where known.
Then the "Done when" checks of issue 10 are applied per dataset and printed PASS/FAIL.

Event histories are measured the way acceptance does: the generated history is cut at CUT
(12 months before the end of generation; data strictly before CUT), `churn train --data D
--promote` and `churn score --data D --as-of CUT` run through the real CLI in a fresh working
folder, and each scored account's probability is compared with the true outcome of its term
running at CUT (from the full generation's truth). The baselines train on the labelled rows of
the same snapshot feature table the model trained on and score the same CUT rows. A `<name>_late` dataset is a
late export of `<name>`'s history: its event rows before START + `LATE_MONTHS` are dropped, accounts and
subscriptions kept whole (the customers landed before the data starts). Public tables
run in prepared-table mode (`churn train --table` / `churn score --table`) on a seeded 70/30
split, the baselines on the same split.

Results go to bench/out/quality/results.json (every run) and, with `--record NAME`, to the block
NAME of the quality section of bench/RESULTS.md (e.g. `--record before`, `--record after`), after
each dataset, so subsets may run in parallel processes and a stopped run keeps what finished.
Where the truth is known, each row also says what it can and cannot explain: the bands' true mean
probability, the oracle's own ECE (the noise floor of ECE on those outcomes), the model's ECE
against the true probabilities, the oracle at CUT (our generator's worlds) and model vs oracle on
the accounts renewing within 90 days. Every band also says how far outcome noise alone moves its
observed rate (a band check of 0.05 on 100-300 accounts can fail for a perfectly calibrated model).
`--reanalyse --record NAME` recomputes these from the saved runs; `--reuse-runs` re-measures a
complete saved run without re-training (same model code only).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)  # bench/features.py would shadow the `features` package
sys.path.insert(0, str(ROOT))  # bench.worlds

from bench.worlds import foreign, history, public, third  # noqa: E402
from features.table import ACCOUNT_ID, LABEL, categorical_columns, feature_columns  # noqa: E402
from models.baselines import fit_logistic_baseline  # noqa: E402
from models.evaluation import expected_calibration_error  # noqa: E402
from pipeline.config import Settings  # noqa: E402

OUT = HERE / "out" / "quality"
RESULTS_MD = HERE / "RESULTS.md"
MODELS = ("model", "logistic", "hgb_defaults", "lightgbm_defaults", "rule")
BASELINES = ("logistic", "hgb_defaults", "lightgbm_defaults")
BANDS = Settings().scoring.risk_bands
GRACE_DAYS = Settings().data.grace_days
CUT_MONTHS = 12  # CUT lies this many months before the end of generation
MIN_BAND_ACCOUNTS = 50

# thresholds of issue 10's "Done when"
ORACLE_SHARE, RULE_MARGIN, BASELINE_SLACK = 0.90, 0.02, 0.005
MEAN_GAP, MAX_ECE, BAND_GAP, NO_SIGNAL_AUC = 0.03, 0.03, 0.05, 0.05
NEAR_RENEWAL_DAYS = 90  # horizon diagnostics: accounts whose renewal is this close to the scoring date


# ------------------------------------------------------------------------------------ datasets
@dataclass(frozen=True)
class EventDataset:
    """An event history written by `make(out_dir, accounts, seed, start, years)` with `_truth/terms.parquet`."""

    name: str
    description: str
    make: Callable[[Path, int, int, str, float], None]
    accounts: int = 2000
    seed: int = 0
    no_signal: bool = False  # churn independent of everything observable: AUC must stay near 0.5
    code: str = "pipeline/synthetic/*.py"  # the generator's files: cached histories are keyed by their digest
    score_days: tuple[int, ...] = (0,)  # scoring dates, days after CUT (short terms need several)
    years: float | None = None  # its own length of history (default: the run's)
    events_from_months: int | None = None  # event rows before START + this many months are dropped (late export)
    history_of: str | None = None  # the dataset whose generated history this one reads (a late export of it)

    def history_dir(self, accounts: int, years: float) -> Path:
        """Where the full generated history is cached: a new generator version generates anew."""
        digest = hashlib.sha1()
        for path in sorted(ROOT.glob(self.code)):
            digest.update(path.read_bytes())
        name = self.history_of or self.name
        return OUT / name / f"full-{accounts}x{years:g}-seed{self.seed}-{digest.hexdigest()[:8]}"


@dataclass(frozen=True)
class TableDataset:
    """A public per-customer table for prepared-table mode."""

    name: str
    table: public.PublicTable

    @property
    def description(self) -> str:
        return self.table.description


START, YEARS = "2021-01-01", 4.0  # ends 2025-01-01, CUT 2024-01-01: before any run's clock
THIRD_YEARS = 3.0  # bench/worlds/third.py: ends 2024-01-01, CUT 2023-01-01


def _ours(world: str) -> Callable[[Path, int, int, str, float], None]:
    def make(out: Path, accounts: int, seed: int, start: str, years: float) -> None:
        from pipeline.synthetic import generate

        generate(out, accounts, seed=seed, start=start, years=years, world=world)

    return make


def _foreign(shape: str) -> Callable[[Path, int, int, str, float], None]:
    def make(out: Path, accounts: int, seed: int, start: str, years: float) -> None:
        foreign.simulate(out, shape=shape, accounts=accounts, seed=seed, start=start, years=years)

    return make


def _third(shape: str) -> Callable[[Path, int, int, str, float], None]:
    def make(out: Path, accounts: int, seed: int, start: str, years: float) -> None:
        third.simulate(out, shape=shape, accounts=accounts, seed=seed, start=start, years=years)

    return make


def datasets() -> dict[str, EventDataset | TableDataset]:
    from pipeline.synthetic.worlds import WORLDS

    event = [
        EventDataset(f"ours_{name}", world.description, _ours(name), seed=11 + i, no_signal=world.no_signal is not None)
        for i, (name, world) in enumerate(WORLDS.items())
    ]
    event += [
        EventDataset(
            f"foreign_{shape}",
            spec.description,
            _foreign(shape),
            accounts=spec.accounts,
            seed=40 + i,
            code="bench/worlds/foreign.py",
            # one week's renewals hold a handful of churners: score six weekly dates after CUT
            score_days=(0, 7, 14, 21, 28, 35) if spec.term == "weekly" else (0,),
        )
        for i, (shape, spec) in enumerate(foreign.SHAPES.items())
    ]
    event += [  # three years, CUT on the first of January: two years to learn from, scored after the holidays
        EventDataset(
            f"third_{shape}",
            spec.description,
            _third(shape),
            accounts=spec.accounts,
            seed=60 + i,
            code="bench/worlds/third.py",
            years=THIRD_YEARS,
        )
        for i, (shape, spec) in enumerate(third.SHAPES.items())
    ]
    by_name = {d.name: d for d in event}
    event += [  # the same worlds exported late: events start months after START, accounts and terms whole
        replace(
            by_name[name],
            name=f"{name}_late",
            description=f"{by_name[name].description}; event rows before START + {LATE_MONTHS} months dropped",
            events_from_months=LATE_MONTHS,
            history_of=name,
        )
        for name in LATE
    ]
    tables = [TableDataset(t.name, t) for t in public.TABLES]
    return {d.name: d for d in [*event, *tables]}


LATE = ("ours_default", "foreign_b2b", "foreign_usage_monthly")
LATE_MONTHS = 8  # with --quick's 3 years: 16 months of events before CUT, the installed base landed before them


QUICK = ("ours_default", "foreign_usage_monthly", "telecom_churn")


def replicates(specs: list[EventDataset | TableDataset], seeds: list[int]) -> dict[str, EventDataset]:
    """Each event dataset once per generator seed, named NAME-seedS: its own history, folder and record row."""
    tables = [spec.name for spec in specs if not isinstance(spec, EventDataset)]
    if tables:
        raise ValueError(f"--seeds needs event datasets (a generator to re-seed); {tables} are prepared tables")
    return {
        f"{spec.name}-seed{seed}": replace(spec, name=f"{spec.name}-seed{seed}", seed=seed)
        for spec in specs
        for seed in seeds
    }


# ------------------------------------------------------------------------------ running churn
class StepFailed(RuntimeError):
    """A `churn` command exited non-zero: the dataset is recorded as failed with the message."""


def churn(args: list[str], cwd: Path, log: Path) -> str:
    """Run `churn ARGS` as a user would, in `cwd` (its working folder .churn/ lands there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "pipeline", "--no-progress", *args]
    began = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    log.write_text(f"$ churn {' '.join(args)}\n# {time.perf_counter() - began:.1f} s\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        message = " ".join((proc.stderr.strip() or proc.stdout.strip()).split())
        raise StepFailed(f"churn {args[0]} failed: {message[:400]}")
    return proc.stdout


# ---------------------------------------------------------------------------------- baselines
def _align_categories(train: pd.DataFrame, other: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    other = other.copy()
    for column in columns:
        if column in categorical_columns(train):
            categories = train[column].astype("category").cat.categories
            other[column] = pd.Categorical(other[column].astype("object"), categories=categories)
    return other


def baseline_probabilities(train: pd.DataFrame, rows: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    """Fit the three baselines on `train` (features + label) and predict `rows`, same features.

    A feature with no value in any training row (e.g. CSAT when every survey is an NPS one) tells a
    baseline nothing, and `HistGradientBoostingClassifier` cannot bin it (scikit-learn 1.9 raises): it is
    left out."""
    from lightgbm import LGBMClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier

    features = [column for column in feature_columns(train) if train[column].notna().any()]
    categorical = categorical_columns(train)
    X, y = train[features].copy(), train[LABEL].astype(int).to_numpy()
    for column in categorical:
        X[column] = X[column].astype("category")
    X_rows = _align_categories(X, rows.reindex(columns=features), features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logistic = fit_logistic_baseline(X, y, categorical, seed=seed)
        hgb = HistGradientBoostingClassifier(random_state=seed).fit(X, y)
        lgbm = LGBMClassifier(random_state=seed, verbose=-1, n_jobs=2).fit(X, y)
        return {
            "logistic": logistic.predict_proba(X_rows)[:, 1],
            "hgb_defaults": hgb.predict_proba(X_rows)[:, 1],
            "lightgbm_defaults": lgbm.predict_proba(X_rows)[:, 1],
        }


# ------------------------------------------------------------------------------------ metrics
def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def _pr_auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def point_metrics(y: np.ndarray, score: np.ndarray, probability: bool) -> dict[str, float]:
    out = {"roc_auc": _auc(y, score), "pr_auc": _pr_auc(y, score)}
    if probability:
        out |= {
            "ece": expected_calibration_error(y, score),
            "mean_predicted": float(score.mean()),
            "observed": float(y.mean()),
            "mean_gap": float(score.mean() - y.mean()),
            "base_rate_deviation": float(np.abs(score - y.mean()).mean()),
        }
    return out


def band_table(y: np.ndarray, p: np.ndarray, truth: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Per risk band (the product's bands): accounts, mean predicted, observed churn and, where the
    true probabilities are known, their mean (observed churn of a few hundred accounts is noisy), with
    `noise_95`: how far the observed rate strays from its expectation by outcome noise alone."""
    bands = np.select([p >= BANDS.high, p >= BANDS.medium], ["high", "medium"], default="low")
    rows = []
    for band in ("low", "medium", "high"):
        chosen = bands == band
        if chosen.any():
            rows.append(
                {
                    "band": band,
                    "accounts": int(chosen.sum()),
                    "mean_predicted": float(p[chosen].mean()),
                    "observed": float(y[chosen].mean()),
                    **({} if truth is None else {"true_mean": float(truth[chosen].mean())}),
                    "noise_95": outcome_noise(truth[chosen] if truth is not None else p[chosen]),
                }
            )
    return rows


def outcome_noise(probabilities: np.ndarray) -> float:
    """Half-width of the 95 % range of the observed churn rate of accounts churning independently with
    these probabilities (normal approximation): what a perfectly calibrated model's band may show.
    At 123 accounts near 0.3 it is 0.081, so a band check of 0.05 fails one such band in five by luck."""
    q = np.asarray(probabilities, dtype=float)
    return float(1.96 * np.sqrt((q * (1.0 - q)).sum()) / len(q))


def bootstrap(
    y: np.ndarray, scores: dict[str, np.ndarray], clusters: np.ndarray, n_boot: int, seed: int
) -> dict[str, dict[str, tuple[float, float]]]:
    """95 % percentile intervals, resampling whole accounts (clusters) with replacement."""
    rng = np.random.default_rng(seed)
    codes, members = np.unique(clusters, return_inverse=True)
    by_cluster = np.argsort(members, kind="stable")
    starts = np.searchsorted(members[by_cluster], np.arange(len(codes)))
    sizes = np.bincount(members, minlength=len(codes))
    draws: dict[str, dict[str, list[float]]] = {name: {} for name in scores}
    for _ in range(n_boot):
        picked = rng.integers(0, len(codes), len(codes))
        rows = np.concatenate([by_cluster[starts[c] : starts[c] + sizes[c]] for c in picked])
        for name, s in scores.items():
            for metric, value in point_metrics(y[rows], s[rows], name != "rule").items():
                draws[name].setdefault(metric, []).append(value)
    return {
        name: {
            metric: (float(np.nanpercentile(values, 2.5)), float(np.nanpercentile(values, 97.5)))
            for metric, values in metrics.items()
            if metric != "observed"
        }
        for name, metrics in draws.items()
    }


@dataclass
class Result:
    """One dataset's measurements: per score its metrics and intervals, the oracle, and the checks."""

    dataset: str
    kind: str
    description: str
    rows: int = 0
    churners: int = 0
    oracle_auc: float | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    bands: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    commit: str = ""  # of the code that produced this row
    # what a model scoring at CUT can reach: the oracle at CUT (our generator's worlds) and the
    # model and oracle on the accounts renewing within NEAR_RENEWAL_DAYS (see horizon())
    horizon: dict[str, float] = field(default_factory=dict)
    # model ROC AUC minus each baseline's on the same rows, with its paired bootstrap interval
    gaps: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.error is None and all(c["ok"] for c in self.checks)


def paired_gaps(
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    clusters: np.ndarray,
    n_boot: int,
    seed: int,
    against: tuple[str, ...] = BASELINES,
) -> dict[str, tuple[float, float, float]]:
    """Model ROC AUC minus each baseline's (or each score named in `against`) on the same rows: (gap, 95 % low,
    high), resampling whole accounts. Paired, so what makes a book easy or hard for every score cancels out of
    the interval."""
    rng = np.random.default_rng(seed)
    codes, members = np.unique(clusters, return_inverse=True)
    rows_of = [np.flatnonzero(members == c) for c in range(len(codes))]
    draws: dict[str, list[float]] = {b: [] for b in against if b in scores}
    for _ in range(n_boot):
        rows = np.concatenate([rows_of[c] for c in rng.integers(0, len(codes), len(codes))])
        model = _auc(y[rows], scores["model"][rows])
        for baseline, values in draws.items():
            values.append(model - _auc(y[rows], scores[baseline][rows]))
    return {
        b: (
            _auc(y, scores["model"]) - _auc(y, scores[b]),
            float(np.nanpercentile(values, 2.5)),
            float(np.nanpercentile(values, 97.5)),
        )
        for b, values in draws.items()
    }


def measure(result: Result, y: np.ndarray, scores: dict[str, np.ndarray], clusters: np.ndarray, n_boot: int) -> None:
    result.rows, result.churners = len(y), int(y.sum())
    result.metrics = {name: point_metrics(y, s, name != "rule") for name, s in scores.items()}
    result.intervals = bootstrap(y, scores, clusters, n_boot, seed=7)
    result.gaps = paired_gaps(y, scores, clusters, n_boot, seed=7)
    result.bands = band_table(y, scores["model"])


def run_checks(result: Result, no_signal: bool) -> None:
    """Issue 10's "Done when" for the project's model on this dataset, one PASS/FAIL line each."""
    m = result.metrics["model"]
    auc, checks = m["roc_auc"], []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    if no_signal:
        check("AUC near 0.5 (no signal)", abs(auc - 0.5) <= NO_SIGNAL_AUC, f"AUC {auc:.3f}")
        spread = m["base_rate_deviation"]
        check("probabilities near the base rate", spread <= MEAN_GAP,
              f"mean |p - {m['observed']:.3f}| = {spread:.3f}")  # fmt: skip
    elif result.oracle_auc is not None:
        need = ORACLE_SHARE * result.oracle_auc
        check("AUC >= 0.90 x oracle", auc >= need, f"{auc:.3f} vs {need:.3f} ({auc / result.oracle_auc:.0%} of oracle)")
    rule = result.metrics.get("rule")
    if rule is not None and not no_signal:
        low = result.intervals["rule"]["roc_auc"][0]
        if low > 0.5:
            need = rule["roc_auc"] + RULE_MARGIN
            check("AUC >= rule + 0.02", auc >= need, f"{auc:.3f} vs {need:.3f}")
        else:
            result.notes.append(f"rule score has no signal here (AUC interval reaches {low:.3f}): rule check skipped")
    if not no_signal:  # without signal, every AUC is 0.5 plus noise: there is no ranking to compare
        best = max(BASELINES, key=lambda b: result.metrics[b]["roc_auc"])
        need = result.metrics[best]["roc_auc"] - BASELINE_SLACK
        check("AUC >= best baseline - 0.005", auc >= need, f"{auc:.3f} vs {need:.3f} ({best})")
    check("|mean pred - observed| <= 0.03", abs(m["mean_gap"]) <= MEAN_GAP,
          f"{m['mean_predicted']:.3f} vs {m['observed']:.3f}")  # fmt: skip
    check("ECE <= 0.03", m["ece"] <= MAX_ECE, f"{m['ece']:.3f}")
    for band in result.bands:
        if band["accounts"] >= MIN_BAND_ACCOUNTS:
            gap = band["mean_predicted"] - band["observed"]
            check(f"band {band['band']} within 0.05", abs(gap) <= BAND_GAP,
                  f"{band['mean_predicted']:.3f} vs {band['observed']:.3f} (n={band['accounts']})")  # fmt: skip
    result.checks = checks


# --------------------------------------------------------------------------------- event data
def run_event(
    spec: EventDataset, accounts: int, years: float, n_boot: int, fresh: bool, reuse_runs: bool = False
) -> Result:
    from pipeline.progress import set_progress
    from pipeline.stages import build_feature_table, load

    set_progress(False)
    result = Result(spec.name, "event history", spec.description)
    work = OUT / spec.name
    full = spec.history_dir(accounts, years)
    clock = time.perf_counter()
    if fresh or not (full / history.TRUTH).exists():
        if work.exists():
            shutil.rmtree(work)
        full.parent.mkdir(parents=True, exist_ok=True)
        spec.make(full, accounts, spec.seed, START, years)
    result.seconds["generate"] = time.perf_counter() - clock
    cut = pd.Timestamp((history.data_end(full) - pd.DateOffset(months=CUT_MONTHS)).date())
    data = work / "data"
    rows = history.truncate(full, data, cut)
    result.notes.append(
        f"CUT {cut.date()}; data before CUT: " + ", ".join(f"{name} {count:,}" for name, count in rows.items())
    )
    if spec.events_from_months is not None:
        if spec.score_days != (0,):
            raise ValueError(f"{spec.name}: a late export is scored at CUT only (the full history is not cut)")
        events_from = pd.Timestamp(START) + pd.DateOffset(months=spec.events_from_months)
        dropped = history.drop_events_before(data, events_from)
        result.notes.append(
            f"events from {events_from.date()} only; dropped: " + ", ".join(f"{n} {c:,}" for n, c in dropped.items())
        )
    run_dir = work / "run"
    dates = [cut + pd.Timedelta(days=d) for d in spec.score_days]
    saved = [run_dir / "train.log", *(run_dir / f"scores-{when.date()}.parquet" for when in dates)]
    if reuse_runs and not fresh and all(path.exists() for path in saved):
        result.notes.append("churn train/score not re-run: their saved scores were reused (--reuse-runs)")
    else:
        try:
            train_and_score(data, full, run_dir, cut, dates, result)
        except StepFailed as exc:
            result.error = str(exc)
            return result
    if len(dates) > 1:
        result.notes.append(f"scored at {len(dates)} dates from CUT, {spec.score_days[1]} days apart")

    frame, unresolved = scored_frame(full, run_dir, dates)
    if unresolved:
        result.notes.append(f"{unresolved} scored accounts' terms were still undecided at the end of generation")

    clock = time.perf_counter()
    settings = Settings()
    table = build_feature_table(load(data, settings), settings)
    train = table[table[LABEL].notna()]
    rows_at, loaded = [], {}
    for when, chosen in frame.groupby("when", sort=True):
        source = data if when == cut else full
        if source not in loaded:  # several scoring dates read the same full history: load it once
            loaded[source] = load(source, settings)
        at = build_feature_table(loaded[source], settings, as_of=when.date())
        rows_at.append(at.set_index(ACCOUNT_ID).reindex(chosen[ACCOUNT_ID]).reset_index())
    probabilities = baseline_probabilities(train, pd.concat(rows_at, ignore_index=True), seed=settings.model.seed)
    result.seconds["baselines"] = time.perf_counter() - clock
    result.notes.append(f"baselines trained on {len(train):,} labelled snapshots ({train[LABEL].sum():,} churned)")

    y = frame["churned"].astype(int).to_numpy()
    scores_by_model = {"model": frame["churn_probability"].to_numpy(dtype=float), **probabilities}
    if "health_score" in frame and frame["health_score"].notna().any():
        risk = 100.0 - frame["health_score"].astype(float)
        missing = int(risk.isna().sum())
        if missing:
            result.notes.append(f"{missing} accounts without a health score: rule risk set to the mean")
        scores_by_model["rule"] = risk.fillna(risk.mean()).to_numpy()
    measure(result, y, scores_by_model, frame[ACCOUNT_ID].to_numpy(), n_boot)
    result.oracle_auc = _auc(y, frame["p_churn"].to_numpy(dtype=float))
    run_checks(result, spec.no_signal)
    truth_diagnostics(result, full, frame)
    return result


def train_and_score(
    data: Path, full: Path, run_dir: Path, cut: pd.Timestamp, dates: list[pd.Timestamp], result: Result
) -> None:
    """`churn train` on the data before CUT, then `churn score` at each date, in a fresh working folder."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir()
    clock = time.perf_counter()
    churn(["train", "--data", str(data), "--promote"], run_dir, run_dir / "train.log")
    result.seconds["train"] = time.perf_counter() - clock
    clock = time.perf_counter()
    for when in dates:  # after CUT the model meets newer data, as a deployed one would
        source = data if when == cut else full
        out = run_dir / f"scores-{when.date()}.parquet"
        args = ["score", "--data", str(source), "--as-of", str(when.date()), "--out", str(out)]
        churn(args, run_dir, run_dir / f"score-{when.date()}.log")
    result.seconds["score"] = time.perf_counter() - clock


def scored_frame(full: Path, run_dir: Path, dates: list[pd.Timestamp]) -> tuple[pd.DataFrame, int]:
    """The scores written at each date, with the true outcome of each account's term running then;
    (decided rows, count of undecided ones)."""
    frames = []
    for when in dates:
        scores = pd.read_parquet(run_dir / f"scores-{when.date()}.parquet")
        truth = history.outcomes_at(full, when)
        frames.append(scores.merge(truth, on=ACCOUNT_ID, how="left", suffixes=("", "_truth")).assign(when=when))
    frame = pd.concat(frames, ignore_index=True)
    unresolved = int(frame["churned"].isna().sum())
    return frame[frame["churned"].notna()].sort_values("when", kind="stable").reset_index(drop=True), unresolved


def truth_diagnostics(result: Result, full: Path, frame: pd.DataFrame) -> None:
    """What the truth says beside the checks: the bands' true mean probability, the oracle's own ECE
    (the noise floor of ECE on these outcomes) and the horizon (see horizon())."""
    y, truth = frame["churned"].astype(int).to_numpy(), frame["p_churn"].to_numpy(dtype=float)
    result.bands = band_table(y, frame["churn_probability"].to_numpy(dtype=float), truth)
    outcomes = frame[[ACCOUNT_ID, "term_end_truth", "p_churn", "when"]].rename(columns={"term_end_truth": "term_end"})
    at_cut = [history.at_cut_probability(full, chosen, when) for when, chosen in outcomes.groupby("when", sort=False)]
    result.horizon = horizon(frame, y, None if any(p is None for p in at_cut) else pd.concat(at_cut))
    result.horizon["oracle_ece"] = expected_calibration_error(y, truth)
    result.horizon["ece_vs_truth"] = ece_against(truth, frame["churn_probability"].to_numpy(dtype=float))


def ece_against(truth: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """ECE with the true probabilities in place of the outcomes (same bins): the model's own
    miscalibration, without the noise of which accounts happened to churn."""
    which = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], proba)
    rows = np.bincount(which, minlength=bins)
    gaps = np.abs(np.bincount(which, truth - proba, minlength=bins))
    return float(gaps[rows > 0].sum() / len(proba))


def reanalyse(label: str) -> list[Result]:
    """Recompute the truth diagnostics of block `label`'s event rows, and the bands of its table rows,
    from their saved scores (no re-run)."""
    available, rows = datasets(), json.loads((OUT / f"record-{label}.json").read_text())["results"]
    results = [Result(**row) for row in rows]
    for result in results:
        spec = available.get(result.dataset)
        if result.error or spec is None:
            continue
        if isinstance(spec, TableDataset):
            test = scored_table(split_table(spec)[1], OUT / spec.name / "scores.parquet")
            result.bands = band_table(test[LABEL].astype(int).to_numpy(), test["churn_probability"].to_numpy(float))
            continue
        full = spec.history_dir(spec.accounts, spec.years or YEARS)
        cut = pd.Timestamp((history.data_end(full) - pd.DateOffset(months=CUT_MONTHS)).date())
        frame, _ = scored_frame(full, OUT / spec.name / "run", [cut + pd.Timedelta(days=d) for d in spec.score_days])
        truth_diagnostics(result, full, frame)
    return results


def horizon(frame: pd.DataFrame, y: np.ndarray, at_cut: pd.Series | None) -> dict[str, float]:
    """Why the oracle is out of reach, in numbers: the oracle's probability uses the latent state over
    the weeks before each renewal (up to a year after CUT). The oracle at CUT is the same formula on
    the latent state at CUT; near the renewal both oracles see about the same weeks as the model."""
    out: dict[str, float] = {}
    if at_cut is not None:
        known = at_cut.reindex(frame.index).notna().to_numpy()
        out["at_cut_oracle_auc"] = _auc(y[known], at_cut.reindex(frame.index).to_numpy(dtype=float)[known])
    near = (frame["days_to_renewal"] <= NEAR_RENEWAL_DAYS).to_numpy() if "days_to_renewal" in frame else None
    if near is not None and min(y[near].sum(), (1 - y[near]).sum()) >= 5:
        out |= {
            "near_rows": int(near.sum()),
            "near_churners": int(y[near].sum()),
            "near_model_auc": _auc(y[near], frame["churn_probability"].to_numpy(dtype=float)[near]),
            "near_oracle_auc": _auc(y[near], frame["p_churn"].to_numpy(dtype=float)[near]),
        }
    return out


# ------------------------------------------------------------------------------ public tables
def split_table(spec: TableDataset, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seeded, stratified 70/30 split of a public table: (training rows, scored rows)."""
    from sklearn.model_selection import train_test_split

    frame = spec.table.load()
    return train_test_split(frame, test_size=0.3, random_state=seed, stratify=frame[public.LABEL])


def scored_table(test_frame: pd.DataFrame, scores_file: Path) -> pd.DataFrame:
    """The scored rows as the model saw them, with their label and the probability `churn score` wrote."""
    from pipeline.prepared_table import prepare_table

    test, _ = prepare_table(test_frame.reset_index(drop=True), public.ID, public.LABEL, None)
    scores = pd.read_parquet(scores_file)
    return test.merge(scores[[ACCOUNT_ID, "churn_probability"]], on=ACCOUNT_ID, how="left")


def run_table(spec: TableDataset, n_boot: int, seed: int = 0) -> Result:
    from pipeline.prepared_table import prepare_table

    result = Result(spec.name, "prepared table", spec.description)
    result.notes.append(f"source: {spec.table.source}")
    train_frame, test_frame = split_table(spec, seed)
    work = OUT / spec.name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    train_frame.to_csv(work / "train.csv", index=False)
    test_frame.drop(columns=[public.LABEL]).to_csv(work / "test.csv", index=False)
    scores_file = work / "scores.parquet"
    try:
        clock = time.perf_counter()
        churn(
            ["train", "--table", "train.csv", "--id", public.ID, "--label", public.LABEL, "--promote"],
            work,
            work / "train.log",
        )
        result.seconds["train"] = time.perf_counter() - clock
        churn(["score", "--table", "test.csv", "--id", public.ID, "--out", str(scores_file)], work, work / "score.log")
    except StepFailed as exc:
        result.error = str(exc)
        return result
    train, _ = prepare_table(pd.read_csv(work / "train.csv"), public.ID, public.LABEL, None)
    test = scored_table(test_frame, scores_file)
    probabilities = baseline_probabilities(train, test, seed=seed)
    y = test[LABEL].astype(int).to_numpy()
    measure(result, y, {"model": test["churn_probability"].to_numpy(dtype=float), **probabilities},
            test[ACCOUNT_ID].to_numpy(), n_boot)  # fmt: skip
    run_checks(result, no_signal=False)
    return result


# ------------------------------------------------------------------------------------ reports
COMMIT_VARIABLE = "BENCH_COMMIT"


def code_commit(root: Path, given: str | None = None) -> str:
    """The commit of the code measured, which every recorded row names: `given` (`--commit`), else
    `$BENCH_COMMIT`, else the repository's HEAD (`+dirty` with changes besides our own RESULTS.md), else
    "unknown": a copy without its repository (`git archive`) recorded "commit ," before."""
    if chosen := given or os.environ.get(COMMIT_VARIABLE):
        return chosen
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/RESULTS.md"],
            cwd=root, capture_output=True, text=True,
        )  # fmt: skip
    except OSError:  # no git at all
        return "unknown"
    if head.returncode != 0 or not head.stdout.strip():
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine(given: str | None = None) -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    ) if Path("/proc/cpuinfo").exists() else platform.processor()  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "commit": code_commit(ROOT, given),
        "load_before": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def _with_interval(result: Result, name: str, metric: str) -> str:
    value = result.metrics.get(name, {}).get(metric)
    if value is None:
        return "-"
    low, high = result.intervals.get(name, {}).get(metric, (np.nan, np.nan))
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def band_line(band: dict[str, Any]) -> str:
    """One band of `band_table` as the report writes it: accounts, predicted -> observed (true, noise)."""
    notes = [f"true {band['true_mean']:.3f}"] if "true_mean" in band else []
    notes += [f"noise ±{band['noise_95']:.3f}"] if "noise_95" in band else []  # rows recorded before wave 8 lack it
    text = f"{band['band']} {band['accounts']:,}: {band['mean_predicted']:.3f} -> {band['observed']:.3f}"
    return text + (f" ({', '.join(notes)})" if notes else "")


def markdown(results: list[Result], info: dict[str, Any], label: str) -> str:
    lines = [
        f"### {label} (latest rows: commit {info['commit']}, {info['date']})",
        "",
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']}; "
        f"load average {info['load_before'][0]:.1f} before and {info['load_after'][0]:.1f} after the latest run "
        f"({info['minutes']:.0f} minutes; the machine was shared, so times are upper bounds). "
        f"{info['bootstrap']} bootstrap resamples of accounts; intervals are 95 %. Each row names the commit "
        "that produced it.",
        "",
        "| dataset | commit | rows (churners) | oracle AUC | model AUC | logistic | HGB defaults | LightGBM defaults |"
        " rule | model PR AUC | model ECE | mean predicted vs observed | checks |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.dataset} | {r.commit} | - | - | **{r.error}** | | | | | | | | FAIL |")
            continue
        m = r.metrics["model"]
        failed = [c["check"] for c in r.checks if not c["ok"]]
        verdict = "PASS" if not failed else "FAIL: " + "; ".join(failed).replace("|", "\\|")
        lines.append(
            f"| {r.dataset} | {r.commit} | {r.rows:,} ({r.churners:,}) | {_fmt(r.oracle_auc)}"
            f" | {_with_interval(r, 'model', 'roc_auc')}"
            f" | {_fmt(r.metrics['logistic']['roc_auc'])} | {_fmt(r.metrics['hgb_defaults']['roc_auc'])}"
            f" | {_fmt(r.metrics['lightgbm_defaults']['roc_auc'])} | {_fmt(r.metrics.get('rule', {}).get('roc_auc'))}"
            f" | {_with_interval(r, 'model', 'pr_auc')} | {_with_interval(r, 'model', 'ece')}"
            f" | {m['mean_predicted']:.3f} vs {m['observed']:.3f} | {verdict} |"
        )
    lines += [
        "",
        "Calibration of the model per risk band (accounts, mean predicted -> observed churn; true: mean of the "
        "true probabilities, where known; noise: half-width of the 95 % range of the observed rate from outcome "
        "noise alone, with the true probabilities where known, else the model's):",
        "",
    ]
    for r in results:
        if not r.error:
            bands = "; ".join(band_line(b) for b in r.bands)
            lines.append(f"- {r.dataset}: {bands}")
    lines += ["", "Baselines' calibration (ECE; mean predicted vs observed):", ""]
    for r in results:
        if not r.error:
            parts = [
                f"{name} {r.metrics[name]['ece']:.3f}; {r.metrics[name]['mean_predicted']:.3f}" for name in BASELINES
            ]
            lines.append(f"- {r.dataset}: " + ", ".join(parts) + f" (observed {r.metrics['model']['observed']:.3f})")
    horizons = [r for r in results if not r.error and r.horizon]
    if horizons:
        lines += [
            "",
            "What the truth says (the oracle sees each account up to its renewal, a model scoring at CUT cannot; "
            "the oracle's own ECE is the noise floor of ECE on these outcomes):",
            "",
        ]
    for r in horizons:
        parts, h, auc = [], r.horizon, r.metrics["model"]["roc_auc"]
        if "at_cut_oracle_auc" in h:
            parts.append(f"oracle at CUT {h['at_cut_oracle_auc']:.3f} (model {auc / h['at_cut_oracle_auc']:.0%} of it)")
        if "oracle_ece" in h:
            parts.append(f"oracle's own ECE {h['oracle_ece']:.3f} (model {r.metrics['model']['ece']:.3f})")
        if "ece_vs_truth" in h:
            parts.append(f"model ECE against the true probabilities {h['ece_vs_truth']:.3f}")
        if "near_rows" in h:
            parts.append(
                f"renewing within {NEAR_RENEWAL_DAYS} days, {h['near_rows']:,} ({h['near_churners']:,}): "
                f"model {h['near_model_auc']:.3f} vs oracle {h['near_oracle_auc']:.3f}"
            )
        lines.append(f"- {r.dataset}: " + "; ".join(parts))
    notes = [(r.dataset, n) for r in results for n in r.notes]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {name}: {note}" for name, note in notes]
    return "\n".join(lines) + "\n"


def record(results: list[Result], info: dict[str, Any], label: str, order: list[str]) -> list[Result]:
    """The rows of block `label`: this run's datasets replace their earlier rows, the others are kept
    (bench/out/quality/record-LABEL.json), so a subset can be re-run without losing the rest."""
    path = OUT / f"record-{label}.json"
    rows = {row["dataset"]: row for row in json.loads(path.read_text())["results"]} if path.exists() else {}
    rows |= {r.dataset: asdict(r) for r in results}
    ordered = [rows[name] for name in order if name in rows] + [row for name, row in rows.items() if name not in order]
    path.write_text(json.dumps({"machine": info, "results": ordered}, indent=2, default=str))
    return [Result(**row) for row in ordered]


@contextmanager
def recording(label: str) -> Iterator[None]:
    """Hold block `label`'s lock while its record and bench/RESULTS.md are read and rewritten."""
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"record-{label}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_results_md(block: str, label: str) -> None:
    """Replace (or add) the block `label` inside the quality section of bench/RESULTS.md."""
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n"
    header = "## Quality (bench/quality.py)"
    if header not in text:
        text = text.rstrip() + f"\n\n{header}\n\n{QUALITY_INTRO}\n"
    begin, end = f"<!-- quality:{label}:begin -->", f"<!-- quality:{label}:end -->"
    new = f"{begin}\n{block}{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + new + text[text.index(end) + len(end) :]
    else:
        section = text.index(header)
        following = text.find("\n## ", section + len(header))
        insert_at = len(text) if following < 0 else following
        text = text[:insert_at].rstrip() + f"\n\n{new}\n" + text[insert_at:]
    RESULTS_MD.write_text(text)


QUALITY_INTRO = """\
The default model (`churn train --data D --promote`, then `churn score --as-of CUT`) on data it
was not developed on, against logistic regression, `HistGradientBoostingClassifier()` defaults,
LightGBM defaults and the rule score on the same rows; generated histories are cut 12 months
before the end of generation and scored accounts are compared with the true outcome of their
term running at CUT. Checks are issue 10's "Done when". Re-run with `python bench/quality.py`
(`--quick` for three datasets, `--datasets NAME ...` for a subset, `--list` for the names)."""


def mean_with_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean of independent replicates (e.g. one AUC gap per seed) with its 95 % t interval (nan for one)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def replicate_markdown(results: list[Result], info: dict[str, Any], label: str) -> str:
    """Per dataset run at several generator seeds: model ROC AUC minus each baseline's on the same rows,
    per seed (with its paired bootstrap interval) and averaged over the seeds (t interval)."""
    lines = [
        f"### {label} (commit {info['commit']}, {info['date']})",
        "",
        f"{info['cpu']}, {info['cores']} cores; load average {info['load_before'][0]:.1f} before and "
        f"{info['load_after'][0]:.1f} after ({info['minutes']:.0f} minutes). Each seed is a new history from the "
        f"same generator, trained and scored through the CLI as in the main table; {info['bootstrap']} paired "
        "resamples of accounts per seed. Gap = model ROC AUC - baseline ROC AUC on the same rows.",
        "",
        "| dataset | seed | rows (churners) | model AUC | gap to logistic | gap to HGB defaults"
        " | gap to LightGBM defaults |",
        "|---|---|---|---|---|---|---|",
    ]
    by_world: dict[str, list[Result]] = {}
    for r in results:
        if not r.error:
            by_world.setdefault(r.dataset.rsplit("-seed", 1)[0], []).append(r)
    for world, runs in by_world.items():
        for r in runs:
            gaps = " | ".join(f"{r.gaps[b][0]:+.3f} [{r.gaps[b][1]:+.3f}, {r.gaps[b][2]:+.3f}]" for b in BASELINES)
            seed = r.dataset.rsplit("-seed", 1)[-1]
            auc = r.metrics["model"]["roc_auc"]
            lines.append(f"| {world} | {seed} | {r.rows:,} ({r.churners:,}) | {auc:.3f} | {gaps} |")
        cells = []
        for b in BASELINES:
            mean, low, high = mean_with_interval([r.gaps[b][0] for r in runs])
            cells.append(f"**{mean:+.3f}** [{low:+.3f}, {high:+.3f}]")
        rows, churners = sum(r.rows for r in runs), sum(r.churners for r in runs)
        model = np.mean([r.metrics["model"]["roc_auc"] for r in runs])
        lines.append(
            f"| {world} | mean of {len(runs)} | {rows:,} ({churners:,}) | {model:.3f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def console_report(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    table = Table(title="Quality: ROC AUC on the scored rows (model with 95 % interval)", title_justify="left")
    for column in ("dataset", "rows", "oracle", "model", "logistic", "HGB", "LightGBM", "rule", "ECE", "mean vs obs"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for r in results:
        if r.error:
            table.add_row(r.dataset, "-", "-", "[red]failed[/red]", "", "", "", "", "", "")
            continue
        m = r.metrics["model"]
        table.add_row(
            r.dataset,
            f"{r.rows:,} ({r.churners:,})",
            _fmt(r.oracle_auc),
            _with_interval(r, "model", "roc_auc"),
            _fmt(r.metrics["logistic"]["roc_auc"]),
            _fmt(r.metrics["hgb_defaults"]["roc_auc"]),
            _fmt(r.metrics["lightgbm_defaults"]["roc_auc"]),
            _fmt(r.metrics.get("rule", {}).get("roc_auc")),
            _fmt(m["ece"]),
            f"{m['mean_predicted']:.3f} vs {m['observed']:.3f}",
        )
    console.print(table)
    for r in results:
        if r.error:
            console.print(f"[red]FAIL[/red] {r.dataset}: {r.error}", highlight=False)
            continue
        for c in r.checks:
            mark = "[green]PASS[/green]" if c["ok"] else "[red]FAIL[/red]"
            console.print(f"{mark} {r.dataset}: {c['check']} ({c['detail']})", highlight=False)
    passed = sum(r.passed for r in results)
    console.print(f"{passed} of {len(results)} datasets pass every check.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"fewer accounts and resamples; datasets {QUICK}")
    parser.add_argument("--datasets", nargs="+", help="names to run (default: all; see --list)")
    parser.add_argument("--record", metavar="NAME", help="write the table to block NAME of bench/RESULTS.md")
    parser.add_argument("--bootstrap", type=int, help="bootstrap resamples (default 500, quick 200)")
    parser.add_argument("--fresh", action="store_true", help="regenerate histories even when cached")
    parser.add_argument(
        "--reuse-runs",
        action="store_true",
        help="event data: reuse the scores a complete earlier run saved (same model code) instead of re-training",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        metavar="SEED",
        help="event data: run each dataset once per generator seed (its own history and folder) and report the "
        "model's paired AUC gap to each baseline per seed and averaged over the seeds (is a gap real or noise?)",
    )
    parser.add_argument("--list", action="store_true", help="list the datasets and exit")
    parser.add_argument(
        "--commit",
        help=f"the commit of the code measured, for the rows (default: ${COMMIT_VARIABLE}, else git's HEAD, else "
        "'unknown', e.g. in a `git archive` copy)",
    )
    parser.add_argument(
        "--reanalyse",
        action="store_true",
        help="recompute the truth diagnostics and band noise of the --record block's saved runs",
    )
    args = parser.parse_args(argv)
    if args.reanalyse:
        if not args.record:
            parser.error("--reanalyse needs --record NAME (the block to recompute)")
        with recording(args.record):
            info = json.loads((OUT / f"record-{args.record}.json").read_text())["machine"]
            results = reanalyse(args.record)
            recorded = record(results, info, args.record, list(datasets()))
            write_results_md(markdown(recorded, info, args.record), args.record)
        print(f"Recomputed the truth diagnostics of block '{args.record}' ({len(results)} datasets)")
        return 0

    available = datasets()
    if args.list:
        for name, spec in available.items():
            print(f"{name:28s} {spec.description}")
        return 0
    names = args.datasets or (list(QUICK) if args.quick else list(available))
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(available)}")
    if args.seeds:
        try:
            replicated = replicates([available[n] for n in names], args.seeds)
        except ValueError as exc:
            parser.error(str(exc))
        available |= replicated
        names = list(replicated)
    n_boot = args.bootstrap or (200 if args.quick else 500)
    info = machine(args.commit)
    began = time.perf_counter()
    results = []
    for name in names:
        spec = available[name]
        print(f"== {name}: {spec.description}", flush=True)
        clock = time.perf_counter()
        if isinstance(spec, EventDataset):
            accounts = max(300, spec.accounts * 2 // 5) if args.quick else spec.accounts
            years = spec.years or (3.0 if args.quick else YEARS)
            result = run_event(spec, accounts, years, n_boot, args.fresh, args.reuse_runs)
        else:
            result = run_table(spec, n_boot)
        result.seconds["total"] = time.perf_counter() - clock
        result.commit = info["commit"]
        outcome = f"failed: {result.error}" if result.error else "done"
        print(f"   {outcome} in {result.seconds['total']:.0f} s", flush=True)
        results.append(result)
        info |= {"load_after": os.getloadavg(), "minutes": (time.perf_counter() - began) / 60, "bootstrap": n_boot}
        if args.record:  # after every dataset: a long run that is stopped keeps what finished
            with recording(args.record):  # subsets may run in parallel processes
                recorded = record([result], info, args.record, list(available))
                write = replicate_markdown if args.seeds else markdown
                write_results_md(write(recorded, info, args.record), args.record)
            print(f"   wrote block '{args.record}' of {RESULTS_MD} ({len(recorded)} datasets)", flush=True)
    console_report(results)
    if args.seeds:
        print(replicate_markdown(results, info, "replicates"))
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, "quick": args.quick, "results": [asdict(r) for r in results]}
    (OUT / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
