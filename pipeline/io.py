"""Output files that never destroy what churn did not create.

Every file is built in a hidden temporary sibling and renamed into place, so a failure or an
interrupt leaves the previous file or nothing, never half a file. Before anything is written the
target is checked:

- A file output (`--out FILE`) must end in a known suffix. A folder there is refused, never
  replaced. An existing file is replaced only when churn wrote it as the same kind of output (a
  re-run of the same command); `overwrite=True` (`--overwrite`) also replaces a churn output of
  another kind or one changed since; a file churn did not write is always refused.
- Outputs are recognised by a marker: parquet files carry it in their key-value metadata, other
  files (CSV) a hidden sidecar `.<name>.churn.json` with the kind and the SHA-256 of the content.
  Outputs of churn versions that wrote no marker are recognised by their columns (`SIGNATURES`),
  and folders by holding the command's distinctive files and nothing it does not write.
- A folder output (`churn compare/run/generate --out DIR`) is used when it is new, empty, or was
  made by the same command (`.churn-output.json` inside lists what churn wrote there). Churn then
  replaces only files it listed; a folder is never deleted with what it holds.

Temporaries left by a killed process (`.<name>.churn-tmp-<host>-<pid>-<random>`) are removed by
the next write to the same target. The folders made for an output are noted as the command's
(`leftovers.creating`): a command that fails removes them again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import ChurnError
from pipeline.leftovers import creating, nearest_existing

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MARKER_KEY = b"churn.output"
DIR_MARKER = ".churn-output.json"
TABLE_FORMATS = {".parquet": "parquet", ".csv": "csv"}
STALE_AFTER_SECONDS = 24 * 3600  # a temporary of another host is stale after this long
LEGACY_STALE_AFTER_SECONDS = 3600  # folders of earlier churn versions (tempfile.mkdtemp names, no pid)
# the suffix of the target, and a database's own sibling after it (DuckDB's `.wal`)
_TEMP = re.compile(r"\.churn-(?P<tag>tmp|old|stage)-(?P<host>[A-Za-z0-9]*)-(?P<pid>\d+)-[0-9a-f]+(\.\w+){0,2}$")


# Columns that identify an unmarked table as churn's own output of a kind (written before markers).
SIGNATURES: dict[str, frozenset[str]] = {
    "features": frozenset({"account_id", "as_of", "label", "term_end"}),
    "scores": frozenset({"account_id", "as_of", "churn_probability", "risk_band", "model_version"}),
    "alerts": frozenset({"account_id", "as_of", "reasons", "arr_at_risk"}),
    "drift": frozenset({"feature", "psi", "drifted"}),
}


class OutputRefused(ChurnError):
    """An output target that churn must not write to (a folder, a foreign file, an unknown suffix)."""


def literal_glob(path: Path) -> str:
    """The path as a DuckDB file pattern matching exactly this file (`*`, `?`, `[` escaped as classes)."""
    return re.sub(r"([*?\[])", r"[\1]", str(path))


# ------------------------------------------------------------------------------ temporaries
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40]


def temporary_sibling(target: Path, tag: str = "tmp", token: str | None = None) -> Path:
    """A hidden name next to `target` that `remove_stale_temporaries` recognises as churn's.

    `token` (hex) makes the name predictable, so a journal can list it before the file exists; the
    target's suffix is kept last, for writers that pick the format from it.
    """
    token = token or secrets.token_hex(4)
    return target.with_name(f".{target.name}.churn-{tag}-{_host()}-{os.getpid()}-{token}{target.suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_stale(entry: Path, host: str, pid: int) -> bool:
    if host == _host():
        return pid != os.getpid() and not _alive(pid)
    try:
        return time.time() - entry.lstat().st_mtime > STALE_AFTER_SECONDS
    except FileNotFoundError:
        return False


def _remove(path: Path) -> None:
    if not os.path.lexists(path):  # never written; unlinking it anyway fails on a read-only file system (EROFS)
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError, NotADirectoryError):  # never written: a file stands on its way
            path.unlink()


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Delete temporaries of `target` left by dead processes; a moved-away old copy is put back
    when the target itself is missing (a folder swap that was killed half-way). Returns what was removed."""
    target = Path(target)
    prefix = f".{target.name}.churn-"
    legacy = re.compile(rf"^\.{re.escape(target.name)}\.[a-z0-9_]{{8}}$")
    removed = []
    try:
        siblings = list(target.parent.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in siblings:  # earlier versions: `.<name>.XXXXXXXX/` holding at most `<name>`
        if legacy.match(entry.name) and entry.is_dir() and not entry.is_symlink():
            inside = [p.name for p in entry.iterdir()]
            old = time.time() - entry.stat().st_mtime > LEGACY_STALE_AFTER_SECONDS
            if old and set(inside) <= {target.name}:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    entries = [e for e in siblings if e.name.startswith(prefix)]
    for entry in entries:
        match = _TEMP.search(entry.name)
        if match is None or match["tag"] == "stage" or not _is_stale(entry, match["host"], int(match["pid"])):
            continue  # staged files belong to the scoring commit journal, which cleans them itself
        if match["tag"] == "old" and not target.exists() and not target.is_symlink():
            os.replace(entry, target)
            continue
        _remove(entry)
        removed.append(entry)
    return removed


def fsync_file(path: Path) -> None:
    """Flush a file's data to disk (power-loss durability of what a rename makes visible)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary file path next to `target`; rename it onto `target` only if the block succeeds.

    Only files: a folder at `target` is refused (never deleted). The caller checks ownership
    first (`check_output_file`); this only guarantees "previous file or new file, never half".
    """
    target = Path(target)
    if target.is_dir():
        raise OutputRefused(f"{target} is a folder; churn writes a file there only where no folder is.")
    _make_parent(target)
    remove_stale_temporaries(target)
    tmp = temporary_sibling(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        _remove(tmp)


def _make_parent(target: Path) -> None:
    try:
        creating(target.parent).mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise OutputRefused(f"Cannot write {target}: a file stands where its folder should be ({exc}).") from exc
    except PermissionError as exc:
        raise OutputRefused(f"Cannot write {target}: no permission to create its folder ({exc}).") from exc


# ---------------------------------------------------------------------------- output markers
def output_format(path: str | Path, allowed: Collection[str] = ("parquet", "csv"), fmt: str | None = None) -> str:
    """The table format of an output file from its suffix; unknown suffixes and mismatches are refused."""
    path = Path(path)
    if path.is_dir():
        raise OutputRefused(
            f"Output {path} is a folder; --out names a file, e.g. {path / ('out.' + next(iter(allowed)))}. "
            "Nothing was written and the folder was left as it is."
        )
    suffix = path.suffix.lower()
    found = TABLE_FORMATS.get(suffix)
    choices = " or ".join(f".{a}" for a in allowed)
    if found is None or found not in allowed:
        raise OutputRefused(
            f"Output {path}: unknown suffix '{suffix or '(none)'}'; name a {choices} file, e.g. "
            f"{path.with_suffix('.' + next(iter(allowed))).name}."
        )
    if fmt is not None and fmt != found:
        raise OutputRefused(f"Output {path} ends in {suffix} but the format asked for is {fmt}; make them agree.")
    return found


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.churn.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_marker(path: str | Path) -> dict[str, Any] | None:
    """The churn output marker of a file (kind, and `changed` for text files edited since), or None."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError):
            return None
        return _json_dict((schema.metadata or {}).get(MARKER_KEY)) or _legacy_marker(schema.names)
    sidecar = _sidecar(path)
    if not sidecar.is_file():
        return _legacy_marker(_csv_header(path)) if path.suffix.lower() == ".csv" else None
    marker = _json_dict(sidecar.read_bytes())
    if marker is not None:
        marker["changed"] = _sha256(path) not in marker.get("sha256", [])
    return marker


def _legacy_marker(columns: list[str]) -> dict[str, Any] | None:
    """An unmarked table whose columns are those of a churn output kind (written before markers)."""
    kind = next((kind for kind, needed in SIGNATURES.items() if needed <= set(columns)), None)
    return {"kind": kind, "legacy": True} if kind else None


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8") as handle:
            return next(csv.reader([handle.readline()]), [])
    except (OSError, UnicodeDecodeError):
        return []


def _json_dict(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def check_output_file(path: str | Path, kind: str, *, overwrite: bool = False) -> None:
    """Refuse to write `kind` output to `path` unless nothing is there or it is churn's own earlier output."""
    path = Path(path)
    if path.is_symlink():
        raise OutputRefused(f"Output {path} is a symbolic link; name a plain file (churn does not replace links).")
    if path.is_dir():
        raise OutputRefused(
            f"Output {path} is a folder; --out names a file, e.g. {path / ('scores.parquet')}. "
            "Nothing was written and the folder was left as it is."
        )
    if not path.exists():
        _check_folder_of(path)
        return
    if not path.is_file():
        raise OutputRefused(f"Output {path} exists and is not a regular file; choose another name.")
    marker = read_marker(path)
    if marker is None:
        raise OutputRefused(
            f"Output {path} already exists and churn did not write it; churn never replaces a file it did "
            "not create (not even with --overwrite). Choose another name or move that file away."
        )
    if marker.get("kind") != kind and not overwrite:
        raise OutputRefused(
            f"Output {path} holds churn's {marker.get('kind')} output, not {kind}; "
            "pass --overwrite to replace it, or choose another name."
        )
    if marker.get("changed") and not overwrite:
        raise OutputRefused(
            f"Output {path} was written by churn but has been changed since; pass --overwrite to replace it, "
            "or choose another name."
        )
    _check_folder_of(path)  # replacing it writes a sibling there first


def _check_folder_of(path: Path) -> None:
    """Refuse a new output whose folder cannot hold it (a file on its way, a folder churn may not write),
    before the work: found when the output is staged, it cost the whole run and was an internal error."""
    check_writable_folder(path.absolute().parent, f"Cannot write {path}", f"Output {path}", "choose another place")


def check_writable_folder(folder: Path, cannot: str, what: str, advice: str) -> None:
    """Refuse a folder churn is to write in (made if missing) when it cannot: a file stands on its way,
    or the nearest existing folder is not writable (permissions, a read-only file system).

    `cannot` and `what` start the two messages ("Cannot write X", "Output X"); `advice` ends the second.
    """
    folder = nearest_existing(folder)
    if not folder.is_dir():
        raise OutputRefused(f"{cannot}: a file stands where its folder should be ({folder}).")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputRefused(f"{what}: the folder {folder} is not writable; {advice}.")


@dataclass(frozen=True)
class Staged:
    """A file written under a hidden name, waiting to be renamed onto its target."""

    staged: Path
    target: Path

    def place(self) -> None:
        """Rename onto the target, replacing it atomically (idempotent once done)."""
        if self.staged.exists():
            self.target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.staged, self.target)

    def discard(self) -> None:
        _remove(self.staged)


def staged_for(target: str | Path, fmt: str, token: str | None = None, tag: str = "stage") -> list[Staged]:
    """The renames that put a `fmt` file at `target`, in order: the sidecar first (all but parquet), then the file."""
    target = Path(target)
    token = token or secrets.token_hex(4)
    file = Staged(temporary_sibling(target, tag, token), target)
    if fmt == "parquet":
        return [file]
    return [Staged(temporary_sibling(_sidecar(target), tag, token), _sidecar(target)), file]


def write_staged(
    frame: pd.DataFrame,
    staged: list[Staged],
    kind: str,
    fmt: str,
    *,
    sync: bool = False,
    metadata: dict[bytes, bytes] | None = None,
) -> None:
    """Write `frame` (marked as `kind` output) into the staged names of `staged_for`; `metadata` goes into a
    parquet file's schema metadata beside the marker."""
    if fmt == "parquet":
        file = staged[-1]
        _make_parent(file.staged)
        remove_stale_temporaries(file.target)
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            marker = json.dumps({"kind": kind, "format": fmt}).encode()
            pq.write_table(
                table.replace_schema_metadata(
                    {**(table.schema.metadata or {}), **(metadata or {}), MARKER_KEY: marker}
                ),
                file.staged,
            )
            if sync:
                fsync_file(file.staged)
        except BaseException:
            file.discard()
            raise
    elif fmt == "csv":
        _write_with_sidecar(staged, kind, fmt, lambda path: frame.to_csv(path, index=False), sync=sync)
    else:
        raise OutputRefused(f"Cannot write {staged[-1].target}: unknown format '{fmt}' (use parquet or csv).")


def _write_with_sidecar(
    staged: list[Staged], kind: str, fmt: str, write: Callable[[Path], None], *, sync: bool = False
) -> None:
    """Write the file with `write`, then its sidecar marker.

    The sidecar accepts both the previous and the new content, so a crash between the two
    renames never makes churn's own file look foreign.
    """
    sidecar, file = staged
    _make_parent(file.staged)
    remove_stale_temporaries(file.target)
    try:
        write(file.staged)
        hashes = [_sha256(file.staged)]
        previous = read_marker(file.target) if file.target.is_file() else None
        if previous is not None and not previous.get("changed"):
            hashes.append(_sha256(file.target))
        sidecar.staged.write_text(json.dumps({"kind": kind, "format": fmt, "sha256": hashes}))
        if sync:
            for item in staged:
                fsync_file(item.staged)
    except BaseException:
        for item in staged:
            item.discard()
        raise


def _place_all(staged: list[Staged]) -> None:
    try:
        for item in staged:
            item.place()
    finally:
        for item in staged:
            item.discard()


def write_output(
    frame: pd.DataFrame,
    path: str | Path,
    kind: str,
    *,
    fmt: str | None = None,
    overwrite: bool = False,
    metadata: dict[bytes, bytes] | None = None,
) -> Path:
    """Write a table as `kind` output at a user-named path: checked, marked, atomic (`metadata`: as in
    `write_staged`)."""
    path = Path(path)
    fmt = output_format(path, fmt=fmt)
    check_output_file(path, kind, overwrite=overwrite)
    staged = staged_for(path, fmt, tag="tmp")
    write_staged(frame, staged, kind, fmt, metadata=metadata)
    _place_all(staged)
    return path


def check_output_path(path: Path, kind: str, suffix: str, *, overwrite: bool = False) -> None:
    """`check_output_file` for a non-table output that must end in `suffix`."""
    if path.is_dir() or path.suffix.lower() != suffix:
        what = "is a folder" if path.is_dir() else f"does not end in {suffix}"
        raise OutputRefused(f"Output {path} {what}; name a {suffix} file, e.g. {path.with_suffix(suffix).name}.")
    check_output_file(path, kind, overwrite=overwrite)


def write_output_file(
    path: str | Path, kind: str, write: Callable[[Path], None], *, suffix: str, overwrite: bool = False
) -> Path:
    """Write a non-table output (a plot...) at a user-named path with `write(tmp_path)`: checked, marked, atomic."""
    path = Path(path)
    check_output_path(path, kind, suffix, overwrite=overwrite)
    staged = staged_for(path, suffix.lstrip("."), tag="tmp")
    _write_with_sidecar(staged, kind, suffix.lstrip("."), write)
    _place_all(staged)
    return path


def write_table(frame: pd.DataFrame, path: str | Path, fmt: str | None = None) -> Path:
    """Write a table atomically inside a folder churn owns (`prepare_output_dir`); no ownership check."""
    path = Path(path)
    fmt = fmt or output_format(path)
    writers: dict[str, Callable[[Path], None]] = {
        "parquet": lambda p: frame.to_parquet(p, index=False),
        "csv": lambda p: frame.to_csv(p, index=False),
    }
    if fmt not in writers:
        raise OutputRefused(f"Cannot write {path}: unknown format '{fmt}' (use parquet or csv).")
    with atomic_path(path) as tmp:
        writers[fmt](tmp)
    return path


FIGURE_DPI = 110


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG atomically (the plot is drawn elsewhere; writing is I/O)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=FIGURE_DPI, format="png")
    return Path(path)


