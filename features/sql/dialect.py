"""The expressions DuckDB and Spark SQL spell differently, and nothing else.

That includes the data contract's canonical casts (`Dialect.contract_cast`): the text per column
type is written once here for both engines; only parsing timestamps differs by engine.

Everything not here is written in the subset both engines parse and evaluate alike: CASE inside
aggregates instead of `FILTER (WHERE ...)` (Spark rejects FILTER on window aggregates), explicit
`NULLS LAST` wherever NULLs can reach an ORDER BY (DuckDB sorts them last, Spark first), explicit
`CAST(... AS DOUBLE)` before dividing (Spark divides a BIGINT by a decimal literal as DECIMAL), and
no division that can meet a zero (Spark in ANSI mode raises where DuckDB returns inf or NULL).
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import pandas as pd

MICROS_PER_DAY = 86_400_000_000
MICROS_PER_HOUR = 3_600_000_000
TYPED = {"float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN"}
"""Canonical SQL types of the contract's typed columns, spelled alike on both engines."""
NUMBER_TEXT = {
    "float": "^[+-]?(([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))$",
    "int": "^[+-]?[0-9]+$",
}
"""What text is a number (plain decimal; inf and nan are numbers the range checks refuse) or an integer (digits
only, once a fraction of zeros is dropped), matched alike by both engines (RE2, Java) before their casts:
DuckDB's cast reads '0x10' and '1_000' and rounds '.5' into an integer, Spark's reads '1d'; the SPEC's users
mean none of these as numbers."""
_DATE_TIME_TEXT = "^[0-9]{4,}-[0-9]{1,2}-[0-9]{1,2}([T ]([01]?[0-9]|2[0-3]):[0-5]?[0-9](:[0-5]?[0-9]([.][0-9]*)?)?)?"
_ZONE_TEXT = "([zZ]|[ ]?[+-][0-9].*|[ ][A-Za-z].*)"
TIMESTAMP_TEXT = f"{_DATE_TIME_TEXT}{_ZONE_TEXT}?$"
"""What text may be a date, matched alike by both engines before their casts: an ISO-8601 calendar date, then
optionally a time with hours and minutes, then an offset or zone. The casts decide the rest (month 13,
'+25:00'...). The engines' casts each read forms the other refuses: DuckDB '2024/01/05', '10:00' written
'24:00' and 'epoch'; Spark '2024', '2024-01', '2024-01-05T10' and '+2024-01-05'."""
ZONED_TEXT = f"{_DATE_TIME_TEXT}{_ZONE_TEXT}$"
"""The `TIMESTAMP_TEXT` that names its offset or zone (an instant); the others are naive UTC."""
FRACTIONAL = ("double", "float", "real", "decimal")
"""Raw number types that hold fractions (both engines' names, lower case): in an integer column only their
integral values are integers, as in text ('2.0' is 2, '1.5' is not). The engines' casts would round 1.5 to 2
(DuckDB) or truncate it to 1 (Spark)."""
NUMBER_TYPES = frozenset(
    {"boolean", "tinyint", "smallint", "int", "integer", "bigint", "hugeint"}
    | {"utinyint", "usmallint", "uinteger", "ubigint", "uhugeint"}
)
"""Raw types (both engines' names, lower case) besides the `FRACTIONAL` ones that a number or boolean column
casts from. Others hold no number: Spark's cast fails the query on a DATE and counts a zoned timestamp's epoch
seconds, where DuckDB's gives NULL (a date in a number column is reported as not a number on both)."""
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""What is trimmed around numbers, booleans and dates given as text: Python's `str.isspace` characters
(ASCII blanks and line breaks, no-break and other Unicode spaces). Spelled out because the engines' own
`trim` and casts differ: DuckDB's trim strips Unicode spaces but not tabs or line breaks, Spark's only
the ASCII space; DuckDB's casts refuse ' true', Spark's accept it."""
SPACES = "".join(c for c in WHITESPACE if unicodedata.category(c) == "Zs")
"""What is trimmed around ids, strings and codes: the Unicode space separators, which DuckDB's own `trim`
strips (fast on dictionary-encoded ids; the `WHITESPACE` set trim costs a quarter more on a feature
build). Tabs and line breaks around an id are kept on both engines: such rows name no known account and
are reported with the character visible ('\\tacc-1')."""
EPOCH_NANOS = "epoch nanoseconds"
"""The raw type of a parquet timestamp in nanoseconds that the engine reads as its count since the epoch
(Spark reads no nanosecond timestamps; pandas writes them by default). DuckDB reads them as timestamps."""


@dataclass(frozen=True)
class Dialect:
    """SQL spellings of one engine. Timestamps are naive UTC on both: DuckDB TIMESTAMP, Spark TIMESTAMP_NTZ."""

    name: str
    timestamp_type: str
    string_type: str
    _quote: str
    _days: str
    _micros_between: str
    _series: str
    _regexp_all: str
    _bit: str
    _shift_right: str
    _zoned_timestamps: tuple[str, ...]  # raw types holding instants with a zone (lower case)
    _from_zoned: str
    _native_timestamps: tuple[str, ...]  # raw types already holding naive timestamps or dates
    _from_native: str
    _parse_timestamp: str  # trimmed text to naive UTC, offsets honoured, NULL where it is not a date
    _from_epoch_nanos: str  # EPOCH_NANOS to naive UTC, to the nearest microsecond (halves away from zero)
    _trimmed: str  # {text} without the {blanks} (WHITESPACE) around it
    _trimmed_spaces: str  # {text} without the {spaces} (SPACES) around it
    _matches: str  # {text} matches the regular expression {pattern} (anchored with ^ and $)
    _day_of: str  # the midnight starting the day of {ts}, a naive timestamp
    _octets: str  # the length of {text} in UTF-8 bytes

    def quote(self, name: str) -> str:
        """A column name as an identifier."""
        return self._quote.format(name=name)

    def column_type(self, kind: str) -> str:
        """The canonical SQL type of a contract column type (id, string, code, timestamp, float, int, bool)."""
        return self.timestamp_type if kind == "timestamp" else TYPED.get(kind, self.string_type)

    def contract_cast(self, kind: str, raw: str, raw_type: str | None) -> str:
        """SQL turning the raw column `raw` into its canonical type; NULL where a value does not convert.

        `raw_type` is the engine's type of the column in the file: columns that already have the
        right type (typed parquet) skip parsing, which is most of the cost of scanning 100M events.
        Ids and strings are trimmed (blank is NULL); codes are also lower-cased so matching is
        case-blind; numbers, booleans and dates in text are trimmed, then parsed (numbers only where they
        match `NUMBER_TEXT`, dates where they match `TIMESTAMP_TEXT`); an integer column of a `FRACTIONAL`
        type keeps only its integral values, a boolean column of numbers only 1 and 0; a whole number of a
        `FRACTIONAL` type in a text column (an id) is written as an integer ('2', not '2.0').
        """
        native = (raw_type or "").lower()
        if kind == "timestamp":
            if native == EPOCH_NANOS:
                return self._from_epoch_nanos.format(raw=raw)
            if native in self._zoned_timestamps:
                return self._from_zoned.format(raw=raw)
            if native.startswith(self._native_timestamps):
                return self._from_native.format(raw=raw)
            text = self.trimmed_text(raw)
            parsed = _with_zone_names(self._parse_timestamp.format(raw=text))
            return f"CASE WHEN {self.matches(text, TIMESTAMP_TEXT)} THEN {parsed} END"
        if kind in TYPED:
            if native == TYPED[kind].lower():
                return raw
            # Text is trimmed first: the engines' own casts trim different characters (' true' is
            # a boolean to Spark, not to DuckDB); other types cast as they are (no text on the hot path).
            if not self.is_text(raw_type):
                if not (native in NUMBER_TYPES or native.startswith(FRACTIONAL)):  # a date, a list...
                    return f"CAST(NULL AS {TYPED[kind]})"
                if kind == "bool":  # as in text, the numbers 1 and 0 (both engines' casts call any other true)
                    return f"CASE WHEN {raw} = 1 THEN TRUE WHEN {raw} = 0 THEN FALSE END"
                cast = f"TRY_CAST({raw} AS {TYPED[kind]})"
                if kind == "int" and native.startswith(FRACTIONAL):  # an integer is what its cast equals
                    return f"CASE WHEN {raw} = {cast} THEN {cast} END"
                return cast
            text = self.trimmed_text(raw)
            if kind not in NUMBER_TEXT:
                return f"TRY_CAST({text} AS {TYPED[kind]})"
            if kind == "int":  # '4.0' is an integer (pandas writes integer columns with nulls so); '4.5' is not
                text = f"regexp_replace({text}, '[.]0*$', '')"
            return f"CASE WHEN {self.matches(text, NUMBER_TEXT[kind])} THEN TRY_CAST({text} AS {TYPED[kind]}) END"
        if native.startswith(FRACTIONAL):  # R writes every number as a double: account 2 is 2.0 there, 2 elsewhere
            whole = self.contract_cast("int", raw, raw_type)  # the integer, where the number is whole
            raw = f"coalesce(CAST({whole} AS {self.string_type}), CAST({raw} AS {self.string_type}))"
        text = self.trimmed_spaces(raw)
        return f"NULLIF(lower({text}), '')" if kind == "code" else f"NULLIF({text}, '')"

    def matches(self, text: str, pattern: str) -> str:
        """SQL: `text` matches the anchored regular expression `pattern` (RE2 on DuckDB, Java on Spark)."""
        return self._matches.format(text=text, pattern=pattern)

    @staticmethod
    def is_text(raw_type: str | None) -> bool:
        """Whether a raw column type is text (CSV columns, string parquet columns) on either engine."""
        return (raw_type or "").lower() in ("varchar", "string")

    def trimmed_text(self, raw: str) -> str:
        """`raw` as text without the `WHITESPACE` around it, alike on both engines."""
        return self._trimmed.format(text=f"CAST({raw} AS {self.string_type})", blanks=f"'{WHITESPACE}'")

    def trimmed_spaces(self, raw: str) -> str:
        """`raw` as text without the `SPACES` around it, alike on both engines (ids, strings, codes)."""
        return self._trimmed_spaces.format(text=f"CAST({raw} AS {self.string_type})", spaces=f"'{SPACES}'")

    def timestamp(self, ts: pd.Timestamp) -> str:
        """A naive-UTC timestamp literal."""
        return f"CAST('{pd.Timestamp(ts).isoformat(sep=' ')}' AS {self.timestamp_type})"

    def days(self, count: str | int) -> str:
        """An interval of `count` days (a column or a constant), to add to or subtract from a timestamp."""
        return self._days.format(n=count)

    def days_between(self, start: str, end: str) -> str:
        """Fractional days from `start` to `end` as DOUBLE (negative when `end` is earlier)."""
        return self._micros_in(start, end, MICROS_PER_DAY)

    def hours_between(self, start: str, end: str) -> str:
        """Fractional hours from `start` to `end` as DOUBLE."""
        return self._micros_in(start, end, MICROS_PER_HOUR)

    def _micros_in(self, start: str, end: str, unit: int) -> str:
        micros = self._micros_between.format(start=start, end=end)
        return f"(CAST({micros} AS DOUBLE) / {unit}.0)"

    def day_of(self, ts: str) -> str:
        """The midnight starting the day of `ts`, as a timestamp (not a DATE: it is compared with as_of)."""
        return self._day_of.format(ts=ts)

    def integer_series(self, low: int, high: int, column: str) -> str:
        """A FROM item with one row per integer `low`..`high` (inclusive) in `column`."""
        return self._series.format(low=low, high=high, column=column)

    def regexp_replace_all(self, text: str, pattern: str, replacement: str) -> str:
        """Replace every match (DuckDB replaces only the first without the 'g' flag; Spark always all)."""
        return self._regexp_all.format(text=text, pattern=pattern, replacement=replacement)

    def is_ascii(self, text: str) -> str:
        """SQL: `text` is ASCII only (as many UTF-8 bytes as characters; `length` counts code points on both)."""
        return f"{self._octets.format(text=text)} = length({text})"

    def bit(self, position: str) -> str:
        """A BIGINT with only bit `position` (0-62, an integer expression) set, for `bit_or` masks."""
        return self._bit.format(n=position)

    def shift_right(self, value: str, bits: int) -> str:
        """`value` shifted right by `bits` (to read a count packed into a sum's higher bits)."""
        return self._shift_right.format(value=value, n=bits)


# DuckDB refuses a space before an offset ('10:00:00 +0200', '10:00:00 +02:00', hours only '10:00:00 -05') or
# a 'Z', which Spark reads and exports emit (Postgres, Oracle, ISO-8601 writers): the space is dropped, only
# where the plain cast fails (the regex costs per row).
_DUCKDB_PARSED = (
    "timezone('UTC', coalesce(TRY_CAST({raw} AS TIMESTAMPTZ), "
    "TRY_CAST(regexp_replace({raw}, '([0-9]) ([+-][0-9][0-9](:?[0-9][0-9])?|Z)$', '\\1\\2') AS TIMESTAMPTZ)))"
)
_NOT_ZS = "(" + ", ".join(str(ord(c)) for c in WHITESPACE if unicodedata.category(c) != "Zs") + ")"
"""The code points of WHITESPACE that are not Unicode space separators (Zs), which DuckDB's trim leaves."""

DUCKDB = Dialect(
    name="duckdb",
    timestamp_type="TIMESTAMP",
    string_type="VARCHAR",
    _quote='"{name}"',
    _days="to_days(CAST({n} AS INTEGER))",
    _micros_between="date_diff('microsecond', {start}, {end})",
    _series="(SELECT CAST(unnest(range({low}, {high} + 1)) AS INTEGER) AS {column})",
    _regexp_all="regexp_replace({text}, '{pattern}', '{replacement}', 'g')",
    _bit="(CAST(1 AS BIGINT) << ({n}))",
    _shift_right="({value} >> {n})",
    _zoned_timestamps=("timestamp with time zone",),
    _from_zoned="timezone('UTC', {raw})",
    _native_timestamps=("timestamp", "date"),
    _from_native="CAST({raw} AS TIMESTAMP)",
    # DuckDB parses 'infinity' as a timestamp: not a date here.
    _parse_timestamp=f"CASE WHEN isfinite({_DUCKDB_PARSED}) THEN {_DUCKDB_PARSED} END",
    # As DuckDB casts its own TIMESTAMP_NS columns (the raw type it reads nanosecond parquet as).
    _from_epoch_nanos="CAST(make_timestamp_ns(CAST({raw} AS BIGINT)) AS TIMESTAMP)",
    # DuckDB's own trim strips the Unicode spaces (Zs) of WHITESPACE; the set trim (several times slower per
    # row) runs only where a value starts or ends with one of the others (tabs, line breaks...).
    _trimmed=(
        "CASE WHEN {text} = trim({text}) AND ascii({text}) NOT IN "
        + _NOT_ZS
        + " AND ascii(reverse({text})) NOT IN "
        + _NOT_ZS
        + " THEN {text} ELSE trim(BOTH {blanks} FROM {text}) END"
    ),
    _trimmed_spaces="trim({text})",
    _matches="regexp_full_match({text}, '{pattern}')",
    _day_of="CAST(date_trunc('DAY', {ts}) AS TIMESTAMP)",
    _octets="strlen({text})",
)


def _braces(text: str) -> str:
    """`text` as it reads after `str.format` (a regular expression's braces in a format template)."""
    return text.replace("{", "{{").replace("}", "}}")


# Spark computes in its session's time zone (`spark.sql.session.timeZone`: the JVM's unless set; churn sets UTC,
# a cluster or the configuration may set another): every instant becomes naive UTC through its microseconds
# since the epoch, and naive text is parsed as such, so no session zone moves a timestamp. Text naming its zone
# is parsed as an instant, with seconds added where it has minutes only ('10:00Z': Spark's cast refuses it).
_SPARK_UTC = "timestampadd(MICROSECOND, {micros}, TIMESTAMP_NTZ'1970-01-01 00:00:00')"
_SPARK_ZONED = (
    "unix_micros(coalesce(try_cast({raw} AS TIMESTAMP_LTZ), try_cast(regexp_replace({raw}, "
    "'^([^ T]+[ T][0-9]{{1,2}}:[0-9]{{1,2}})([^:0-9].*)$', '$1:00$2') AS TIMESTAMP_LTZ)))"
)


def _spark_wall(micros: str) -> str:
    """The wall clock of zone `v.z` at the instant `micros`, both in microseconds since the epoch."""
    return f"unix_micros(from_utc_timestamp(timestamp_micros({micros}), v.z))"


# A zone name leaves the hour its clocks repeat (autumn) ambiguous: DuckDB (ICU), as Postgres, reads the later
# instant (standard time), Spark's cast (java.time) the earlier. Spark takes the later one too: the instant
# moved by the drop of the zone's offset over the next day, where that gives the same wall clock.
_SPARK_ZONE_NAMED = (
    f"transform(array(named_struct('m', {_SPARK_ZONED}, 'z', regexp_extract({{raw}}, '[ ]([A-Za-z].*)$', 1))), "
    f"v -> transform(array({_spark_wall('v.m')} - {_spark_wall(f'v.m + {MICROS_PER_DAY}')} + v.m + {MICROS_PER_DAY}), "
    f"later -> CASE WHEN later > v.m AND {_spark_wall('later')} = {_spark_wall('v.m')} THEN later ELSE v.m END)[0])[0]"
)
# DuckDB (ICU) reads a zone name in any case ('utc', 'europe/paris'), Spark's cast (java.time) only as the
# tz database spells it: where Spark's cast fails (only there: the lookup costs per row), the name is given the
# spelling of the zone DuckDB knows by it. The names fill their slots when the SQL is written (`_zone_names`).
_ZONE_NAMES_SLOT, _LOWER_ZONE_NAMES_SLOT = "<zone names>", "<zone names in lower case>"
_SPARK_ZONE_AT = f"instr('{_LOWER_ZONE_NAMES_SLOT}', concat('|', lower(z), '|'))"
_SPARK_ZONE_SPELLED = (
    "concat(regexp_extract({raw}, '^(.*?)[ ][A-Za-z]', 1), ' ', "
    f"transform(array(regexp_extract({{raw}}, '[ ]([A-Za-z].*)$', 1)), z -> CASE WHEN {_SPARK_ZONE_AT} > 0 THEN "
    f"substr('{_ZONE_NAMES_SLOT}', {_SPARK_ZONE_AT} + 1, length(z)) ELSE z END)[0])"
)


@functools.cache
def _zone_names() -> str:
    """The names of the zones DuckDB knows, each between `|`, read once a process first writes SQL that
    needs them (a connection at import would cost every command, most never on Spark)."""
    import duckdb

    with duckdb.connect() as con:
        return "|{}|".format("|".join(name for (name,) in con.sql("SELECT name FROM pg_timezone_names()").fetchall()))


def _with_zone_names(sql: str) -> str:
    """`sql` with the zone names in their slots (Spark's text timestamps; DuckDB's SQL has none)."""
    if _ZONE_NAMES_SLOT not in sql and _LOWER_ZONE_NAMES_SLOT not in sql:
        return sql
    names = _zone_names()
    return sql.replace(_LOWER_ZONE_NAMES_SLOT, names.lower()).replace(_ZONE_NAMES_SLOT, names)


_SPARK_FROM_ZONED_TEXT = _SPARK_UTC.format(
    micros=f"CASE WHEN {{raw}} RLIKE '[ ][A-Za-z]' THEN coalesce({_SPARK_ZONE_NAMED}, "
    f"transform(array({_SPARK_ZONE_SPELLED}), spelled -> {_SPARK_ZONE_NAMED.replace('{raw}', 'spelled')})[0]) "
    f"ELSE {_SPARK_ZONED} END"
)

SPARK = Dialect(
    name="spark",
    timestamp_type="TIMESTAMP_NTZ",
    string_type="STRING",
    _quote="`{name}`",
    _days="make_dt_interval(CAST({n} AS INTEGER))",
    # The interval between naive timestamps, counted in no zone (timestampdiff counts in the session's).
    _micros_between="CAST(CAST(CAST(({end}) - ({start}) AS INTERVAL SECOND) AS DECIMAL(24, 6)) * 1000000 AS BIGINT)",
    _series="(SELECT explode(sequence({low}, {high})) AS {column})",
    _regexp_all="regexp_replace({text}, '{pattern}', '{replacement}')",
    _bit="shiftleft(CAST(1 AS BIGINT), {n})",
    _shift_right="shiftright({value}, {n})",
    _zoned_timestamps=("timestamp",),  # Spark's `timestamp` (LTZ) is an instant (zoned parquet, int96)
    _from_zoned=_SPARK_UTC.format(micros="unix_micros({raw})"),
    _native_timestamps=("timestamp_ntz", "date"),
    _from_native="CAST({raw} AS TIMESTAMP_NTZ)",
    _parse_timestamp=f"CASE WHEN {{raw}} RLIKE '{_braces(ZONED_TEXT)}' THEN {_SPARK_FROM_ZONED_TEXT} "
    "ELSE try_cast({raw} AS TIMESTAMP_NTZ) END",
    _trimmed="trim(BOTH {blanks} FROM {text})",
    _trimmed_spaces="trim(BOTH {spaces} FROM {text})",
    _matches="{text} RLIKE '{pattern}'",
    # Rounded as DuckDB casts TIMESTAMP_NS to TIMESTAMP; exact in DECIMAL (a DOUBLE holds no 19 digits).
    _from_epoch_nanos=_SPARK_UTC.format(micros="CAST(round(CAST({raw} AS DECIMAL(20, 0)) / 1000) AS BIGINT)"),
    _day_of="CAST(CAST({ts} AS DATE) AS TIMESTAMP_NTZ)",  # date_trunc goes through the session's zone
    _octets="octet_length({text})",
)
