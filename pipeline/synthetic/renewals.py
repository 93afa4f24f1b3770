"""Contracts over time: each term ends in a renewal decision drawn from a known probability.

The probability (`p_churn`, the ground truth) is a logistic function of what the account went
through before the term end: its health over the last quarter, the trend of that health, its
product friction, its enablement, its segment and whether this is its first renewal. Renewing
accounts may expand, contract, change plan, pay late (a gap within the grace period) or buy a
co-termed add-on; churned accounts go silent at the end of their last term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.synthetic import knobs as k
from pipeline.synthetic.population import Latents, Population, contract_arr
from pipeline.synthetic.timeline import Timeline, add_months, days_to_us


class WindowMeans:
    """Means of a weekly latent over trailing windows, in O(1) per lookup via cumulative sums."""

    def __init__(self, values: np.ndarray) -> None:
        known = ~np.isnan(values)
        zero = np.zeros((values.shape[0], 1))
        self._sums = np.hstack([zero, np.cumsum(np.where(known, values, 0.0), axis=1)])
        self._counts = np.hstack([zero, np.cumsum(known, axis=1)])

    def mean(self, rows: np.ndarray, end_week: np.ndarray, length: int) -> np.ndarray:
        """Mean over weeks [end_week - length, end_week); NaN when the account had not landed yet."""
        last = self._sums.shape[1] - 1
        hi = np.clip(end_week, 0, last)
        lo = np.clip(end_week - length, 0, last)
        counts = self._counts[rows, hi] - self._counts[rows, lo]
        sums = self._sums[rows, hi] - self._sums[rows, lo]
        return np.divide(sums, counts, out=np.full(len(rows), np.nan), where=counts > 0)


def term_kind(months: np.ndarray) -> np.ndarray:
    return np.where(months == 1, "monthly", np.where(months >= 24, "multi-year", "annual"))


@dataclass(frozen=True)
class Terms:
    """Every subscription term, ordered by account and start; plus when each account goes silent."""

    account: np.ndarray  # index into the population
    term_index: np.ndarray
    start: np.ndarray
    end: np.ndarray
    months: np.ndarray
    seats: np.ndarray
    arr: np.ndarray
    plan: np.ndarray  # str
    addon: np.ndarray
    decided: np.ndarray  # the term ended inside the data, so its renewal was drawn
    p_churn: np.ndarray  # NaN when undecided
    churned: np.ndarray
    censored: np.ndarray  # the pipeline cannot observe the outcome (end + grace past the data end)
    health_90d: np.ndarray
    activity_end: np.ndarray  # per account: exclusive end of its events

    def subscriptions_table(self, population: Population) -> pa.Table:
        return pa.table(
            {
                "account_id": pa.array(population.account_ids[self.account], pa.string()),
                "start_date": pa.array(days_to_us(self.start), pa.timestamp("us")),
                "end_date": pa.array(days_to_us(self.end), pa.timestamp("us")),
                "arr": pa.array(self.arr, pa.float64()),
                "seats": pa.array(self.seats, pa.float64()),
                "plan": pa.array(self.plan, pa.string()),
            }
        )

    def truth_table(self, population: Population) -> pa.Table:
        """One row per subscription row, same order: what really drove each renewal."""
        return pa.table(
            {
                "account_id": pa.array(population.account_ids[self.account], pa.string()),
                "term_index": pa.array(self.term_index, pa.int64()),
                "start_date": pa.array(days_to_us(self.start), pa.timestamp("us")),
                "end_date": pa.array(days_to_us(self.end), pa.timestamp("us")),
                "term_kind": pa.array(np.where(self.addon, "addon", term_kind(self.months)), pa.string()),
                "p_churn": pa.array(self.p_churn, pa.float64(), from_pandas=True),
                "churned": pa.array(self.churned, pa.bool_(), mask=~self.decided),
                "censored": pa.array(self.censored, pa.bool_()),
                "health_90d": pa.array(self.health_90d, pa.float64(), from_pandas=True),
            }
        )

    def churn_rates(self) -> dict[str, float]:
        """Share of observed (decided, uncensored) main terms that churned, overall and by term kind."""
        observed = self.decided & ~self.censored & ~self.addon
        kinds = term_kind(self.months)
        rates = {"all": float(self.churned[observed].mean()) if observed.any() else float("nan")}
        for kind in ("monthly", "annual", "multi-year"):
            chosen = observed & (kinds == kind)
            rates[kind] = float(self.churned[chosen].mean()) if chosen.any() else float("nan")
        return rates

    def seats_by_week(self, accounts: range, timeline: Timeline) -> np.ndarray:
        """Licensed seats per (account, week) for a contiguous block of accounts; main terms carry forward."""
        chosen = (self.account >= accounts.start) & (self.account < accounts.stop)
        account = self.account[chosen] - accounts.start
        seats, addon = self.seats[chosen], self.addon[chosen]
        start_week = np.clip(timeline.week_of(self.start[chosen]), 0, timeline.n_weeks)
        end_week = np.clip(timeline.week_of(self.end[chosen]), 0, timeline.n_weeks)
        deltas = np.zeros((len(accounts), timeline.n_weeks + 1))
        main = ~addon
        previous = np.concatenate([[0.0], seats[main][:-1]])
        first_of_account = np.concatenate([[True], account[main][1:] != account[main][:-1]])
        np.add.at(deltas, (account[main], start_week[main]), seats[main] - np.where(first_of_account, 0.0, previous))
        np.add.at(deltas, (account[addon], start_week[addon]), seats[addon])
        np.add.at(deltas, (account[addon], end_week[addon]), -seats[addon])
        return np.cumsum(deltas, axis=1)[:, :-1]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _per_term(chance_per_year: np.ndarray | float, months: np.ndarray) -> np.ndarray:
    """Turn a yearly chance into the chance at one renewal of a term of `months` months."""
    return 1 - (1 - np.asarray(chance_per_year)) ** (months / 12)


def simulate_terms(
    rng: np.random.Generator, population: Population, latents: Latents, timeline: Timeline, world: k.World = k.World()
) -> Terms:
    """Walk every account from term to term, all accounts at once, one renewal round per loop."""
    health, friction, enablement = (WindowMeans(x) for x in (latents.health, latents.friction, latents.enablement))
    champion = WindowMeans(latents.champion) if latents.champion is not None else None
    segment_logit = np.array([s.churn_logit for s in population.segments])[population.segment]
    addon_rate = np.array([s.addon_rate for s in population.segments])[population.segment]

    start = population.first_term_start.copy()
    months = population.term_months.copy()
    seats = population.seats.copy()
    plan = population.plan.copy()
    price = population.price_factor.copy()
    renewals = population.prior_terms.copy()
    seat_change = np.zeros(population.size)  # relative seat change at each account's last renewal
    activity_end = np.full(population.size, timeline.end_day, dtype=np.int64)
    is_open = np.ones(population.size, dtype=bool)
    rows: list[dict[str, np.ndarray]] = []

    while is_open.any():
        acc = np.flatnonzero(is_open)
        s, m = start[acc], months[acc]
        e = add_months(s, m)
        decided = e < timeline.end_day
        end_week = timeline.week_of(e)
        recent = health.mean(acc, end_week, k.SIGNAL_WEEKS)
        earlier = health.mean(acc, end_week - k.SIGNAL_WEEKS, k.TREND_WEEKS)
        trend = np.nan_to_num(recent - earlier)
        logit = (
            np.array([k.CHURN_INTERCEPT[kind] for kind in term_kind(m)])
            + segment_logit[acc]
            + world.churn_health * np.nan_to_num(recent)
            + world.churn_trend * trend
            + world.churn_friction * np.nan_to_num(friction.mean(acc, end_week, k.SIGNAL_WEEKS))
            + world.churn_enablement * np.nan_to_num(enablement.mean(acc, end_week, k.ENABLEMENT_WEEKS))
            + world.churn_first_renewal * (renewals[acc] == 0)
        )
        if world.churn_shift:
            logit += world.churn_shift
        if world.churn_contraction:
            logit += world.churn_contraction * np.maximum(-seat_change[acc], 0.0)
        if champion is not None:
            logit += world.churn_champion * np.nan_to_num(champion.mean(acc, end_week, k.SIGNAL_WEEKS))
        p = np.where(decided, _sigmoid(logit) if world.no_signal is None else world.no_signal, np.nan)
        churned = decided & (rng.random(acc.size) < p)
        main = {
            "account": acc, "start": s, "end": e, "months": m, "seats": seats[acc],
            "arr": contract_arr(seats[acc], plan[acc], m, price[acc]),
            "plan": np.array(k.PLAN_ORDER, dtype=object)[plan[acc]], "addon": np.zeros(acc.size, bool),
            "decided": decided, "p_churn": p, "churned": churned, "health_90d": np.where(decided, recent, np.nan),
        }  # fmt: skip
        rows.append(main)

        buys_addon = (rng.random(acc.size) < addon_rate[acc]) & (m >= 12)  # add-ons come with real contracts
        addon_start = s + np.floor(rng.uniform(0.2, 0.7, acc.size) * (e - s)).astype(np.int64)
        addon_seats = np.maximum(1.0, np.round(seats[acc] * rng.uniform(*k.ADDON_SEAT_SHARE, acc.size)))
        buys_addon &= addon_start < timeline.end_day
        if buys_addon.any():
            addon = {key: value[buys_addon] for key, value in main.items()}
            addon.update(
                start=addon_start[buys_addon],
                seats=addon_seats[buys_addon],
                arr=np.round(addon_seats[buys_addon] * k.ADDON_PRICE * price[acc][buys_addon], 2),
                plan=np.full(buys_addon.sum(), k.ADDON_PLAN, dtype=object),
                addon=np.ones(buys_addon.sum(), bool),
            )
            rows.append(addon)

        activity_end[acc[churned]] = e[churned]
        renewed = decided & ~churned
        signal = np.nan_to_num(recent)
        expand_chance = _per_term(_sigmoid(world.expand_logit + k.SEAT_CHANGE_SLOPE * signal), m)
        contract_chance = _per_term(_sigmoid(world.contract_logit - k.SEAT_CHANGE_SLOPE * signal), m)
        expands = renewed & (rng.random(acc.size) < expand_chance)
        contracts = renewed & ~expands & (rng.random(acc.size) < contract_chance)
        factor = np.where(expands, 1 + rng.uniform(*k.EXPAND_RANGE, acc.size), 1.0)
        factor = np.where(contracts, 1 - rng.uniform(*k.CONTRACT_RANGE, acc.size), factor)
        new_seats = np.where(renewed, np.maximum(1.0, np.round(seats[acc] * factor)), seats[acc])
        seat_change[acc] = np.where(renewed, new_seats / seats[acc] - 1.0, seat_change[acc])
        seats[acc] = new_seats
        upgrades = renewed & (signal > 0.5) & (rng.random(acc.size) < _per_term(k.UPGRADE_PLAN_SHARE, m))
        plan[acc] = np.where(upgrades, np.minimum(plan[acc] + 1, len(k.PLAN_ORDER) - 1), plan[acc])
        to_annual = (
            renewed & (m == 1) & (signal > 0) & (rng.random(acc.size) < _per_term(world.monthly_to_annual_share, m))
        )
        months[acc] = np.where(to_annual, 12, m)
        price[acc] = np.where(renewed, price[acc] * k.PRICE_UPLIFT ** (m / 12), price[acc])
        late = rng.random(acc.size) < k.RENEWAL_GAP_SHARE
        gap = np.where(late, rng.integers(k.RENEWAL_GAP_DAYS[0], k.RENEWAL_GAP_DAYS[1] + 1, acc.size), 0)
        start[acc] = e + gap
        renewals[acc] += renewed
        is_open[acc] = renewed & (start[acc] < timeline.end_day)

    merged = {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}
    order = np.lexsort((merged["addon"], merged["start"], merged["account"]))
    merged = {key: value[order] for key, value in merged.items()}
    account = merged["account"]
    first_row = np.concatenate([[0], np.flatnonzero(account[1:] != account[:-1]) + 1])
    term_index = np.arange(account.size) - np.repeat(first_row, np.diff(np.append(first_row, account.size)))
    return Terms(
        term_index=term_index,
        censored=merged["end"] + k.GRACE_DAYS >= timeline.end_day,
        activity_end=activity_end,
        **merged,
    )
