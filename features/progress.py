"""Progress of long work as a plain callback, so computations stay free of any display.

Every layer reports `(stage, done, total)` through a `ProgressCallback`; only the command line
decides whether and how it is drawn (`pipeline/console.py`).
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], None]


def report(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    """Call `progress` when there is one."""
    if progress is not None:
        progress(stage, done, total)
