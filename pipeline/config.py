"""Typed pipeline settings, read from YAML.

Configuration lives in files, not code: `pipeline.yaml` among the package data
(`pipeline/defaults/`, also reachable as `config/` in a clone) is the default file and mirrors
the defaults below (a test keeps them in step). Every section can be overridden by a user file
passed with `--config`; keys missing there keep their defaults. The settings are composed here
from the sections each layer owns (`features.settings.FeatureSettings`) and handed down as plain
values; reading files (YAML settings, scorecards) happens here, never below.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Collection, Hashable, Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator

from features.errors import ConfigError, config_error
from features.settings import MAX_DAYS, FeatureSettings, SettingsSection

if TYPE_CHECKING:
    from models.risk_model import ChurnRiskModel
    from models.scorecard import ScorecardConfig
    from models.scoring import ScoringRules

DEFAULTS_DIR = Path(str(resources.files("pipeline") / "defaults"))
"""The shipped defaults and scorecards: package data, found wherever the package is installed."""
DEFAULT_CONFIG_FILE = DEFAULTS_DIR / "pipeline.yaml"


class DataSettings(SettingsSection):
    grace_days: int = Field(
        30, ge=0, le=MAX_DAYS, description="Days after a term ends within which a renewal still counts."
    )
    data_end: str | None = Field(None, description="End of the observed data (ISO date); default: latest event.")

    @field_validator("data_end")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            date.fromisoformat(str(value)[:10])
        except ValueError:
            raise ValueError(f"'{value}' is not a date (use YYYY-MM-DD)") from None
        return str(value)


class ModelSettings(SettingsSection):
    """The renewal-risk model. Tree settings are the defaults the tuner starts from (and what trains
    when `tune_trials` is 0); `n_estimators` caps the trees, early stopping on the CV folds picks them."""

    name: str = Field("churn-risk", min_length=1, description="Registered model name (models:/<name>@champion).")
    seed: int = 42
    validation_share: float = Field(0.2, gt=0, lt=1, description="Share of history kept for out-of-time validation.")
    cv_folds: int = Field(4, ge=1, le=20, description="Rolling-origin (or stratified) CV folds for tuning.")
    num_leaves: int = Field(15, ge=2, le=4096, description="Leaves per tree.")
    max_depth: int = Field(-1, ge=-1, description="Depth limit per tree; -1 = no limit (leaves decide).")
    learning_rate: float = Field(0.05, gt=0, le=1)
    n_estimators: int = Field(1000, ge=1, description="Most trees; early stopping on the CV folds picks the count.")
    min_child_samples: int = Field(20, ge=1, description="Fewest rows in a leaf.")
    lambda_l1: float = Field(0.0, ge=0, description="L1 regularisation of leaf values.")
    lambda_l2: float = Field(0.0, ge=0, description="L2 regularisation of leaf values.")
    early_stopping_rounds: int = Field(50, ge=1)
    calibration: Literal["isotonic", "sigmoid"] = "isotonic"
    feature_fraction: float = Field(0.8, gt=0, le=1, description="Share of features each tree may use.")
    bagging_fraction: float = Field(0.8, gt=0, le=1, description="Share of rows each tree sees (seeded).")
    balance_classes: bool = Field(False, description="Weight churners by negatives/positives while boosting.")
    refit: bool = Field(True, description="Refit on all labelled rows with the cross-validated tree count.")
    num_threads: int = Field(2, ge=1, description="LightGBM threads; results are reproducible per thread count.")
    promotion_min_gain: float = Field(0.0, ge=0, description="ROC AUC gain over the champion needed to promote.")
    tune_trials: int = Field(40, ge=0, description="Optuna trials; 0 = train with the settings above.")
    tune_timeout_s: float | None = Field(
        3600.0, gt=0, description="Safety net: no new trial after this many seconds (null = none); a cut is reported."
    )
    tune_max_rows: int = Field(
        50_000, ge=1_000, description="Tune on a sample of whole accounts when the folds hold more rows."
    )
    one_se_rule: bool = Field(True, description="Prefer the cheapest setting within one SE of the best CV AUC.")

    @field_validator("name")
    @classmethod
    def _registrable(cls, value: str) -> str:
        """The MLflow registry refuses '/' and ':' -- after the whole training run -- and '@' would read as the
        alias of `models:/<name>@champion`."""
        bad = sorted({ch for ch in value if ch in "/:@"})
        if bad or value != value.strip():
            shown = " ".join(f"'{ch}'" for ch in bad) or "spaces around it"
            raise ValueError(f"a registered model name cannot have {shown}, e.g. churn-risk or churn_risk_eu")
        return value

    def estimator(self) -> ChurnRiskModel:
        """An unfitted risk model with these settings (the keys the estimator takes; the others are the pipeline's)."""
        from models.risk_model import ChurnRiskModel

        params = ChurnRiskModel().get_params()
        return ChurnRiskModel(**{key: getattr(self, key) for key in params})


class TrackingSettings(SettingsSection):
    uri: str | None = Field(None, description="MLflow tracking URI; default: SQLite in the working folder.")
    experiment: str = Field("churn", min_length=1)


class RiskBands(SettingsSection):
    """Churn-probability levels of the risk bands, or `high` by capacity: the riskiest `high_accounts`
    accounts, or the riskiest accounts holding `high_arr_share` of the ARR (what a team can work on)."""

    high: float = Field(0.5, gt=0, lt=1)
    medium: float = Field(0.2, gt=0, lt=1)
    high_accounts: int | None = Field(None, ge=1, description="High risk = the riskiest N accounts of a run.")
    high_arr_share: float | None = Field(
        None, gt=0, le=1, description="High risk = the riskiest accounts holding this share of the ARR."
    )

    @model_validator(mode="after")
    def _ordered(self) -> RiskBands:
        if self.medium >= self.high:
            raise ValueError(
                f"medium ({self.medium}) must be below high ({self.high}), e.g. {{high: 0.5, medium: 0.2}}"
            )
        if self.high_accounts is not None and self.high_arr_share is not None:
            raise ValueError("set high_accounts or high_arr_share, not both (one capacity decides the high band)")
        return self


def redact_url(url: str) -> str:
    """A URL safe to print: no user name or password, no query string or fragment (tokens live there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if _port(parts) else ""
    hidden = " (query hidden)" if parts.query or parts.fragment else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{hidden}"


def _port(parts: Any) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


class AlertSettings(SettingsSection):
    score_drop: float = Field(10.0, ge=0, le=100, description="Alert when the health score drops more than this.")
    probability_level: float = Field(0.5, gt=0, lt=1, description="Alert when churn probability crosses this.")
    renewal_days: int = Field(
        90, ge=0, le=MAX_DAYS, description="Alert at-risk accounts renewing within this many days."
    )
    webhook_url: SecretStr | None = Field(
        None, description="POST the alerts here (http or https); kept secret in dumps and logs."
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=300, description="Per attempt.")
    webhook_retries: int = Field(2, ge=0, le=10, description="Further attempts after a failed one.")

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _http_url(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("must be a URL string")
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = redact_url(value) if parts.scheme in ("http", "https") else f"a {parts.scheme or 'schemeless'} URL"
            raise ValueError(f"must be an http:// or https:// URL with a host, got {shown}")
        if _port(parts) is None and parts.netloc.rsplit("@", 1)[-1].rsplit("]", 1)[-1].count(":"):
            raise ValueError(f"has an invalid port: {redact_url(value)}")
        return value.strip()

    def webhook(self) -> str | None:
        """The webhook URL in clear, for the one place that posts to it."""
        value = self.webhook_url
        return value.get_secret_value() if isinstance(value, SecretStr) else value


class LifecycleSettings(SettingsSection):
    land_days: int = Field(120, ge=0, le=MAX_DAYS, description="Accounts younger than this are in Land (onboarding).")
    renew_window_days: int = Field(90, ge=0, le=MAX_DAYS, description="Accounts this close to term end are in Renew.")
    expand_seat_growth: float = Field(0.1, ge=0, le=100, description="Seat growth at last renewal that means Expand.")
    expand_utilisation: float = Field(1.0, gt=0, le=100, description="Active users / seats above this means Expand.")


class ScoringSettings(SettingsSection):
    risk_bands: RiskBands = Field(default_factory=RiskBands)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    top_drivers: int = Field(3, ge=1, le=50)
    drift_psi_threshold: float = Field(0.25, gt=0, le=10)
    trial_plans: list[str] = Field(
        default_factory=lambda: ["*trial*", "free", "freemium"],
        description="Plans (case-insensitive shell patterns) that mark a trial; ARR 0 marks one too.",
    )
    trend_days: list[int] = Field(
        default_factory=lambda: [30, 90], description="Spans of the score trends, in days (any list)."
    )

    @field_validator("trend_days")
    @classmethod
    def _positive_spans(cls, value: list[int]) -> list[int]:
        if any(d <= 0 or d > MAX_DAYS for d in value):
            raise ValueError(f"trend spans must be day counts between 1 and {MAX_DAYS}, e.g. [7, 30, 90]")
        return sorted(set(value))


class SuggestionSettings(SettingsSection):
    """Limits of the scorecard `churn compare` suggests (models.weights.SuggestionLimits)."""

    category_floor: float = Field(5.0, ge=0, le=100, description="Fewest points of 100 a category keeps.")
    max_change: float = Field(10.0, ge=0, le=100, description="Most points a category weight moves.")
    metric_floor: float = Field(0.25, ge=0, le=1, description="Share of its weight a metric keeps at least.")
    red_share: float = Field(0.15, gt=0, lt=1, description="Share of accounts the suggested bands put in red.")
    yellow_share: float = Field(0.20, ge=0, lt=1, description="Share the suggested bands put in yellow.")

    @model_validator(mode="after")
    def _room_for_green(self) -> SuggestionSettings:
        if self.red_share + self.yellow_share >= 1:
            raise ValueError("red_share + yellow_share must be below 1 (some accounts are green)")
        return self


class SparkSettings(SettingsSection):
    """Where `engine: spark` runs: any Spark master URL, and Spark settings passed as they are."""

    master: str = Field(
        "local[*]", min_length=1, description="Spark master: local[N], spark://host:port, yarn, k8s://..."
    )
    conf: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Spark settings (e.g. spark.executor.memory: 8g), over churn's defaults (pipeline/spark.py).",
    )
    train_max_rows: int = Field(
        5_000_000,
        ge=1000,
        description="Training collects the Spark feature table onto one node; above this many snapshots, a "
        "seeded sample of whole accounts (README: training from a Spark feature table).",
    )

    def spark_conf(self) -> dict[str, str]:
        """The settings as Spark takes them: strings, booleans spelled true/false."""
        return {key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in self.conf.items()}


class Settings(SettingsSection):
    workdir: str = Field(
        ".churn", min_length=1, description="Working folder: tracking store, artifacts, score history."
    )
    healthscore: str = Field(
        "healthscore.yaml",
        min_length=1,
        description="Scorecard file (relative names: next to the config file, then the shipped ones).",
    )
    data: DataSettings = Field(default_factory=DataSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    suggestions: SuggestionSettings = Field(default_factory=SuggestionSettings)
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Where features and scores are computed: DuckDB in-process, or Apache Spark."
    )
    spark: SparkSettings = Field(default_factory=SparkSettings)
    _config_file: Path | None = PrivateAttr(None)  # the --config file these settings came from (load_settings)

    @field_validator("workdir", "healthscore")
    @classmethod
    def _home(cls, value: str) -> str:
        """`~/churn` is the user's home folder, as in a shell (it made a folder named `~` in the current one)."""
        return str(Path(value).expanduser()) if value.startswith("~") else value

    @property
    def config_file(self) -> Path | None:
        """The configuration file these settings were read from (None: the defaults alone)."""
        return self._config_file

    @property
    def workdir_path(self) -> Path:
        return Path(self.workdir).resolve()

    def make_workdir(self) -> Path:
        """The working folder, created if needed; one it cannot be is a ConfigError naming `workdir`."""
        path = self.workdir_path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unusable_workdir(exc.strerror or str(exc)) from exc
        return path

    def check_workdir(self) -> None:
        """Refuse, creating nothing, a working folder `make_workdir` could not create: checked before a command's
        work, while the folder itself is made only when something is written there, so a command that fails
        first leaves no empty working folder behind."""
        from pipeline.leftovers import nearest_existing

        folder = nearest_existing(self.workdir_path)
        if not folder.is_dir():
            raise self._unusable_workdir(os.strerror(errno.ENOTDIR))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise self._unusable_workdir(os.strerror(errno.EACCES))

    def _unusable_workdir(self, reason: str) -> ConfigError:
        return ConfigError(
            f"workdir: the working folder {self.workdir_path} cannot be created ({reason}); set workdir in the "
            "configuration to a folder churn may write (the model store, score history and overrides live there)."
        )

    def healthscore_path(self) -> Path:
        """Resolve the scorecard file: absolute, relative to the config file, or a shipped scorecard.

        A file found nowhere is a ConfigError naming the configuration file, the `healthscore` key and
        where it was looked for (not a missing file of the package's own folder, which the user never named)."""
        path = Path(self.healthscore)
        where = f"{self._config_file}: healthscore" if self._config_file else "healthscore"
        base = self._config_file.parent if self._config_file else None
        roots = [Path("/")] if path.is_absolute() else [r for r in (base, Path.cwd(), DEFAULTS_DIR) if r is not None]
        for root in roots:
            if (root / path).is_file():
                return (root / path).resolve()
        folder = next((root / path for root in roots if (root / path).is_dir()), None)
        if folder is not None:
            raise ConfigError(f"{where}: '{folder}' is a folder; name the scorecard YAML file in it.")
        if path.is_absolute():
            raise ConfigError(f"{where}: the scorecard file '{path}' does not exist.")
        shipped = ", ".join(sorted(p.name for p in DEFAULTS_DIR.glob("healthscore*.yaml")))
        next_to = f"next to the configuration file ({base}), " if base else ""
        raise ConfigError(
            f"{where}: the scorecard file '{path}' was not found {next_to}in the current folder ({Path.cwd()}) "
            f"or among the shipped scorecards ({shipped})."
        )

    def feature_values(self) -> dict[str, int]:
        """The settings that decide a feature's value (`features.feature_set.VALUE_SETTINGS`), as configured."""
        from features.feature_set import setting_values

        return setting_values(self.features, self.data.grace_days)

    def scoring_rules(self) -> ScoringRules:
        """What the scoring core needs from `scoring:`, `lifecycle:` and `features:` (category overrides, and
        the value settings to compare with the model's), and the defaults of the latter."""
        from features.feature_set import setting_values
        from models.scoring import ScoringRules

        return ScoringRules(
            risk_high=self.scoring.risk_bands.high,
            risk_medium=self.scoring.risk_bands.medium,
            risk_high_accounts=self.scoring.risk_bands.high_accounts,
            risk_high_arr_share=self.scoring.risk_bands.high_arr_share,
            top_drivers=self.scoring.top_drivers,
            **self.lifecycle.model_dump(),
            category_overrides=dict(self.features.category_overrides),
            feature_values=self.feature_values(),
            default_feature_values=setting_values(FeatureSettings(), DataSettings().grace_days),
            windows=tuple(self.features.windows),
        )

    def tracking_uri(self) -> str:
        if self.tracking.uri:
            return self.tracking.uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{self.workdir_path / 'mlflow.db'}"


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class _ConfigLoader(yaml.SafeLoader):
    """Safe YAML as configuration needs it.

    Dates stay text: PyYAML turns an unquoted date into a `date` (refused by a text setting) and an
    impossible one (`2025-13-01`) into an exception of its own constructor; every date setting parses
    its text itself. A key written twice in one mapping is an error: PyYAML kept the last silently, so a
    second category or segment of the same name replaced the first without a word.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then own keys: overriding merged keys is what merging is for
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (first on line {seen[key].line + 1}); YAML keeps only one",
                    key_node.start_mark,
                )
            if isinstance(key, Hashable):
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, turning parse errors into a ConfigError that names the file."""
    try:
        with Path(path).open(encoding="utf-8") as stream:  # a stream: YAML's errors name the file, not a string
            loaded = yaml.load(stream, Loader=_ConfigLoader)
    except FileNotFoundError as exc:
        raise ConfigError(f"Configuration file {path} does not exist.") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"Configuration file {path} is not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Configuration file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    except OSError as exc:  # a folder, a file it may not read...
        raise ConfigError(f"Configuration file {path} cannot be read: {exc.strerror or exc}.") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"Configuration file {path} must hold a mapping at the top level.")
    return loaded


