"""Population stability index per feature and of the score; missing features fail clearly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import ChurnError, DataContractError
from models.drift import EMPTY_SHARE, check_required_features, drift_report, population_stability_index


def _psi(ref_shares: list[float], cur_shares: list[float]) -> float:
    ref = np.where(np.array(ref_shares) > 0, ref_shares, EMPTY_SHARE)
    cur = np.where(np.array(cur_shares) > 0, cur_shares, EMPTY_SHARE)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def test_numeric_psi_uses_reference_deciles():
    reference = pd.Series(np.arange(1000, dtype=float))
    lowest_decile = pd.Series(np.linspace(0, 99, 50))
    two_deciles = pd.Series(np.r_[np.full(30, 50.0), np.full(70, 950.0)])

    assert population_stability_index(reference, reference) == 0
    assert population_stability_index(reference, lowest_decile) == pytest.approx(_psi([0.1] * 10 + [0], [1] + [0] * 10))
    assert population_stability_index(reference, two_deciles) == pytest.approx(
        _psi([0.1] * 10 + [0], [0.3] + [0] * 8 + [0.7, 0])
    )


def test_missing_values_are_a_bin_of_their_own():
    reference = pd.Series(np.arange(100, dtype=float))
    current = reference.copy()
    current[::2] = np.nan  # half the values go missing, the rest keep the reference's spread

    assert population_stability_index(reference, current) == pytest.approx(_psi([0.1] * 10 + [0], [0.05] * 10 + [0.5]))


def test_ties_merge_bins_instead_of_failing():
    reference = pd.Series(np.r_[np.zeros(700), np.arange(1, 301)], dtype=float)  # 70 % zeros
    more_zeros = pd.Series(np.r_[np.zeros(900), np.arange(1, 101)], dtype=float)

    assert population_stability_index(reference, reference) == 0
    assert population_stability_index(reference, more_zeros) > 0.1


def test_categorical_psi_compares_level_shares_including_unseen_levels():
    reference = pd.Series(["basic"] * 50 + ["pro"] * 30 + ["enterprise"] * 20, dtype="category")
    current = pd.Series(["basic"] * 40 + ["pro"] * 30 + ["trial"] * 20 + [None] * 10, dtype=str)

    expected = _psi([0.5, 0.3, 0.2, 0, 0], [0.4, 0.3, 0, 0.2, 0.1])  # basic, pro, enterprise, trial, missing
    assert population_stability_index(reference, current) == pytest.approx(expected)
    assert population_stability_index(pd.Series([True, False] * 50), pd.Series([True] * 100)) == pytest.approx(
        _psi([0.5, 0.5], [1.0, 0])
    )


def test_drift_report_flags_features_and_the_score_past_the_threshold():
    rng = np.random.default_rng(7)
    n = 5000
    reference = pd.DataFrame(
        {
            "logins_per_seat_30d": rng.gamma(2, 3, n),
            "tickets_90d": rng.poisson(2, n).astype(float),
            "plan": rng.choice(["basic", "pro"], n),
            "churn_probability": rng.beta(2, 8, n),
        }
    )
    current = pd.DataFrame(
        {
            "logins_per_seat_30d": rng.gamma(2, 3, n),  # same distribution
            "tickets_90d": rng.poisson(5, n).astype(float),  # support load more than doubled
            "plan": rng.choice(["basic", "pro"], n, p=[0.52, 0.48]),
            "churn_probability": rng.beta(4, 6, n),  # the score moved up
            "extra": 1.0,
        }
    )

    report = drift_report(reference, current, list(reference.columns), threshold=0.25)

    assert report.columns.tolist() == ["feature", "psi", "drifted"]
    assert report["feature"].tolist() == list(reference.columns)
    psi = report.set_index("feature")["psi"]
    assert psi["logins_per_seat_30d"] < 0.02 and psi["plan"] < 0.02
    assert psi["tickets_90d"] > 0.25 and psi["churn_probability"] > 0.25
    assert report["drifted"].tolist() == [False, True, False, True]
    assert drift_report(reference, current, ["tickets_90d"], threshold=100)["drifted"].tolist() == [False]


def test_missing_feature_fails_naming_the_features_and_the_table():
    table = pd.DataFrame({"tenure_days": [1.0], "arr": [2.0]})

    check_required_features(table, ["arr", "tenure_days"])
    with pytest.raises(
        DataContractError, match="The scoring table lacks 2 feature\\(s\\) the model needs: plan, seats"
    ):
        check_required_features(table, ["arr", "plan", "seats"])
    with pytest.raises(DataContractError, match=r"The current \(scoring\) data lacks 1 feature\(s\).*: plan"):
        drift_report(table.assign(plan="x"), table, ["plan"], threshold=0.25)
    with pytest.raises(ChurnError, match=r"'arr'.*current data has no rows"):
        population_stability_index(table["arr"], table["arr"].iloc[0:0])
