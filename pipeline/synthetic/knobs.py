"""The calibration of the synthetic SaaS world: catalogues and the numbers that shape behaviour.

The knobs that shape the world live here, with the reason for their value; the finer shape of
tickets and trainings (category mix, priorities, CSAT, completion) is written out next to the
code that draws them in events.py. The values were calibrated (see data/README.md) so that
annual-term churn is 10-25 %, monthly terms carry a small monthly hazard, and 2,000 accounts
over three years give a few million events.
"""

from __future__ import annotations

from dataclasses import dataclass

GRACE_DAYS = 30  # the pipeline's default renewal grace; decides which truth terms are censored
WEEK = 7


@dataclass(frozen=True)
class Segment:
    """A customer segment: size, contract shape and baseline health differ by segment."""

    name: str
    share: float  # share of landed accounts
    seats_median: float
    seats_sigma: float  # log-normal spread of licensed seats
    seats_range: tuple[int, int]
    term_months: tuple[tuple[int, float], ...]  # (term length in months, probability)
    plans: tuple[tuple[str, float], ...]  # (plan, probability) at landing
    health_mean: float  # mean of the persistent per-account health level
    churn_logit: float  # segment offset in the renewal model (small customers churn more)
    addon_rate: float  # chance per term of a year or more of buying an add-on product co-termed with it


SEGMENTS: tuple[Segment, ...] = (
    Segment(
        "smb", share=0.60, seats_median=5.0, seats_sigma=0.6, seats_range=(1, 60),
        term_months=((1, 0.80), (12, 0.20)), plans=(("starter", 0.7), ("professional", 0.3)),
        health_mean=-0.10, churn_logit=0.25, addon_rate=0.0,
    ),
    Segment(
        "mid", share=0.30, seats_median=28.0, seats_sigma=0.6, seats_range=(8, 400),
        term_months=((1, 0.15), (12, 0.85)), plans=(("starter", 0.1), ("professional", 0.7), ("enterprise", 0.2)),
        health_mean=0.0, churn_logit=0.0, addon_rate=0.04,
    ),
    Segment(
        "enterprise", share=0.10, seats_median=120.0, seats_sigma=0.7, seats_range=(40, 4000),
        term_months=((12, 0.75), (24, 0.17), (36, 0.08)), plans=(("professional", 0.2), ("enterprise", 0.8)),
        health_mean=0.15, churn_logit=-0.30, addon_rate=0.08,
    ),
)  # fmt: skip

# List price per seat per year; ARR = seats x price x a negotiated factor.
PLAN_PRICE: dict[str, float] = {"starter": 240.0, "professional": 540.0, "enterprise": 960.0}
PLAN_ORDER: tuple[str, ...] = ("starter", "professional", "enterprise")
ADDON_PLAN, ADDON_PRICE = "analytics_addon", 180.0
MULTI_YEAR_DISCOUNT = 0.92
PRICE_UPLIFT = 1.04  # yearly list-price increase, applied at renewals
NEGOTIATION_SIGMA = 0.12

# (industry, regulated, weight in smb, mid, enterprise): regulated industries skew large.
INDUSTRIES: tuple[tuple[str, bool, tuple[float, float, float]], ...] = (
    ("technology", False, (0.30, 0.22, 0.15)),
    ("retail", False, (0.15, 0.12, 0.08)),
    ("manufacturing", False, (0.10, 0.14, 0.15)),
    ("education", False, (0.10, 0.08, 0.05)),
    ("media", False, (0.10, 0.07, 0.05)),
    ("professional_services", False, (0.13, 0.12, 0.10)),
    ("finance", True, (0.06, 0.12, 0.20)),
    ("healthcare", True, (0.05, 0.10, 0.12)),
    ("government", True, (0.01, 0.03, 0.10)),
)

# (region, share, UTC hour at the middle of the local working day)
REGIONS: tuple[tuple[str, float, float], ...] = (
    ("na", 0.45, 17.0),
    ("emea", 0.35, 12.0),
    ("apac", 0.15, 4.0),
    ("latam", 0.05, 16.0),
)
WORKDAY_SPREAD_HOURS = 2.5
WEEKDAY_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 0.95, 0.12, 0.08)  # Monday .. Sunday: B2B usage is weekday usage