def save_figures(figures: Mapping[str, Figure], directory: str | Path) -> list[Path]:
    """Save figures named by file name (`roc.png`...) into `directory`; returns the files written."""
    return [save_figure(figure, Path(directory) / name) for name, figure in figures.items()]


# ---------------------------------------------------------------------------------- folders
def _dir_marker(path: Path) -> dict[str, Any] | None:
    marker = path / DIR_MARKER
    return _json_dict(marker.read_bytes()) if marker.is_file() else None


def _entries(path: Path) -> list[str]:
    """Names in a folder, without churn's marker and temporaries."""
    return sorted(e.name for e in path.iterdir() if e.name != DIR_MARKER and _TEMP.search(e.name) is None)


@dataclass(frozen=True)
class Legacy:
    """How an unmarked folder written by an earlier churn looks: it holds every `required` name and
    nothing but those, the names the command writes, and `allowed` ones."""

    required: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()


def _check_folder(
    path: Path, kind: str, will_write: Collection[str], legacy: Legacy = Legacy()
) -> dict[str, Any] | None:
    """The folder's marker when churn may write `kind` output into it; raises otherwise."""
    if path.is_symlink():
        raise OutputRefused(f"Output folder {path} is a symbolic link; name a plain folder.")
    if path.exists() and not path.is_dir():
        raise OutputRefused(f"Output {path} is a file, not a folder; this command writes a folder there.")
    if not path.exists():
        return None
    marker = _dir_marker(path)
    entries = _entries(path)
    known = {*will_write, *legacy.allowed, *legacy.required}
    if marker is None and legacy.required and set(legacy.required) <= set(entries) <= known:
        marker = {"kind": kind, "files": entries}  # an earlier output, from before folders were marked
    if marker is None:
        if entries:
            visible = sorted(entries, key=lambda name: (name.startswith("."), name))  # hidden markers last
            shown = ", ".join(visible[:3]) + (", ..." if len(entries) > 3 else "")
            raise OutputRefused(
                f"Output folder {path} already holds files churn did not write there as {kind} output ({shown}); "
                "churn never replaces or deletes them. Choose a new or empty folder."
            )
        return None
    if marker.get("kind") != kind:
        raise OutputRefused(
            f"Output folder {path} holds churn's {marker.get('kind')} output, not {kind}; choose another folder."
        )
    ours = set(marker.get("files", []))
    foreign = [name for name in will_write if (path / name).exists() and name not in ours]
    if foreign:
        raise OutputRefused(
            f"Output folder {path} holds {', '.join(foreign[:3])}, which churn did not write there; "
            "churn never replaces it. Move it away or choose another folder."
        )
    return marker


