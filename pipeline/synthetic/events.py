"""Events read off the latent state, for one block of accounts at a time.

The unit of simulation is an account-week ("cell") inside the account's active window: counts
per cell are Poisson or binomial draws whose rates depend on health, friction, enablement, seats
and account age; events are then spread over the cell's working days and local working hours.
Everything is vectorised over the cells and events of a block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import PRIORITIES, SQL_TYPES, TABLES, TOUCHPOINT_KINDS, TRAINING_KINDS
from pipeline.synthetic import knobs as k
from pipeline.synthetic.population import Latents, Population
from pipeline.synthetic.renewals import Terms
from pipeline.synthetic.timeline import US_PER_DAY, Timeline

US_PER_HOUR = 3_600 * 1_000_000
_ARROW_TYPES = {  # by the contract's SQL type, so new logical column types need no change here
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
}


def contract_schema(table: str) -> pa.Schema:
    """The parquet schema of a contract table: exactly its columns, in contract order."""
    return pa.schema([(c.name, _ARROW_TYPES[SQL_TYPES[c.type]]) for c in TABLES[table].columns])


HEALTH_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("week_start", pa.timestamp("us")),
        ("health", pa.float64()),
        ("friction", pa.float64()),
        ("enablement", pa.float64()),
    ]
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _pick(rng: np.random.Generator, cdf: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one category per event from its cell's cumulative distribution (cells x categories)."""
    u = rng.random(rows.size)
    choice = np.zeros(rows.size, dtype=np.int64)
    for column in range(cdf.shape[1] - 1):
        choice += u > cdf[rows, column]
    return choice


def _labels(vocabulary: tuple[str, ...] | list[str], codes: np.ndarray) -> pa.Array:
    return pa.array(vocabulary, pa.string()).take(pa.array(codes))


@dataclass(frozen=True)
class Cells:
    """The active account-weeks of a block of accounts, flattened."""

    local: np.ndarray  # account position within the block
    week_start: np.ndarray  # day
    lo: np.ndarray  # first active day in the week
    hi: np.ndarray  # exclusive last active day
    health: np.ndarray
    friction: np.ndarray
    enablement: np.ndarray
    seats: np.ndarray
    age: np.ndarray  # days since the account landed, at the start of the cell
    regulated: np.ndarray
    work_hour: np.ndarray  # UTC hour in the middle of the account's working day
    share_of_week: np.ndarray  # weekday-weighted share of the week that is active
    day_cdf: np.ndarray  # (cells, 7) where in the week events fall

    @property
    def size(self) -> int:
        return self.local.size


def build_cells(block: range, population: Population, latents: Latents, terms: Terms, timeline: Timeline) -> Cells:
    weeks = np.arange(timeline.n_weeks)
    week_start = timeline.week_start(weeks)
    first_day = np.maximum(population.created[block.start : block.stop], timeline.start_day)
    last_day = terms.activity_end[block.start : block.stop]
    lo = np.maximum(week_start[None, :], first_day[:, None])
    hi = np.minimum(week_start[None, :] + k.WEEK, last_day[:, None])
    seats = terms.seats_by_week(block, timeline)
    local, week = np.nonzero((hi > lo) & (seats > 0))
    lo, hi, start = lo[local, week], hi[local, week], week_start[week]

    day = start[:, None] + np.arange(k.WEEK)[None, :]
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    weights = np.asarray(k.WEEKDAY_WEIGHTS)[weekday] * ((day >= lo[:, None]) & (day < hi[:, None]))
    total = weights.sum(axis=1)
    account = block.start + local
    return Cells(
        local=local,
        week_start=start,
        lo=lo,
        hi=hi,
        health=latents.health[account, week].astype(np.float64),
        friction=latents.friction[account, week].astype(np.float64),
        enablement=latents.enablement[account, week].astype(np.float64),
        seats=seats[local, week],
        age=lo - population.created[account],
        regulated=population.regulated[account],
        work_hour=np.array([hour for _, _, hour in k.REGIONS])[population.region[account]],
        share_of_week=total / sum(k.WEEKDAY_WEIGHTS),
        day_cdf=np.cumsum(weights, axis=1) / total[:, None],
    )


