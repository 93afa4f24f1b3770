"""A prepared per-account table (`churn train --table`, `churn score --table`) read and typed as a feature table.

Training reads the table's columns into features (numbers, amounts written as text, categories; ids, free text and
timestamps dropped; the label's words read as outcomes), and `pipeline.train.train_prepared_table` records in the
model how they were read (`SOURCE_COLUMNS`, `MISSING_MARKERS`, `NUMBER_FORMATS`); scoring reads a table by those
records (`as_trained`), so a column means at scoring exactly what it meant at training.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import DataContractError, counted, listed, named
from features.spelling import did_you_mean
from features.table import (
    ACCOUNT_ID,
    AS_OF,
    DATA_DAYS_COLUMNS,
    LABEL,
    META_COLUMNS,
    TERM_END,
    feature_columns,
    trim_ids,
)
from models.risk_model import BASE_VALUE, MISSING_MARKERS, NUMBER_FORMATS, ChurnRiskModel

HIGH_CARDINALITY_SHARE = 0.5  # text columns with more distinct values than this share of rows are ids/free text
MAX_MISSING_MARKERS = 3
"""A column of numbers but for up to this many distinct values without a digit ('?', '-', 'unknown': how an export
writes a missing number) is read as numbers, those values missing; more are words, and the column is text."""
OUTCOME_AUC = 0.995  # a feature separating the outcomes this well on its own was most likely recorded with them
UNSAFE_IN_NAME = re.compile(r'[\s",:\[\]{}]')
"""What LightGBM cannot keep in a feature name: whitespace (it writes `_`, so the column named by the model
is not found when scoring) and JSON punctuation (it refuses the name)."""


def read_prepared_table(path: str | Path, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """The table as pandas reads it, with `text_columns` of a CSV read as text: an id `007` stays `007`
    (pandas would read the number 7 and score account `7`). A CSV header is read as a data folder's is
    (`header_names`): names trimmed (`customerID, Churn` names `Churn`), a name given twice refused (pandas
    would rename the second `x.1`); a parquet file's names alike (pandas kept the spaces of the CSV it read), so
    the two files of one table train the same model."""
    from pipeline.loading import csv_header, first_line_not_utf8, header_names

    path = Path(path)
    if not path.exists():
        raise DataContractError(f"--table {path}: the file does not exist.")
    try:
        if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
            table.columns = header_names(path.stem, path, [str(c) for c in table.columns])  # as its CSV's
            return table
        if path.name.lower().endswith((".csv", ".txt", ".csv.gz")):  # gzipped as a data folder's CSV may be
            names = header_names(path.stem, path, csv_header(path.stem, path))  # a ';'-separated file is refused
            return pd.read_csv(path, header=0, names=names, dtype=dict.fromkeys(text_columns, str))
    except UnicodeDecodeError as exc:  # a spreadsheet's CSV in its own encoding: pandas said "position 0"
        line, text = first_line_not_utf8(path) or (0, b"")
        raise DataContractError(
            f"--table {path}: line {line} is not UTF-8 text: {text!r}; save the file as UTF-8 (a spreadsheet's "
            "'CSV UTF-8') or as parquet."
        ) from exc
    except (OSError, ValueError) as exc:
        raise DataContractError(f"--table {path}: cannot be read ({exc}).") from exc
    raise DataContractError(
        f"--table {path}: unknown format '{path.suffix}' (use .parquet, .csv, .csv.gz or a parquet folder)."
    )


_BOOLEAN_WORDS = {"true": 1, "false": 0, "t": 1, "f": 0, "yes": 1, "no": 0, "y": 1, "n": 0}
_OUTCOME_WORDS = dict.fromkeys(("churned", "churn", "cancelled", "canceled", "attrited", "exited", "left", "lost"), 1)
# active, existing, current: a CRM's status beside churned
_OUTCOME_WORDS |= dict.fromkeys(("retained", "stayed", "renewed", "active", "existing", "current"), 0)
# a word naming who the outcome is of (BankChurners' `Attrited Customer` / `Existing Customer`) and a full stop after
# a word (the UCI churn table's `True.` / `False.`) say nothing more than the outcome
_WHO = re.compile(r"\s+(?:customer|client|account|user|subscriber|member)s?$|(?<=[a-z])\.$")
_LABEL_WORDS = {**_BOOLEAN_WORDS, **_OUTCOME_WORDS, "1": 1, "0": 0, "1.0": 1, "0.0": 0}


def _parse_labels(values: pd.Series, name: str, source: str, churn_value: str | None = None) -> pd.Series:
    """1 = churned, 0 = stayed, <NA> = unknown; accepts 0/1, booleans, yes/no/true/false and outcome words
    (churned/cancelled/attrited/exited/left, retained/stayed/renewed/active/existing, `Attrited Customer` too), or with
    `churn_value` (`--churn-value`) that value as churned and every other as retained: a status of three values
    (Churned/Stayed/Joined) is the user's to read. Both outcomes must be there: a model learns from both."""
    text = as_text(values).str.strip().replace("", pd.NA)  # a label 1/2 with blanks reads 1.0/2.0: said `1`
    if churn_value is not None:
        wanted = churn_value.strip().lower()
        if not text.str.lower().eq(wanted).any():
            raise DataContractError(
                f"{source}, label column '{name}': no value is '{churn_value}' (--churn-value); its values are "
                f"{_label_values(text)}."
            )
        parsed = text.str.lower().eq(wanted).astype("Float64")
    else:
        parsed = text.str.lower().str.replace(_WHO, "", regex=True).map(_LABEL_WORDS, na_action="ignore")
    bad = parsed.isna() & text.notna()
    if bad.any():
        examples = ", ".join(f"row {i}: {v!r}" for i, v in values[bad].head(3).items())
        churned = text[parsed == 1]  # the value to suggest: one that reads as churned, else the commonest unread one
        example = churned.iloc[0] if len(churned) else text[bad].value_counts().index[0]
        raise DataContractError(
            f"{source}, label column '{name}': {counted(int(bad.sum()), 'value is', 'values are')} not an outcome "
            f"({examples}); its values are {_label_values(text)}. Use 1/0, true/false, yes/no or churned/retained "
            f"(or active), or say which value means churned with --churn-value (e.g. --churn-value '{example}': "
            "every other value is then retained; a blank label is an unknown outcome)."
        )
    outcomes = parsed.dropna().astype(int)
    if outcomes.nunique() < 2:
        held = counted(len(outcomes), "labelled row is", "labelled rows are")
        only = "no labelled row" if outcomes.empty else f"all {held} {outcomes.iloc[0]}"
        raise DataContractError(
            f"{source}, label column '{name}': {only}; a churn model needs churned (1) and retained (0) rows."
        )
    return parsed.astype("Int8")