def _write_dir_marker(path: Path, kind: str, files: Iterable[str]) -> None:
    with atomic_path(path / DIR_MARKER) as tmp:
        tmp.write_text(json.dumps({"kind": kind, "files": sorted(set(files))}, indent=1))


def check_output_dir(path: str | Path, kind: str, will_write: Iterable[str], legacy: Legacy = Legacy()) -> None:
    """Refuse, before any work, a folder `prepare_output_dir` would refuse (changes nothing)."""
    _check_folder(Path(path), kind, list(will_write), legacy)


@contextmanager
def claimed_output_dir(
    path: str | Path, kind: str, will_write: Iterable[str], legacy: Legacy = Legacy()
) -> Iterator[Path]:
    """`prepare_output_dir` for the length of a command: if the command fails, a folder it created
    and left without any file is removed again, with the folders made to hold it (`--out new/run`, the
    working folder's `run`) that are left empty, so a failure leaves nothing behind."""
    path = Path(path)
    start = nearest_existing(path)  # the folders below it are this command's
    prepare_output_dir(path, kind, will_write, legacy)
    try:
        yield path
    except BaseException:
        made = path.absolute()
        if start != made and made.is_dir() and not _entries(made):
            shutil.rmtree(made, ignore_errors=True)
            for parent in made.parents:
                if parent == start:
                    break
                with suppress(OSError):  # no longer empty: something else was written there meanwhile
                    parent.rmdir()
        raise