class BlockEvents:
    """Generates the event tables of one block of accounts from its cells."""

    def __init__(
        self,
        rng: np.random.Generator,
        block: range,
        population: Population,
        cells: Cells,
        end_day: int,
        usage_per_user: float = k.USAGE_PER_USER,
    ):
        self.rng = rng
        self.usage_per_user = usage_per_user
        self.cells = cells
        self.population = population
        self.block = block
        self.block_ids = pa.array(population.account_ids[block.start : block.stop], pa.string())
        self.end_us = end_day * US_PER_DAY
        ramp_days = k.ONBOARDING_RAMP_DAYS * np.exp(-k.ONBOARDING_RAMP_HEALTH * cells.health)
        self.ramp = 1 - (1 - k.ONBOARDING_START_ACTIVITY) * np.exp(-cells.age / ramp_days)
        self.pool = np.maximum(1, np.round(cells.seats * k.USER_POOL_FACTOR)).astype(np.int64)
        active_share = self.ramp * _sigmoid(k.ACTIVE_USER_LOGIT + k.ACTIVE_USER_SLOPE * cells.health)
        self.active_users = rng.binomial(self.pool, active_share)

    # -- shared helpers -------------------------------------------------------------------------

    def _events_per_cell(self, rate: np.ndarray) -> np.ndarray:
        """Cell index of each event, for Poisson counts at `rate` events per full week."""
        counts = self.rng.poisson(rate * self.cells.share_of_week)
        return np.repeat(np.arange(self.cells.size), counts)

    def _timestamps(self, rows: np.ndarray) -> np.ndarray:
        """Microsecond timestamps on the cell's active working days, around local working hours."""
        day = self.cells.week_start[rows] + _pick(self.rng, self.cells.day_cdf, rows)
        hour = self.rng.normal(self.cells.work_hour[rows], k.WORKDAY_SPREAD_HOURS) % 24
        return day * US_PER_DAY + (hour * US_PER_HOUR).astype(np.int64)

    def _core_user(self, rows: np.ndarray) -> np.ndarray:
        """A user among the cell's active users, favouring a core of heavy users."""
        return np.floor(self.active_users[rows] * self.rng.random(rows.size) ** 1.5).astype(np.int64)

    def _account_column(self, rows: np.ndarray) -> pa.Array:
        return self.block_ids.take(pa.array(self.cells.local[rows]))

    def _user_column(self, rows: np.ndarray, users: np.ndarray) -> pa.Array:
        """User ids '<account>-u0007': formatted once per distinct user, then gathered."""
        key = self.cells.local[rows].astype(np.int64) << 32 | users
        distinct, position = np.unique(key, return_inverse=True)
        accounts = self.population.account_ids[self.block.start + (distinct >> 32)]
        names = [f"{account}-u{user:04d}" for account, user in zip(accounts, distinct & 0xFFFFFFFF, strict=True)]
        return pa.array(names, pa.string()).take(pa.array(position))

    @staticmethod
    def _numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
        digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
        return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")

    def _order(self, rows: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Row order by account, then time (one int64 sort key: a block spans < 35 years of microseconds)."""
        if ts.size == 0:
            return np.arange(0)
        return np.argsort(self.cells.local[rows].astype(np.int64) << 50 | (ts - ts.min()))

    # -- tables ---------------------------------------------------------------------------------

    def logins(self) -> pa.Table:
        c = self.cells
        days_per_user = k.LOGIN_DAYS_BASE + k.LOGIN_DAYS_HEALTH * _sigmoid(c.health)
        rows = self._events_per_cell(self.active_users * days_per_user)
        ts = self._timestamps(rows)
        users = self._core_user(rows)
        order = self._order(rows, ts)
        rows, ts, users = rows[order], ts[order], users[order]
        return pa.Table.from_arrays(
            [self._account_column(rows), pa.array(ts, pa.timestamp("us")), self._user_column(rows, users)],
            schema=contract_schema("logins"),
        )

    def _feature_cdf(self) -> np.ndarray:
        """Per cell: which catalogue feature an event uses. Healthier cells reach deeper features."""
        c = self.cells
        popularity = np.array([p for _, p, _ in k.FEATURES])
        gate = np.array([g for _, _, g in k.FEATURES])
        weights = popularity * _sigmoid(k.FEATURE_GATE_SLOPE * (c.health[:, None] - gate))
        weights *= self.population.feature_preference[self.block.start + c.local]
        compliance = [name for name, _, _ in k.FEATURES].index(k.COMPLIANCE_FEATURE)
        weights[:, compliance] *= np.where(c.regulated, 1.0, k.COMPLIANCE_UNREGULATED_FACTOR)
        return np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True)

    def _workflow_steps(
        self, workflow_offset: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Multi-step workflows (one row per logged step, plus how many were started): unhealthy
        accounts abandon them or skip steps."""
        c, rng = self.cells, self.rng
        rate = self.active_users * k.WORKFLOWS_PER_USER * _sigmoid(k.FEATURE_GATE_SLOPE * (c.health - k.WORKFLOW_GATE))
        rows = self._events_per_cell(rate)
        n, steps = rows.size, k.WORKFLOW_STEPS
        h = c.health[rows][:, None]
        goes_on = rng.random((n, steps - 1)) < _sigmoid(k.WORKFLOW_CONTINUE[0] + k.WORKFLOW_CONTINUE[1] * h)
        reached = np.hstack([np.ones((n, 1), bool), np.cumprod(goes_on, axis=1).astype(bool)])
        skipped = rng.random((n, steps)) < _sigmoid(k.WORKFLOW_SKIP[0] + k.WORKFLOW_SKIP[1] * h)
        skipped[:, [0, steps - 1]] = False  # a workflow starts with step 1 and finishing means the last step
        gaps = rng.exponential(k.WORKFLOW_STEP_HOURS * US_PER_HOUR, (n, steps))
        gaps[:, 0] = 0
        ts = self._timestamps(rows)[:, None] + np.cumsum(gaps, axis=1).astype(np.int64)
        logged = reached & ~skipped & (ts < (c.hi[rows] * US_PER_DAY)[:, None])
        workflow, step = np.nonzero(logged)
        users = self._core_user(rows)
        return rows[workflow], ts[workflow, step], users[workflow], workflow + workflow_offset, step + 1, n

    def usage_events(self, workflow_offset: int) -> tuple[pa.Table, int]:
        """Usage events and the number of workflow ids used (ids are numbered across blocks)."""
        c, rng = self.cells, self.rng
        rows = self._events_per_cell(self.active_users * self.usage_per_user * np.exp(k.USAGE_HEALTH * c.health))
        catalogue = [name for name, _, _ in k.FEATURES]
        feature = _pick(rng, self._feature_cdf(), rows)
        ts, users = self._timestamps(rows), self._core_user(rows)
        w_rows, w_ts, w_users, w_ids, w_step, n_workflows = self._workflow_steps(workflow_offset)

        rows = np.concatenate([rows, w_rows])
        ts = np.concatenate([ts, w_ts])
        users = np.concatenate([users, w_users])
        feature = np.concatenate([feature, np.full(w_rows.size, len(catalogue))])
        workflow = np.concatenate([np.full(ts.size - w_rows.size, -1), w_ids])
        step = np.concatenate([np.zeros(ts.size - w_rows.size, np.int64), w_step])
        quantity = np.maximum(
            1.0, np.round(rng.lognormal(k.QUANTITY_LOG_MEAN + k.QUANTITY_HEALTH * c.health[rows], k.QUANTITY_SIGMA))
        )
        order = self._order(rows, ts)
        rows, ts, users, feature, workflow, step, quantity = (
            a[order] for a in (rows, ts, users, feature, workflow, step, quantity)
        )
        in_workflow = workflow >= 0
        table = pa.Table.from_arrays(
            [
                self._account_column(rows),
                pa.array(ts, pa.timestamp("us")),
                _labels([*catalogue, k.WORKFLOW_FEATURE], feature),
                self._user_column(rows, users),
                pa.array(quantity, pa.float64()),
                pc.if_else(
                    pa.array(in_workflow), self._numbered("W", np.maximum(workflow, 0), 9), pa.scalar(None, pa.string())
                ),
                pa.array(step, pa.int64(), mask=~in_workflow),
            ],
            schema=contract_schema("usage_events"),
        )
        return table, n_workflows

    def support_tickets(self, ticket_offset: int) -> pa.Table:
        """Tickets: friction and poor health raise bugs, urgency and escalations and lower CSAT;
        accounts that are adopting in their first months ask how-to questions."""
        c, rng = self.cells, self.rng
        general = self._events_per_cell(
            k.TICKET_RATE
            * c.seats**k.TICKET_SEAT_POWER
            * np.exp(k.TICKET_FRICTION * c.friction + k.TICKET_HEALTH * c.health)
        )
        adopting = (c.age < k.NEW_CUSTOMER_DAYS) * self.ramp * _sigmoid(c.health) * np.sqrt(c.seats)
        onboarding = self._events_per_cell(k.HOWTO_RATE_NEW * adopting)
        rows = np.concatenate([general, onboarding])
        h, f = c.health[rows], c.friction[rows]

        logits = np.column_stack([0.2 + 0.3 * h, 0.9 * f - 0.3 * h, -1.4 - 0.3 * h, -0.7 + 0.5 * h])
        cdf = np.cumsum(np.exp(logits), axis=1)
        category = _pick(rng, cdf / cdf[:, -1:], np.arange(rows.size))
        category[general.size :] = 0  # how-to
        bug, howto, request = category == 1, category == 0, category == 3
        severity = -0.35 * h + 0.5 * f + 0.8 * bug - 0.5 * howto + rng.normal(0, 1, rows.size)
        priority = np.digitize(severity, [-0.9, 0.9, 2.2])
        high, urgent = priority == 2, priority == 3
        escalated = rng.random(rows.size) < _sigmoid(-3.4 + 1.2 * high + 2.2 * urgent + 0.5 * f - 0.3 * h)
        hours = rng.lognormal(np.log(10) + 0.9 * bug + 0.6 * request - 0.7 * urgent + 0.3 * f + 0.4 * escalated, 0.9)
        opened = self._timestamps(rows)
        closed = opened + (hours * US_PER_HOUR).astype(np.int64)
        is_closed = closed < self.end_us
        rated = is_closed & (rng.random(rows.size) < k.CSAT_RESPONSE_SHARE)
        mood = 3.9 + 0.6 * h - 0.35 * f - 0.35 * np.log1p(hours / 24) - 0.5 * escalated
        csat = np.clip(np.round(mood + rng.normal(0, 0.7, rows.size)), 1, 5)

        order = self._order(rows, opened)
        rows, opened, closed, is_closed, priority, category, escalated, csat, rated = (
            a[order] for a in (rows, opened, closed, is_closed, priority, category, escalated, csat, rated)
        )
        return pa.Table.from_arrays(
            [
                self._account_column(rows),
                self._numbered("T", ticket_offset + np.arange(rows.size), 8),
                pa.array(opened, pa.timestamp("us")),
                pa.array(closed, pa.timestamp("us"), mask=~is_closed),
                _labels(PRIORITIES, priority),
                _labels(k.TICKET_CATEGORIES, category),
                pa.array(escalated, pa.bool_()),
                pa.array(csat, pa.float64(), mask=~rated),
            ],
            schema=contract_schema("support_tickets"),
        )

    def trainings(self) -> pa.Table:
        """Enablement: onboarding webinars in the first weeks, then courses and certifications
        at a rate set by the account's enablement and health."""
        c, rng = self.cells, self.rng
        ongoing = self._events_per_cell(
            k.TRAINING_RATE
            * c.seats**k.TRAINING_SEAT_POWER
            * np.exp(k.TRAINING_ENABLEMENT * c.enablement + k.TRAINING_HEALTH * c.health)
        )
        onboarding = self._events_per_cell(k.ONBOARDING_WEBINARS_WEEKLY * (c.age < k.ONBOARDING_DAYS))
        rows = np.concatenate([ongoing, onboarding])
        e, h = c.enablement[rows], c.health[rows]
        kind_weights = np.asarray(k.TRAINING_KIND_WEIGHTS) * np.column_stack(
            [np.ones(rows.size), np.ones(rows.size), np.exp(0.5 * e)]
        )
        cdf = np.cumsum(kind_weights, axis=1)
        kind = _pick(rng, cdf / cdf[:, -1:], np.arange(rows.size))
        kind[ongoing.size :] = 0  # webinar
        certification = kind == 2
        completed = rng.random(rows.size) < _sigmoid(1.0 + 0.8 * e + 0.4 * h - 0.9 * certification)
        users = rng.integers(0, self.pool[rows])
        ts = self._timestamps(rows)

        order = self._order(rows, ts)
        rows, ts, users, kind, completed = (a[order] for a in (rows, ts, users, kind, completed))
        return pa.Table.from_arrays(
            [
                self._account_column(rows),
                pa.array(ts, pa.timestamp("us")),
                self._user_column(rows, users),
                _labels(TRAINING_KINDS, kind),
                pa.array(completed, pa.bool_()),
            ],
            schema=contract_schema("trainings"),
        )

    def touchpoints(self) -> pa.Table:
        """Meetings, calls and emails by segment: named CSMs hold QBRs and calls, accounts served
        one-to-many only get emails; healthy accounts come to meetings, and meetings go as the
        account's health goes (sentiment)."""
        c, rng = self.cells, self.rng
        account = self.block.start + c.local
        segment = np.minimum(self.population.segment[account], 2)
        tech_touch = self.population.csm[account] == k.TECH_TOUCH_CSM
        parts = []
        for code, kind in enumerate(TOUCHPOINT_KINDS):
            rate = np.asarray(k.TOUCHPOINT_RATES[kind])[segment]
            if kind in ("qbr", "executive"):
                rate = rate * np.exp(k.TOUCHPOINT_MEETING_HEALTH * c.health)
            elif kind == "csm_call":
                rate = rate * np.exp(k.TOUCHPOINT_CALL_HEALTH * c.health)
            if kind not in k.TECH_TOUCH_KINDS:
                rate = np.where(tech_touch, 0.0, rate)
            rows = self._events_per_cell(rate)
            parts.append((rows, np.full(rows.size, code)))
        rows = np.concatenate([r for r, _ in parts])
        kind = np.concatenate([code for _, code in parts])
        mood = k.SENTIMENT_HEALTH * c.health[rows] + rng.logistic(0.0, 1.0, rows.size)
        sentiment = np.digitize(mood, k.SENTIMENT_CUTS).astype(np.float64) - 1.0
        rated = rng.random(rows.size) < np.where(kind == TOUCHPOINT_KINDS.index("email"), 0.3, k.SENTIMENT_RATED)
        role = np.where(
            kind == TOUCHPOINT_KINDS.index("executive"),
            1,
            np.where(
                kind == TOUCHPOINT_KINDS.index("email"), rng.integers(2, 4, rows.size), rng.integers(0, 3, rows.size)
            ),
        )
        ts = self._timestamps(rows)
        order = self._order(rows, ts)
        rows, ts, kind, sentiment, rated, role = (a[order] for a in (rows, ts, kind, sentiment, rated, role))
        return pa.Table.from_arrays(
            [
                self._account_column(rows),
                pa.array(ts, pa.timestamp("us")),
                _labels(TOUCHPOINT_KINDS, kind),
                pa.array(sentiment, pa.float64(), mask=~rated),
                _labels(k.ATTENDEE_ROLES, role),
            ],
            schema=contract_schema("touchpoints"),
        )

    def surveys(self) -> pa.Table:
        """NPS and product CSAT responses: engaged accounts answer more, healthy ones score higher."""
        c, rng = self.cells, self.rng
        reach = np.sqrt(self.pool) * _sigmoid(k.SURVEY_RESPONSE_HEALTH * c.health)
        nps_rows = self._events_per_cell(k.NPS_RATE * reach)
        csat_rows = self._events_per_cell(k.CSAT_SURVEY_RATE * reach)
        rows = np.concatenate([nps_rows, csat_rows])
        is_nps = np.arange(rows.size) < nps_rows.size
        h = c.health[rows]
        nps = np.clip(np.round(k.NPS_MEAN + k.NPS_HEALTH * h + rng.normal(0, k.NPS_SIGMA, rows.size)), 0, 10)
        csat = np.round(k.CSAT_SURVEY_MEAN + k.CSAT_SURVEY_HEALTH * h + rng.normal(0, k.CSAT_SURVEY_SIGMA, rows.size))
        score = np.where(is_nps, nps, np.clip(csat, 1, 5))
        band = np.where(is_nps, np.digitize(score, [7, 9]), np.digitize(score, [3, 5]))  # detractor, passive, promoter
        commented = rng.random(rows.size) < k.SURVEY_COMMENT_SHARE
        comment = np.array(k.SURVEY_COMMENTS, dtype=object)[band, rng.integers(0, 3, rows.size)]
        ts, users = self._timestamps(rows), self._core_user(rows)
        order = self._order(rows, ts)
        rows, ts, users, score, is_nps, comment, commented = (
            a[order] for a in (rows, ts, users, score, is_nps, comment, commented)
        )
        return pa.Table.from_arrays(
            [
                self._account_column(rows),
                pa.array(ts, pa.timestamp("us")),
                pa.array(score, pa.float64()),
                self._user_column(rows, users),
                _labels(("csat", "nps"), is_nps.astype(np.int64)),
                pa.array(comment, pa.string(), mask=~commented),
            ],
            schema=contract_schema("surveys"),
        )

    def health_truth(self) -> pa.Table:
        """The latent state behind the events, per active account-week (never read by the pipeline)."""
        c = self.cells
        return pa.Table.from_arrays(
            [
                self.block_ids.take(pa.array(c.local)),
                pa.array(c.week_start * US_PER_DAY, pa.timestamp("us")),
                pa.array(c.health),
                pa.array(c.friction),
                pa.array(c.enablement),
            ],
            schema=HEALTH_SCHEMA,
        )