def _label_values(text: pd.Series, shown: int = 8) -> str:
    """A label column's distinct values with their row counts ("'Stayed' (410 rows), 'Churned' (166 rows)")."""
    counts = text.value_counts()
    listed = ", ".join(f"{value!r} ({counted(int(n), 'row')})" for value, n in counts.head(shown).items())
    return listed + (f" and {len(counts) - shown:,} more" if len(counts) > shown else "")


def as_text(values: pd.Series) -> pd.Series:
    """Values as text, a whole number stored as a float written as an integer (`2`, not `2.0`)."""
    if not pd.api.types.is_float_dtype(values):
        return values.astype("string")
    whole = values.notna() & (values % 1 == 0)
    return values.astype("string").mask(whole, values[whole].astype("int64").astype("string"))


def parse_ids(values: pd.Series, name: str, source: str = "--table") -> pd.Series:
    """The id column of a prepared table, trimmed as a data folder's ids are (`trim_ids`); a missing id is
    refused (it would train or score as an account named 'nan' or '  '). A whole number stored as a
    float reads as an integer, as in a data folder (R and pandas write integer ids with gaps as doubles)."""
    ids = trim_ids(as_text(values)).replace("", pd.NA)
    missing = ids.isna()
    if missing.any():
        examples = ", ".join(f"row {i}: {'' if pd.isna(v) else v!r}" for i, v in values[missing].head(3).items())
        said = counted(int(missing.sum()), "value is missing", "values are missing")
        raise DataContractError(f"{source} id column '{name}': {said} ({examples}).")
    return ids


