"""A straightforward pandas implementation of the snapshot features, for comparison only.

It follows the definitions of `features/` literally -- for each as_of, filter every table to
the rows before it and group by account -- so it is easy to check by eye and slow at scale. The
benchmark times it next to the DuckDB engine, and a test checks that both agree on small data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import HIGH_PRIORITIES
from features.families.usage import feature_key, per_feature_name
from features.registry import lookup
from features.settings import FeatureSettings
from features.snapshots import normalise_as_of

DAY = pd.Timedelta(days=1)
ID = "account_id"


def reference_features(dataset, as_of_dates, settings: FeatureSettings, grace_days: int) -> pd.DataFrame:
    """The same table as `features.build.build_features` (column order may differ)."""
    dates = normalise_as_of(as_of_dates)
    names = ("accounts", "subscriptions", *dataset.event_tables)
    tables = {name: dataset.con.execute(f'SELECT * FROM "{name}"').df() for name in names}
    for name, column in (
        ("logins", "ts"),
        ("usage_events", "ts"),
        ("trainings", "ts"),
        ("support_tickets", "opened_at"),
        ("invoices", "issued_at"),
        ("touchpoints", "ts"),
        ("surveys", "ts"),
    ):
        if name in tables:
            tables[name] = tables[name][tables[name][ID].notna() & tables[name][column].notna()].copy()
            tables[name]["day"] = tables[name][column].dt.floor("D")
    present = {name: set(cols) for name, cols in dataset.present_columns.items()}
    terms = _terms(tables["subscriptions"], grace_days)
    usage = tables.get("usage_events")
    top = _top_features(usage, dates[-1], settings) if usage is not None else []
    workflows = (
        _workflow_events(usage) if usage is not None and {"workflow_id", "step"} <= present["usage_events"] else None
    )
    frames = []
    for as_of in dates:
        snap = _snapshots(terms, tables["accounts"], as_of, grace_days, pd.Timestamp(dataset.data_end))
        if snap.empty:
            continue
        parts = [_account(snap, terms, tables["accounts"], as_of, settings, present)]
        if "logins" in tables:
            parts.append(_logins(tables["logins"], snap, as_of, settings, "user_id" in present["logins"]))
        if usage is not None:
            parts.append(_usage(usage, workflows, snap, as_of, settings, top, "quantity" in present["usage_events"]))
        if "support_tickets" in tables:
            parts.append(_support(tables["support_tickets"], snap, as_of, settings, present["support_tickets"]))
        if "trainings" in tables:
            parts.append(_training(tables["trainings"], snap, as_of, settings, present["trainings"]))
        if "invoices" in tables:
            parts.append(_invoices(tables["invoices"], snap, as_of, present["invoices"]))
        if "touchpoints" in tables:
            parts.append(_touchpoints(tables["touchpoints"], snap, as_of, present["touchpoints"]))
        if "surveys" in tables:
            parts.append(_surveys(tables["surveys"], snap, as_of, present["surveys"]))
        head = pd.DataFrame({ID: snap.index, "as_of": as_of}, index=snap.index)
        # one concat of every column: inserting into a frame of ~100 blocks fragments it (a PerformanceWarning)
        frames.append(pd.concat([head, snap[["term_end", "label"]], *parts], axis=1).reset_index(drop=True))
    table = pd.concat(frames, ignore_index=True).sort_values(["as_of", ID], ignore_index=True)
    return table


def _rel_change(recent: pd.Series, before: pd.Series, both_zero: float = 0.0) -> pd.Series:
    recent, before = recent.astype(float), before.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (recent - before) / before
    return pd.Series(np.where(before > 0, change, np.where(recent == 0, both_zero, np.nan)), index=recent.index)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return numerator.astype(float) / denominator.astype(float).replace(0, np.nan)


def _days(delta: pd.Series) -> pd.Series:
    return delta / DAY


def _terms(subscriptions: pd.DataFrame, grace_days: int) -> pd.DataFrame:
    terms = subscriptions.dropna(subset=[ID, "start_date", "end_date"])
    terms = terms.sort_values([ID, "start_date", "end_date", "plan", "seats", "arr"], na_position="last")
    terms = terms.reset_index(drop=True)
    terms["term_id"] = np.arange(1, len(terms) + 1)
    pairs = terms.merge(terms, on=ID, suffixes=("", "_u"))
    grace = pd.Timedelta(days=grace_days)
    pairs = pairs[
        (pairs.start_date_u < pairs.start_date)
        & (pairs.start_date <= pairs.end_date_u + grace)
        & (pairs.end_date > pairs.end_date_u)
    ]
    pairs = pairs.sort_values(
        ["term_id", "end_date_u", "start_date_u", "term_id_u"], ascending=[True, False, False, False]
    )
    predecessor = pairs.drop_duplicates("term_id").set_index("term_id")["seats_u"]
    terms["is_renewal"] = terms.term_id.isin(predecessor.index)
    terms["prev_seats"] = terms.term_id.map(predecessor)
    return terms


def _snapshots(terms, accounts, as_of, grace_days, data_end) -> pd.DataFrame:
    visible = terms[terms.start_date < as_of]
    active = visible[visible.end_date >= as_of]
    if active.empty:
        return pd.DataFrame()
    snap = pd.DataFrame({"term_end": active.groupby(ID).end_date.max()})
    snap["first_start"] = visible.groupby(ID).start_date.min()
    snap["seats"] = active[active.seats > 0].groupby(ID).seats.max()
    grace = pd.Timedelta(days=grace_days)
    candidates = terms.merge(snap[["term_end"]], left_on=ID, right_index=True)
    renewing = candidates[
        (candidates.start_date <= candidates.term_end + grace) & (candidates.end_date > candidates.term_end)
    ]
    label = pd.Series(np.where(snap.index.isin(renewing[ID]), 0, 1), index=snap.index).astype("Int8")
    label[snap.term_end + grace > data_end] = pd.NA
    snap["label"] = label
    created = accounts.set_index(ID).created_at.reindex(snap.index)
    snap["landed_at"] = pd.concat([created.fillna(snap.first_start), snap.first_start], axis=1).min(axis=1)
    snap["seat_norm"] = snap.seats.fillna(1.0)
    snap["tenure"] = _days(as_of - snap.landed_at)
    return snap


def _account(snap, terms, accounts, as_of, settings, present) -> pd.DataFrame:
    out = pd.DataFrame(index=snap.index)
    visible = terms[(terms.start_date < as_of) & terms[ID].isin(snap.index)]
    active = visible[visible.end_date >= as_of]
    info = accounts.set_index(ID).reindex(snap.index)
    e_term = active.sort_values(["end_date", "start_date", "term_id"], ascending=[False, True, True])
    e_term = e_term.drop_duplicates(ID).set_index(ID)
    out["tenure_days"] = snap.tenure
    for column in ("segment", "industry", "region"):
        if column in present["accounts"]:
            out[column] = info[column]
    if "plan" in present["subscriptions"]:
        out["plan"] = e_term.plan
    if "regulated" in present["accounts"]:
        out["regulated"] = info.regulated.eq(True).astype(float)
    if "arr" in present["subscriptions"]:
        out["arr"] = active.groupby(ID).arr.sum(min_count=1)
    if "seats" in present["subscriptions"]:
        out["seats"] = active.groupby(ID).seats.max()
    out["term_length_days"] = _days(e_term.end_date - e_term.start_date)
    out["days_to_renewal"] = _days(snap.term_end - as_of)
    renewals = visible[visible.is_renewal]
    out["renewals_count"] = renewals.groupby(ID).size().reindex(snap.index, fill_value=0).astype(float)
    if "seats" in present["subscriptions"]:
        last = renewals.sort_values(["start_date", "term_id"], ascending=False).drop_duplicates(ID).set_index(ID)
        change = _ratio(last.seats - last.prev_seats, last.prev_seats)
        out["seat_change_last_renewal"] = change.reindex(snap.index)
    out["is_new_customer"] = (snap.tenure < settings.new_customer_days).astype(float)
    return out


def _before(events: pd.DataFrame, as_of) -> pd.DataFrame:
    seen = events[events.day < as_of]
    return seen.assign(age=(as_of - seen.day).dt.days)


def _start(table: pd.DataFrame, as_of) -> pd.Timestamp | None:
    """The table's first day when it is before as_of (features/sql/timeline.py `table_start_sql`), else None."""
    start = table.day.min()
    return None if pd.isna(start) or start >= as_of else start