def prepare_output_dir(path: str | Path, kind: str, will_write: Iterable[str], legacy: Legacy = Legacy()) -> Path:
    """Make `path` a folder of churn's `kind` output, about to receive the files `will_write`.

    The folder must be new, empty, or an earlier output of the same kind in which each of those
    names is absent or was written by churn; other files in it are left alone.
    """
    path = Path(path)
    names = list(will_write)
    marker = _check_folder(path, kind, names, legacy)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError, PermissionError) as exc:
        raise OutputRefused(f"Cannot create the output folder {path}: {exc}") from exc
    _write_dir_marker(path, kind, [*(marker or {}).get("files", []), *names])
    return path


def _check_replaceable(target: Path, kind: str, legacy: Legacy) -> None:
    marker = _check_folder(target, kind, [], legacy)
    if marker is not None:
        foreign = [name for name in _entries(target) if name not in set(marker.get("files", []))]
        if foreign:
            raise OutputRefused(
                f"Output folder {target} holds {', '.join(foreign[:3])}, which churn did not write; it would "
                "be lost when the folder is replaced. Move it away or choose another folder."
            )


@contextmanager
def replace_directory(target: str | Path, kind: str, legacy: Legacy = Legacy()) -> Iterator[Path]:
    """Build a whole folder in a temporary sibling and put it in place of `target` if the block succeeds.

    `target` must be new, empty, or an earlier `kind` output holding only what churn wrote there
    (checked before and again just before the swap): the old copy is deleted after the swap, so
    nothing else may be in it. `legacy` describes an unmarked earlier output.
    """
    target = Path(target)
    _check_replaceable(target, kind, legacy)
    _make_parent(target)
    remove_stale_temporaries(target)
    tmp = temporary_sibling(target)
    tmp.mkdir()
    try:
        yield tmp
        _write_dir_marker(tmp, kind, _entries(tmp))
        _check_replaceable(target, kind, legacy)
        if target.exists():
            old = temporary_sibling(target, "old")
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
