"""Small datasets for feature tests and notebooks.

Hand-built: account "A" lands on 2024-01-01 with a 10-seat annual term, so per-seat values are
counts / 10 and features can be computed by hand. Random: a few accounts with every table and
optional column, term gaps and overlaps, and a third of the timestamps exactly at midnight (the
window edges), for property tests and implementation cross-checks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import build_features
from features.contract import TABLES
from features.settings import FeatureSettings
from pipeline.loading import Dataset

LANDED = "2024-01-01"
RANDOM_START = pd.Timestamp("2023-01-01")
RANDOM_END = pd.Timestamp("2025-01-01")
RANDOM_DATA_END = "2025-06-01"
RANDOM_ACCOUNTS = [f"A{i}" for i in range(4)]
# Non-ASCII names too: keyed in Python and matched by their md5 on both engines (`features.families.usage`).
RANDOM_FEATURES = [
    "Reports",
    "dashboards",
    "compliance_audit",
    "export",
    "search-v2",
    "Résumé",
    "resume",
    "検索",
    "共有",
]


def accounts(**columns) -> pd.DataFrame:
    base = {"account_id": ["A"], "created_at": [LANDED], "segment": ["mid"], "regulated": [False]}
    return pd.DataFrame(base | {k: [v] for k, v in columns.items()})


def accounts_a_and_b() -> pd.DataFrame:
    """A and a second account B, landed alike: B's rows are kept (and can start a table before A landed)."""
    return pd.concat([accounts(), accounts().assign(account_id="B")], ignore_index=True)


def subscriptions(
    *terms: tuple[str, str], account: str = "A", seats: float = 10.0, arr: float = 12000.0
) -> pd.DataFrame:
    terms = terms or ((LANDED, "2025-01-01"),)
    return pd.DataFrame(
        {
            "account_id": [account] * len(terms),
            "start_date": [t[0] for t in terms],
            "end_date": [t[1] for t in terms],
            "seats": [seats] * len(terms),
            "arr": [arr] * len(terms),
        }
    )


def make_dataset(
    data_end: str = "2026-01-01",
    accounts_table: pd.DataFrame | None = None,
    subscriptions_table: pd.DataFrame | None = None,
    **events: pd.DataFrame,
) -> Dataset:
    """A Dataset with the given event tables (by contract name), defaulting to account A's one term.

    The contract needs one event table: without any, A gets a single login on its landing day.
    The run's clock is the data end, so scenarios may be dated in the future.
    """
    events = events or {"logins": pd.DataFrame({"account_id": ["A"], "ts": [LANDED]})}
    tables = {
        "accounts": accounts() if accounts_table is None else accounts_table,
        "subscriptions": subscriptions() if subscriptions_table is None else subscriptions_table,
        **events,
    }
    return Dataset.from_frames(tables, data_end=data_end, now=pd.Timestamp(data_end))


def snapshot(dataset: Dataset, as_of: str, account: str = "A", **settings) -> pd.Series:
    """The feature row of one account at one as_of (fails when the account has no snapshot then)."""
    table = build_features(dataset, [as_of], FeatureSettings(**settings), grace_days=30)
    rows = table[table["account_id"] == account]
    if len(rows) != 1:
        raise LookupError(f"expected one snapshot of {account} at {as_of}, got {len(rows)}")
    return rows.iloc[0]


def random_times(rng: np.random.Generator, n: int, low: pd.Timestamp, high: pd.Timestamp) -> pd.Series:
    """Random timestamps, a third of them exactly at midnight (window edges)."""
    days = rng.integers(0, max((high - low).days, 1), n)
    seconds = np.where(rng.random(n) < 0.33, 0, rng.integers(0, 86_400, n))
    return pd.Series(low + pd.to_timedelta(days, "D") + pd.to_timedelta(seconds, "s"))


