"""Account and contract features (category `account`): who the customer is and where its contract stands.

Read from `accounts` and the terms visible at as_of (started before it). The term that defines E
(latest end; among co-terminous terms the earliest start, i.e. the main contract rather than an
add-on) gives plan and term length; ARR adds up over the active terms (add-on products), seats
take their maximum (the same users). A renewal is a term that renews an earlier one by the
label's rule; the seat change compares the latest visible renewal with the term it renewed (none before
the first renewal).
"""

from __future__ import annotations

from features.families.base import Declarations, FamilyContext, family_table
from features.labels import TERMS
from features.sql.engine import Engine
from features.sql.timeline import SNAPSHOTS, agg_where, as_double, count_where, family_sql, ratio, tenure

SOURCE = "accounts"
# Who the customer is and where its contract stands: context for a CSM, not behaviour to change.
declare = Declarations(SOURCE, "account", actionable=False)

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
RENEWALS = declare.fixed(
    "renewals_count", "Renewals so far", "higher", "renewed {value:.0f} times so far", none="not renewed yet"
)
SEAT_CHANGE = declare.fixed(
    "seat_change_last_renewal",
    "Relative seat change at the last renewal (missing before the first)",
    "higher",
    "seats changed {value:+.0%} at the last renewal",
    requires=("subscriptions.seats",),
    missing="{renewals_count:.0f} renewals so far, no seat change known",  # first term, or renewals without seats
    none="seats unchanged at the last renewal",
)
NEW_CUSTOMER = declare.fixed(
    "is_new_customer", "New customer (1 = within the new-customer period)", "neutral", "new customer: {value:.0f}"
)


HISTORY = "_ft_accounts_history"


def build(engine: Engine, ctx: FamilyContext) -> list[str]:
    d = engine.dialect
    has_account = {c: ctx.has("accounts", c) for c in ("segment", "industry", "region", "regulated")}
    has_term = {c: ctx.has("subscriptions", c) for c in ("plan", "arr", "seats")}
    days_landed = tenure(d)
    columns: dict[str, str] = {TENURE: days_landed}
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
        columns[ARR] = as_double("c.arr")
    if has_term["seats"]:
        columns[SEATS] = "c.seats"
    columns[TERM_LENGTH] = d.days_between("e.start_date", "e.end_date")
    columns[DAYS_TO_RENEWAL] = d.days_between("s.as_of", "s.term_end")
    columns[RENEWALS] = "CAST(h.renewals_so_far AS DOUBLE)"
    if has_term["seats"]:
        # missing, not 0, without a renewal: a first term did not renew flat (the scorecard weighs what it has)
        columns[SEAT_CHANGE] = ratio("r.seats - r.prev_seats", "r.prev_seats")
    columns[NEW_CUSTOMER] = f"CASE WHEN {days_landed} < {ctx.settings.new_customer_days} THEN 1.0 ELSE 0.0 END"
    # Renewals among the terms started before as_of: how many, and the latest (term ids follow start order).
    engine.define(
        HISTORY,
        f"""
        SELECT s.account_id, s.as_of, {count_where("t.is_renewal")} AS renewals_so_far,
               {agg_where("max", "t.term_id", "t.is_renewal")} AS latest_renewal
        FROM {SNAPSHOTS} s JOIN {TERMS} t ON t.account_id = s.account_id AND t.start_date < s.as_of
        GROUP BY s.account_id, s.as_of
        """,
    )
    snapshots = f"""(
        SELECT s.*, t.term_id AS e_term_id, row_number() OVER (PARTITION BY s.account_id, s.as_of
                                            ORDER BY t.end_date DESC, t.start_date, t.term_id) AS defines_e
        FROM {SNAPSHOTS} s JOIN {TERMS} t
          ON t.account_id = s.account_id AND t.start_date < s.as_of AND s.as_of <= t.end_date)"""
    contract = f"""(
        SELECT s.account_id, s.as_of, sum({ctx.summed("subscriptions", "arr", "t.arr")}) AS arr, max(t.seats) AS seats
        FROM {SNAPSHOTS} s JOIN {TERMS} t
          ON t.account_id = s.account_id AND t.start_date < s.as_of AND s.as_of <= t.end_date
        GROUP BY s.account_id, s.as_of)"""
    joins = [
        "LEFT JOIN accounts acc ON acc.account_id = s.account_id",
        f"LEFT JOIN {contract} c ON c.account_id = s.account_id AND c.as_of = s.as_of",
        f"LEFT JOIN {TERMS} e ON e.term_id = s.e_term_id",
        f"LEFT JOIN {HISTORY} h ON h.account_id = s.account_id AND h.as_of = s.as_of",
        f"LEFT JOIN {TERMS} r ON r.term_id = h.latest_renewal",
    ]
    engine.define(
        family_table(SOURCE),
        family_sql(columns, joins, snapshots=f"(SELECT * FROM {snapshots} defining WHERE defines_e = 1)"),
    )
    return list(columns)
