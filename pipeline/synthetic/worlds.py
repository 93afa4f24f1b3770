"""Named worlds for `churn generate --world NAME`: the same simulation with churn driven by other mechanics.

A model that looks good on one generating process may only have learnt that process; these
worlds move what drives churn (and, for B2C, what the data looks like) while the event model
stays the same, so `bench/quality.py` can tell a model that learns churn from one that learns
our default world. Intercept shifts keep each world's churn rate near the default's unless the
world is about the rate itself. `_truth/terms.parquet` is written for every world.
"""

from __future__ import annotations

from dataclasses import replace

from pipeline.synthetic.knobs import World

DEFAULT = World()

B2C_SEGMENTS = (
    replace(DEFAULT.segments[0], name="consumer", share=0.75, seats_median=1.0, seats_sigma=0.0, seats_range=(1, 1),
            term_months=((1, 1.0),), plans=(("starter", 0.8), ("professional", 0.2)), addon_rate=0.0),
    replace(DEFAULT.segments[0], name="family", share=0.25, seats_median=3.0, seats_sigma=0.3, seats_range=(2, 6),
            term_months=((1, 1.0),), plans=(("starter", 0.5), ("professional", 0.5)), health_mean=0.05,
            churn_logit=0.0, addon_rate=0.0),
)  # fmt: skip

WORLDS: dict[str, World] = {
    world.name: world
    for world in (
        DEFAULT,
        World(
            "usage_decline",
            "churn driven mostly by falling usage: the trend of health over the last quarter dominates",
            churn_shift=-0.1, churn_health=-0.5, churn_trend=-3.5, churn_friction=0.15, churn_enablement=-0.1,
        ),
        World(
            "support_pain",
            "churn driven mostly by support pain: friction (bugs, incidents, urgent tickets) dominates",
            churn_shift=-0.1, churn_health=-0.4, churn_trend=-0.3, churn_friction=1.6, churn_enablement=-0.1,
            incident_weekly=0.03, friction_level_sigma=0.7,
        ),
        World(
            "seat_contraction",
            "churn driven mostly by seat contraction at the last renewal (contractions are common)",
            churn_shift=0.1, churn_health=-0.6, churn_trend=-0.3, churn_friction=0.2, churn_contraction=4.0,
            contract_logit=-0.8,
        ),
        World(
            "champion_loss",
            "churn driven mostly by losing the internal champion (frequent; a sharp drop in activity)",
            churn_shift=-0.2, churn_health=-0.6, churn_trend=-0.5, churn_friction=0.2, churn_champion=1.2,
            champion_loss_weekly=0.01,
        ),
        World(
            "b2c_monthly",
            "B2C: consumers and families on monthly terms, usage events as the only event table",
            segments=B2C_SEGMENTS, event_tables=("usage_events",), monthly_to_annual_share=0.0, churn_shift=0.8,
            usage_per_user=3.0, expand_logit=-12.0, contract_logit=-12.0,  # a plan's seats stay as bought
        ),
        World(
            "imbalanced",
            "the default mechanics with churn near 2 % of scored accounts (heavy class imbalance)",
            churn_shift=-2.5,
        ),
        World(
            "no_signal",
            "churn independent of everything observable: every renewal churns with the same probability",
            no_signal=0.07,
        ),
    )
}  # fmt: skip


def world_named(name: str) -> World:
    from features.errors import ConfigError

    if name not in WORLDS:
        raise ConfigError(f"generate: unknown world '{name}'; choose one of {', '.join(WORLDS)}.")
    return WORLDS[name]