def random_events(
    rng: np.random.Generator, low: pd.Timestamp, high: pd.Timestamp, first_ticket: int = 0
) -> dict[str, pd.DataFrame]:
    """5-60 rows per event table with every optional column, for RANDOM_ACCOUNTS between low and high."""

    def accounts(n: int) -> np.ndarray:
        return rng.choice(RANDOM_ACCOUNTS, n)

    n = rng.integers(5, 60, 4)
    logins = pd.DataFrame({"account_id": accounts(n[0]), "ts": random_times(rng, n[0], low, high),
                           "user_id": rng.choice(["u0", "u1", "u2", "u3"], n[0])})  # fmt: skip
    usage = pd.DataFrame({
        "account_id": accounts(n[1]), "ts": random_times(rng, n[1], low, high),
        "feature": rng.choice(RANDOM_FEATURES, n[1]),
        "quantity": rng.integers(1, 5, n[1]).astype(float), "user_id": rng.choice(["u0", "u1"], n[1]),
        "workflow_id": rng.choice(["w0", "w1", "w2", "w3", None], n[1]), "step": rng.integers(1, 5, n[1]),
    })  # fmt: skip
    opened = random_times(rng, n[2], low, high)
    closed = opened + pd.to_timedelta(rng.integers(1, 2_000, n[2]), "h")
    tickets = pd.DataFrame({
        "account_id": accounts(n[2]), "ticket_id": [f"T{first_ticket + i}" for i in range(n[2])], "opened_at": opened,
        "closed_at": closed.where(rng.random(n[2]) < 0.8),
        "priority": rng.choice(["low", "normal", "high", "urgent"], n[2]),
        "category": rng.choice(["bug", "how-to", "billing"], n[2]), "escalated": rng.random(n[2]) < 0.2,
        "csat": np.where(rng.random(n[2]) < 0.5, rng.integers(1, 6, n[2]), np.nan),
    })  # fmt: skip
    trainings = pd.DataFrame({
        "account_id": accounts(n[3]), "ts": random_times(rng, n[3], low, high),
        "user_id": rng.choice(["u0", "u1", "u2"], n[3]),
        "kind": rng.choice(["webinar", "course", "certification"], n[3]), "completed": rng.random(n[3]) < 0.7,
    })  # fmt: skip
    m = rng.integers(5, 40, 3)  # drawn after the tables above, so adding these changed none of them
    issued = random_times(rng, m[0], low, high)
    due = issued + pd.to_timedelta(rng.choice([-3, 0, 14, 30], m[0]), "D")
    paid = due + pd.to_timedelta(rng.integers(-20 * 24, 60 * 24, m[0]), "h")
    invoices = pd.DataFrame({
        "account_id": accounts(m[0]), "issued_at": issued, "due_at": due, "amount": rng.integers(0, 900, m[0]) * 1.0,
        "paid_at": paid.where(rng.random(m[0]) < 0.8), "discount": np.where(rng.random(m[0]) < 0.3, 50.0, 0.0),
        "status": rng.choice(["paid", "failed", "void", "open", None], m[0]),
    })  # fmt: skip
    touchpoints = pd.DataFrame({
        "account_id": accounts(m[1]), "ts": random_times(rng, m[1], low, high),
        "kind": rng.choice(["qbr", "executive", "csm_call", "email", "other"], m[1]),
        "sentiment": rng.choice([-1.0, 0.0, 1.0, np.nan], m[1]),
    })  # fmt: skip
    kinds = rng.choice(["nps", "csat", None], m[2])
    surveys = pd.DataFrame({
        "account_id": accounts(m[2]), "ts": random_times(rng, m[2], low, high), "kind": kinds,
        "score": np.where(kinds == "csat", rng.integers(1, 6, m[2]), rng.integers(0, 11, m[2])) * 1.0,
        "user_id": rng.choice(["u0", "u1"], m[2]),
    })  # fmt: skip
    return {
        "logins": logins,
        "usage_events": usage,
        "support_tickets": tickets,
        "trainings": trainings,
        "invoices": invoices,
        "touchpoints": touchpoints,
        "surveys": surveys,
    }


def random_terms(rng: np.random.Generator, low: pd.Timestamp, high: pd.Timestamp) -> pd.DataFrame:
    """Chains of monthly, quarterly and annual terms with gaps, overlaps and some unknown seat counts."""
    rows = []
    for account in RANDOM_ACCOUNTS:
        start = low + pd.Timedelta(days=int(rng.integers(0, 60)))
        while start < high:
            length = int(rng.choice([30, 91, 365]))
            seats = float(rng.integers(1, 20)) if rng.random() < 0.9 else np.nan
            rows.append((account, start, start + pd.Timedelta(days=length), seats, rng.choice(["basic", "pro"])))
            start = start + pd.Timedelta(days=length + int(rng.choice([-20, 0, 0, 5, 45])))
    return pd.DataFrame(rows, columns=["account_id", "start_date", "end_date", "seats", "plan"])


def random_tables(seed: int) -> dict[str, pd.DataFrame]:
    """A small random dataset over 2023-2024 (one account lands after its first term starts)."""
    rng = np.random.default_rng(seed)
    created = [RANDOM_START, RANDOM_START, RANDOM_START + pd.Timedelta(days=40), RANDOM_START - pd.Timedelta(days=300)]
    accounts = pd.DataFrame(
        {"account_id": RANDOM_ACCOUNTS, "created_at": created, "segment": ["smb", "mid", "smb", "enterprise"],
         "regulated": [False, True, False, True]}
    )  # fmt: skip
    return {
        "accounts": accounts,
        "subscriptions": random_terms(rng, RANDOM_START, RANDOM_END),
        **random_events(rng, RANDOM_START, RANDOM_END),
    }


