"""The input data contract of SPEC.md as data: tables, their columns and canonical types.

Loading (`pipeline/loading.py`) coerces every table to these types (ids to strings, timestamps to
naive UTC); optional columns that a file lacks are filled with their default so later stages can
rely on the column being there, while `present_columns` records what the data really had.
`CanonicalData` is what the feature engine reads: those canonical tables, wherever they came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import duckdb
import pandas as pd

from features.sql.dialect import DUCKDB, Dialect

ColumnType = Literal["id", "timestamp", "string", "code", "float", "int", "bool"]
# "code" is an enumeration (priority, kind...): trimmed and lower-cased so matching is case-blind.
SQL_TYPES: dict[str, str] = {kind: DUCKDB.column_type(kind) for kind in ColumnType.__args__}
"""DuckDB's canonical type of each column type (what loading produces)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    default: str = "NULL"  # SQL literal used when an optional column is absent
    minimum: float | None = None  # numbers: finite and within [minimum, maximum] (validation refuses others)
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # codes: the closed vocabulary (validation refuses other values)
    hint: str = ""  # said after any problem of the column's values: what to write instead

    def cast_sql(self, raw_type: str | None = None, dialect: Dialect = DUCKDB) -> str:
        """SQL turning the raw column into its canonical type on `dialect`; NULL where a value does not
        convert (the text per type is `Dialect.contract_cast`, one definition for both engines)."""
        return dialect.contract_cast(self.type, dialect.quote(self.name), raw_type)

    def select_sql(self, raw_type: str | None, dialect: Dialect = DUCKDB) -> str:
        """Select-list item for the canonical view: the cast, or the default when the column is absent (None)."""
        name = dialect.quote(self.name)
        if raw_type is None:
            return f"CAST({self.default} AS {dialect.column_type(self.type)}) AS {name}"
        expression = self.cast_sql(raw_type, dialect)
        if self.default != "NULL":
            expression = f"COALESCE({expression}, {self.default})"
        return f"{expression} AS {name}"


RawTypes = dict[str, dict[str, str]]  # table -> column -> DuckDB type of the column in the file


@dataclass(frozen=True)
class RangeWhen:
    """A range that depends on another column's code: a survey score is 0-10 for NPS, 1-5 for CSAT."""

    column: str
    by: str  # the code column (a code column with a default, so a missing code means the default)
    value: str
    minimum: float
    maximum: float


@dataclass(frozen=True)
class TableContract:
    name: str
    columns: tuple[Column, ...]
    required: bool = False
    is_event: bool = False
    time_column: str | None = None  # what "before as_of" is measured on
    unique: tuple[str, ...] = field(default=())
    ranges: tuple[RangeWhen, ...] = field(default=())

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


ACCOUNTS = TableContract(
    "accounts",
    (
        Column("account_id", "id", required=True),
        Column("created_at", "timestamp", required=True),
        Column("segment", "code"),
        Column("industry", "string"),
        Column("regulated", "bool", default="FALSE"),
        Column("region", "string"),
        Column("csm", "string"),
    ),
    required=True,
    time_column="created_at",
    unique=("account_id",),
)

SUBSCRIPTIONS = TableContract(
    "subscriptions",
    (
        Column("account_id", "id", required=True),
        Column("start_date", "timestamp", required=True),
        Column(
            "end_date",
            "timestamp",
            required=True,
            hint="a term without an end (evergreen) needs one: the day it next renews or can be cancelled",
        ),
        Column("arr", "float", minimum=0.0),
        Column("seats", "float", minimum=0.0),
        Column("plan", "string"),
    ),
    required=True,
    time_column="start_date",
)

USAGE_EVENTS = TableContract(
    "usage_events",
    (
        Column("account_id", "id", required=True),
        Column("ts", "timestamp", required=True),
        Column("feature", "string", required=True),
        Column("user_id", "id"),
        Column("quantity", "float", default="1.0", minimum=0.0),
        Column("workflow_id", "id"),
        Column("step", "int"),
    ),
    is_event=True,
    time_column="ts",
)

LOGINS = TableContract(
    "logins",
    (
        Column("account_id", "id", required=True),
        Column("ts", "timestamp", required=True),
        Column("user_id", "id"),
    ),
    is_event=True,
    time_column="ts",
)

SUPPORT_TICKETS = TableContract(
    "support_tickets",
    (
        Column("account_id", "id", required=True),
        Column("ticket_id", "id", required=True),
        Column("opened_at", "timestamp", required=True),
        Column("closed_at", "timestamp"),
        Column("priority", "code"),
        Column("category", "code"),
        Column("escalated", "bool", default="FALSE"),
        Column("csat", "float", minimum=1.0, maximum=5.0),
    ),
    is_event=True,
    time_column="opened_at",
)