def _starts_after_landing(table: pd.DataFrame, snap: pd.DataFrame, as_of) -> pd.Series:
    """Per account, whether the table's first day before as_of is after its landing day (`starts_after_landing`)."""
    start = _start(table, as_of)
    return snap.landed_at.dt.floor("D") < start if start is not None else pd.Series(False, index=snap.index)


def _since_landing(known: pd.Series, table: pd.DataFrame, snap: pd.DataFrame, as_of) -> pd.Series:
    """`known` (counted from the landing day), missing where the table starts after the account landed: the
    table does not cover the start (features/sql/timeline.py `since_landing`)."""
    return known.where(~_starts_after_landing(table, snap, as_of))


def _within_data(out: pd.DataFrame, table: pd.DataFrame, snap: pd.DataFrame, as_of) -> pd.DataFrame:
    """`out` with each `whole` feature (over more than 90 days, fixed or configured) missing where its window
    reaches before the first day of a table that starts after the account landed (`within_data`)."""
    start, after = _start(table, as_of), _starts_after_landing(table, snap, as_of)
    for name in out.columns:
        found = lookup(name)
        if found is not None and found.whole and start is not None and start > as_of - pd.Timedelta(days=found.window):
            out[name] = out[name].where(~after)
    return out


def _data_days(table: pd.DataFrame, snap: pd.DataFrame, as_of) -> pd.Series:
    """Days of the table before as_of from its first day, missing without one (`data_days`)."""
    start = _start(table, as_of)
    return pd.Series(np.nan if start is None else (as_of - start) / DAY, index=snap.index)