def _validated(raw: dict[str, Any], source: str, flags: Mapping[str, str] | None = None) -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        error = config_error(source, exc, flags=flags, model=Settings)
        if isinstance(raw.get("default"), dict) and "categories" in raw["default"]:  # --config my-scorecard.yaml
            error = ConfigError(
                f"{error}\n{source} is a health scorecard (it has default.categories), not a configuration: pass a "
                f"configuration file that names it, e.g. one line `healthscore: {source}`."
            )
        else:
            misplaced = sorted(
                {str(e["loc"][-1]) for e in exc.errors() if e["type"] == "extra_forbidden"} & _SCORECARD_KEYS
            )
            if misplaced:  # `bands: {green: 75}` among the settings: colour bands are the scorecard's
                error = ConfigError(
                    f"{error}\n{', '.join(misplaced)}: set in the health scorecard (the file the `healthscore` key "
                    "names; copy a shipped one from config/), not in this configuration."
                )
        raise error from exc


_SCORECARD_KEYS = {"bands", "categories", "segments", "population_by"}


def load_settings(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    source: str = "settings",
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Defaults <- user YAML file <- command-line overrides (nested dict), validated.

    A bad value in the file is reported against the file; a bad override against `source`
    (e.g. "command-line options"), so the message points where the mistake is; `flags` names the
    option that set a key path (`{"features.cadence": "--every"}`), so the message names what the
    user typed.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_yaml(Path(path))
    settings = _validated(raw, str(path or "settings"))
    if overrides:
        settings = _validated(_deep_merge(raw, {k: v for k, v in overrides.items() if v is not None}), source, flags)
    settings._config_file = Path(path).resolve() if path is not None else None
    return settings


def load_scorecard(path: str | Path, available: Collection[str] | None = None) -> ScorecardConfig:
    """Read and validate a scorecard YAML file; with `available`, also check every column exists."""
    from models.scorecard import parse_scorecard

    config = parse_scorecard(read_yaml(Path(path)), source=str(path))
    if available is not None:
        config.validate_columns(available)
    return config