CSM_FIRST = ("Alex", "Sam", "Priya", "Jordan", "Maria", "Chen", "Fatima", "Lukas", "Aisha", "Diego",
             "Hannah", "Kenji", "Olivia", "Ravi", "Sofia", "Tom")  # fmt: skip
CSM_LAST = ("Moreno", "Okafor", "Schmidt", "Nakamura", "Patel", "Johansson", "Rossi", "Kim", "Dubois",
            "Silva", "Novak", "Walsh")  # fmt: skip
ACCOUNTS_PER_CSM = 60
TECH_TOUCH_CSM = "Digital CS"  # small SMB accounts are served one-to-many, not by a named CSM
TECH_TOUCH_MAX_ARR = 2_500.0

# Landing: an installed base that landed before the data starts, the rest over the period.
INSTALLED_BASE_SHARE = 0.35
INSTALLED_BASE_MAX_AGE_DAYS = 5 * 365
LANDING_GROWTH = 0.6  # landing rate at the end of the period is 1 + this times the rate at the start
LANDING_STOP_DAYS = 30  # no landings in the last month, so every account has some history

# Latent health h (log-odds-like scale, 0 = typical). Weekly AR(1) around a persistent level.
HEALTH_LEVEL_SIGMA = 0.6  # spread of the persistent per-account level
HEALTH_AR = 0.95  # weekly persistence of deviations (half-life ~ 3 months)
HEALTH_DRIFT_SIGMA = 0.45  # stationary spread of the deviations
CHAMPION_LOSS_WEEKLY = 0.004  # ~19 % per year: the internal champion leaves
CHAMPION_LOSS_DROP = (0.8, 1.8)  # sharp drop in health ...
CHAMPION_RECOVERY = 0.96  # ... recovered slowly (weekly decay, half-life ~ 4 months)

# Product friction f (bugs, integration trouble): drives tickets, partly independent of health.
FRICTION_LEVEL_SIGMA = 0.55
FRICTION_HEALTH_LINK = -0.35  # poorly fitting accounts (low health level) hit more friction
FRICTION_AR, FRICTION_DRIFT_SIGMA = 0.85, 0.35
INCIDENT_WEEKLY, INCIDENT_SIZE, INCIDENT_DECAY = 0.012, (1.0, 2.0), 0.6

# Enablement e (training engagement): drives trainings, lowers churn.
ENABLEMENT_LEVEL_SIGMA = 0.6
ENABLEMENT_HEALTH_LINK = 0.35
ENABLEMENT_AR, ENABLEMENT_DRIFT_SIGMA = 0.97, 0.25

# Renewal decision: logit p_churn = intercept(term) + segment + slopes . (signals over the term's last weeks)
CHURN_INTERCEPT = {"monthly": -4.9, "annual": -2.1, "multi-year": -2.3}
CHURN_HEALTH = -1.5  # mean health over the last 13 weeks
CHURN_TREND = -1.0  # last 13 weeks minus the 13 before: a falling account is at risk
CHURN_FRICTION = 0.6
CHURN_ENABLEMENT = -0.45  # mean enablement over the last 26 weeks
CHURN_FIRST_RENEWAL = 0.35  # the first renewal is the riskiest
SIGNAL_WEEKS, TREND_WEEKS, ENABLEMENT_WEEKS = 13, 13, 26

# What renewing accounts do with their contract (chances per year, scaled to the term length).
RENEWAL_GAP_SHARE, RENEWAL_GAP_DAYS = 0.12, (1, 25)  # some paperwork lands late, within the grace
EXPAND_LOGIT, CONTRACT_LOGIT, SEAT_CHANGE_SLOPE = -1.4, -1.8, 1.5
EXPAND_RANGE, CONTRACT_RANGE = (0.10, 0.50), (0.10, 0.35)
UPGRADE_PLAN_SHARE = 0.08  # healthy accounts sometimes move up a plan
MONTHLY_TO_ANNUAL_SHARE = 0.25  # healthy monthly accounts sometimes sign an annual term
ADDON_SEAT_SHARE = (0.10, 0.30)