def _count(frame: pd.DataFrame, index) -> pd.Series:
    return frame.groupby(ID).size().reindex(index, fill_value=0).astype(float)


def _since_last(seen: pd.DataFrame, table: pd.DataFrame, snap: pd.DataFrame, as_of) -> pd.Series:
    """Days since the last day seen; without one, since landing, or since the table's first day where the table
    starts after the landing (`days_since_last`)."""
    last = seen.groupby(ID).day.max().reindex(snap.index)
    bound = snap.tenure.where(~_starts_after_landing(table, snap, as_of), _data_days(table, snap, as_of))
    return _days(as_of - last).fillna(bound)


def _logins(logins, snap, as_of, settings, has_users) -> pd.DataFrame:
    out = pd.DataFrame(index=snap.index)
    seen = _before(logins[logins[ID].isin(snap.index)], as_of)
    windows = settings.windows
    for w in windows:
        out[f"logins_per_seat_{w}d"] = _count(seen[seen.age <= w], snap.index) / snap.seat_norm
    if has_users:
        for w in windows:
            users = seen[(seen.age <= w) & seen.user_id.notna()].groupby(ID).user_id.nunique()
            out[f"active_users_{w}d"] = users.reindex(snap.index, fill_value=0).astype(float)
        for w in windows:
            out[f"user_utilisation_{w}d"] = out[f"active_users_{w}d"] / snap.seat_norm
    days = seen[[ID, "day", "age"]].drop_duplicates().sort_values([ID, "day"])
    for w in windows:
        out[f"active_days_{w}d"] = _count(days[days.age <= w], snap.index)
    out["days_since_last_login"] = _since_last(seen, logins, snap, as_of)
    out["logins_data_days"] = _data_days(logins, snap, as_of)
    gap = _days(days.day - days.groupby(ID).day.shift())
    last_90 = days[days.age <= 90].groupby(ID).age.agg(["count", "min", "max"]).reindex(snap.index)
    out["login_gap_mean_90d"] = ((last_90["max"] - last_90["min"]) / (last_90["count"] - 1)).where(
        last_90["count"] >= 2
    )
    inside = days[days.age + gap <= 90]
    out["login_gap_max_90d"] = gap[inside.index].groupby(inside[ID]).max().reindex(snap.index)
    c30 = _count(seen[seen.age <= 30], snap.index)
    out["logins_trend_30d"] = _rel_change(c30, _count(seen[(seen.age > 30) & (seen.age <= 60)], snap.index))
    out["logins_trend_vs_90d"] = _rel_change(c30 / 30.0, _count(seen[seen.age <= 90], snap.index) / 90.0)
    return _within_data(out, logins, snap, as_of)


