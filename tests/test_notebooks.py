"""The notebooks run top to bottom on small generated data, and are stored without outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "python3"
pytestmark = pytest.mark.slow


def _ensure_kernel() -> None:
    """A fresh clone's venv may lack the python3 kernel spec; install it into the venv itself."""
    if KERNEL not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True)


@pytest.mark.parametrize("name", ["rule_vs_ml.ipynb", "retrain.ipynb"])
def test_stored_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "a notebook without code"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


@pytest.mark.parametrize(
    ("name", "accounts", "expected"),
    [
        ("rule_vs_ml.ipynb", 300, ["ROC AUC, ML risk", "Rule view:", "ML view:", "report.html"]),
        ("retrain.ipynb", 200, ["model version 1", "snapshots x"]),
    ],
)
def test_runs_top_to_bottom(name, accounts, expected, tmp_path, monkeypatch):
    _ensure_kernel()
    monkeypatch.setenv("CHURN_NB_ACCOUNTS", str(accounts))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the notebook's temp store, not the caller's
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    for text in expected:
        assert text in printed, f"{name}: expected '{text}' in the printed output"
    assert list(tmp_path.iterdir()) == [], "notebooks work in their own temp folders, not the working directory"
    if name == "retrain.ipynb":
        images = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, "the SHAP-by-category figure is displayed"
