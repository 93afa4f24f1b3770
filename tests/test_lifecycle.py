"""LAER stage: each rule, the precedence between them, thresholds from settings, missing inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.lifecycle import expand_gap, lifecycle_stage
from pipeline.config import LifecycleSettings, load_settings

DEFAULTS = LifecycleSettings()  # land 120 d, renew window 90 d, seat growth 0.1, utilisation 1.0


def _table(rows: list[dict[str, float]], index: list[str] | None = None) -> pd.DataFrame:
    base = {
        "tenure_days": 400.0,
        "seat_change_last_renewal": 0.0,
        "user_utilisation_30d": 0.5,
        "days_to_renewal": 200.0,
        "seats": 10.0,
    }
    return pd.DataFrame([{**base, **row} for row in rows], index=index)


def test_each_rule_and_the_precedence_renew_land_expand_adopt():
    table = _table(
        [
            {},  # nothing special
            {"days_to_renewal": 90.0},  # renewal window is inclusive
            {"days_to_renewal": 91.0},
            {"tenure_days": 119.0},
            {"tenure_days": 120.0},
            {"seat_change_last_renewal": 0.1},
            {"seat_change_last_renewal": 0.09},
            {"user_utilisation_30d": 1.01},
            {"user_utilisation_30d": 1.0},
            {"tenure_days": 30.0, "days_to_renewal": 10.0},  # new and renewing: renew wins
            {"tenure_days": 30.0, "user_utilisation_30d": 1.5},  # new and over-using: land wins
            {"seat_change_last_renewal": 0.5, "days_to_renewal": 20.0},  # grew but renewing: renew wins
        ],
        index=[f"acc{i}" for i in range(12)],
    )

    stages = lifecycle_stage(table, **DEFAULTS.model_dump())

    assert stages.index.equals(table.index)
    assert stages.tolist() == [
        "adopt", "renew", "adopt", "land", "adopt", "expand", "adopt", "expand", "adopt", "renew", "land", "renew",
    ]  # fmt: skip


def test_thresholds_come_from_configuration():
    table = _table([{"tenure_days": 150.0, "days_to_renewal": 100.0, "seat_change_last_renewal": 0.05}])
    settings = load_settings(
        overrides={"lifecycle": {"land_days": 200, "renew_window_days": 30, "expand_seat_growth": 0.01}}
    ).lifecycle

    assert lifecycle_stage(table, **DEFAULTS.model_dump()).tolist() == ["adopt"]
    assert lifecycle_stage(table, **settings.model_dump()).tolist() == ["land"]
    assert lifecycle_stage(table.assign(tenure_days=300.0), **settings.model_dump()).tolist() == ["expand"]
    assert lifecycle_stage(table.assign(days_to_renewal=25.0), **settings.model_dump()).tolist() == ["renew"]


def test_zero_growth_threshold_means_any_growth_not_no_change():
    settings = LifecycleSettings(expand_seat_growth=0.0)
    table = _table([{"seat_change_last_renewal": 0.0}, {"seat_change_last_renewal": 0.02}])
    assert lifecycle_stage(table, **settings.model_dump()).tolist() == ["adopt", "expand"]


def test_without_tenure_or_days_to_renewal_the_stage_is_empty_not_adopt():
    """A prepared table without `days_to_renewal` got `land`/`adopt` for every row: an account renewing next
    week was `adopt`. What cannot be told is left empty; expansion inputs only ever add `expand`."""
    prepared = pd.DataFrame({"tenure_days": [50.0, 500.0, np.nan], "arr": [1.0, 2.0, 3.0]})
    assert lifecycle_stage(prepared, **DEFAULTS.model_dump()).isna().all()

    gaps = _table(
        [
            {"days_to_renewal": np.nan},
            {"tenure_days": np.nan},
            {"tenure_days": np.nan, "days_to_renewal": 10.0},  # renewing, however long a customer
            {"seat_change_last_renewal": np.nan, "user_utilisation_30d": np.nan},
        ]
    )
    assert lifecycle_stage(gaps, **DEFAULTS.model_dump()).tolist()[2:] == ["renew", "adopt"]
    assert lifecycle_stage(gaps, **DEFAULTS.model_dump()).iloc[:2].isna().all()
    no_growth = _table([{}]).drop(columns=["seat_change_last_renewal", "user_utilisation_30d"])
    assert lifecycle_stage(no_growth, **DEFAULTS.model_dump()).tolist() == ["adopt"]
    assert lifecycle_stage(pd.DataFrame(index=pd.Index([], name="x")), **DEFAULTS.model_dump()).empty


def test_short_terms_renew_only_in_their_last_quarter():
    """A monthly or weekly subscriber is always within 90 days of its term end; it is renewing only
    near the end of its term, so the other stages still mean something on B2C data."""
    table = _table(
        [
            {"term_length_days": 30.0, "days_to_renewal": 20.0},
            {"term_length_days": 30.0, "days_to_renewal": 7.0},
            {"term_length_days": 7.0, "days_to_renewal": 5.0, "tenure_days": 30.0},
            {"term_length_days": 7.0, "days_to_renewal": 1.0},
            {"term_length_days": 365.0, "days_to_renewal": 90.0},  # annual: the configured window
            {"term_length_days": np.nan, "days_to_renewal": 60.0},  # unknown length: the configured window
        ]
    )
    assert lifecycle_stage(table, **DEFAULTS.model_dump()).tolist() == [
        "adopt",
        "renew",
        "land",
        "renew",
        "renew",
        "renew",
    ]


def test_utilisation_makes_an_account_expand_only_where_its_seat_count_is_known():
    """Without a seat count an account is counted whole: its `user_utilisation_30d` is its active users (4, not
    400 % of its seats), so every account without `seats` that was not renewing or landing read `expand`."""
    table = _table([{"user_utilisation_30d": 4.0, "seats": np.nan}, {"user_utilisation_30d": 4.0}])
    assert lifecycle_stage(table, **DEFAULTS.model_dump()).tolist() == ["adopt", "expand"]
    unseated = table.drop(columns="seats")  # a data folder whose subscriptions have no seats column
    assert lifecycle_stage(unseated, **DEFAULTS.model_dump()).tolist() == ["adopt", "adopt"]
    grew = _table([{"seat_change_last_renewal": 0.5, "seats": np.nan}])  # a growth needs no current count
    assert lifecycle_stage(grew, **DEFAULTS.model_dump()).tolist() == ["expand"]
    # a prepared table with utilisation but no seats is told that no account can be expand
    assert "counts only beside a seats column" in expand_gap(["tenure_days", "days_to_renewal", "user_utilisation_30d"])
    assert expand_gap(["tenure_days", "days_to_renewal", "user_utilisation_30d", "seats"]) is None