TRAININGS = TableContract(
    "trainings",
    (
        Column("account_id", "id", required=True),
        Column("ts", "timestamp", required=True),
        Column("user_id", "id"),
        Column("kind", "code"),
        Column("completed", "bool", default="TRUE"),
    ),
    is_event=True,
    time_column="ts",
)

INVOICE_STATUSES = ("paid", "failed", "void", "open")
TOUCHPOINT_KINDS = ("qbr", "executive", "csm_call", "email", "other")
SURVEY_KINDS = ("nps", "csat")
NPS_RANGE, CSAT_RANGE = (0.0, 10.0), (1.0, 5.0)

# Optional sources (financial status, the relationship, the customer's own voice). They count as
# event tables: any one of them satisfies "at least one event table", and their time column
# (the invoice's issue date) can end the data. An invoice's due date is a plan, not an observation,
# and its payment counts on the day it was paid, as a ticket's close does.
INVOICES = TableContract(
    "invoices",
    (
        Column("account_id", "id", required=True),
        Column("issued_at", "timestamp", required=True),
        Column("due_at", "timestamp", required=True),
        Column("amount", "float", required=True, minimum=0.0),
        Column("invoice_id", "id"),
        Column("paid_at", "timestamp"),
        Column("status", "code", choices=INVOICE_STATUSES),
        Column("discount", "float", minimum=0.0),  # in the invoice's currency, like amount (amount is net of it)
    ),
    is_event=True,
    time_column="issued_at",
)

TOUCHPOINTS = TableContract(
    "touchpoints",
    (
        Column("account_id", "id", required=True),
        Column("ts", "timestamp", required=True),
        Column("kind", "code", required=True, choices=TOUCHPOINT_KINDS),
        Column("sentiment", "float", minimum=-1.0, maximum=1.0),
        Column("attendee_role", "string"),
    ),
    is_event=True,
    time_column="ts",
)

SURVEYS = TableContract(
    "surveys",
    (
        Column("account_id", "id", required=True),
        Column("ts", "timestamp", required=True),
        Column("score", "float", required=True),  # its range depends on the kind: see `ranges`
        Column("user_id", "id"),
        Column("kind", "code", default="'nps'", choices=SURVEY_KINDS),
        Column("comment", "string"),
    ),
    is_event=True,
    time_column="ts",
    ranges=(RangeWhen("score", "kind", "nps", *NPS_RANGE), RangeWhen("score", "kind", "csat", *CSAT_RANGE)),
)

TABLES: dict[str, TableContract] = {
    t.name: t
    for t in (ACCOUNTS, SUBSCRIPTIONS, USAGE_EVENTS, LOGINS, SUPPORT_TICKETS, TRAININGS, INVOICES, TOUCHPOINTS, SURVEYS)
}
EVENT_TABLES: tuple[str, ...] = tuple(name for name, t in TABLES.items() if t.is_event)
OPTIONAL_SOURCES: tuple[str, ...] = ("invoices", "touchpoints", "surveys")
"""The event tables SPEC adds beside the four activity tables: `churn generate` can leave them out."""
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_WORDS = {
    **{word: "urgent" for word in ("critical", "blocker", "highest", "p0", "p1")},
    "p2": "high",
    **{word: "normal" for word in ("medium", "moderate", "p3")},
    **{word: "low" for word in ("lowest", "p4", "p5")},
}
"""Other helpdesks' priorities read as one of `PRIORITIES`: on a P scale (P1-P4, P0-P5) P1 is the most urgent
everywhere and P2 the next; Jira's Blocker/Highest, Zendesk's and ServiceNow's Critical are urgent."""
HIGH_PRIORITIES = (
    "high",
    "urgent",
    *(word for word, meaning in PRIORITY_WORDS.items() if meaning in ("high", "urgent")),
)
"""The (lower-case) priorities `high_priority_share_90d` counts."""
TRAINING_KINDS = ("webinar", "course", "certification")


class CanonicalData(Protocol):
    """Validated input in canonical form: one view per present contract table in `con`, named as the table.

    Only rows the pipeline trusts are in the views (unknown accounts and future-dated rows are
    excluded by loading); `data_end` is where the observed data ends (labels are censored after it).
    """

    con: duckdb.DuckDBPyConnection
    event_tables: tuple[str, ...]
    present_columns: Mapping[str, tuple[str, ...]]
    data_end: pd.Timestamp

    @property
    def exact_sums(self) -> Mapping[str, frozenset[str]] | None:
        """Per table, the number columns the features must add up as exact decimals (None: all of them)."""
        ...

    @property
    def first_event(self) -> pd.Timestamp | None:
        """The earliest kept timestamp of the event tables (None without events)."""
