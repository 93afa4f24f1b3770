"""Financial-status features (category `financial`): does the customer pay, and on time.

An invoice counts from the day it was issued; void invoices are never owed and count nowhere.
It is paid on its `paid_at` day -- only a payment strictly before as_of is seen, so an invoice
paid at or after as_of is still open at as_of, and one without `paid_at` is unpaid (as the
contract says, whatever its status: only the date tells when it was paid). An invoice is *late*
once its due day has passed without payment: it counts in the window of its due date, which lies
before as_of, so whether it was late is known then whatever happens later. A *failed* payment
(status `failed`) counts on its due date too. The discount of the last invoice is the share of
the list price taken off (discount / (amount + discount)): a deep discount at renewal is the
price of keeping a wavering customer.
"""

from __future__ import annotations

from features.daily import (
    SNAPSHOTS,
    asof_join,
    day_of,
    days_between,
    ratio,
    rel_change,
    sum_between,
    sum_within,
    trailing_table_sql,
    window_join,
    zero,
)
from features.families.base import Declarations, FamilyContext, Run, family_table_sql

SOURCE = "invoices"
declare = Declarations(SOURCE, "financial")
PAYMENT_WINDOWS = (90, 365)

DAYS_OVERDUE = declare.fixed(
    "days_overdue", "Days the oldest unpaid invoice is past its due date (0 when none)", "lower",
    "an invoice is {value:.0f} days overdue", requires=("paid_at",),
)  # fmt: skip
OVERDUE_INVOICES = declare.fixed(
    "overdue_invoices", "Unpaid invoices past their due date", "lower", "{value:.0f} invoices overdue",
    requires=("paid_at",),
)  # fmt: skip
OVERDUE_SHARE = declare.fixed(
    "overdue_amount_share", "Overdue amount / amount invoiced in the last 365 days", "lower",
    "{value:.0%} of the last year's invoiced amount is overdue", requires=("paid_at",),
)  # fmt: skip
LATE = {
    w: declare.fixed(
        f"late_payments_{w}d", f"Invoices due in the last {w} days not paid by their due date", "lower",
        f"{{value:.0f}} invoices paid late or not at all (due in the last {w} days)", requires=("paid_at",),
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
)  # fmt: skip
DISCOUNT = declare.fixed(
    "last_invoice_discount", "Discount on the last invoice, as a share of its list price", "lower",
    "{value:.0%} discount on the last invoice", requires=("discount",),
)  # fmt: skip
AMOUNT_CHANGE = declare.fixed(
    "invoiced_amount_change_365d", "Amount invoiced in the last 365 days vs the 365 before (relative change)",
    "higher", "invoiced amount {value:+.0%} on the previous year",
)  # fmt: skip

OWED = "_ft_invoices_owed"
ISSUED = "_ft_invoices_issued"
DUE = "_ft_invoices_due"
LAST_ISSUED = "_ft_invoices_last"
OPEN = "_ft_invoices_open"


def build(run: Run, ctx: FamilyContext) -> list[str]:
    run(f"""
        CREATE OR REPLACE TEMP TABLE {OWED} AS
        SELECT account_id, issued_at, due_at, amount, coalesce(discount, 0.0) AS discount, status,
               paid_at, coalesce({day_of("paid_at")} <= {day_of("due_at")}, FALSE) AS on_time
        FROM invoices
        WHERE account_id IS NOT NULL AND issued_at IS NOT NULL AND due_at IS NOT NULL
          AND coalesce(status, '') <> 'void'
    """)
    issued = {"amount_365": sum_within("r.amount", 365), "amount_prev_365": sum_between("r.amount", 365, 730)}
    run(trailing_table_sql(ISSUED, OWED, issued, 730, "issued_at"))
    due = {f"due_{w}": f"count(*) FILTER (WHERE r.age <= {w})" for w in PAYMENT_WINDOWS}
    due |= {f"late_{w}": f"count(*) FILTER (WHERE r.age <= {w} AND NOT r.on_time)" for w in PAYMENT_WINDOWS}
    due |= {f"failed_{w}": f"count(*) FILTER (WHERE r.age <= {w} AND r.status = 'failed')" for w in PAYMENT_WINDOWS}
    run(trailing_table_sql(DUE, OWED, due, 365, "due_at", also="e.issued_at < s.as_of"))
    # open at as_of: issued and due before it, not paid before it (a payment at or after as_of is not seen yet)
    run(f"""
        CREATE OR REPLACE TEMP TABLE {OPEN} AS
        SELECT s.account_id, s.as_of, count(*) AS overdue, sum(o.amount) AS overdue_amount,
               max({days_between("o.due_at", "s.as_of")}) AS days_overdue
        FROM {SNAPSHOTS} s JOIN {OWED} o
          ON o.account_id = s.account_id AND o.issued_at < s.as_of AND o.due_at < s.as_of
         AND NOT coalesce(o.paid_at < s.as_of, FALSE)
        GROUP BY s.account_id, s.as_of
    """)
    run(f"""
        CREATE OR REPLACE TEMP TABLE {LAST_ISSUED} AS
        SELECT account_id, issued_at, {ratio("sum(discount)", "sum(amount + discount)")} AS discount_share
        FROM {OWED} GROUP BY account_id, issued_at
    """)

    columns: dict[str, str] = {}
    if ctx.has(SOURCE, "paid_at"):
        columns[DAYS_OVERDUE] = f"CAST({zero('o.days_overdue')} AS DOUBLE)"
        columns[OVERDUE_INVOICES] = f"CAST({zero('o.overdue')} AS DOUBLE)"
        columns[OVERDUE_SHARE] = ratio(zero("o.overdue_amount"), "i.amount_365")
        columns |= {LATE[w]: f"CAST({zero(f'd.late_{w}')} AS DOUBLE)" for w in PAYMENT_WINDOWS}
        columns[LATE_SHARE] = ratio("d.late_365", "d.due_365")
    if ctx.has(SOURCE, "status"):
        columns |= {FAILED[w]: f"CAST({zero(f'd.failed_{w}')} AS DOUBLE)" for w in PAYMENT_WINDOWS}
    if ctx.has(SOURCE, "discount"):
        columns[DISCOUNT] = "l.discount_share"
    columns[AMOUNT_CHANGE] = rel_change(zero("i.amount_365"), zero("i.amount_prev_365"))

    run(
        family_table_sql(
            SOURCE,
            columns,
            [
                window_join("i", ISSUED),
                window_join("d", DUE),
                window_join("o", OPEN),
                asof_join("l", LAST_ISSUED, day="issued_at"),
            ],
        )
    )
    return list(columns)
