"""Inputs from people rather than events: the CSM's sentiment rating, a metric a scorecard can weigh.

It is not computed from the data: scoring reads the ratings in force at `as_of` from the override
store (`churn override ACCOUNT --sentiment ...`) into a `csm_sentiment` column (1 = red ... 5 =
green, empty without a rating) before the health score is computed, so a scorecard names it like
any feature, e.g. `relationship: {weight: 10, metrics: {csm_sentiment: {scheme: linear, bad: 1, good: 5}}}`.
Training and `churn compare` have no ratings for past dates: the metric is dropped there, with the
usual warning, and its weight goes to the other metrics.
"""

from __future__ import annotations

from features.registry import FeatureSpec, register

CSM_SENTIMENT = "csm_sentiment"
SOURCE = "override store"

register(
    FeatureSpec(
        CSM_SENTIMENT,
        SOURCE,
        "relationship",
        "CSM sentiment rating (1 = red, 3 = yellow, 5 = green)",
        "higher",
        "CSM sentiment {value:.0f} of 5",
        absent_reason="no CSM sentiment ratings here (they come from `churn override --sentiment` at scoring)",
        missing="no CSM sentiment rating in force",
    )
)