def _top_features(usage: pd.DataFrame, latest, settings: FeatureSettings) -> list[str]:
    seen = usage[(usage.day < latest) & usage.feature.notna()]
    counts = seen.feature.map(feature_key).value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: settings.top_features]
    keys = [key for key, _ in ranked]
    return keys + [k for k in map(feature_key, settings.tracked_features) if k not in keys]


def _workflow_events(usage: pd.DataFrame) -> pd.DataFrame:
    wf = usage[usage.workflow_id.notna() & usage.step.notna()].sort_values([ID, "workflow_id", "ts", "step"])
    runs = wf.groupby([ID, "workflow_id"], sort=False)
    wf = wf.assign(process=runs.feature.transform("first"), delta=wf.step - runs.step.shift().fillna(0))
    return wf


def _workflow_rates(wf: pd.DataFrame, snap, as_of) -> tuple[pd.Series, pd.Series]:
    seen = wf[(wf.day < as_of) & wf[ID].isin(snap.index)]
    if seen.empty:
        return pd.Series(np.nan, index=snap.index), pd.Series(np.nan, index=snap.index)
    runs = seen.groupby([ID, "workflow_id"]).agg(
        start_day=("day", "min"), top=("step", "max"), process=("process", "first"),
        skipped=("delta", lambda d: bool((d > 1).any())), backwards=("delta", lambda d: bool((d < 0).any())),
    ).reset_index()  # fmt: skip
    all_seen = wf[wf.day < as_of]
    steps = all_seen.groupby(["process", "day"]).step.max().groupby(level=0).cummax().rename("steps").reset_index()
    runs = pd.merge_asof(
        runs.sort_values("start_day"), steps.sort_values("day"), left_on="start_day", right_on="day",
        by="process", allow_exact_matches=False,
    )  # fmt: skip
    runs["completed"] = ~runs.skipped & ~runs.backwards & (runs.top >= runs.steps.fillna(runs.top))
    recent = runs[(as_of - runs.start_day).dt.days <= 90].groupby(ID)
    total = recent.size().reindex(snap.index)
    return (
        _ratio(recent.completed.sum().reindex(snap.index), total),
        _ratio(recent.skipped.sum().reindex(snap.index), total),
    )


