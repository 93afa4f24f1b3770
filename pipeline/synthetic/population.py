"""Who the customers are and how healthy they are, week by week.

The population (firmographics and the first contract) and the latent state (health, product
friction, enablement) are simulated for every account at once; events and renewals are then
read off this state. Latent values are NaN before an account landed.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
import pyarrow as pa

from pipeline.synthetic import knobs as k
from pipeline.synthetic.timeline import Timeline, add_months, days_to_us


@dataclass(frozen=True)
class Population:
    """One entry per account, ordered by landing date (account ids follow that order, as in a CRM)."""

    account_ids: np.ndarray  # str
    created: np.ndarray  # day the account landed
    segment: np.ndarray  # index into knobs.SEGMENTS
    industry: np.ndarray  # index into knobs.INDUSTRIES
    regulated: np.ndarray
    region: np.ndarray  # index into knobs.REGIONS
    csm: np.ndarray  # str
    first_term_start: np.ndarray  # start of the first term in the data (installed base: the term running at start)
    prior_terms: np.ndarray  # terms the installed base already renewed before the data starts
    term_months: np.ndarray
    plan: np.ndarray  # index into knobs.PLAN_ORDER
    seats: np.ndarray
    price_factor: np.ndarray  # negotiated discount or premium, kept across renewals
    feature_preference: np.ndarray  # (accounts, catalogue features): each account's taste
    segments: tuple[k.Segment, ...] = k.SEGMENTS  # what `segment` indexes

    @property
    def size(self) -> int:
        return len(self.account_ids)

    def accounts_table(self) -> pa.Table:
        return pa.table(
            {
                "account_id": pa.array(self.account_ids, pa.string()),
                "created_at": pa.array(days_to_us(self.created), pa.timestamp("us")),
                "segment": pa.array([self.segments[i].name for i in self.segment], pa.string()),
                "industry": pa.array([k.INDUSTRIES[i][0] for i in self.industry], pa.string()),
                "regulated": pa.array(self.regulated, pa.bool_()),
                "region": pa.array([k.REGIONS[i][0] for i in self.region], pa.string()),
                "csm": pa.array(self.csm, pa.string()),
            }
        )


def contract_arr(seats: np.ndarray, plan: np.ndarray, term_months: np.ndarray, price_factor: np.ndarray) -> np.ndarray:
    """Annual recurring revenue: seats x list price of the plan, discounted for multi-year terms."""
    price = np.array([k.PLAN_PRICE[p] for p in k.PLAN_ORDER])[plan]
    discount = np.where(term_months >= 24, k.MULTI_YEAR_DISCOUNT, 1.0)
    return np.round(seats * price * discount * price_factor, 2)


def _choice(rng: np.random.Generator, options: tuple[tuple[object, float], ...], size: int) -> np.ndarray:
    values = np.array([o for o, _ in options])
    weights = np.array([w for _, w in options])
    return values[rng.choice(len(values), size=size, p=weights / weights.sum())]


def _landing_days(rng: np.random.Generator, timeline: Timeline, n: int) -> np.ndarray:
    """Installed base spread over the past years; new logos at a gently growing rate."""
    n_base = round(n * k.INSTALLED_BASE_SHARE)
    base = timeline.start_day - rng.integers(14, k.INSTALLED_BASE_MAX_AGE_DAYS, n_base)
    span = timeline.end_day - k.LANDING_STOP_DAYS - timeline.start_day
    # Inverse CDF of a linearly growing density on [0, 1].
    g = k.LANDING_GROWTH
    u = rng.random(n - n_base)
    position = (np.sqrt(1 + g * (2 + g) * u) - 1) / g if g > 0 else u
    new = timeline.start_day + np.floor(position * max(span, 1)).astype(np.int64)
    return np.concatenate([base, new])


def _csm_names(rng: np.random.Generator, n_named: int) -> np.ndarray:
    combos = [f"{first} {last}" for first, last in product(k.CSM_FIRST, k.CSM_LAST)]
    order = rng.permutation(len(combos))
    return np.array(
        [
            combos[order[i % len(combos)]] + (f" {i // len(combos) + 1}" if i >= len(combos) else "")
            for i in range(n_named)
        ]
    )


def _first_term(created: np.ndarray, months: np.ndarray, start_day: int) -> tuple[np.ndarray, np.ndarray]:
    """The term running at the data start for accounts that landed before it, and how many preceded it."""
    created_month = created.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    start_month = np.datetime64(start_day, "D").astype("datetime64[M]").astype(np.int64)
    terms_before = np.maximum((start_month - created_month) // months, 0)
    for _ in range(2):  # month arithmetic clips days of month: correct the estimate either way
        terms_before = np.where(
            add_months(created, (terms_before + 1) * months) <= start_day, terms_before + 1, terms_before
        )
        terms_before = np.where(add_months(created, terms_before * months) > start_day, terms_before - 1, terms_before)
    return add_months(created, terms_before * months), terms_before


def build_population(rng: np.random.Generator, timeline: Timeline, n: int, world: k.World = k.World()) -> Population:
    segments = world.segments
    shares = np.array([s.share for s in segments])
    segment = rng.choice(len(segments), size=n, p=shares / shares.sum())
    created = _landing_days(rng, timeline, n)
    order = np.lexsort((rng.random(n), created))
    segment, created = segment[order], created[order]

    industry_weights = np.array([w for _, _, w in k.INDUSTRIES]).T  # (segments, industries)
    industry_weights = industry_weights / industry_weights.sum(axis=1, keepdims=True)
    cumulative = industry_weights.cumsum(axis=1)[segment]
    industry = np.minimum((rng.random(n)[:, None] > cumulative).sum(axis=1), len(k.INDUSTRIES) - 1)
    regulated = np.array([reg for _, reg, _ in k.INDUSTRIES])[industry]
    region_shares = np.array([share for _, share, _ in k.REGIONS])
    region = rng.choice(len(k.REGIONS), size=n, p=region_shares / region_shares.sum())

    seats = np.empty(n)
    months = np.empty(n, dtype=np.int64)
    plan = np.empty(n, dtype=np.int64)
    for index, seg in enumerate(segments):
        members = np.flatnonzero(segment == index)
        raw = rng.lognormal(np.log(seg.seats_median), seg.seats_sigma, members.size)
        seats[members] = np.clip(np.round(raw), *seg.seats_range)
        months[members] = _choice(rng, seg.term_months, members.size)
        plan_names = _choice(rng, seg.plans, members.size)
        plan[members] = [k.PLAN_ORDER.index(p) for p in plan_names]
    price_factor = rng.lognormal(0.0, k.NEGOTIATION_SIGMA, n)

    first_start, prior_terms = _first_term(created, months, timeline.start_day)
    is_new = created >= timeline.start_day
    first_start = np.where(is_new, created, first_start)
    prior_terms = np.where(is_new, 0, prior_terms)

    named = _csm_names(rng, max(3, -(-n // k.ACCOUNTS_PER_CSM)))
    csm = named[rng.integers(0, named.size, n)].astype(object)
    tech_touch = (segment == 0) & (contract_arr(seats, plan, months, price_factor) < k.TECH_TOUCH_MAX_ARR)
    csm[tech_touch] = k.TECH_TOUCH_CSM

    width = max(5, len(str(n)))
    return Population(
        account_ids=np.array([f"A{i:0{width}d}" for i in range(1, n + 1)], dtype=object),
        created=created,
        segment=segment,
        industry=industry,
        regulated=regulated,
        region=region,
        csm=csm,
        first_term_start=first_start,
        prior_terms=prior_terms,
        term_months=months,
        plan=plan,
        seats=seats,
        price_factor=price_factor,
        feature_preference=rng.lognormal(0.0, k.FEATURE_PREFERENCE_SIGMA, (n, len(k.FEATURES))).astype(np.float32),
        segments=segments,
    )


@dataclass(frozen=True)
class Latents:
    """Weekly latent state, shape (accounts, weeks); NaN before the account landed. `champion` is the
    part of the health loss due to champions leaving (kept only for worlds whose churn reads it)."""

    health: np.ndarray
    friction: np.ndarray
    enablement: np.ndarray
    champion: np.ndarray | None = None


def _ar1(rng: np.random.Generator, shape: tuple[int, int], persistence: float, spread: float) -> np.ndarray:
    """Stationary AR(1) paths along the week axis with the given stationary standard deviation."""
    shocks = rng.normal(0.0, spread * np.sqrt(1 - persistence**2), shape)
    path = np.empty(shape)
    path[:, 0] = rng.normal(0.0, spread, shape[0])
    for week in range(1, shape[1]):
        path[:, week] = persistence * path[:, week - 1] + shocks[:, week]
    return path


def _decayed(impulses: np.ndarray, decay: float) -> np.ndarray:
    """Impulses that fade geometrically: a sharp event with a slow recovery."""
    out = np.empty_like(impulses)
    out[:, 0] = impulses[:, 0]
    for week in range(1, impulses.shape[1]):
        out[:, week] = decay * out[:, week - 1] + impulses[:, week]
    return out


def simulate_latents(
    rng: np.random.Generator, population: Population, timeline: Timeline, world: k.World = k.World()
) -> Latents:
    n, weeks = population.size, timeline.n_weeks
    shape = (n, weeks)
    landed = np.arange(weeks)[None, :] >= timeline.week_of(population.created)[:, None]

    level_deviation = rng.normal(0.0, k.HEALTH_LEVEL_SIGMA, n)
    level = np.array([s.health_mean for s in population.segments])[population.segment] + level_deviation
    champion_lost = (rng.random(shape) < world.champion_loss_weekly) & landed
    drops = np.where(champion_lost, rng.uniform(*k.CHAMPION_LOSS_DROP, shape), 0.0)
    drift = _ar1(rng, shape, k.HEALTH_AR, k.HEALTH_DRIFT_SIGMA)
    champion = _decayed(drops, k.CHAMPION_RECOVERY)
    health = level[:, None] + drift - champion

    friction_level = k.FRICTION_HEALTH_LINK * level_deviation + rng.normal(0.0, world.friction_level_sigma, n)
    incidents = (rng.random(shape) < world.incident_weekly) & landed
    incident_size = np.where(incidents, rng.uniform(*k.INCIDENT_SIZE, shape), 0.0)
    friction = (
        friction_level[:, None]
        + _ar1(rng, shape, k.FRICTION_AR, k.FRICTION_DRIFT_SIGMA)
        + _decayed(incident_size, k.INCIDENT_DECAY)
    )

    enablement_level = k.ENABLEMENT_HEALTH_LINK * level_deviation + rng.normal(0.0, k.ENABLEMENT_LEVEL_SIGMA, n)
    enablement = enablement_level[:, None] + _ar1(rng, shape, k.ENABLEMENT_AR, k.ENABLEMENT_DRIFT_SIGMA)

    def masked(values: np.ndarray) -> np.ndarray:
        return np.where(landed, values, np.nan).astype(np.float32)

    return Latents(
        masked(health), masked(friction), masked(enablement), masked(champion) if world.churn_champion else None
    )