def repeated_ids(ids: pd.Series, id_col: str) -> str | None:
    """What a prepared table's ids on more than one row are, with example rows ("2 ids of 'id' are on more than
    one row (row 3: 'A', ...)"), or None: training and scoring each say what they then do."""
    repeated = ids[ids.duplicated(keep=False)]
    if repeated.empty:
        return None
    examples = ", ".join(f"row {i}: {v!r}" for i, v in repeated.head(3).items())
    ones = counted(repeated.nunique(), "id")
    return f"{ones} of '{id_col}' {'is' if repeated.nunique() == 1 else 'are'} on more than one row ({examples})"


def parse_times(stamps: pd.Series, where: str, why: str) -> pd.Series:
    """A prepared table's time column (`--time`) as naive UTC timestamps: ISO-8601 text or dates, a year as a
    number; a value that is no date or is missing is refused, naming `where` (`table.column`) and `why`."""
    raw = stamps
    if pd.api.types.is_numeric_dtype(stamps) or pd.api.types.is_bool_dtype(stamps):
        stamps = as_text(stamps)  # a year 2024 as text, as pandas reads it now (it will read numbers as epochs)
    when = pd.to_datetime(stamps, errors="coerce", utc=True, format="ISO8601").dt.tz_localize(None)
    bad = when.isna() & raw.notna()
    if bad.any():
        examples = ", ".join(f"row {i}: {v!r}" for i, v in raw[bad].head(3).items())
        said = counted(int(bad.sum()), "value is not an ISO-8601 date", "values are not ISO-8601 dates")
        raise DataContractError(f"{where}: {said} ({examples}).")
    if when.isna().any():
        rows = ", ".join(str(i) for i in when.index[when.isna()][:3])
        said = counted(int(when.isna().sum()), "value is missing", "values are missing")
        raise DataContractError(f"{where}: {said} (rows {rows}); {why}.")
    return when.astype("datetime64[us]")


