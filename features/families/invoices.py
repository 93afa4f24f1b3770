"""Financial-status features (category `financial`): does the customer pay, and on time.

An invoice counts from the day it was issued; void invoices are never owed and count nowhere.
It is paid on its `paid_at` day -- only a payment strictly before as_of is seen, so an invoice
paid at or after as_of is still open at as_of, and one without `paid_at` is unpaid (as the
contract says, whatever its status: only the date tells when it was paid). An invoice is *late*
once its due day has passed without payment: it counts in the window of its due date, which lies
before as_of, so whether it was late is known then whatever happens later. A *failed* payment
(status `failed`) counts on its due date too. The discount of the last invoice is the share of
the list price taken off (discount / (amount + discount)): a deep discount at renewal is the
price of keeping a wavering customer. The features over a year (two for the change of the invoiced amount)
are missing where the invoices table starts inside that time, after the account landed (`within_data`):
the data holds part of the window only.
"""

from __future__ import annotations

from features.families.base import Declarations, FamilyContext, family_table
from features.registry import data_days_column
from features.sql.engine import Engine
from features.sql.timeline import (
    SNAPSHOTS,
    as_double,
    count_where,
    data_days,
    ever_before_as_of_sql,
    exact,
    family_sql,
    latest_row_joins,
    ratio,
    rel_change,
    snapshot_join,
    sum_between,
    sum_within,
    table_start_join,
    table_start_sql,
    trailing_sql,
    within_data,
    zero,
)

SOURCE = "invoices"
declare = Declarations(SOURCE, "financial")
PAYMENT_WINDOWS = (90, 365)

DAYS_OVERDUE = declare.fixed(
    "days_overdue", "Days the oldest unpaid invoice is past its due date (0 when none)", "lower",
    "an invoice is {value:.0f} days overdue", requires=("paid_at",), none="no invoice overdue",
)  # fmt: skip
OVERDUE_INVOICES = declare.fixed(
    "overdue_invoices", "Unpaid invoices past their due date", "lower", "{value:.0f} invoices overdue",
    requires=("paid_at",),
)  # fmt: skip
OVERDUE_SHARE = declare.fixed(
    "overdue_amount_share", "Overdue amount / amount invoiced in the last 365 days", "lower",
    "{value:.0%} of the last year's invoiced amount is overdue", requires=("paid_at",),
    missing="nothing invoiced in the last year", window=365,
)  # fmt: skip
LATE = {
    w: declare.fixed(
        f"late_payments_{w}d", f"Invoices due in the last {w} days not paid by their due date", "lower",
        f"{{value:.0f}} invoices paid late or not at all (due in the last {w} days)", requires=("paid_at",),
        none=f"no late or missed payment (invoices due in the last {w} days)",
    )
    for w in PAYMENT_WINDOWS
}  # fmt: skip
FAILED = {
    w: declare.fixed(
        f"failed_payments_{w}d", f"Failed payments on invoices due in the last {w} days", "lower",
        f"{{value:.0f}} failed payments (last {w} days)", requires=("status",),
    )
    for w in PAYMENT_WINDOWS
}  # fmt: skip
LATE_SHARE = declare.fixed(
    "late_payment_share_365d", "Share of invoices due in 365 days that were not paid by their due date", "lower",
    "{value:.0%} of invoices paid late (365 days)", requires=("paid_at",),
    missing="no invoice due in the last 365 days",
)  # fmt: skip
DISCOUNT = declare.fixed(
    "last_invoice_discount", "Discount on the last invoice, as a share of its list price", "lower",
    "{value:.0%} discount on the last invoice", requires=("discount",),
    missing="no invoice recorded yet",
)  # fmt: skip
AMOUNT_CHANGE = declare.fixed(
    "invoiced_amount_change_365d", "Amount invoiced in the last 365 days vs the 365 before (relative change)",
    "higher", "invoiced amount {value:+.0%} on the previous year",
    missing="nothing invoiced the year before to compare with", window=730,
)  # fmt: skip

OWED = "_ft_invoices_owed"
ISSUED = "_ft_invoices_issued"
DUE = "_ft_invoices_due"
LAST_ISSUED = "_ft_invoices_last"
OPEN = "_ft_invoices_open"
START = "_ft_invoices_start"


LAST_ISSUED_DAY = "_ft_invoices_last_day"


