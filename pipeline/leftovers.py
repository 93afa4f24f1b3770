"""What a failed command created, removed again, and what it superseded, kept: a command that fails leaves
nothing behind and takes nothing away.

Writers note each file or folder they are about to create (`creating`): the caches a scoring run keeps in
the working folder, the folders made for an output. `removed_if_failed` wraps a command (`churn`'s entry
point) and, when it fails, removes what was noted and the folders made on the way to it that are left
empty. What existed before the command is never noted, so never removed. A cache entry a newer one
supersedes is removed only when the command succeeds (`remove_when_done`). Light on imports: the entry
point loads it before any command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path

_created: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("churn_created", default=None)
"""The paths the running command created (with where creating each started), while `removed_if_failed` runs."""

_superseded: ContextVar[list[Path] | None] = ContextVar("churn_superseded", default=None)
"""The files the running command removes if it succeeds (`remove_when_done`), while `removed_if_failed` runs."""


def creating(path: Path) -> Path:
    """Note that the running command is about to create `path` (a cache file, a folder), so that `removed_if_failed`
    removes it, and the folders made on the way to it, if the command fails. A path that exists is not noted:
    what was there before a command is never removed. Returns `path`."""
    journal = _created.get()
    if journal is not None and not path.exists():
        journal.append((path.absolute(), nearest_existing(path.parent)))
    return path


def remove_when_done(path: Path) -> None:
    """Remove `path` (a cache entry a newer one supersedes, one unused for long) when the running command succeeds,
    at once outside a command: a failed command leaves the caches as it found them, so the next run of an earlier
    date still finds the entries a failed later one would have pruned."""
    superseded = _superseded.get()
    if superseded is None:
        _unlink(path)
    else:
        superseded.append(path)


@contextmanager
def removed_if_failed() -> Iterator[None]:
    """Run a command: if it fails (an error, an interrupt, a non-zero exit), remove the files and folders it
    noted with `creating` and the folders made on the way to them that are left empty, so that a failed
    command leaves nothing behind (a folder something else was written into meanwhile stays); if it succeeds,
    remove what it superseded (`remove_when_done`)."""
    journal: list[tuple[Path, Path]] = []
    superseded: list[Path] = []
    tokens = _created.set(journal), _superseded.set(superseded)
    try:
        yield
    except SystemExit as exc:
        if exc.code not in (0, None):
            _remove_created(journal)
        else:
            _remove_superseded(superseded)
        raise
    except BaseException:
        _remove_created(journal)
        raise
    else:
        _remove_superseded(superseded)
    finally:
        _created.reset(tokens[0])
        _superseded.reset(tokens[1])


def _remove_superseded(paths: list[Path]) -> None:
    for path in paths:
        _unlink(path)


def _unlink(path: Path) -> None:
    with suppress(FileNotFoundError):  # removed by a concurrent run
        path.unlink()


def _remove_created(journal: list[tuple[Path, Path]]) -> None:
    for path, start in reversed(journal):
        with suppress(OSError):  # a folder no longer empty, a file already gone
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
        for parent in path.parents:
            if parent == start:
                break
            with suppress(OSError):
                parent.rmdir()


def nearest_existing(path: Path) -> Path:
    """`path` (absolute) if it exists, else its nearest ancestor that does: where creating it would start."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
