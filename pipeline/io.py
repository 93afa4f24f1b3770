"""Atomic file output: write to a temporary sibling, then rename, so a failure leaves nothing half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; move it into place only if the block succeeds.

    Works for files and directories (a directory target is replaced whole).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp = tmp_dir / target.name
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_table(frame: pd.DataFrame, path: str | Path, fmt: str | None = None) -> Path:
    """Write a DataFrame atomically as parquet or CSV (format from `fmt` or the file suffix)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "parquet").lower()
    writers: dict[str, Callable[[Path], None]] = {
        "parquet": lambda p: frame.to_parquet(p, index=False),
        "csv": lambda p: frame.to_csv(p, index=False),
    }
    if fmt not in writers:
        from pipeline.errors import ChurnError

        raise ChurnError(f"Cannot write {path}: unknown format '{fmt}' (use parquet or csv).")
    with atomic_path(path) as tmp:
        writers[fmt](tmp)
    return path
