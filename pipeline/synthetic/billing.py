"""Invoices read off the contracts and the latent health, for one block of accounts at a time.

Each term is billed from its start: monthly terms every month, longer terms every quarter,
each invoice a share of the term's ARR. Whether an invoice is paid
on time, late, or fails depends on the account's health in the week it was issued; the first
invoice of a renewal term of a wavering account often carries a discount (the price of the
save). Payments that would land after the data end are still open there.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.synthetic import knobs as k
from pipeline.synthetic.events import US_PER_HOUR, contract_schema
from pipeline.synthetic.population import Latents, Population
from pipeline.synthetic.renewals import Terms
from pipeline.synthetic.timeline import US_PER_DAY, Timeline, add_months


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def invoices(
    rng: np.random.Generator,
    block: range,
    population: Population,
    latents: Latents,
    terms: Terms,
    timeline: Timeline,
    first_invoice: int,
) -> pa.Table:
    """The invoices of the accounts in `block`, numbered from `first_invoice`, ordered by account and issue."""
    term = np.flatnonzero((terms.account >= block.start) & (terms.account < block.stop))
    months = terms.months[term]
    period = np.where(months == 1, 1, k.INVOICE_PERIOD_MONTHS)
    count = np.maximum(1, months // period)
    row_term = np.repeat(term, count)
    number = np.arange(row_term.size) - np.repeat(np.cumsum(count) - count, count)
    row_period = np.repeat(period, count)
    account = terms.account[row_term]
    issued = add_months(terms.start[row_term], number * row_period)
    keep = (
        (issued < terms.end[row_term])
        & (issued >= np.maximum(timeline.start_day, population.created[account]))
        & (issued < np.minimum(timeline.end_day, terms.activity_end[account]))
    )
    row_term, number, row_period, account, issued = (a[keep] for a in (row_term, number, row_period, account, issued))
    n = issued.size

    health = np.nan_to_num(latents.health[account, timeline.week_of(issued)].astype(np.float64))
    monthly = terms.months[row_term] == 1
    net = np.where(monthly, k.INVOICE_NET_DAYS["monthly"], k.INVOICE_NET_DAYS["other"])
    due = issued + net
    list_amount = terms.arr[row_term] * row_period / 12
    renewal_start = (number == 0) & (terms.term_index[row_term] > 0) & ~terms.addon[row_term] & ~monthly
    discounted = renewal_start & (rng.random(n) < _sigmoid(k.RENEWAL_DISCOUNT[0] + k.RENEWAL_DISCOUNT[1] * health))
    discount = np.round(list_amount * np.where(discounted, rng.uniform(*k.RENEWAL_DISCOUNT_RANGE, n), 0.0), 2)
    amount = np.round(list_amount - discount, 2)

    late = rng.random(n) < _sigmoid(k.INVOICE_LATE[0] + k.INVOICE_LATE[1] * health)
    failed = rng.random(n) < _sigmoid(k.INVOICE_FAILED[0] + k.INVOICE_FAILED[1] * health)
    recovered = rng.random(n) < k.INVOICE_RECOVERED
    void = rng.random(n) < k.INVOICE_VOID_SHARE
    days_late = 1 + rng.exponential(k.INVOICE_LATE_DAYS * np.exp(-0.5 * health))
    on_time_day = issued + np.floor(rng.random(n) * (net + 1)).astype(np.int64)
    paid_day = np.where(late | failed, due + np.ceil(days_late).astype(np.int64), on_time_day)
    paid_us = paid_day * US_PER_DAY + (rng.uniform(8, 18, n) * US_PER_HOUR).astype(np.int64)
    unpaid = void | (failed & ~recovered)
    paid = ~unpaid & (paid_us < timeline.end_day * US_PER_DAY)
    status = np.where(void, "void", np.where(paid, "paid", np.where(failed, "failed", "open")))

    order = np.lexsort((issued, account))
    account, issued, due, amount, discount, paid, paid_us, status = (
        a[order] for a in (account, issued, due, amount, discount, paid, paid_us, status)
    )
    digits = pc.utf8_lpad(pc.cast(pa.array(first_invoice + np.arange(n)), pa.string()), width=9, padding="0")
    return pa.Table.from_arrays(
        [
            pa.array(population.account_ids[account], pa.string()),
            pa.array(issued * US_PER_DAY, pa.timestamp("us")),
            pa.array(due * US_PER_DAY, pa.timestamp("us")),
            pa.array(amount, pa.float64()),
            pc.binary_join_element_wise(pa.scalar("I"), digits, ""),
            pa.array(paid_us, pa.timestamp("us"), mask=~paid),
            pa.array(status, pa.string()),
            pa.array(discount, pa.float64()),
        ],
        schema=contract_schema("invoices"),
    )
