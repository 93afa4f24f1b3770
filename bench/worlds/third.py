"""A third churn simulator, written apart from `pipeline/synthetic/` and `bench/worlds/foreign.py` (benchmark only).

Acceptance trains the default model on histories nobody here has generated; `foreign.py` was the
first proxy, this is the second, written from how B2B SaaS books behave rather than from a latent
"health" path. Nothing is shared with either generator.

The world:
- people, not accounts, use the product: every account has admin seats (1 for SMB, 2 mid-market,
  3 enterprise) held by people who leave (about one in five a year) and are replaced after a
  vacancy, sometimes a long one; the other seats are filled in proportion to the account's
  adoption (a weekly AR(1) value path with an onboarding ramp, lasting setbacks and incident
  episodes). Each person logs in on 0-5 days a week; usage rows are per user, day and feature
  (with a `quantity`), so their volume follows people.
- the calendar: activity dips in July-August and late December (and on weekends).
- contracts: SMB buys monthly or annual terms, mid-market annual or two-year, enterprise annual,
  two- or three-year; enterprise and some mid-market accounts buy add-on terms co-termed with the
  main contract (several terms active at once; SPEC's E is the main term's end) and short pilots
  that end before it. Renewal prices rise (multi-year terms lock the price), at-risk accounts get
  a save discount, accounts with idle seats downgrade at renewal, some renewals are signed late
  (within the grace period) and a few churned accounts come back months later (a new term after
  the grace period: the churn stands).
- invoices per billing period (annual terms billed yearly, monthly ones monthly); accounts under
  budget pressure pay late or their card fails; support tickets come from incident episodes and
  new users; NPS surveys go to a few users a quarter.

Renewal: the buyer decides at the notice date (8 weeks before the end of an annual or longer
term, one week before a monthly one) with a logistic probability of the state then: weeks since
any admin logged in, seat adoption and its 13-week change, incident tickets, late payment, the
first renewal of an account that never onboarded, a recent admin change, the price rise quoted
for the next term, the save offer, the segment and the term length, plus an unobservable shock.
`_truth/terms.parquet` holds each term's probability and outcome (`kind`: main, addon, pilot; an
add-on shares its main term's decision; a pilot ends inside its main term, so the account does
not churn then: probability 0).

Shapes: `saas` (every table above, 1,200 accounts) and `lean` (600 accounts, only `logins` with
user ids, `invoices` and terms without seats: what a small team's billing and auth exports give).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

WEEK = pd.Timedelta(days=7)
GRACE_DAYS = 30  # SPEC's default: late renewals start within it, win-backs after it
FEATURES = (
    "dashboard", "pipeline_view", "deal_edit", "contact_import", "email_sequence", "forecast", "report_custom",
    "integration_sync", "api_call", "territory_rules", "quote_builder", "approval_flow", "audit_export",
)  # fmt: skip
SEGMENTS = ("smb", "mid_market", "enterprise")
SEGMENT_SHARE = (0.55, 0.37, 0.08)
ADMINS = (1, 2, 3)
SEGMENT_ETA = (-2.9, -3.2, -3.5)  # logit of an annual renewal decision at the reference state
TERM_MONTHS = {0: ((1, 0.6), (12, 0.4)), 1: ((12, 0.85), (24, 0.15)), 2: ((12, 0.5), (24, 0.3), (36, 0.2))}
SEAT_PRICE = (540.0, 720.0, 900.0)  # list ARR per seat
BILLING_RUN = pd.Timedelta(hours=18)  # invoices go out in the evening of the term's first day
SEASON = {7: 0.85, 8: 0.72, 12: 0.78}  # activity relative to a normal month


@dataclass(frozen=True)
class Shape:
    description: str
    accounts: int
    account_columns: tuple[str, ...]
    subscription_columns: tuple[str, ...]
    tables: dict[str, tuple[str, ...]]  # event table -> columns written


SHAPES: dict[str, Shape] = {
    "saas": Shape(
        "third simulator, B2B SaaS: admin recency, seasonality, add-on and multi-year terms, price rises",
        1200,
        account_columns=("account_id", "created_at", "segment", "industry", "region"),
        subscription_columns=("account_id", "start_date", "end_date", "arr", "seats", "plan"),
        tables={
            "usage_events": ("account_id", "ts", "feature", "user_id", "quantity"),
            "logins": ("account_id", "ts", "user_id", "role"),  # `role` is an extra column: ignored
            "support_tickets": ("account_id", "ticket_id", "opened_at", "closed_at", "priority", "escalated", "csat"),
            "invoices": ("account_id", "invoice_id", "issued_at", "due_at", "amount", "paid_at", "status", "discount"),
            "surveys": ("account_id", "ts", "score", "user_id", "kind"),
        },
    ),
    "lean": Shape(
        "third simulator, lean exports: logins and invoices only, terms without seats",
        600,
        account_columns=("account_id", "created_at", "segment"),
        subscription_columns=("account_id", "start_date", "end_date", "arr"),
        tables={
            "logins": ("account_id", "ts", "user_id"),
            "invoices": ("account_id", "issued_at", "due_at", "amount", "paid_at", "status"),
        },
    ),
}


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


@dataclass
class _World:
    """Weekly state of every account on one grid (rows: accounts, columns: weeks from grid0)."""

    grid0: pd.Timestamp
    weeks: int
    value: np.ndarray  # adoption value path
    pain: np.ndarray  # incident episode intensity (0 outside episodes)
    season: np.ndarray  # per week
    admin_login_days: np.ndarray  # (admin slots, weeks)
    admin_slot_account: np.ndarray
    admin_person: np.ndarray  # (admin slots, weeks): person number holding the slot, -1 vacant
    weeks_since_admin: np.ndarray  # per account and week, at the week's start
    budget: np.ndarray  # per account: budget pressure (late payment propensity)


def _season(week_starts: pd.DatetimeIndex) -> np.ndarray:
    factor = np.array([SEASON.get(m, 1.0) for m in week_starts.month])
    holidays = (week_starts.month == 12) & (week_starts.day >= 20)
    return np.where(holidays, 0.45, factor)


def _world(rng: np.random.Generator, n: int, weeks: int, grid0: pd.Timestamp, landed: np.ndarray, segment: np.ndarray):
    week_starts = pd.DatetimeIndex(grid0 + pd.to_timedelta(np.arange(weeks) * 7, unit="D"))
    season = _season(week_starts)
    age = np.arange(weeks)[None, :] - landed[:, None]
    mu = rng.normal(0.3, 0.7, n)
    slow = rng.beta(1.0, 3.0, n)  # time to value: a few accounts never get there
    ramp = -2.0 * np.exp(-np.clip(age, 0, None) / (3.0 + 40.0 * slow[:, None]))
    setbacks = np.where(rng.random((n, weeks)) < 0.003, rng.normal(-0.7, 0.4, (n, weeks)), 0.0)
    ar = np.empty((n, weeks))
    ar[:, 0] = rng.normal(0.0, 0.5, n)
    noise = rng.normal(0.0, 0.5 * np.sqrt(1 - 0.95**2), (n, weeks))
    for w in range(1, weeks):
        ar[:, w] = 0.95 * ar[:, w - 1] + noise[:, w]
    # incident episodes: start with a weekly chance, last a geometric number of weeks
    pain = np.zeros((n, weeks))
    starts = np.argwhere(rng.random((n, weeks)) < np.array([0.006, 0.009, 0.013])[segment][:, None])
    for a, w in starts:
        pain[a, w : w + rng.geometric(1 / 5)] = np.maximum(pain[a, w : w + 1], rng.uniform(0.5, 1.5))
    value = mu[:, None] + np.cumsum(setbacks, axis=1) + ar + ramp - 0.5 * pain

    # admin seats: people leave (weekly hazard), the seat stays vacant for a while, a new person takes it
    admins = np.array(ADMINS)[segment]
    slot_account = np.repeat(np.arange(n), admins)
    person = np.full((slot_account.size, weeks), -1)
    for slot, a in enumerate(slot_account):
        w, who = max(landed[a], 0), 0
        while w < weeks:
            stay = rng.geometric(0.004)
            person[slot, w : w + stay] = who
            w += stay
            w += rng.geometric(1 / 40) if rng.random() < 0.25 else rng.geometric(1 / 6)
            who += 1
    zeal = rng.normal(0.0, 0.6, (slot_account.size, int(person.max()) + 1))
    held = person >= 0
    engagement = value[slot_account] + zeal[np.arange(slot_account.size)[:, None], np.maximum(person, 0)]
    q = _sigmoid(-0.6 + 1.1 * engagement) * season[None, :]
    login_days = np.where(held & (age[slot_account] >= 0), rng.binomial(5, np.clip(q, 0, 1)), 0)
    any_admin = np.zeros((n, weeks), dtype=bool)
    np.logical_or.at(any_admin, slot_account, login_days > 0)
    last = np.where(any_admin, np.arange(weeks)[None, :], -10_000)
    last = np.maximum.accumulate(last, axis=1)
    since = np.hstack([np.full((n, 1), 10_000), np.arange(1, weeks)[None, :] - last[:, :-1]])
    # an account's admins count from the landing: "never logged in" is weeks since landing
    since = np.minimum(since, np.clip(age, 0, None))
    budget = rng.beta(1.2, 6.0, n)
    return _World(grid0, weeks, value, pain, season, login_days, slot_account, person, since, budget)


def _week(grid0: pd.Timestamp, when: pd.Timestamp, weeks: int) -> int:
    return int(np.clip((when - grid0).days // 7, 0, weeks - 1))


@dataclass
class _Term:
    account: int
    start: pd.Timestamp
    end: pd.Timestamp
    seats: float
    arr: float
    plan: str
    kind: str
    p: float = np.nan
    churned: float = np.nan
    discount: float = 0.0


def _adoption(world: _World, a: int, w: int) -> float:
    return float(_sigmoid(0.4 + 1.3 * world.value[a, w]))


def _decide(
    rng: np.random.Generator, world: _World, a: int, segment: int, months: int, decision: pd.Timestamp,
    first: bool, uplift: float, late_paid: bool,
) -> tuple[float, bool]:  # fmt: skip
    """(probability of churn at this renewal, whether a save discount was offered)."""
    w = _week(world.grid0, decision, world.weeks)
    adoption = _adoption(world, a, w)
    earlier = _adoption(world, a, max(w - 13, 0))
    onboarded = world.value[a, max(w - 26, 0)] > -0.5
    slots = world.admin_slot_account == a
    changed = (world.admin_person[slots][:, max(w - 26, 0)] != world.admin_person[slots][:, w]).any()
    incidents = world.pain[a, max(w - 13, 0) : w + 1].mean()
    eta = (
        SEGMENT_ETA[segment]
        + 0.75 * np.log1p(world.weeks_since_admin[a, w] / 2.0)  # 0 at two weeks
        - 2.2 * (adoption - 0.65)
        - 2.0 * min(adoption - earlier, 0.0)
        + 0.9 * incidents
        + 0.6 * late_paid
        + (0.9 if first and not onboarded else 0.0)
        + 0.4 * changed
        + 5.0 * uplift
        + rng.normal(0.0, 0.6)
    )
    offered = bool(_sigmoid(eta) > 0.35 and rng.random() < 0.5)
    eta -= 0.5 * offered
    eta += {1: -2.3, 12: 0.0, 24: -0.15, 36: -0.3}[months]
    return float(_sigmoid(eta)), offered


def _terms(
    rng: np.random.Generator, world: _World, created: pd.DatetimeIndex, segment: np.ndarray, end: pd.Timestamp
) -> tuple[list[_Term], np.ndarray]:
    """Every account's terms from landing to the end of the data; (terms, per account and week: seats held)."""
    terms: list[_Term] = []
    seats_held = np.zeros((len(created), world.weeks))
    for a in range(len(created)):
        seg = int(segment[a])
        lengths, shares = zip(*TERM_MONTHS[seg], strict=True)
        months = int(rng.choice(lengths, p=shares))
        seats = float(
            [rng.integers(2, 10), np.clip(round(rng.lognormal(np.log(16), 0.4)), 8, 60),
             np.clip(round(rng.lognormal(np.log(110), 0.5)), 40, 400)][seg]
        )  # fmt: skip
        price = SEAT_PRICE[seg] * rng.lognormal(0.0, 0.08)
        plan = ("starter", "growth", "enterprise")[seg]
        start, first, late_paid, discount, carried = created[a].normalize(), True, False, 0.0, None
        while start < end:
            stop = start + pd.DateOffset(months=months)
            main = _Term(
                a, start, stop, seats, round(price * seats * (1 - discount), 2), plan, "main", discount=discount
            )
            terms.append(main)
            seats_held[a, _week(world.grid0, start, world.weeks) : _week(world.grid0, stop, world.weeks)] = seats
            addon = None
            if carried is not None:  # the add-on renews with the main contract, co-termed
                addon = _Term(a, start, stop, carried.seats, carried.arr, "analytics", "addon")
            elif months >= 12 and rng.random() < (0.0, 0.1, 0.35)[seg]:
                begin = start + pd.Timedelta(days=int(rng.integers(30, max(31, (stop - start).days - 60))))
                addon_seats = float(max(1, round(seats * 0.4)))
                addon = _Term(a, begin, stop, addon_seats, round(0.25 * price * addon_seats, 2), "analytics", "addon")
            if addon is not None:
                terms.append(addon)
            if months >= 12 and seg == 2 and rng.random() < 0.15:
                begin = start + pd.Timedelta(days=int(rng.integers(20, 120)))
                pilot_end = begin + pd.DateOffset(months=int(rng.integers(3, 7)))
                if pilot_end < stop - pd.Timedelta(days=GRACE_DAYS + 5):
                    terms.append(_Term(a, begin, pilot_end, 10.0, 0.0, "pilot", "pilot", p=0.0, churned=0.0))
            notice = pd.Timedelta(days=7 if months == 1 else 56)
            quoted = months > 1 or rng.random() < 0.1
            uplift = float(rng.choice([0.0, 0.03, 0.07, 0.12], p=[0.3, 0.35, 0.25, 0.1])) if quoted else 0.0
            p, offered = _decide(rng, world, a, seg, months, stop - notice, first, uplift, late_paid)
            main.p = p
            churned = stop < end and rng.random() < p
            if stop < end:
                main.churned = float(churned)
            if addon is not None:
                addon.p, addon.churned = main.p, main.churned
            wd = _week(world.grid0, stop - notice, world.weeks)
            adoption = _adoption(world, a, wd)
            late_paid = bool(rng.random() < world.budget[a] * (1.5 if adoption < 0.5 else 1.0))
            if churned:
                if rng.random() < 0.06:  # a win-back months later: a new contract, the churn stands
                    start, first, discount, carried = (
                        stop + pd.Timedelta(days=int(rng.integers(90, 300))),
                        True,
                        0.0,
                        None,
                    )
                    continue
                break
            if adoption < 0.5 and seats > 1 and rng.random() < 0.7:  # idle seats are cut at renewal
                seats = float(max(1, round(seats * (adoption + 0.2))))
            elif adoption > 0.85 and rng.random() < 0.5:
                seats = float(round(seats * rng.uniform(1.1, 1.4)))
            price *= 1 + uplift
            discount = 0.15 if offered else 0.0  # a save offer holds for one term
            carried = addon if addon is not None and rng.random() < 0.85 else None
            if carried is not None:
                carried = _Term(
                    a, start, stop, carried.seats, round(carried.arr * (1 + uplift), 2), "analytics", "addon"
                )
            if months == 1 and rng.random() < 0.03:
                months = 12
            first = False
            start = stop + pd.Timedelta(days=int(rng.integers(1, GRACE_DAYS - 4)) if rng.random() < 0.1 else 0)
    return terms, seats_held


