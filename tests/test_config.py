"""Settings: the default file mirrors the code defaults; user files and flags override; errors are precise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from features.errors import ConfigError
from pipeline.config import DEFAULT_CONFIG_FILE, Settings, load_settings


def test_default_file_matches_code_defaults() -> None:
    loaded, defaults = load_settings(DEFAULT_CONFIG_FILE), Settings()
    # The file names its scorecard relative to itself; both resolve to config/healthscore.yaml.
    assert loaded.healthscore_path() == defaults.healthscore_path()
    assert loaded.model_dump(exclude={"healthscore"}) == defaults.model_dump(exclude={"healthscore"})


def test_user_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  grace_days: 45\nmodel:\n  seed: 7\n")
    settings = load_settings(path, {"model": {"seed": 11}})
    assert settings.data.grace_days == 45
    assert settings.model.seed == 11  # flag beats file
    assert settings.features.windows == [7, 30, 90]  # untouched default


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("data:\n  grace_days: -1\n", "data.grace_days: Input should be greater than or equal to 0"),
        ("features:\n  windows: [0, 30]\n", "features.windows"),
        ("model:\n  bogus: 1\n", "model.bogus: unknown key 'bogus'\n"),  # nothing close: no suggestion
        (
            "scoring:\n  alerts:\n    score_dorp: 5\n",
            "scoring.alerts.score_dorp: unknown key 'score_dorp'; did you mean 'score_drop'?",
        ),
        ("modle:\n  seed: 1\n", "modle: unknown key 'modle'; did you mean 'model'?"),
        ("scoring:\n  risk_bands: {hihg: 0.6}\n", "did you mean 'high'?"),
        ("model: [1, 2\n", "is not valid YAML"),
        ("- a\n- b\n", "must hold a mapping"),
        (  # MLflow refused it after the whole training run: an internal error
            "model:\n  name: churn/risk\n",
            "model.name: a registered model name cannot have '/', e.g. churn-risk or churn_risk_eu",
        ),
        (  # pydantic took `true` as 1: one day of grace
            "data:\n  grace_days: true\n",
            "data.grace_days: true/false (or yes/no, on/off) is not a number here: write the number",
        ),
        ("features:\n  windows: [7, on]\n", "features.windows: true/false (or yes/no, on/off) is not a number"),
        (
            "scoring:\n  alerts: 5\n",  # pydantic said "a valid dictionary or instance of AlertSettings"
            "scoring.alerts: must be a mapping of keys to values (indented `key: value` lines), not a number",
        ),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert fragment in f"{err.value}\n"
    assert str(path) in str(err.value)


def test_a_mistyped_scorecard_key_gets_the_closest_known_one(tmp_path: Path) -> None:
    import yaml

    from pipeline.config import DEFAULTS_DIR, load_scorecard

    raw = yaml.safe_load((DEFAULTS_DIR / "healthscore.yaml").read_text())
    raw["default"]["categories"]["support"]["wieght"] = raw["default"]["categories"]["support"].pop("weight")
    raw["bands"]["gren"] = raw["bands"].pop("green")
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_scorecard(path)
    assert "default.categories.support.wieght: unknown key 'wieght'; did you mean 'weight'?" in str(err.value)
    assert "bands.gren: unknown key 'gren'; did you mean 'green'?" in str(err.value)


def test_a_yes_no_scorecard_weight_is_refused_not_read_as_one(tmp_path: Path) -> None:
    """`weight: yes` weighed the category 1 (pydantic reads true as 1); a yes/no still passes where one goes."""
    import yaml

    from pipeline.config import DEFAULTS_DIR, load_scorecard

    raw = yaml.safe_load((DEFAULTS_DIR / "healthscore.yaml").read_text())
    raw["default"]["categories"]["support"]["weight"] = True
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_scorecard(path)
    assert "default.categories.support.weight: true/false (or yes/no, on/off) is not a number" in str(err.value)
    load_scorecard(DEFAULTS_DIR / "healthscore.yaml")  # its boolean metrics and conditions still read


def test_a_yaml_mistake_names_the_file_and_line_where_it_is(tmp_path: Path) -> None:
    """PyYAML said where a syntax error is `in "<unicode string>", line 3`: the line is the file's own."""
    path = tmp_path / "pipeline.yaml"
    path.write_text("data:\n  grace_days: 45\n features: [1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert f'in "{path}", line 3' in str(err.value) and "<unicode string>" not in str(err.value)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")
    # a folder, or a file that is not text, used to be an internal error (IsADirectoryError, UnicodeDecodeError)
    with pytest.raises(ConfigError, match=re.escape(f"Configuration file {tmp_path} cannot be read: Is a directory")):
        load_settings(tmp_path)
    (tmp_path / "utf16.yaml").write_bytes("model: {seed: 1}".encode("utf-16"))
    with pytest.raises(ConfigError, match=r"utf16\.yaml is not UTF-8 text"):
        load_settings(tmp_path / "utf16.yaml")