def build(engine: Engine, ctx: FamilyContext) -> list[str]:
    d = engine.dialect
    money = exact if ctx.needs_exact(SOURCE, "amount", "discount") else str  # added together: both alike
    engine.materialize(
        OWED,
        f"""
        SELECT account_id, issued_at, due_at, {money("amount")} AS amount,
               {money("coalesce(discount, 0.0)")} AS discount, status, paid_at,
               coalesce({d.day_of("paid_at")} <= {d.day_of("due_at")}, FALSE) AS on_time
        FROM invoices
        WHERE account_id IS NOT NULL AND issued_at IS NOT NULL AND due_at IS NOT NULL
          AND coalesce(status, '') <> 'void'
        """,
    )
    issued = {"amount_365": sum_within("r.amount", 365), "amount_prev_365": sum_between("r.amount", 365, 730)}
    engine.define(ISSUED, trailing_sql(d, OWED, issued, 730, "issued_at"))
    due = {f"due_{w}": count_where(f"r.age <= {w}") for w in PAYMENT_WINDOWS}
    due |= {f"late_{w}": count_where(f"r.age <= {w} AND NOT r.on_time") for w in PAYMENT_WINDOWS}
    due |= {f"failed_{w}": count_where(f"r.age <= {w} AND r.status = 'failed'") for w in PAYMENT_WINDOWS}
    engine.define(DUE, trailing_sql(d, OWED, due, 365, "due_at", also="e.issued_at < s.as_of"))
    # open at as_of: issued and due before it, not paid before it (a payment at or after as_of is not seen yet)
    engine.define(
        OPEN,
        f"""
        SELECT s.account_id, s.as_of, count(*) AS overdue, sum(o.amount) AS overdue_amount,
               max({d.days_between("o.due_at", "s.as_of")}) AS days_overdue
        FROM {SNAPSHOTS} s JOIN {OWED} o
          ON o.account_id = s.account_id AND o.issued_at < s.as_of AND o.due_at < s.as_of
         AND NOT coalesce(o.paid_at < s.as_of, FALSE)
        GROUP BY s.account_id, s.as_of
        """,
    )
    engine.materialize(
        LAST_ISSUED,
        f"""
        SELECT account_id, issued_at, {d.day_of("issued_at")} AS day,
               {ratio("sum(discount)", "sum(amount + discount)")} AS discount_share
        FROM {OWED} GROUP BY account_id, issued_at
        """,
    )
    # the last invoice issued before as_of (as_of is a midnight: issued before it = issued on an earlier day)
    engine.define(LAST_ISSUED_DAY, ever_before_as_of_sql(LAST_ISSUED, {"issued_at": ("max", "r.issued_at")}))

    engine.define(START, table_start_sql(OWED, d.day_of("issued_at")))

    columns: dict[str, str] = {}
    if ctx.has(SOURCE, "paid_at"):
        columns[DAYS_OVERDUE] = as_double(zero("o.days_overdue"))
        columns[OVERDUE_INVOICES] = as_double(zero("o.overdue"))
        columns[OVERDUE_SHARE] = ratio(zero("o.overdue_amount"), "i.amount_365")
        columns |= {LATE[w]: as_double(zero(f"d.late_{w}")) for w in PAYMENT_WINDOWS}
        columns[LATE_SHARE] = ratio("d.late_365", "d.due_365")
    if ctx.has(SOURCE, "status"):
        columns |= {FAILED[w]: as_double(zero(f"d.failed_{w}")) for w in PAYMENT_WINDOWS}
    if ctx.has(SOURCE, "discount"):
        columns[DISCOUNT] = "l.discount_share"
    # nothing invoiced in either year is no amount to compare, not a flat year: missing
    columns[AMOUNT_CHANGE] = rel_change(zero("i.amount_365"), zero("i.amount_prev_365"), both_zero="NULL")
    columns[data_days_column(SOURCE)] = data_days(d)
    joins = [snapshot_join("i", ISSUED), snapshot_join("d", DUE), snapshot_join("o", OPEN), table_start_join(START)]
    joins += latest_row_joins("l", LAST_ISSUED, LAST_ISSUED_DAY, key="issued_at")
    engine.define(family_table(SOURCE), family_sql(within_data(d, columns), joins))
    return list(columns)