def _usage(usage, workflows, snap, as_of, settings, top, has_quantity) -> pd.DataFrame:
    out = pd.DataFrame(index=snap.index)
    seen = _before(usage[usage[ID].isin(snap.index)], as_of)
    windows = settings.windows
    for w in windows:
        out[f"events_per_seat_{w}d"] = _count(seen[seen.age <= w], snap.index) / snap.seat_norm
    if has_quantity:
        for w in windows:
            quantity = seen[seen.age <= w].groupby(ID).quantity.sum().reindex(snap.index, fill_value=0)
            out[f"quantity_per_seat_{w}d"] = quantity / snap.seat_norm
    keyed = seen[seen.feature.notna()].assign(key=lambda f: f.feature.map(feature_key))
    for w in windows:
        breadth = keyed[keyed.age <= w].groupby(ID).key.nunique()
        out[f"feature_breadth_{w}d"] = breadth.reindex(snap.index, fill_value=0).astype(float)
    for key in top:
        out[per_feature_name(key)] = _count(keyed[(keyed.age <= 30) & (keyed.key == key)], snap.index) / snap.seat_norm
    if workflows is not None:
        out["workflow_completion_rate_90d"], out["workflow_skip_rate_90d"] = _workflow_rates(workflows, snap, as_of)
    landed_day = snap.landed_at.dt.floor("D")
    after_landing = seen[seen.day >= seen[ID].map(landed_day)]
    first = after_landing.groupby(ID).ts.min().reindex(snap.index)
    days_to_first = _days(first - snap.landed_at).clip(lower=0).fillna(snap.tenure)
    out["days_to_first_value"] = _since_landing(days_to_first, usage, snap, as_of)
    out["days_since_last_use"] = _since_last(seen, usage, snap, as_of)
    out["usage_events_data_days"] = _data_days(usage, snap, as_of)
    c30 = _count(seen[seen.age <= 30], snap.index)
    out["usage_trend_30d"] = _rel_change(c30, _count(seen[(seen.age > 30) & (seen.age <= 60)], snap.index))
    return _within_data(out, usage, snap, as_of)


def _category(series: pd.Series) -> pd.Series:
    return series.str.lower().str.replace(r"[^a-z0-9]", "", regex=True)


def _support(tickets, snap, as_of, settings, present) -> pd.DataFrame:
    out = pd.DataFrame(index=snap.index)
    out["support_tickets_data_days"] = _data_days(tickets, snap, as_of)
    since_last = _since_last(_before(tickets[tickets[ID].isin(snap.index)], as_of), tickets, snap, as_of)
    all_tickets, tickets = tickets, tickets[tickets[ID].isin(snap.index)]
    seen = _before(tickets, as_of)
    for w in settings.windows:
        out[f"tickets_{w}d"] = _count(seen[seen.age <= w], snap.index)
    for w in settings.windows:
        out[f"tickets_per_seat_{w}d"] = out[f"tickets_{w}d"] / snap.seat_norm
    close_day = pd.concat([tickets.opened_at, tickets.closed_at.fillna(tickets.opened_at)], axis=1).max(axis=1)
    closed = tickets.assign(day=close_day.dt.floor("D"))
    closed = _before(closed, as_of)
    if "closed_at" in present:
        opened_total = _count(seen, snap.index)
        out["open_tickets"] = opened_total - _count(closed[closed.closed_at.notna()], snap.index)
    last_90 = seen[seen.age <= 90]
    if "priority" in present:
        rated = last_90[last_90.priority.notna()]
        high = rated.priority.str.lower().isin(HIGH_PRIORITIES)
        out["high_priority_share_90d"] = _ratio(
            high.groupby(rated[ID]).sum().reindex(snap.index), _count(rated, snap.index)
        )
    if "escalated" in present:
        out["escalations_90d"] = _count(last_90[last_90.escalated.eq(True)], snap.index)
    closed_90 = closed[closed.age <= 90]
    if "closed_at" in present:
        resolved = closed_90[closed_90.closed_at.notna() & (closed_90.closed_at >= closed_90.opened_at)]
        hours = (resolved.closed_at - resolved.opened_at) / pd.Timedelta(hours=1)
        out["resolution_hours_mean_90d"] = hours.groupby(resolved[ID]).mean().reindex(snap.index)
    if "csat" in present:
        rated = closed_90[closed_90.csat.notna()]
        if "closed_at" in present:
            rated = rated[rated.closed_at.notna()]
        out["csat_mean_90d"] = rated.groupby(ID).csat.mean().reindex(snap.index)
    if "category" in present:
        known = last_90[last_90.category.notna()]
        category = _category(known.category)
        total = _count(known, snap.index)
        out["bug_share_90d"] = _ratio(category.eq("bug").groupby(known[ID]).sum().reindex(snap.index), total)
        out["howto_share_90d"] = _ratio(category.eq("howto").groupby(known[ID]).sum().reindex(snap.index), total)
    out["days_since_last_ticket"] = since_last
    c30 = _count(seen[seen.age <= 30], snap.index)
    out["tickets_trend_30d"] = _rel_change(c30, _count(seen[(seen.age > 30) & (seen.age <= 60)], snap.index))
    return _within_data(out, all_tickets, snap, as_of)