def prepare_table(
    frame: pd.DataFrame,
    id_col: str,
    label_col: str,
    time_col: str | None,
    source: str = "--table",
    churn_value: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Turn a per-account table into the feature-table format; returns it and notes on dropped columns.

    Numbers stored as text become numeric (amounts such as '$6,143.31' too: the table's `attrs[NUMBER_FORMATS]`
    says by which decimal mark, for scoring to read them alike), other text becomes categorical; text columns with
    nearly one value per row (ids, names, free text) and timestamps other than `time_col` are
    dropped, because a model cannot generalise from them.
    """
    needed = [c for c in (id_col, label_col, time_col) if c is not None]
    if len(set(needed)) < len(needed):  # read as ids and as outcomes at once, it failed as neither
        flags = {"--id": id_col, "--label": label_col, "--time": time_col}
        twice = [flag for flag, column in flags.items() if column is not None and needed.count(column) > 1]
        raise DataContractError(
            f"{source}: {listed(twice)} name the same column '{next(flags[f] for f in twice)}'; the id, the label "
            "and the time (--time) of each row are columns of their own."
        )
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise DataContractError(
            f"{source}: {'column' if len(absent) == 1 else 'columns'} "
            f"{listed([repr(c) + column_hint(c, frame.columns) for c in absent])} not found; "
            f"columns are {list(frame.columns)[:12]}."
        )
    others = [c for c in frame.columns if c not in needed]
    if BASE_VALUE in map(feature_name, others):
        raise DataContractError(
            f"{source}: feature column '{BASE_VALUE}' has the name the model's contributions give their base value "
            f"(the registered model's `contributions` output has a '{BASE_VALUE}' column beside the features); "
            "rename or drop it."
        )
    by_name: dict[str, list[object]] = {}
    for column in others:
        by_name.setdefault(feature_name(column), []).append(column)
    if twice := {name: columns for name, columns in by_name.items() if len(columns) > 1}:
        name, columns = next(iter(twice.items()))
        raise DataContractError(
            f"{source}: columns {columns} would all be feature '{name}' (a model feature name holds no "
            'whitespace nor any of ",:[]{}); rename one of them.'
        )
    table = pd.DataFrame(
        {
            ACCOUNT_ID: parse_ids(frame[id_col], id_col, source),
            LABEL: _parse_labels(frame[label_col], label_col, source, churn_value),
        },
        index=frame.index,
    )
    if time_col is not None:
        when = parse_times(frame[time_col], f"{source}.{time_col}", "the out-of-time split needs the date of every row")
        dates = when[table[LABEL].notna()].unique()
        if len(dates) == 1:
            raise DataContractError(
                f"{source}.{time_col}: all labelled rows share the date {pd.Timestamp(dates[0]).date()}; an "
                "out-of-time split needs at least two dates (without --time the split is stratified)."
            )
        table[AS_OF] = when
        table[TERM_END] = table[AS_OF]
    else:
        table[AS_OF] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
        table[TERM_END] = table[AS_OF]
    notes: list[str] = []
    columns: dict[str, pd.Series] = {}
    formats: dict[str, str] = {}  # feature -> the decimal mark of the amounts it was read from ('$6,143.31')
    for name in others:
        column, note = _feature_column(frame[name], name)
        if column is not None and NUMBER_FORMATS in column.attrs:
            formats[feature_name(name)] = column.attrs[NUMBER_FORMATS]
        if column is not None and column.isna().all():  # a model cannot split on it: an export or join left it blank
            column, note = None, f"dropped '{name}': empty in every row"
        if note:
            notes.append(note)
        if column is not None:
            columns[feature_name(name)] = column
    reserved = [*META_COLUMNS, *sorted(DATA_DAYS_COLUMNS)]  # a column dropped above (a date `as_of`) is no clash
    if clashes := [c for c in others if feature_name(c) in reserved and feature_name(c) in columns]:
        raise DataContractError(
            f"{source}: {named('feature column', clashes)} {'clashes' if len(clashes) == 1 else 'clash'} with "
            f"reserved names {reserved}; rename or drop {'it' if len(clashes) == 1 else 'them'}."
        )
    if renamed := [
        f"'{c}' -> '{feature_name(c)}'" for c in others if feature_name(c) in columns and feature_name(c) != c
    ]:
        notes.append(f"renamed {', '.join(renamed)}: a model feature name holds no whitespace nor any of " + '",:[]{}')
    table = pd.concat([table, pd.DataFrame(columns, index=frame.index)], axis=1)  # one block: wide tables stay fast
    table.attrs[NUMBER_FORMATS] = {name: mark for name, mark in formats.items() if name in columns}
    if time_col is None and (repeated := repeated_ids(table[ACCOUNT_ID], id_col)):  # with --time, snapshots
        notes.append(
            f"{repeated}: each account's rows stay on one side of the split (pass --time if they are snapshots at "
            "different dates)"
        )
    elif time_col is not None and (twice := table.duplicated([ACCOUNT_ID, AS_OF], keep=False)).any():
        rows = table[twice].groupby([ACCOUNT_ID, AS_OF], sort=False).groups
        examples = "; ".join(
            f"rows {', '.join(map(str, index))}: {id_!r} at {when.date()}"
            for (id_, when), index in list(rows.items())[:3]
        )
        notes.append(
            f"{counted(len(rows), 'id')} of '{id_col}' {'is' if len(rows) == 1 else 'are'} on more than one row of the "
            f"same '{time_col}' ({examples}): an account's snapshot repeated (by a join, or an export that doubled "
            "rows?), trained on as many times as it is there"
        )
    notes += [
        f"'{name}' alone separates churned from retained rows (AUC {auc:.3f}): it is likely recorded with or after "
        "the outcome (a churn flag or reason); drop it from the table unless it is known before the outcome"
        for name, auc in _outcome_like(table)
    ]
    if unknown := int(table[LABEL].isna().sum()):
        notes.append(
            f"{counted(unknown, 'row has', 'rows have')} no label in '{label_col}' (an unknown outcome): not "
            "trained or validated on"
        )
    if not feature_columns(table):
        dropped = "".join(f"; {note}" for note in notes if note.startswith("dropped "))
        raise DataContractError(f"{source}: no usable feature columns besides '{id_col}' and '{label_col}'{dropped}.")
    return table, notes


def missing_markers(frame: pd.DataFrame, table: pd.DataFrame) -> dict[str, list[str]]:
    """The values of each numeric feature's text column in `frame` that `prepare_table` read as missing numbers
    ('?', '-', 'unknown'), by feature name: what scoring reads as missing too (`as_trained`)."""
    markers, features = {}, set(feature_columns(table))
    for column in frame.columns:
        name, values = feature_name(column), frame[column]
        if name not in features or not pd.api.types.is_float_dtype(table[name]):
            continue
        if pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values):
            text = values.astype("string").str.strip().replace("", pd.NA)
            if found := sorted(text[text.notna() & table[name].isna()].unique()):
                markers[name] = found
    return markers


def _outcome_like(table: pd.DataFrame, min_rows: int = 10) -> list[tuple[str, float]]:
    """Features whose values alone rank churned above retained rows with an AUC of `OUTCOME_AUC` or more
    (either direction; a missing value is a value, so a churn reason blank for every retained row counts):
    the model would score 1.000 on them and nothing on the accounts it scores before they churn."""
    labelled = table[table[LABEL].notna()]
    y = labelled[LABEL].astype(int).to_numpy()
    if min(y.sum(), len(y) - y.sum()) < min_rows:
        return []
    found = []
    for name in feature_columns(labelled):
        values = labelled[name]
        if isinstance(values.dtype, pd.CategoricalDtype):  # each level (missing too) by its churn rate
            if values.nunique(dropna=False) * min_rows > len(values):  # levels of a few rows are pure by chance
                continue
            rates = [pd.Series(y).groupby(values.cat.codes.to_numpy()).transform("mean").to_numpy()]
        else:
            x = values.to_numpy(dtype="float64", na_value=np.nan)
            if np.isnan(x).all():
                continue
            low, high = np.nanmin(x), np.nanmax(x)
            rates = [np.where(np.isnan(x), low - 1, x), np.where(np.isnan(x), high + 1, x)]
        auc = max(abs(_auc(y, r) - 0.5) + 0.5 for r in rates)
        if auc >= OUTCOME_AUC:
            found.append((name, auc))
    return found


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties count half), without scikit-learn's per-call checks: one
    call per column of a wide table."""
    ranks = pd.Series(score).rank().to_numpy()
    positives = int(y.sum())
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * (len(y) - positives)))


