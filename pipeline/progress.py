"""Progress display for long work: stages report `(stage, done, total)` and rich draws the bars.

Stage functions take a plain callback so they stay pure and testable; only the CLI decides
whether anything is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

ProgressCallback = Callable[[str, int, int], None]

console = Console(stderr=True)
_settings = {"enabled": console.is_terminal}  # bars only where a person watches; the CLI may turn them off


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off for this process (the CLI's --no-progress)."""
    _settings["enabled"] = enabled


@contextmanager
def progress_bars(enabled: bool | None = None) -> Iterator[ProgressCallback | None]:
    """Yield a callback that keeps one bar per stage name (None when disabled).

    `enabled` defaults to the process setting: on for a terminal, off for logs and pipes.
    """
    if not (_settings["enabled"] if enabled is None else enabled):
        yield None
        return
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bars:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield update