def _training(trainings, snap, as_of, settings, present) -> pd.DataFrame:
    out = pd.DataFrame(index=snap.index)
    seen = _before(trainings[trainings[ID].isin(snap.index)], as_of)
    for w in settings.windows:
        out[f"trainings_{w}d"] = _count(seen[seen.age <= w], snap.index)
    done = seen[seen.completed.eq(True)]
    if "completed" in present:
        out["training_completions_90d"] = _count(done[done.age <= 90], snap.index)
    if "user_id" in present:
        trained = done[done.user_id.notna()].groupby(ID).user_id.nunique().reindex(snap.index, fill_value=0)
        out["trained_users_share"] = trained / snap.seat_norm
    if "kind" in present:
        out["certifications_total"] = _count(done[done.kind.str.lower().eq("certification")], snap.index)
    landed_day = seen[ID].map(snap.landed_at.dt.floor("D"))
    onboarding_end = (landed_day + pd.Timedelta(days=settings.onboarding_days)).clip(upper=as_of)
    onboarding = _count(seen[(seen.day >= landed_day) & (seen.day < onboarding_end)], snap.index)
    out["onboarding_sessions"] = _since_landing(onboarding, trainings, snap, as_of)
    out["days_since_last_training"] = _since_last(seen, trainings, snap, as_of)
    out["trainings_data_days"] = _data_days(trainings, snap, as_of)
    return _within_data(out, trainings, snap, as_of)


def _invoices(invoices, snap, as_of, present) -> pd.DataFrame:
    out = pd.DataFrame(index=snap.index)
    every = invoices[invoices.due_at.notna() & invoices.status.ne("void")]
    every = every.assign(day=every.issued_at.dt.floor("D"))
    out["invoices_data_days"] = _data_days(every, snap, as_of)
    owed = invoices[invoices[ID].isin(snap.index) & invoices.due_at.notna() & invoices.status.ne("void")].copy()
    owed["on_time"] = (owed.paid_at.dt.floor("D") <= owed.due_at.dt.floor("D")).fillna(False)
    issued = _before(owed, as_of)
    due = owed[owed.issued_at < as_of].assign(day=lambda f: f.due_at.dt.floor("D"))
    due = _before(due, as_of)
    amount_365 = issued[issued.age <= 365].groupby(ID).amount.sum().reindex(snap.index)
    if "paid_at" in present:
        open_now = due[~(due.paid_at < as_of).fillna(False)]
        out["days_overdue"] = _days(as_of - open_now.groupby(ID).due_at.min()).reindex(snap.index).fillna(0.0)
        out["overdue_invoices"] = _count(open_now, snap.index)
        overdue_amount = open_now.groupby(ID).amount.sum().reindex(snap.index).fillna(0.0)
        out["overdue_amount_share"] = _ratio(overdue_amount, amount_365)
        for w in (90, 365):
            out[f"late_payments_{w}d"] = _count(due[(due.age <= w) & ~due.on_time], snap.index)
        year = due[due.age <= 365]
        out["late_payment_share_365d"] = _ratio(_count(year[~year.on_time], snap.index), _count(year, snap.index))
    if "status" in present:
        for w in (90, 365):
            out[f"failed_payments_{w}d"] = _count(due[(due.age <= w) & due.status.eq("failed")], snap.index)
    if "discount" in present:
        last = issued[issued.issued_at == issued.groupby(ID).issued_at.transform("max")]
        sums = last.assign(listed=last.amount + last.discount.fillna(0.0)).groupby(ID)[["discount", "listed"]].sum()
        out["last_invoice_discount"] = _ratio(sums.discount, sums.listed).reindex(snap.index)
    prev = issued[(issued.age > 365) & (issued.age <= 730)].groupby(ID).amount.sum().reindex(snap.index)
    out["invoiced_amount_change_365d"] = _rel_change(amount_365.fillna(0.0), prev.fillna(0.0), both_zero=np.nan)
    return _within_data(out, every, snap, as_of)