def column_hint(name: str, columns: Iterable[object]) -> str:
    """ " (did you mean 'customerID'?)" for a column named in another letter case or spacing, or misspelt: a wide
    table's error lists only its first columns, and the one meant may not be among them."""
    return did_you_mean(name, (str(c) for c in columns), cutoff=0.8)


def feature_name(column: object) -> str:
    """The model's name for a prepared table's column: `Monthly Charges` is feature `Monthly_Charges`, at
    training and at scoring alike (`UNSAFE_IN_NAME`)."""
    return UNSAFE_IN_NAME.sub("_", str(column))


def _feature_column(values: pd.Series, name: str) -> tuple[pd.Series | None, str | None]:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return _unless_row_numbers(values.astype("float64"), name)
    if pd.api.types.is_timedelta64_dtype(values):
        return _unless_row_numbers(_days(values), name)
    if nested := _nested(values):
        return None, f"dropped '{name}': it holds {nested} (a nested parquet column), not one value per row"
    if pd.api.types.is_datetime64_any_dtype(values):
        return None, f"dropped '{name}': a timestamp (pass it as --time to split on it)"
    text = values.astype("string").str.strip().replace("", pd.NA)
    numbers = pd.to_numeric(text, errors="coerce")
    present = text.notna()
    if present.any() and numbers[present].notna().all():
        return _unless_row_numbers(numbers.astype("float64"), name)
    if read := read_amounts(text):
        amounts, decimal = read
        shown = text[present & pd.to_numeric(text, errors="coerce").isna() & amounts.notna()].iloc[0]
        note = f"read '{name}' as numbers written as text (e.g. {shown!r} is {float(amounts[text == shown].iloc[0])!r}"
        note += ", with a decimal comma)" if decimal == "," else ")"
        if len(markers := text[present & amounts.isna()]):
            said = counted(len(markers), "value", "values")
            note += (
                f"; its {said} without a digit ({', '.join(repr(v) for v in markers.unique())}) are taken as missing"
            )
        amounts, dropped = _unless_row_numbers(amounts, name)
        if amounts is not None:
            amounts.attrs[NUMBER_FORMATS] = decimal  # which `prepare_table` records: scoring reads the column by it
        return amounts, dropped or note
    if present.any() and pd.to_datetime(text[present], errors="coerce", format="ISO8601").notna().all():
        return None, f"dropped '{name}': a timestamp (pass it as --time to split on it)"
    distinct = text.nunique()
    if distinct > max(50, HIGH_CARDINALITY_SHARE * text.notna().sum()):
        markers = text[present & numbers.isna()]
        if markers.nunique() <= MAX_MISSING_MARKERS and not markers.str.contains(r"\d").any():
            shown = ", ".join(repr(v) for v in markers.unique())
            said = counted(len(markers), "value", "values")
            note = f"read '{name}' as numbers: its {said} without a digit ({shown}) are taken as missing"
            numbers, dropped = _unless_row_numbers(numbers.astype("float64"), name)
            return numbers, dropped or note
        shown = ", ".join(repr(v) for v in text.dropna().unique()[:3])
        return None, f"dropped '{name}': {distinct:,} distinct text values (an id or free text; e.g. {shown})"
    return text.astype("category"), None