RANDOM_SETTINGS = FeatureSettings(top_features=3)
"""Feature settings of the random-data cross-checks: a few per-feature columns, so they are compared too."""
EVENT_TIME = {
    "logins": "ts",
    "usage_events": "ts",
    "support_tickets": "opened_at",
    "trainings": "ts",
    "invoices": "issued_at",
    "touchpoints": "ts",
    "surveys": "ts",
}


def rewrite_after(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, seed: int) -> dict[str, pd.DataFrame]:
    """Replace every row dated at or after as_of by unrelated random rows; re-close open tickets later."""
    rng = np.random.default_rng(seed)
    late = random_events(rng, as_of, as_of + pd.Timedelta(days=120), first_ticket=10_000)
    late_terms = random_terms(rng, as_of, as_of + pd.Timedelta(days=400))
    new = {"accounts": tables["accounts"]}
    terms = tables["subscriptions"]
    new["subscriptions"] = pd.concat([terms[terms.start_date < as_of], late_terms], ignore_index=True)
    for name, column in EVENT_TIME.items():
        frame = tables[name]
        at_as_of = late[name].head(3).assign(**{column: as_of})
        new[name] = pd.concat([frame[frame[column] < as_of], late[name], at_as_of], ignore_index=True)
    tickets = new["support_tickets"]
    open_then = (tickets.opened_at < as_of) & ~(tickets.closed_at < as_of)
    later = as_of + pd.to_timedelta(rng.integers(0, 500, len(tickets)), "h")
    tickets.loc[open_then, "closed_at"] = later[open_then].where(rng.random(open_then.sum()) < 0.7)
    invoices = new["invoices"]
    unpaid_then = (invoices.issued_at < as_of) & ~(invoices.paid_at < as_of)
    paid_later = as_of + pd.to_timedelta(rng.integers(0, 2_000, len(invoices)), "h")
    invoices.loc[unpaid_then, "paid_at"] = paid_later[unpaid_then].where(rng.random(unpaid_then.sum()) < 0.7)
    return new


PADS = ("\t", "\u00a0", " \n", "\u3000", "\u2028", "\x0b", "", " ")
"""Whitespace that exports leave around values: tab, no-break and ideographic spaces, line breaks."""
SPACE_PADS = ("\u00a0", " ", "\u3000", "", "\u2009", "  ")
"""Unicode spaces only: what is trimmed around ids, strings and codes (`features.sql.dialect.SPACES`)."""


OFFSETS = (None, "+0200", "-01:30", "+00:00", "+05:45")
"""Offsets a padded date is written with (cycling; None is naive UTC), both spellings with a space before
them as ISO-8601 writers emit: the same instant on both engines (DuckDB's cast once refused '10:00 +0200')."""


def _iso(ts: pd.Timestamp, i: int) -> str:
    """The naive-UTC `ts` as ISO-8601 text, in the zone of the `i`-th of `OFFSETS`."""
    offset = OFFSETS[i % len(OFFSETS)]
    if offset is None:
        return ts.isoformat()
    sign = 1 if offset[0] == "+" else -1
    digits = offset[1:].replace(":", "")
    local = ts + sign * pd.Timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return f"{local.isoformat(sep=' ')} {offset}"


def padded(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables with every value written as text surrounded by whitespace (cycling): `SPACE_PADS` around
    ids, strings and codes, `PADS` around dates, numbers and booleans."""

    def pad(column: pd.Series, pads: tuple[str, ...]) -> pd.Series:
        if pd.api.types.is_datetime64_any_dtype(column):
            column = pd.Series(
                [ts if pd.isna(ts) else _iso(ts, i) for i, ts in enumerate(column)], index=column.index, dtype=object
            )
        ends = [(pads[i % len(pads)], pads[(i // len(pads) + 1) % len(pads)]) for i in range(len(column))]
        return pd.Series(
            [v if pd.isna(v) else f"{a}{v}{b}" for v, (a, b) in zip(column, ends, strict=True)],
            index=column.index,
            dtype=object,
        )

    def text(table: str, column: str) -> bool:
        return TABLES[table].column(column).type in ("id", "string", "code")

    return {
        name: frame.apply(lambda c, n=name: pad(c, SPACE_PADS if text(n, c.name) else PADS))
        for name, frame in tables.items()
    }