def simulate(out_dir: Path, shape: str, accounts: int, seed: int, start: str, years: float) -> dict[str, int]:
    """Write a history of `accounts` accounts from `start` for `years` in the given shape; rows per table."""
    spec = SHAPES[shape]
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    end = t0 + pd.DateOffset(months=round(years * 12))
    lead_weeks = 156
    grid0 = t0 - lead_weeks * WEEK
    weeks = int((end - grid0) / WEEK) + 2
    n = accounts

    segment = rng.choice(3, n, p=SEGMENT_SHARE)
    installed = rng.random(n) < 0.4
    before = t0 - pd.to_timedelta(rng.integers(1, lead_weeks * 7, n), unit="D")
    after = t0 + pd.to_timedelta(rng.integers(0, (end - t0).days - 30, n), unit="D")
    created = pd.DatetimeIndex(np.where(installed, before, after))
    created = created + pd.to_timedelta(rng.integers(9 * 3600, 17 * 3600, n), unit="s")
    order = np.argsort(created.to_numpy(), kind="stable")
    created, segment = created[order], segment[order]
    landed = ((created - grid0) // WEEK).to_numpy().astype(int)
    world = _world(rng, n, weeks, grid0, landed, segment)
    terms, seats_held = _terms(rng, world, created, segment, end)
    ids = np.array([f"ACME-{i:05d}" for i in rng.permutation(n)])

    frame = pd.DataFrame([t.__dict__ for t in terms])
    # the account is alive (uses the product) while a main term runs
    mains = frame[frame["kind"] == "main"]
    week_starts = pd.DatetimeIndex(grid0 + pd.to_timedelta(np.arange(weeks) * 7, unit="D"))
    alive = np.zeros((n, weeks), dtype=bool)
    for a, s, e in zip(mains["account"], mains["start"], mains["end"], strict=True):
        alive[a, _week(grid0, s, weeks) : _week(grid0, e, weeks) + 1] = True
    alive &= week_starts.to_numpy()[None, :] + WEEK.to_timedelta64() > t0.to_datetime64()
    alive &= week_starts.to_numpy()[None, :] < end.to_datetime64()

    spans = mains.sort_values(["account", "start"])
    origin = grid0.to_datetime64()
    horizon_s = int((end - grid0).total_seconds()) + 1

    def seconds(ts: pd.DatetimeIndex | pd.Series) -> np.ndarray:
        return ((pd.DatetimeIndex(ts).to_numpy() - origin) // np.timedelta64(1, "s")).astype(np.int64)

    span_key = spans["account"].to_numpy(np.int64) * horizon_s + seconds(spans["start"])
    span_end = seconds(spans["end"])
    span_account = spans["account"].to_numpy()

    def inside(account: np.ndarray, ts: pd.DatetimeIndex) -> np.ndarray:
        """Rows dated inside one of the account's main terms (it uses the product then), from t0 to the end."""
        at = seconds(ts)
        i = np.searchsorted(span_key, account.astype(np.int64) * horizon_s + at, side="right") - 1
        ok = (i >= 0) & (span_account[np.maximum(i, 0)] == account) & (at < span_end[np.maximum(i, 0)])
        stamp = ts.to_numpy()
        return (
            ok & (stamp >= t0.to_datetime64()) & (stamp < end.to_datetime64()) & (stamp >= created[account].to_numpy())
        )

    tables: dict[str, pd.DataFrame] = {}
    # ----------------------------------------------------------------- logins: admins and users
    day_p = np.array([0.23, 0.23, 0.22, 0.2, 0.1, 0.01, 0.01])
    slots, wk = np.nonzero(world.admin_login_days * alive[world.admin_slot_account])
    days_n = world.admin_login_days[slots, wk]
    a_slot, a_week = np.repeat(slots, days_n), np.repeat(wk, days_n)
    a_acc = world.admin_slot_account[a_slot]
    a_user = np.char.add(
        np.char.add("adm", a_slot.astype(str)), np.char.add("-", world.admin_person[a_slot, a_week].astype(str))
    )
    admins = np.array(ADMINS)[segment]
    regular = np.clip(seats_held - admins[:, None], 0, None)
    adoption = _sigmoid(0.4 + 1.3 * world.value)
    active_users = rng.binomial(regular.astype(int), np.clip(adoption, 0, 1)) * alive
    q = np.clip(_sigmoid(-0.3 + 0.8 * world.value) * world.season[None, :], 0, 1)
    u_days = rng.binomial(5 * active_users, q * 0.55)
    acc_i, wk_i = np.nonzero(u_days)
    count = u_days[acc_i, wk_i]
    r_acc, r_week = np.repeat(acc_i, count), np.repeat(wk_i, count)
    r_user = np.char.add("u", rng.integers(0, np.maximum(active_users[r_acc, r_week], 1)).astype(str))
    acc = np.concatenate([a_acc, r_acc])
    wks = np.concatenate([a_week, r_week])
    user = np.concatenate([a_user, r_user])
    role = np.concatenate([np.full(a_acc.size, "admin"), np.full(r_acc.size, "member")])
    day = rng.choice(7, acc.size, p=day_p / day_p.sum())
    hour = np.clip(rng.normal(11.5, 2.8, acc.size), 6, 21)
    ts = week_starts[wks] + pd.to_timedelta(day * 86400 + hour * 3600, unit="s")
    keep = inside(acc, ts)
    acc, wks, user, role, ts = acc[keep], wks[keep], user[keep], role[keep], ts[keep]
    user_id = pd.Series(ids[acc]).str.cat(pd.Series(user), sep="/")
    tables["logins"] = pd.DataFrame({"account_id": ids[acc], "ts": ts, "user_id": user_id, "role": role})

    # ------------------------------------------------- usage: per user, day and feature, with a count
    if "usage_events" in spec.tables:
        depth = np.clip(2 + np.round(9 * adoption[acc, wks]), 2, len(FEATURES)).astype(int)
        per_day = rng.poisson(0.6 + 0.6 * adoption[acc, wks])
        row = np.repeat(np.arange(acc.size), per_day)
        rank = np.minimum(rng.geometric(0.35, row.size) - 1, depth[row] - 1)
        favourite = np.argsort(rng.random((n, len(FEATURES))), axis=1)
        feature = np.array(FEATURES)[favourite[acc[row], rank]]
        tables["usage_events"] = pd.DataFrame(
            {
                "account_id": ids[acc[row]],
                "ts": ts[row] + pd.to_timedelta(rng.integers(60, 3 * 3600, row.size), unit="s"),
                "feature": feature,
                "user_id": user_id.to_numpy()[row],
                "quantity": (1 + rng.poisson(3.0, row.size)).astype(float),
            }
        )
        tables["usage_events"] = tables["usage_events"][tables["usage_events"]["ts"] < end]

    # ----------------------------------------------------------------- support tickets
    if "support_tickets" in spec.tables:
        users_now = active_users + admins[:, None] * alive
        rate = (0.004 * users_now + 0.25 * world.pain * np.sqrt(users_now + 1)) * alive
        k = rng.poisson(rate)
        t_acc, t_week = np.nonzero(k)
        cnt = k[t_acc, t_week]
        t_acc, t_week = np.repeat(t_acc, cnt), np.repeat(t_week, cnt)
        opened = week_starts[t_week] + pd.to_timedelta(rng.uniform(0, 5 * 86400, t_acc.size), unit="s")
        severity = rng.normal(0, 1, t_acc.size) + 1.5 * world.pain[t_acc, t_week]
        hours = rng.lognormal(np.log(10) + 0.4 * severity, 1.1)
        closed = opened + pd.to_timedelta(hours * 3600, unit="s")
        csat = np.clip(
            np.round(4.4 - 0.5 * severity - 0.3 * np.log1p(hours / 24) + rng.normal(0, 0.7, t_acc.size)), 1, 5
        )
        frame_t = pd.DataFrame(
            {
                "account_id": ids[t_acc],
                "ticket_id": [f"SUP-{i:07d}" for i in rng.permutation(t_acc.size)],
                "opened_at": opened,
                "closed_at": closed.where(closed < end),
                "priority": np.array(["low", "normal", "high", "urgent"])[np.digitize(severity, [-0.6, 0.9, 2.2])],
                "escalated": severity + rng.normal(0, 0.5, t_acc.size) > 2.3,
                "csat": np.where((rng.random(t_acc.size) < 0.4) & (closed < end), csat, np.nan),
            }
        )
        tables["support_tickets"] = frame_t[inside(t_acc, pd.DatetimeIndex(opened))]

    # ----------------------------------------------------------------- invoices
    bills = []
    for t in frame[frame["kind"].isin(["main", "addon"])].itertuples():
        months = max(1, round((t.end - t.start).days / 30.44))
        period = 1 if months == 1 else 12
        issued = pd.date_range(t.start, t.end - pd.Timedelta(days=1), freq=pd.DateOffset(months=period))
        for when in issued:
            bills.append((t.account, when + BILLING_RUN, t.arr * period / 12, t.discount, months == 1))
    bill = pd.DataFrame(bills, columns=["account", "issued_at", "amount", "discount", "card"])
    stress = world.budget[bill["account"]]
    lag = rng.exponential(4 + 60 * stress)
    failed = bill["card"].to_numpy() & (rng.random(len(bill)) < 0.5 * stress)
    paid = bill["issued_at"] + pd.to_timedelta(np.round(lag), unit="D")
    gross = bill["amount"] / (1 - bill["discount"])
    tables["invoices"] = pd.DataFrame(
        {
            "account_id": ids[bill["account"]],
            "invoice_id": [f"INV-{i:07d}" for i in range(len(bill))],
            "issued_at": bill["issued_at"],
            "due_at": bill["issued_at"] + pd.Timedelta(days=30),
            "amount": bill["amount"].round(2),
            "paid_at": paid.where(~failed & (paid < end)),
            "status": np.where(failed, "failed", np.where(paid < end, "paid", "open")),
            "discount": (gross - bill["amount"]).round(2),
        }
    )
    tables["invoices"] = tables["invoices"][
        (tables["invoices"]["issued_at"] >= t0) & (tables["invoices"]["issued_at"] < end)
    ]

    # ----------------------------------------------------------------- surveys (NPS, quarterly, a few users)
    if "surveys" in spec.tables:
        quarter = (week_starts.month % 3 == 0) & (week_starts.day <= 7)
        s_acc, s_week = np.nonzero(alive & quarter[None, :])
        take = rng.random(s_acc.size) < 0.5
        s_acc, s_week = s_acc[take], s_week[take]
        score = np.clip(np.round(7.2 + 2.2 * world.value[s_acc, s_week] + rng.normal(0, 1.8, s_acc.size)), 0, 10)
        when = week_starts[s_week] + pd.to_timedelta(rng.integers(0, 5 * 86400, s_acc.size), unit="s")
        survey = pd.DataFrame(
            {
                "account_id": ids[s_acc],
                "ts": when,
                "score": score,
                "user_id": pd.Series(ids[s_acc]) + "/u0",
                "kind": "nps",
            }
        )
        tables["surveys"] = survey[inside(s_acc, pd.DatetimeIndex(when))]

    # ----------------------------------------------------------------- write
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "_truth").mkdir(parents=True)
    regions = np.array(["amer", "emea", "apac"])[rng.choice(3, n, p=[0.5, 0.35, 0.15])]
    industries = np.array(["software", "retail", "manufacturing", "services", "finance"])[rng.integers(0, 5, n)]
    accounts_frame = pd.DataFrame(
        {"account_id": ids, "created_at": created, "segment": np.array(SEGMENTS)[segment], "industry": industries,
         "region": regions}
    )  # fmt: skip
    accounts_frame = accounts_frame.sort_values("account_id").reset_index(drop=True)
    accounts_frame[list(spec.account_columns)].to_parquet(out_dir / "accounts.parquet", index=False)
    frame = frame[frame["end"] > t0].copy()  # terms overlapping the data period
    frame["account_id"] = ids[frame["account"]]
    frame = frame.rename(columns={"start": "start_date", "end": "end_date"}).sort_values(["account_id", "start_date"])
    frame[list(spec.subscription_columns)].to_parquet(out_dir / "subscriptions.parquet", index=False)
    counts = {"accounts": len(accounts_frame), "subscriptions": len(frame)}
    for name, columns in spec.tables.items():
        table = tables[name].sort_values(
            ["account_id", columns[1] if name != "invoices" else "issued_at"], kind="stable"
        )
        table[list(columns)].to_parquet(out_dir / f"{name}.parquet", index=False)
        counts[name] = len(table)
    truth = frame[["account_id", "start_date", "end_date", "kind", "p", "churned"]].rename(columns={"p": "p_churn"})
    truth["churned"] = truth["churned"].astype("boolean")
    truth["censored"] = truth["end_date"] + pd.Timedelta(days=GRACE_DAYS) >= end
    truth.to_parquet(out_dir / "_truth" / "terms.parquet", index=False)
    return counts