# Observation model: how events read off the latent state (weekly rates, before weekday weighting).
# New accounts ramp up from 30 % of their activity; healthy ones faster (time to first value).
ONBOARDING_START_ACTIVITY, ONBOARDING_RAMP_DAYS, ONBOARDING_RAMP_HEALTH = 0.3, 21.0, 0.6
NEW_CUSTOMER_DAYS = 120
ONBOARDING_DAYS = 60
USER_POOL_FACTOR = 1.1  # named users per licensed seat
ACTIVE_USER_LOGIT, ACTIVE_USER_SLOPE = 0.0, 1.8
LOGIN_DAYS_BASE, LOGIN_DAYS_HEALTH = 0.3, 1.0  # login days per active user per week
USAGE_PER_USER, USAGE_HEALTH = 0.5, 0.6
QUANTITY_LOG_MEAN, QUANTITY_HEALTH, QUANTITY_SIGMA = 1.0, 0.3, 0.8
FEATURE_GATE_SLOPE = 2.5  # how sharply a feature's use switches on above its health gate
FEATURE_PREFERENCE_SIGMA = 0.5
WORKFLOWS_PER_USER, WORKFLOW_GATE = 0.04, -0.3
WORKFLOW_CONTINUE = (2.0, 1.5)  # logit of going on to the next step: intercept, health slope
WORKFLOW_SKIP = (-2.6, -1.2)  # logit of skipping an intermediate step
WORKFLOW_STEP_HOURS = 1.5
WORKFLOW_STEPS = 4
TICKET_RATE, TICKET_SEAT_POWER, TICKET_FRICTION, TICKET_HEALTH = 0.012, 0.7, 0.55, -0.3
HOWTO_RATE_NEW = 0.05  # extra how-to tickets from new accounts that are actually adopting
TRAINING_RATE, TRAINING_SEAT_POWER, TRAINING_ENABLEMENT, TRAINING_HEALTH = 0.004, 0.8, 0.6, 0.25
ONBOARDING_WEBINARS_WEEKLY = 0.3
CSAT_RESPONSE_SHARE = 0.45

# The product's feature catalogue: (feature, popularity, health gate). A feature is used in
# proportion to popularity x logistic(slope x (health - gate)): deep features need healthy accounts.
FEATURES: tuple[tuple[str, float, float], ...] = (
    ("dashboards", 0.24, -2.0),
    ("reports", 0.16, -1.0),
    ("search", 0.12, -1.5),
    ("data_import", 0.09, -0.5),
    ("alerts", 0.07, -0.2),
    ("collaboration", 0.06, 0.0),
    ("integrations", 0.06, 0.2),
    ("automation", 0.05, 0.5),
    ("api", 0.04, 0.6),
    ("advanced_analytics", 0.03, 0.9),
    ("compliance_audit", 0.15, 0.4),  # popularity for regulated accounts; see below
)
WORKFLOW_FEATURE = "workflows"  # multi-step processes, logged with workflow_id and step
COMPLIANCE_FEATURE = "compliance_audit"
COMPLIANCE_UNREGULATED_FACTOR = 0.04  # non-regulated accounts rarely need the audit trail

