"""Account and contract features (category `account`): who the customer is and where its contract stands.

Read from `accounts` and the terms visible at as_of (started before it). The term that defines E
(latest end; among co-terminous terms the earliest start, i.e. the main contract rather than an
add-on) gives plan and term length; ARR adds up over the active terms (add-on products), seats
take their maximum (the same users). A renewal is a term that renews an earlier one by the
label's rule; the seat change compares the latest visible renewal with the term it renewed.
"""

from __future__ import annotations

from features.daily import SNAPSHOTS, days_between, ratio
from features.families.base import Declarations, FamilyContext, Run, family_table
from features.snapshots import TERMS, tenure_sql

SOURCE = "accounts"
declare = Declarations(SOURCE, "account")

TENURE = declare.fixed("tenure_days", "Customer age in days", "higher", "customer for {value:.0f} days")
SEGMENT = declare.fixed("segment", "Customer segment", "neutral", "{value} segment", "categorical", ("segment",))
INDUSTRY = declare.fixed("industry", "Industry", "neutral", "{value} industry", "categorical", ("industry",))
REGION = declare.fixed("region", "Region", "neutral", "region {value}", "categorical", ("region",))
PLAN = declare.fixed(
    "plan", "Plan of the current term", "neutral", "on the {value} plan", "categorical", ("subscriptions.plan",)
)
REGULATED = declare.fixed(
    "regulated",
    "Regulated industry (1 = yes)",
    "neutral",
    "regulated industry: {value:.0f} (1 = yes)",
    requires=("regulated",),
)
ARR = declare.fixed(
    "arr",
    "Annual recurring revenue of the active terms",
    "neutral",
    "ARR {value:,.0f}",
    requires=("subscriptions.arr",),
)
SEATS = declare.fixed(
    "seats",
    "Licensed seats of the active terms",
    "neutral",
    "{value:.0f} licensed seats",
    requires=("subscriptions.seats",),
)
TERM_LENGTH = declare.fixed(
    "term_length_days", "Length of the current term in days", "neutral", "current term runs {value:.0f} days"
)
DAYS_TO_RENEWAL = declare.fixed(
    "days_to_renewal", "Days until the current term ends", "neutral", "{value:.0f} days to renewal"
)
RENEWALS = declare.fixed("renewals_count", "Renewals so far", "higher", "renewed {value:.0f} times so far")
SEAT_CHANGE = declare.fixed(
    "seat_change_last_renewal",
    "Relative seat change at the last renewal (0 if none)",
    "higher",
    "seats changed {value:+.0%} at the last renewal",
    requires=("subscriptions.seats",),
)
NEW_CUSTOMER = declare.fixed(
    "is_new_customer", "New customer (1 = within the new-customer period)", "neutral", "new customer: {value:.0f}"
)


def build(run: Run, ctx: FamilyContext) -> list[str]:
    has_account = {c: ctx.has("accounts", c) for c in ("segment", "industry", "region", "regulated")}
    has_term = {c: ctx.has("subscriptions", c) for c in ("plan", "arr", "seats")}
    tenure = tenure_sql()
    columns: dict[str, str] = {TENURE: tenure}
    columns.update(
        {
            name: f"acc.{name}"
            for name, column in ((SEGMENT, "segment"), (INDUSTRY, "industry"), (REGION, "region"))
            if has_account[column]
        }
    )
    if has_term["plan"]:
        columns[PLAN] = "e.plan"
    if has_account["regulated"]:
        columns[REGULATED] = "CASE WHEN acc.regulated THEN 1.0 ELSE 0.0 END"
    if has_term["arr"]:
        columns[ARR] = "c.arr"
    if has_term["seats"]:
        columns[SEATS] = "c.seats"
    columns[TERM_LENGTH] = days_between("e.start_date", "e.end_date")
    columns[DAYS_TO_RENEWAL] = days_between("s.as_of", "s.term_end")
    columns[RENEWALS] = "CAST(h.renewals_so_far AS DOUBLE)"
    if has_term["seats"]:
        columns[SEAT_CHANGE] = (
            f"CASE WHEN r.term_id IS NULL THEN 0.0 ELSE {ratio('r.seats - r.prev_seats', 'r.prev_seats')} END"
        )
    columns[NEW_CUSTOMER] = f"CASE WHEN {tenure} < {ctx.settings.new_customer_days} THEN 1.0 ELSE 0.0 END"
    select = ",\n               ".join(f"{expr} AS {name}" for name, expr in columns.items())
    run(f"""
        CREATE OR REPLACE TEMP TABLE {family_table(SOURCE)} AS
        WITH active AS (
            SELECT s.account_id, s.as_of, t.term_id, t.start_date, t.end_date, t.arr, t.seats, t.plan,
                   row_number() OVER (PARTITION BY s.account_id, s.as_of
                                      ORDER BY t.end_date DESC, t.start_date, t.term_id) AS defines_e
            FROM {SNAPSHOTS} s JOIN {TERMS} t
              ON t.account_id = s.account_id AND t.start_date < s.as_of AND s.as_of <= t.end_date
        ), contract AS (
            SELECT account_id, as_of, sum(arr) AS arr, max(seats) AS seats
            FROM active GROUP BY account_id, as_of
        )
        SELECT s.account_id, s.as_of,
               {select}
        FROM {SNAPSHOTS} s
        LEFT JOIN accounts acc ON acc.account_id = s.account_id
        LEFT JOIN contract c ON c.account_id = s.account_id AND c.as_of = s.as_of
        LEFT JOIN active e ON e.account_id = s.account_id AND e.as_of = s.as_of AND e.defines_e = 1
        ASOF LEFT JOIN {TERMS} h ON h.account_id = s.account_id AND s.as_of > h.start_date
        LEFT JOIN {TERMS} r ON r.term_id = h.latest_renewal
    """)
    return list(columns)