_CURRENCY = "[$€£¥₹]|USD|EUR|GBP|CHF|CAD|AUD|JPY|INR"  # a sign or the code of a major currency
_UNIT = f"{_CURRENCY}|%"
_AMOUNT = rf"([-+]?)\s*({_CURRENCY})?\s*([-+]?)(\d[\d.,]*)\s*({_UNIT})?"
# the digits of an amount by its decimal mark: plain (1234.5), or grouped in threes by the other mark (1,234.5)
_DIGITS = {".": r"(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?", ",": r"(?:\d+|\d{1,3}(?:\.\d{3})+)(?:,\d+)?"}


def amount_values(text: pd.Series, decimal: str) -> pd.Series:
    """Each trimmed text value read as an amount with `decimal` as its decimal mark ('$6,143.31', '-€ 12,50',
    '1.234,50 EUR', '12%': the number as written, its unit dropped), NaN for any other value: one currency sign or
    code before or after or a '%' after, a sign, thousands grouped in threes by the other mark. Training and
    scoring read a column alike."""
    parts = _spaced(text).str.extract(f"^{_AMOUNT}$")
    sign, unit_before, signed, number, unit_after = (part for _, part in parts.items())
    ok = number.str.fullmatch(_DIGITS[decimal]).fillna(False).astype(bool)
    ok &= ~(sign.fillna("").ne("") & signed.fillna("").ne("")) & ~(unit_before.notna() & unit_after.notna())
    digits = number.where(ok).str.replace("," if decimal == "." else ".", "", regex=False)
    values = pd.to_numeric(digits.str.replace(decimal, ".", regex=False), errors="coerce").astype("float64")
    return values.where(~(sign.eq("-") | signed.eq("-")).fillna(False).astype(bool), -values).rename(text.name)


def _spaced(text: pd.Series) -> pd.Series:
    """Text with a no-break space (`€\u00a012,50`, `1\u202f234`'s narrow one) as a plain space, as spreadsheets and
    locales write amounts."""
    return text.astype("string").str.replace("\u00a0", " ", regex=False).str.replace("\u202f", " ", regex=False)


def read_amounts(text: pd.Series) -> tuple[pd.Series, str] | None:
    """A text column (trimmed, blanks missing) read as amounts and the decimal mark it was read by, or None when it
    is not clearly a column of them: some value must be one that is not a plain number ('$6,143.31', '1,234',
    '12%', '€ 12,50'), every value with a digit an amount, all of one unit, and up to `MAX_MISSING_MARKERS` values
    without a digit, fewer than the amounts, missing ('-', 'n/a'); whole numbers without a unit, each in one row,
    are ids ('15,634,602'), not amounts. A comma is the decimal mark when one is not followed by a group of three
    digits ('12,50') or follows a dot ('1.234,50'), else a thousands mark ('1,234')."""
    present = text.dropna()
    digits = present[present.str.contains(r"\d")]
    markers = present[~present.str.contains(r"\d")]
    if digits.empty or pd.to_numeric(digits, errors="coerce").notna().all():
        return None
    if not _spaced(digits).str.fullmatch(_AMOUNT).all():  # free text and ids: said no before reading each value
        return None
    if markers.nunique() > MAX_MISSING_MARKERS or len(markers) >= len(digits):
        return None
    if digits.str.count(_UNIT).gt(1).any() or digits.str.extract(f"({_UNIT})")[0].nunique() > 1:
        return None
    both = digits[digits.str.contains(",") & digits.str.contains(r"\.")]
    last = both.str.replace(r"[^.,]", "", regex=True).str[-1].unique()
    if len(last) > 1:
        return None
    commas = digits[digits.str.contains(",")]
    grouped = amount_values(commas, ".").notna().all()
    decimal = last[0] if len(last) else "." if grouped else ","
    numbers = amount_values(text, decimal)
    if numbers[digits.index].isna().any():
        return None
    amounts = numbers[digits.index]
    if not digits.str.contains(_UNIT).any() and (amounts % 1 == 0).all() and amounts.is_unique:
        return None  # ids written with thousands marks ('15,634,602'): whole, each once, of no unit
    return numbers, decimal