# Optional sources, read off the same latent health. Invoices: monthly terms are billed monthly,
# longer terms quarterly; falling health makes late, failed and unpaid invoices more likely, and
# renewals of wavering accounts come with a discount.
INVOICE_PERIOD_MONTHS = 3
INVOICE_NET_DAYS = {"monthly": 14, "other": 30}
INVOICE_LATE = (-2.2, -1.4)  # logit of paying after the due date: intercept, health slope
INVOICE_LATE_DAYS = 12.0  # mean days late, longer for unhealthier accounts
INVOICE_FAILED = (-4.2, -1.0)  # logit of a failed payment (card declined, direct debit returned)
INVOICE_RECOVERED = 0.6  # share of failed payments collected later (then paid late)
INVOICE_VOID_SHARE = 0.01
RENEWAL_DISCOUNT = (-1.5, -1.2)  # logit of a discount on the first invoice of a yearly or longer renewal term
RENEWAL_DISCOUNT_RANGE = (0.05, 0.30)
# Touchpoints per week by segment (smb, mid, enterprise): named CSMs call and hold QBRs; healthy
# accounts show up to meetings, unhealthy ones get firefighting calls. Sentiment is an ordered
# logit of health: negative below the first cut, positive above the second.
TOUCHPOINT_RATES: dict[str, tuple[float, float, float]] = {
    "qbr": (0.0, 0.05, 0.08),
    "executive": (0.0, 0.02, 0.04),
    "csm_call": (0.05, 0.12, 0.2),
    "email": (0.12, 0.15, 0.2),
    "other": (0.01, 0.02, 0.03),
}
TOUCHPOINT_MEETING_HEALTH, TOUCHPOINT_CALL_HEALTH = 0.4, -0.3
TECH_TOUCH_KINDS = ("email", "other")  # accounts served one-to-many get no meetings
SENTIMENT_HEALTH, SENTIMENT_CUTS, SENTIMENT_RATED = 1.4, (-1.7, 0.5), 0.8
ATTENDEE_ROLES = ("champion", "executive", "admin", "end_user")
# Surveys: NPS (0-10) and product CSAT (1-5) responses from the account's users.
NPS_RATE, CSAT_SURVEY_RATE = 0.024, 0.012  # weekly, per square root of the user pool (x response odds)
SURVEY_RESPONSE_HEALTH = 0.5  # engaged customers answer more
NPS_MEAN, NPS_HEALTH, NPS_SIGMA = 7.2, 1.8, 1.6
CSAT_SURVEY_MEAN, CSAT_SURVEY_HEALTH, CSAT_SURVEY_SIGMA = 3.9, 0.6, 0.7
SURVEY_COMMENT_SHARE = 0.25
SURVEY_COMMENTS = (
    ("too slow and buggy", "missing features we need", "support takes too long"),
    ("works fine", "ok for now", "pricing is high"),
    ("love the dashboards", "great support", "saves us hours every week"),
)  # by score band: detractor, passive, promoter

TICKET_CATEGORIES = ("how-to", "bug", "billing", "feature-request")
TRAINING_KIND_WEIGHTS = (0.50, 0.35, 0.15)  # webinar, course, certification
ROWS_PER_PART = 4_000_000  # event rows per parquet part file
CHUNK_ACCOUNTS = 250  # accounts simulated and written together: bounds memory at any scale


@dataclass(frozen=True)
class World:
    """What drives churn in a generated world, and which tables it writes: the knobs a named world
    (`pipeline/synthetic/worlds.py`) turns. Every default is the module constant above, so the
    default world is the calibrated one, draw for draw.

    The renewal logit is `intercept(term kind) + churn_shift + segment + churn_health x health_13w
    + churn_trend x trend + churn_friction x friction_13w + churn_enablement x enablement_26w
    + churn_first_renewal x first renewal + churn_contraction x seats lost at the last renewal
    (share) + churn_champion x champion-loss impact over 13 weeks`; with `no_signal` set, every
    decided term churns with that constant probability instead (independent of everything).
    """

    name: str = "default"
    description: str = "the calibrated SaaS world: churn driven by health, its trend, friction and enablement"
    segments: tuple[Segment, ...] = SEGMENTS
    event_tables: tuple[str, ...] = (
        "usage_events", "logins", "support_tickets", "trainings", "invoices", "touchpoints", "surveys"
    )  # fmt: skip
    churn_shift: float = 0.0
    churn_health: float = CHURN_HEALTH
    churn_trend: float = CHURN_TREND
    churn_friction: float = CHURN_FRICTION
    churn_enablement: float = CHURN_ENABLEMENT
    churn_first_renewal: float = CHURN_FIRST_RENEWAL
    churn_contraction: float = 0.0
    churn_champion: float = 0.0
    no_signal: float | None = None
    champion_loss_weekly: float = CHAMPION_LOSS_WEEKLY
    incident_weekly: float = INCIDENT_WEEKLY
    friction_level_sigma: float = FRICTION_LEVEL_SIGMA
    expand_logit: float = EXPAND_LOGIT
    contract_logit: float = CONTRACT_LOGIT
    monthly_to_annual_share: float = MONTHLY_TO_ANNUAL_SHARE
    usage_per_user: float = USAGE_PER_USER
