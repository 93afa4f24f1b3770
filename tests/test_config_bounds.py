"""Configuration errors are clear errors (issue 11, row 10): every number in range, NaN/inf refused,
malformed conditions named by key, command-line flags checked like the file, secrets never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features.errors import ConfigError
from pipeline.config import DEFAULTS_DIR, load_scorecard, load_settings
from tests.helpers import run_cli, tiny_tables, write_tables

SECRET = "s3cr3t-t0ken"


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"data": {"grace_days": 100_000}}, "data.grace_days: Input should be less than or equal to 3650"),
        ({"features": {"top_features": -1}}, "features.top_features: Input should be greater than or equal to 0"),
        ({"features": {"windows": [7, 99_999]}}, "features.windows: windows must be a non-empty list"),
        ({"features": {"tracked_features": [" "]}}, "features.tracked_features: names must not be empty"),
        # the snapshot step is the cadence, a closed vocabulary: no number of days, zero or negative, is one
        ({"features": {"cadence": 0}}, "features.cadence: Input should be 'monthly' or 'weekly'"),
        ({"features": {"cadence": -7}}, "features.cadence: Input should be 'monthly' or 'weekly'"),
        ({"features": {"step": -1}}, "features.step: unknown key 'step'"),
        ({"lifecycle": {"expand_utilisation": float("nan")}}, "lifecycle.expand_utilisation: Input should be a finite"),
        ({"scoring": {"drift_psi_threshold": float("inf")}}, "scoring.drift_psi_threshold: Input should be a finite"),
        ({"scoring": {"alerts": {"probability_level": 1.5}}}, "scoring.alerts.probability_level: Input should be less"),
        ({"scoring": {"alerts": {"webhook_retries": 50}}}, "scoring.alerts.webhook_retries: Input should be less"),
        ({"scoring": {"top_drivers": 0}}, "scoring.top_drivers: Input should be greater than or equal to 1"),
        ({"scoring": {"risk_bands": {"high": 0.2, "medium": 0.5}}}, "medium (0.5) must be below high (0.2)"),
        ({"scoring": {"alerts": {"webhook_url": "file:///etc/passwd"}}}, "must be an http:// or https:// URL"),
        ({"data": {"data_end": "soon"}}, "data.data_end: 'soon' is not a date"),
        ({"workdir": ""}, "workdir: String should have at least 1 character"),
    ],
)
def test_every_setting_is_bounded(override: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, override)
    assert fragment in str(err.value)


def test_a_bad_webhook_url_never_shows_its_secrets() -> None:
    for url in (f"https://bot:{SECRET}@hooks.example:99999/x?token={SECRET}", f"ftp://u:{SECRET}@h/x"):
        with pytest.raises(ConfigError) as err:
            load_settings(None, {"scoring": {"alerts": {"webhook_url": url}}})
        assert SECRET not in str(err.value) and SECRET not in repr(err.value.__cause__)
    settings = load_settings(None, {"scoring": {"alerts": {"webhook_url": f"https://h.example/x?token={SECRET}"}}})
    assert SECRET not in str(settings.model_dump(mode="json")) and SECRET not in repr(settings)
    assert settings.scoring.alerts.webhook() == f"https://h.example/x?token={SECRET}"


def test_flags_are_checked_like_the_file_and_named_as_typed(tmp_path: Path, capsys) -> None:
    """`churn features --every daily` used to end in "ValidationError ... This is a bug", then named the
    setting (`features.cadence`) instead of the option the user typed."""
    data = write_tables(tmp_path / "d", tiny_tables())
    code, message = run_cli(
        ["features", "--data", str(data), "--out", str(tmp_path / "f.parquet"), "--every", "daily"], capsys
    )
    assert code == 1 and "command-line options: 1 invalid setting:" in message
    assert "--every 'daily' (features.cadence): Input should be 'monthly' or 'weekly'" in message
    assert "bug" not in message and not (tmp_path / "f.parquet").exists()
    for flag, value, problem in [
        ("--grace-days", "-3", "(data.grace_days): Input should be greater than or equal to 0"),
        ("--data-end", "soon", "(data.data_end): 'soon' is not a date"),
        ("--engine", "sparkk", "(engine): Input should be 'duckdb' or 'spark'"),
    ]:
        code, message = run_cli(["validate", "--data", str(data), flag, value], capsys)
        assert code == 1 and f"{flag} '{value}' {problem}" in message, message
    code, message = run_cli(["train", "--data", str(data), "--seed", "x"], capsys)
    assert code == 2 and "--seed" in message  # typed options: the usage error names it already


def _scorecard(tmp_path: Path, change, name: str = "card.yaml") -> Path:
    raw = yaml.safe_load((DEFAULTS_DIR / "healthscore.yaml").read_text())
    change(raw)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_malformed_segment_condition_is_reported_with_its_key(tmp_path: Path) -> None:
    path = _scorecard(tmp_path, lambda raw: raw["segments"]["onboarding"].update(when="segment in [smb, mid"))
    with pytest.raises(ConfigError) as err:
        load_scorecard(path)
    message = str(err.value)
    assert "segments.onboarding.when.0" in message and "cannot read the value '[smb, mid'" in message


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), 1e12])
def test_a_scorecard_weight_must_be_finite_and_in_range(tmp_path: Path, weight: float) -> None:
    """A NaN weight used to pass and leave most accounts without a health band."""

    def change(raw: dict) -> None:
        first = next(iter(raw["default"]["categories"]))
        raw["default"]["categories"][first]["weight"] = weight

    with pytest.raises(ConfigError) as err:
        load_scorecard(_scorecard(tmp_path, change))
    assert "default.categories." in str(err.value) and ".weight" in str(err.value)


@pytest.mark.parametrize(
    "command",
    [
        ["score", "--as-of", "2025-01-01", "--out", "{tmp}/s.parquet"],
        ["train"],
        ["compare", "--out", "{tmp}/compare"],
        ["explain", "A1"],
        ["run", "--out", "{tmp}/run"],
    ],
)
def test_a_scorecard_or_workdir_mistake_stops_a_command_before_it_reads_the_data(
    tmp_path: Path, capsys, command
) -> None:
    """A typo in the scorecard (or its file name) used to be found after the data was read and the
    features built (minutes on a large history), and a missing file was named as the package's own
    `pipeline/defaults/<name>`; now it is the first thing checked, and names the key."""
    missing = tmp_path / "missing.yaml"
    missing.write_text(f"workdir: {tmp_path / 'work'}\nhealthscore: no-such-card.yaml\n")
    card = _scorecard(tmp_path, lambda raw: raw["default"]["categories"]["adoption"].update(wieght=10))
    typo = tmp_path / "typo.yaml"
    typo.write_text(f"workdir: {tmp_path / 'work'}\nhealthscore: {card}\n")
    misspelt = _scorecard(  # a metric no feature family makes: found after the features were built, before
        tmp_path,
        lambda raw: raw["default"]["categories"]["engagement"]["metrics"].update(
            user_utilisaton_30d=raw["default"]["categories"]["engagement"]["metrics"].pop("user_utilisation_30d")
        ),
        "misspelt-card.yaml",
    )
    metric = tmp_path / "metric.yaml"
    metric.write_text(f"workdir: {tmp_path / 'work'}\nhealthscore: {misspelt}\n")
    (tmp_path / "a-file").write_text("")
    unusable = tmp_path / "unusable.yaml"  # a working folder that cannot be created: an internal error before
    unusable.write_text(f"workdir: {tmp_path / 'a-file' / 'work'}\n")
    args = [part.format(tmp=tmp_path) for part in command]
    for config, fragment in [
        (missing, "healthscore: the scorecard file 'no-such-card.yaml' was not found next to the configuration"),
        (typo, "default.categories.adoption.wieght: unknown key 'wieght'"),
        (unusable, f"workdir: the working folder {tmp_path / 'a-file' / 'work'} cannot be created (Not a directory)"),
        (
            metric,
            f"Health scorecard {misspelt} uses 1 unknown feature or column: 'user_utilisaton_30d' (metric in "
            "default.engagement); did you mean 'user_utilisation_30d'?",
        ),
    ]:
        code, message = run_cli([*args, "--data", str(tmp_path / "no-such-data"), "--config", str(config)], capsys)
        assert code == 1 and fragment in message, message
        assert "no-such-data" not in message and "defaults" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a-file",
        "card.yaml",
        "metric.yaml",
        "missing.yaml",
        "misspelt-card.yaml",
        "typo.yaml",
        "unusable.yaml",
    ]


def test_validate_checks_the_scorecard_of_the_configuration_too(tmp_path: Path, capsys) -> None:
    """`churn validate --config` passed a scorecard that every later command refused: a rule naming a near miss
    of a feature is refused before the data is read; one naming a column of none of this data's accounts
    (a rule may read csm or a team's own column), once they are read."""
    write_tables(tmp_path / "data", tiny_tables())
    config = tmp_path / "c.yaml"
    for when, fragment in [
        (
            "tenure_dys < 120",
            "'tenure_dys' (rule of segment 'regulated' (tenure_dys < 120)); did you mean 'tenure_days'?",
        ),
        ("csm_name == 'Digital CS'", "'csm_name' (rule of segment 'regulated' (csm_name == 'Digital CS'))"),
    ]:
        card = _scorecard(tmp_path, lambda raw, when=when: raw["segments"]["regulated"].update(when=when))
        config.write_text(f"workdir: {tmp_path / 'work'}\nhealthscore: {card}\n")
        code, message = run_cli(["validate", "--data", str(tmp_path / "data"), "--config", str(config)], capsys)
        assert code == 1 and fragment in message, message
    assert "this data's accounts has: account_id, created_at, segment, regulated." in message
    assert not (tmp_path / "work").exists()


def test_a_misspelt_feature_in_category_overrides_is_named_before_the_data_is_read(tmp_path: Path, capsys) -> None:
    """`features.category_overrides: {days_overdu: support}` was ignored without a word."""
    config = tmp_path / "c.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\nfeatures:\n  category_overrides: {{days_overdu: support}}\n")
    for command in (["validate"], ["score", "--as-of", "2025-01-01", "--out", str(tmp_path / "s.parquet")]):
        args = [*command, "--data", str(tmp_path / "no-such-data"), "--config", str(config)]
        code, message = run_cli(args, capsys)
        assert code == 1, message
        assert (
            f"{config}: features.category_overrides names no feature of a data folder's feature table: "
            "'days_overdu' (did you mean 'days_overdue'?)" in message
        )
        assert "no-such-data" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_a_folder_as_tracking_uri_is_refused_before_the_data_is_read(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tracking.uri: ./mlruns` (MLflow's file store, which this MLflow refuses) failed after the data was read."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    config = tmp_path / "c.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\ntracking:\n  uri: {tmp_path / 'mlruns'}\n")
    args = ["score", "--as-of", "2025-01-01", "--out", str(tmp_path / "s.parquet")]
    code, message = run_cli([*args, "--data", str(tmp_path / "no-such-data"), "--config", str(config)], capsys)
    assert code == 1, message
    store = tmp_path / "mlruns"
    assert f"MLflow tracking store {store} (set by tracking.uri in the configuration) is not usable" in message
    assert "MLFLOW_ALLOW_FILE_STORE" in message and "no data was read, nothing was written" in message
    assert "no-such-data" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