def _days(durations: pd.Series) -> pd.Series:
    """A duration column (a parquet duration: time to onboard, since the last login) as its length in days,
    the unit of the pipeline's own day counts; pandas read it as text such as '3 days 04:00:00'."""
    return durations.dt.total_seconds() / 86_400


def _nested(values: pd.Series) -> str | None:
    """What a column of parquet lists, maps or structs holds ('lists', 'records'), None for plain values:
    pandas reads them as arrays and dicts, whose text was taken for category levels."""
    for value in values.dropna().head(1000):
        if isinstance(value, dict):
            return "records"
        if isinstance(value, list | tuple | np.ndarray):
            return "lists"
    return None


def _unless_row_numbers(numbers: pd.Series, name: str) -> tuple[pd.Series | None, str | None]:
    """The column, unless it numbers the rows 0..n-1 or 1..n, each once: the index pandas' `to_csv` writes
    (blank-named, `column0` here) or a row number, which ranks the outcomes of any export sorted by one."""
    values = np.sort(numbers.to_numpy())
    for first in (0, 1):
        if len(values) >= 10 and np.array_equal(values, np.arange(first, first + len(values))):
            return None, (
                f"dropped '{name}': its values number the rows {first} to {first + len(values) - 1}, each once "
                "(an index written with the table, or a row number), not a feature"
            )
    return numbers, None


def as_trained(
    values: pd.Series,
    name: str,
    levels: Sequence[str] | None,
    source: str,
    markers: Sequence[str] = (),
    decimal: str | None = None,
) -> pd.Series:
    """A column of a table to score, typed as `_feature_column` typed it at training: a categorical
    feature (`levels`) as trimmed text, numbers included (a CSV of `1`/`2` reads as numbers, its training
    levels were `'1'`/`'2'`); a numeric one as numbers, parsed from text (booleans as 1/0) when given so, the
    `markers` its training table wrote for a missing number ('?', '-': `MISSING_MARKERS`) missing, amounts
    written as text ('$6,143.31') by the `decimal` mark training read them by (`NUMBER_FORMATS`)."""
    if levels is not None:
        text = as_text(values).str.strip().replace("", pd.NA)
        if pd.api.types.is_float_dtype(values):  # levels written `4.0` at training (pandas' integers with gaps)
            plain = values.astype("string")
            text = text.mask(~text.isin(levels) & plain.isin(levels), plain)
        return text
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values
    if pd.api.types.is_timedelta64_dtype(values):
        return _days(values)
    text = values.astype("string").str.strip().replace("", pd.NA)
    if decimal is not None:  # '1,234' is a thousand and more, or one and a bit, as training read it
        parsed = amount_values(text, decimal)
    else:
        parsed = pd.to_numeric(text, errors="coerce").fillna(text.str.lower().map(_BOOLEAN_WORDS).astype("Float64"))
    bad = parsed.isna() & text.notna() & ~text.isin(markers)
    if bad.any():
        examples = ", ".join(f"row {i}: {v!r}" for i, v in values[bad].head(3).items())
        said = counted(int(bad.sum()), "value is not a number", "values are not numbers")
        raise DataContractError(f"{source}, column '{name}': {said}, and the model learnt it as a number ({examples}).")
    return parsed.astype("float64")


def typed_as_trained(model: ChurnRiskModel, features: pd.DataFrame, source: str) -> dict[str, pd.Series]:
    """Each of the model's features in `features` typed by `as_trained` with what training recorded of its column:
    its categories' levels, its missing-number markers and its decimal mark (`churn score --table` and the pyfunc
    alike)."""
    markers = model.metadata_.get(MISSING_MARKERS) or {}
    formats = model.metadata_.get(NUMBER_FORMATS) or {}
    return {
        name: as_trained(
            features[name], name, model.categories_.get(name), source, markers.get(name, ()), formats.get(name)
        )
        for name in model.feature_names_in_
    }
