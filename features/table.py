"""The snapshot feature table: the hand-off between feature engineering, the model and scoring.

One row per (account_id, as_of). `label` is 1 when the account churns at `term_end`, 0 when it
renews, missing (<NA>) when censored or unknown (scoring). Every other column is a feature --
numeric features are float64, categorical ones are pandas `category` in memory (strings on disk) --
but for `<table>_data_days` (`DATA_DAYS_COLUMNS`, one per event table): the days of that table before
as_of from its first row, carried for the words of the "days since" and trailing-window features
(`features.registry.data_days_column`), never given to a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from features.contract import EVENT_TABLES
from features.registry import data_days_column
from features.sql.dialect import SPACES

ACCOUNT_ID = "account_id"
AS_OF = "as_of"
LABEL = "label"
TERM_END = "term_end"
META_COLUMNS: tuple[str, ...] = (ACCOUNT_ID, AS_OF, LABEL, TERM_END)
DATA_DAYS_COLUMNS = frozenset(map(data_days_column, EVENT_TABLES))
VALUES_KEY = b"churn.feature_values"
"""Parquet schema metadata of a `churn features` file: the value settings it was built with."""
VALUES_FILE = "_churn_feature_values.json"
"""The same inside a Spark engine's partitioned folder (readers skip names starting with `_`)."""
PRODUCT_NAMES = "churn.product_features"
"""A feature table's product feature names by usage key, where not the key (`usage.product_names`): in its
`DataFrame.attrs`, its parquet schema metadata and, in a Spark folder, `PRODUCT_NAMES_FILE`. The model records
them (`FeatureSet.product_names`), so its drivers name `検索`, not its column's hash."""
PRODUCT_NAMES_FILE = "_churn_product_features.json"


def trim_id(value: object) -> str:
    """An account id given outside the data (an override, `churn explain`, `--table`) as loading reads the
    data's ids: without the Unicode spaces around it (`SPACES`); a tab or line break is part of the id, so
    the id names the same account the data holds, never a neighbour it was trimmed into."""
    return str(value).strip(SPACES)


def trim_ids(values: pd.Series) -> pd.Series:
    """`trim_id` of each value, as text (missing values stay missing)."""
    return values.astype("string").str.strip(SPACES)


def feature_columns(table: pd.DataFrame) -> list[str]:
    """All columns that are features (everything but keys, label, term end and the days of each table's data),
    in table order."""
    return [c for c in table.columns if c not in META_COLUMNS and c not in DATA_DAYS_COLUMNS]


def categorical_columns(table: pd.DataFrame) -> list[str]:
    """Feature columns that hold categories (category, string, object or bool dtype)."""
    return [
        c
        for c in feature_columns(table)
        if isinstance(table[c].dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(table[c])
        or pd.api.types.is_object_dtype(table[c])
    ]


def read_feature_table(path: str) -> pd.DataFrame:
    """Read a feature table written by `churn features`, restoring categorical dtypes.

    A folder is the Spark engine's output, partitioned by as_of (`as_of=YYYY-MM-DD/`): the
    partition column comes back as the as_of timestamps, keys first, rows in (as_of, account_id) order.
    """
    table = pd.read_parquet(path)
    if isinstance(table[AS_OF].dtype, pd.CategoricalDtype) or not pd.api.types.is_datetime64_any_dtype(table[AS_OF]):
        table[AS_OF] = pd.to_datetime(table[AS_OF].astype(str)).astype("datetime64[us]")
        ordered = [*META_COLUMNS, *(c for c in table.columns if c not in META_COLUMNS)]
        table = table[ordered].sort_values([AS_OF, ACCOUNT_ID], kind="stable", ignore_index=True)
        table[LABEL] = table[LABEL].astype("Int8")
    for col in categorical_columns(table):
        table[col] = table[col].astype("category")
    return with_product_names(table, _recorded_names(Path(path)))


def product_names(table: pd.DataFrame) -> dict[str, str]:
    """The product feature names a feature table carries (`PRODUCT_NAMES`; none for a table from elsewhere)."""
    return dict(table.attrs.get(PRODUCT_NAMES) or {})


def with_product_names(table: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """`table` carrying `names` (`PRODUCT_NAMES`) in its attrs, which pandas keeps through selections and copies."""
    table.attrs[PRODUCT_NAMES] = dict(names)
    return table


def names_metadata(table: pd.DataFrame) -> dict[bytes, bytes]:
    """The parquet metadata recording a feature table's product feature names (`PRODUCT_NAMES`)."""
    return {PRODUCT_NAMES.encode(): json.dumps(product_names(table), sort_keys=True, ensure_ascii=False).encode()}


def record_names(folder: Path, names: Mapping[str, str]) -> None:
    """The product feature names of a partitioned folder's table, as its `PRODUCT_NAMES_FILE`."""
    (folder / PRODUCT_NAMES_FILE).write_text(json.dumps(dict(names), sort_keys=True, ensure_ascii=False), "utf-8")


def values_metadata(values: Mapping[str, int]) -> dict[bytes, bytes]:
    """The parquet metadata recording the value settings (`FeatureSet.values` keys) a table was built with,
    so that a model trained on the file (`churn train --features`) records them, not the configuration's."""
    return {VALUES_KEY: json.dumps(dict(values), sort_keys=True).encode()}


def record_values(folder: Path, values: Mapping[str, int]) -> None:
    """`values_metadata` for a partitioned folder, as its `VALUES_FILE`."""
    (folder / VALUES_FILE).write_bytes(values_metadata(values)[VALUES_KEY])


def recorded_values(path: str | Path) -> dict[str, int] | None:
    """The value settings a feature table file or folder records (`values_metadata`, `VALUES_FILE`), or None:
    written by a churn version before they were recorded, or by something else."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        text = (path / VALUES_FILE).read_bytes() if (path / VALUES_FILE).is_file() else None
    else:
        text = (pq.read_schema(path).metadata or {}).get(VALUES_KEY)
    if text is None:
        return None
    values = json.loads(text)
    return {str(key): int(value) for key, value in values.items()} if isinstance(values, dict) else None


def _recorded_names(path: Path) -> dict[str, str]:
    """The product feature names a feature table file or folder records (`PRODUCT_NAMES`), or none."""
    import pyarrow.parquet as pq

    if path.is_dir():
        text = (path / PRODUCT_NAMES_FILE).read_bytes() if (path / PRODUCT_NAMES_FILE).is_file() else None
    else:
        text = (pq.read_schema(path).metadata or {}).get(PRODUCT_NAMES.encode())
    names = json.loads(text) if text is not None else {}
    return {str(key): str(name) for key, name in names.items()} if isinstance(names, dict) else {}
