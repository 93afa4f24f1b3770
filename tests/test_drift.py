"""Population stability index per feature and of the score; missing features fail clearly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import ChurnError, DataContractError
from models.drift import (
    check_required_features,
    date_spread,
    drift_report,
    noise_level,
    population_stability_index,
)


def _psi(ref_counts: list[float], cur_counts: list[float]) -> float:
    """PSI by hand: bins empty on both sides drop out, a bin empty on one side holds half a row."""
    ref, cur = np.array(ref_counts, dtype=float), np.array(cur_counts, dtype=float)
    used = (ref > 0) | (cur > 0)
    ref_shares = np.where(ref > 0, ref, 0.5)[used] / ref.sum()
    cur_shares = np.where(cur > 0, cur, 0.5)[used] / cur.sum()
    return float(np.sum((cur_shares - ref_shares) * np.log(cur_shares / ref_shares)))


def test_numeric_psi_uses_reference_deciles():
    reference = pd.Series(np.arange(1000, dtype=float))
    lowest_decile = pd.Series(np.linspace(0, 99, 50))
    two_deciles = pd.Series(np.r_[np.full(30, 50.0), np.full(70, 950.0)])

    assert population_stability_index(reference, reference) == 0
    assert population_stability_index(reference, lowest_decile) == pytest.approx(
        _psi([100] * 10 + [0], [50] + [0] * 10)
    )
    assert population_stability_index(reference, two_deciles) == pytest.approx(
        _psi([100] * 10 + [0], [30] + [0] * 8 + [70, 0])
    )


def test_missing_values_are_a_bin_of_their_own():
    reference = pd.Series(np.arange(100, dtype=float))
    current = reference.copy()
    current[::2] = np.nan  # half the values go missing, the rest keep the reference's spread

    assert population_stability_index(reference, current) == pytest.approx(_psi([10] * 10 + [0], [5] * 10 + [50]))


def test_ties_merge_bins_instead_of_failing():
    reference = pd.Series(np.r_[np.zeros(700), np.arange(1, 301)], dtype=float)  # 70 % zeros
    more_zeros = pd.Series(np.r_[np.zeros(900), np.arange(1, 101)], dtype=float)

    assert population_stability_index(reference, reference) == 0
    assert population_stability_index(reference, more_zeros) > 0.1


def test_categorical_psi_compares_level_shares_including_unseen_levels():
    reference = pd.Series(["basic"] * 50 + ["pro"] * 30 + ["enterprise"] * 20, dtype="category")
    current = pd.Series(["basic"] * 40 + ["pro"] * 30 + ["trial"] * 20 + [None] * 10, dtype=str)

    expected = _psi([50, 30, 20, 0, 0], [40, 30, 0, 20, 10])  # basic, pro, enterprise, trial, missing
    assert population_stability_index(reference, current) == pytest.approx(expected)
    assert population_stability_index(pd.Series([True, False] * 50), pd.Series([True] * 100)) == pytest.approx(
        _psi([50, 50], [100, 0])
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

    assert report.columns.tolist() == ["feature", "psi", "noise_level", "date_spread", "drifted"]
    assert report["feature"].tolist() == list(reference.columns)
    psi = report.set_index("feature")["psi"]
    assert psi["logins_per_seat_30d"] < 0.02 and psi["plan"] < 0.02
    assert psi["tickets_90d"] > 0.25 and psi["churn_probability"] > 0.25
    assert report["drifted"].tolist() == [False, True, False, True]
    assert drift_report(reference, current, ["tickets_90d"], threshold=100)["drifted"].tolist() == [False]


def test_a_small_book_drawn_from_the_training_distribution_is_not_flagged_but_a_real_shift_is():
    rng = np.random.default_rng(11)
    reference = pd.DataFrame({f"f{i}": rng.lognormal(0, 1, 5000) for i in range(40)})
    unshifted = pd.DataFrame({f"f{i}": rng.lognormal(0, 1, 36) for i in range(40)})
    shifted = pd.DataFrame({f"f{i}": rng.lognormal(1, 1, 60) for i in range(40)})
    features = list(reference.columns)

    calm = drift_report(reference, unshifted, features, threshold=0.25)
    # Sampling noise alone puts many of 36 accounts' PSIs past the rule-of-thumb threshold ...
    assert (calm["psi"] > 0.25).sum() >= 8
    # ... which is why a flag also needs the PSI that noise exceeds once in a thousand (chi-square law).
    assert not calm["drifted"].any()
    # Ten deciles filled, no missing values: 9 degrees of freedom; chi2.ppf(0.999, 9) = 27.877 (tables).
    assert calm["noise_level"].iloc[0] == pytest.approx(27.877 * (1 / 5000 + 1 / 36), rel=1e-4)
    assert drift_report(reference, shifted, features, threshold=0.25)["drifted"].all()
    # At thousands of rows the noise level is far below the threshold: the threshold decides, as before.
    assert noise_level(11, 5000, 5000) < 0.02


def test_missing_feature_fails_naming_the_features_and_the_table():
    table = pd.DataFrame({"tenure_days": [1.0], "arr": [2.0]})

    check_required_features(table, ["arr", "tenure_days"])
    with pytest.raises(DataContractError, match="The scoring table lacks 2 features the model needs: plan, seats"):
        check_required_features(table, ["arr", "plan", "seats"])
    with pytest.raises(DataContractError, match=r"The current \(scoring\) data lacks 1 feature the model needs: plan"):
        drift_report(table.assign(plan="x"), table, ["plan"], threshold=0.25)
    with pytest.raises(ChurnError, match=r"'arr'.*current data has no rows"):
        population_stability_index(table["arr"], table["arr"].iloc[0:0])


def test_a_date_of_the_training_snapshots_is_not_drift_but_a_shift_past_them_is():
    """Training rows pool every snapshot date; one date's book differs from the pool by design (a monthly term
    is 28-31 days long, a year window is cut short in the data's first year), by far more than sampling noise.
    A feature is flagged only past the largest PSI a training date itself has against the reference."""
    rng = np.random.default_rng(3)
    months = pd.date_range("2024-01-01", periods=12, freq="MS")
    dates = pd.Series(np.repeat(months, 200))
    snapshots = pd.DataFrame(
        {
            "term_length_days": dates.dt.days_in_month.astype(float),  # every account's term: its month's days
            "late_payments_365d": np.where(dates < months[4], np.nan, rng.poisson(1, len(dates))),
            "logins_per_seat_30d": rng.gamma(2, 3, len(dates)),
        }
    )
    features = list(snapshots.columns)
    reference = snapshots.sample(n=1500, random_state=0)
    one_date = snapshots[dates.eq(months[8]).to_numpy()]
    assert drift_report(reference, one_date, features, threshold=0.25)["drifted"].sum() == 2  # as it was
    spread = date_spread(reference, snapshots, dates, features)
    assert spread["term_length_days"] > 1 and spread["logins_per_seat_30d"] < 0.25
    report = drift_report(reference, one_date, features, threshold=0.25, spread=spread)
    assert not report["drifted"].any()
    assert (report["date_spread"] == [spread[name] for name in features]).all()
    tripled = one_date.assign(logins_per_seat_30d=one_date["logins_per_seat_30d"] * 3)
    flagged = drift_report(reference, tripled, features, threshold=0.25, spread=spread)
    assert flagged["drifted"].tolist() == [False, False, True]


def test_a_date_a_hair_past_the_training_dates_spread_is_sampling_noise_not_drift():
    """`term_length_days` of a book as of 2025-07-01 had PSI 3.6187 against a training date's 3.6184 (June's
    30-day terms, like April's of the training dates): flagged "drifted" by 0.0002. A new date drawn like the
    training dates passes their largest PSI about once in as many dates (~1 in 27: 3 features of 101 per run,
    on data without any drift); drift must pass that spread by what sampling noise adds at these sizes."""
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"term_length_days": rng.choice([28.0, 30.0, 31.0], 2000, p=[0.1, 0.3, 0.6])})
    book = pd.DataFrame({"term_length_days": rng.choice([30.0, 31.0], 400, p=[0.8, 0.2])})
    psi = drift_report(reference, book, ["term_length_days"], threshold=0.25)["psi"].iloc[0]
    same_kind = drift_report(
        reference, book, ["term_length_days"], threshold=0.25, spread={"term_length_days": psi - 2e-4}
    )
    assert not same_kind["drifted"].iloc[0]
    past = psi - same_kind["noise_level"].iloc[0] - 0.01  # a spread the book passes by more than the noise
    assert drift_report(reference, book, ["term_length_days"], threshold=0.25, spread={"term_length_days": past})[
        "drifted"
    ].iloc[0]