def _touchpoints(touchpoints, snap, as_of, present) -> pd.DataFrame:
    out = pd.DataFrame(index=snap.index)
    seen = _before(touchpoints[touchpoints[ID].isin(snap.index)], as_of)
    recent, earlier = seen[seen.age <= 90], seen[(seen.age > 90) & (seen.age <= 180)]
    out["touchpoints_90d"] = _count(recent, snap.index)
    for name, kind in (("days_since_last_qbr", "qbr"), ("days_since_last_executive_meeting", "executive")):
        out[name] = _days(as_of - seen[seen.kind.eq(kind)].groupby(ID).day.max().reindex(snap.index))
    out["days_since_last_touchpoint"] = _since_last(seen, touchpoints, snap, as_of)
    out["touchpoints_data_days"] = _data_days(touchpoints, snap, as_of)
    if "sentiment" in present:
        mean_90 = recent.groupby(ID).sentiment.mean().reindex(snap.index)
        out["touchpoint_sentiment_90d"] = mean_90
        out["touchpoint_sentiment_trend_90d"] = mean_90 - earlier.groupby(ID).sentiment.mean().reindex(snap.index)
        out["negative_touchpoints_90d"] = _count(recent[recent.sentiment < 0], snap.index)
    return _within_data(out, touchpoints, snap, as_of)


def _surveys(surveys, snap, as_of, present) -> pd.DataFrame:
    out = pd.DataFrame(index=snap.index)
    seen = _before(surveys[surveys[ID].isin(snap.index) & surveys.score.notna()], as_of)
    recent = seen[seen.age <= 180]

    def latest(kind: str) -> pd.Series:
        rows = seen[seen.kind.eq(kind)]
        last = rows[rows.day == rows.groupby(ID).day.transform("max")]
        return last.groupby(ID).score.mean().reindex(snap.index)

    nps = recent[recent.kind.eq("nps")]
    answered = _count(nps, snap.index)
    out["nps_latest"] = latest("nps")
    out["nps_mean_180d"] = nps.groupby(ID).score.mean().reindex(snap.index)
    promoters, detractors = _count(nps[nps.score >= 9], snap.index), _count(nps[nps.score <= 6], snap.index)
    out["account_nps_180d"] = 100.0 * _ratio(promoters - detractors, answered)
    out["nps_detractor_share_180d"] = _ratio(detractors, answered)
    if "kind" in present:
        out["survey_csat_latest"] = latest("csat")
        out["survey_csat_mean_180d"] = recent[recent.kind.eq("csat")].groupby(ID).score.mean().reindex(snap.index)
    out["survey_responses_180d"] = _count(recent, snap.index)
    scored = surveys[surveys.score.notna()]
    out["days_since_last_survey"] = _since_last(seen, scored, snap, as_of)
    out["surveys_data_days"] = _data_days(scored, snap, as_of)
    return _within_data(out, scored, snap, as_of)