def test_tracking_uri_defaults_to_sqlite_in_the_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = load_settings(None, {"workdir": str(tmp_path / "wd")})
    assert settings.tracking_uri() == f"sqlite:///{tmp_path / 'wd' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert settings.tracking_uri() == "http://127.0.0.1:5999"


def test_a_date_written_as_yaml_reads_as_the_date_it_says(tmp_path: Path) -> None:
    # PyYAML made an unquoted date a `date` object (refused: "Input should be a valid string") and an
    # impossible one an internal error (ValueError: month must be in 1..12); both are text to the settings
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  data_end: 2025-06-01\n")
    assert load_settings(path).data.data_end == "2025-06-01"
    path.write_text("data:\n  data_end: 2025-13-01\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    expected = f"{path}: 1 invalid setting:\n  data.data_end: '2025-13-01' is not a date (use YYYY-MM-DD)"
    assert expected in str(err.value)


def test_a_section_whose_keys_are_all_commented_out_keeps_its_defaults(tmp_path: Path) -> None:
    # YAML reads `alerts:` with nothing under it as null, which was refused ("Input should be a valid dictionary")
    path = tmp_path / "c.yaml"
    path.write_text("data:\nscoring:\n  alerts:\n    # score_drop: 5\n  top_drivers: 4\nspark:\n  conf:\n")
    settings = load_settings(path)
    assert settings.scoring.alerts == Settings().scoring.alerts
    assert settings.scoring.top_drivers == 4
    assert settings.data == Settings().data
    assert settings.spark.conf == {}
    path.write_text("tracking:\n  experiment:\n")  # a null setting (not a section) is still refused
    with pytest.raises(ConfigError, match=r"tracking\.experiment: Input should be a valid string"):
        load_settings(path)


def test_a_scorecard_not_found_names_the_configuration_file_that_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "c.yaml"
    path.write_text("healthscore: nope.yaml\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path).healthscore_path()
    assert str(err.value).startswith(
        f"{path}: healthscore: the scorecard file 'nope.yaml' was not found next to the configuration file "
        f"({tmp_path / 'conf'}), in the current folder ({tmp_path})"
    )
    path.write_text(f"healthscore: {tmp_path}\n")  # a folder was "does not exist"
    with pytest.raises(ConfigError, match=re.escape(f"{path}: healthscore: '{tmp_path}' is a folder; name the")):
        load_settings(path).healthscore_path()
    (tmp_path / "conf" / "card.yaml").write_text("")
    path.write_text("healthscore: card.yaml\n")  # next to the file, whatever the current folder
    assert load_settings(path, {"model": {"seed": 3}}).healthscore_path() == tmp_path / "conf" / "card.yaml"


def test_a_key_written_twice_is_an_error_not_the_last_one_silently(tmp_path: Path) -> None:
    from pipeline.config import load_scorecard

    card = tmp_path / "card.yaml"  # the second `support` replaced the first without a word
    card.write_text(
        "default:\n  categories:\n    support:\n      metrics: {csat_mean_90d: {scheme: linear, bad: 1, good: 5}}\n"
        "    adoption:\n      metrics: {feature_breadth_30d: {scheme: linear, bad: 0, good: 9}}\n"
        "    support:\n      metrics: {tickets_90d: {scheme: linear, bad: 9, good: 0}}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_scorecard(card)
    assert f"Configuration file {card} is not valid YAML" in str(err.value)
    assert "found the key 'support' twice (first on line 3); YAML keeps only one" in str(err.value)
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  seed: 1\nmodel:\n  seed: 2\n")
    with pytest.raises(ConfigError, match="found the key 'model' twice"):
        load_settings(path)
    path.write_text("model:\n  <<: {seed: 1, tune_trials: 0}\n  seed: 7\n")  # a merged key may be overridden
    assert load_settings(path).model.seed == 7


def test_scorecard_keys_in_the_configuration_say_where_they_belong(tmp_path: Path) -> None:
    from pipeline.config import DEFAULTS_DIR

    card = tmp_path / "card.yaml"
    card.write_text((DEFAULTS_DIR / "healthscore.yaml").read_text())
    with pytest.raises(ConfigError) as err:
        load_settings(card)
    assert str(err.value).endswith(
        f"{card} is a health scorecard (it has default.categories), not a configuration: pass a configuration "
        f"file that names it, e.g. one line `healthscore: {card}`."
    )
    path = tmp_path / "c.yaml"  # the colour bands are the scorecard's; the settings only listed an unknown key
    path.write_text("bands: {green: 75, yellow: 65}\n")
    with pytest.raises(ConfigError, match=r"bands: set in the health scorecard \(the file the `healthscore` key names"):
        load_settings(path)


def test_paths_from_the_home_folder_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "card.yaml").write_text("")
    path = tmp_path / "c.yaml"
    path.write_text("workdir: ~/churn-work\nhealthscore: ~/card.yaml\n")
    settings = load_settings(path)
    assert settings.workdir_path == tmp_path / "churn-work"  # was <current folder>/~/churn-work
    assert settings.healthscore_path() == tmp_path / "card.yaml"
