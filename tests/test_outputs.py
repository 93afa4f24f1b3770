"""Outputs never destroy what churn did not create (issue 11, rows 1 and 11).

`--out` names a file: a folder there, a file churn did not write, or an unknown suffix is refused
before any work and left exactly as it was; churn's own earlier output of the same kind is
replaced (re-runs are idempotent), another kind or an edited one only with --overwrite.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from pyarrow import ArrowInvalid

from features.errors import ChurnError
from pipeline.commit import ScoreOutputs
from pipeline.history import append_scores
from pipeline.io import (
    DIR_MARKER,
    Legacy,
    OutputRefused,
    atomic_path,
    prepare_output_dir,
    read_marker,
    remove_stale_temporaries,
    replace_directory,
    temporary_sibling,
    write_output,
    write_output_file,
)
from pipeline.leftovers import removed_if_failed
from tests.helpers import file_tree, run_cli, tiny_tables, write_tables

FRAME = pd.DataFrame({"account_id": ["A", "B"], "value": [1.0, 2.0]})


def test_features_out_naming_the_data_folder_deletes_nothing(tiny_data_dir: Path, capsys) -> None:
    """Row 1: `churn features --data D --out D` used to delete D and everything in it."""
    before = file_tree(tiny_data_dir)
    code, message = run_cli(["features", "--data", str(tiny_data_dir), "--out", str(tiny_data_dir)], capsys)
    assert code == 1
    assert f"Output {tiny_data_dir} is a folder" in message and "Traceback" not in message
    assert file_tree(tiny_data_dir) == before


def test_score_out_naming_a_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "q3.xlsx").write_bytes(b"precious")
    with pytest.raises(OutputRefused, match="is a folder"):
        ScoreOutputs(folder, "parquet").check()
    assert (folder / "q3.xlsx").read_bytes() == b"precious"


def test_an_output_under_a_file_is_refused_before_any_work(tiny_data_dir: Path, tmp_path: Path, capsys) -> None:
    """`--out data/accounts.parquet/scores.parquet` used to do the whole run, then fail staging the scores
    with an internal NotADirectoryError."""
    table = next(p for p in sorted(tiny_data_dir.iterdir()) if p.is_file())  # e.g. accounts.csv
    with pytest.raises(OutputRefused, match=f"a file stands where its folder should be \\({re.escape(str(table))}\\)"):
        ScoreOutputs(table / "scores.parquet", "parquet").check()
    out = table / "sub" / "features.parquet"
    code, message = run_cli(["features", "--data", str(tiny_data_dir), "--out", str(out)], capsys)
    assert code == 1 and f"Cannot write {out}: a file stands where its folder should be ({table})" in message
    assert "internal error" not in message and "Data end" not in message


def test_unknown_output_suffix_is_refused(tiny_data_dir: Path, tmp_path: Path, capsys) -> None:
    """Row 11: `--out s.xlsx` used to write parquet under that name."""
    code, message = run_cli(["features", "--data", str(tiny_data_dir), "--out", str(tmp_path / "s.xlsx")], capsys)
    assert code == 1 and "unknown suffix '.xlsx'" in message and "s.parquet" in message
    code, message = run_cli(["score", "--data", str(tiny_data_dir), "--out", str(tmp_path / "s.xlsx")], capsys)
    assert code == 1 and "unknown suffix '.xlsx'" in message
    code, message = run_cli(
        ["score", "--data", str(tiny_data_dir), "--out", str(tmp_path / "s.parquet"), "--format", "csv"], capsys
    )
    assert code == 1 and "ends in .parquet but the format asked for is csv" in message
    assert not any(tmp_path.glob("s*"))


def test_a_file_churn_did_not_write_is_never_replaced(tiny_data_dir: Path, tmp_path: Path, capsys) -> None:
    mine = tmp_path / "mine.parquet"
    FRAME.to_parquet(mine)
    before = mine.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, message = run_cli(["features", "--data", str(tiny_data_dir), "--out", str(mine), *extra], capsys)
        assert code == 1 and "churn did not write it" in message
        assert mine.read_bytes() == before


def test_reruns_replace_their_own_output_other_kinds_need_overwrite(
    tiny_data_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "features.parquet"
    for _ in range(2):  # the second run replaces the first one's file: re-runs are idempotent
        code, message = run_cli(["features", "--data", str(tiny_data_dir), "--out", str(out)], capsys)
        assert code == 0, message
    assert read_marker(out) == {"kind": "features", "format": "parquet"}
    assert len(pd.read_parquet(out)) > 0

    write_output(FRAME, tmp_path / "scores.parquet", "scores")
    code, message = run_cli(
        ["features", "--data", str(tiny_data_dir), "--out", str(tmp_path / "scores.parquet")], capsys
    )
    assert code == 1 and "holds churn's scores output, not features; pass --overwrite" in message
    code, _ = run_cli(
        ["features", "--data", str(tiny_data_dir), "--out", str(tmp_path / "scores.parquet"), "--overwrite"],
        capsys,
    )
    assert code == 0 and read_marker(tmp_path / "scores.parquet")["kind"] == "features"


def test_an_edited_csv_output_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    write_output(FRAME, out, "scores")
    write_output(FRAME.assign(value=3.0), out, "scores")  # churn's own file: replaced
    assert pd.read_csv(out)["value"].tolist() == [3.0, 3.0]
    out.write_text(out.read_text() + "C,9\n")  # someone edits it
    with pytest.raises(OutputRefused, match="changed since"):
        write_output(FRAME, out, "scores")
    write_output(FRAME, out, "scores", overwrite=True)
    assert pd.read_csv(out)["value"].tolist() == [1.0, 2.0]
    assert {p.name for p in tmp_path.iterdir()} == {"scores.csv", ".scores.csv.churn.json"}


def test_symbolic_links_and_special_targets_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "real.parquet"
    write_output(FRAME, target, "scores")
    link = tmp_path / "link.parquet"
    link.symlink_to(target)
    with pytest.raises(OutputRefused, match="symbolic link"):
        write_output(FRAME, link, "scores")
    with pytest.raises(OutputRefused, match="is a folder"), atomic_path(tmp_path):
        pass
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(OutputRefused, match="a file stands where its folder should be"):
        write_output(FRAME, blocked / "out.parquet", "scores")


def test_plots_are_checked_and_marked_like_tables(tmp_path: Path) -> None:
    plot = tmp_path / "plot.png"
    write_output_file(plot, "plot", lambda p: p.write_bytes(b"\x89PNG fake"), suffix=".png")
    write_output_file(plot, "plot", lambda p: p.write_bytes(b"\x89PNG new"), suffix=".png")
    assert plot.read_bytes() == b"\x89PNG new" and read_marker(plot)["kind"] == "plot"
    holiday = tmp_path / "holiday.png"
    holiday.write_bytes(b"\x89PNG beach")
    with pytest.raises(OutputRefused, match="churn did not write it"):
        write_output_file(holiday, "plot", lambda p: p.write_bytes(b"x"), suffix=".png")
    with pytest.raises(OutputRefused, match=r"does not end in \.png"):
        write_output_file(tmp_path / "plot.jpg", "plot", lambda p: p.write_bytes(b"x"), suffix=".png")
    assert holiday.read_bytes() == b"\x89PNG beach"


def test_output_folders_are_new_empty_or_their_own(tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(
        OutputRefused, match=r"already holds files churn did not write there as compare output \(notes.txt\)"
    ):
        prepare_output_dir(user, "compare", ["report.html"])
    scores = tmp_path / "scores"  # other outputs of churn (a file output's hidden marker is named last)
    scores.mkdir()
    for name in (".s.csv.churn.json", "s.csv"):
        (scores / name).write_text("")
    with pytest.raises(OutputRefused, match=r"as generate output \(s.csv, .s.csv.churn.json\)"):
        prepare_output_dir(scores, "generate", ["accounts.parquet"])

    ours = prepare_output_dir(tmp_path / "cmp", "compare", ["report.html", "metrics.json"])
    (ours / "report.html").write_text("<html/>")
    (ours / "mine.txt").write_text("the user's, left alone")
    prepare_output_dir(ours, "compare", ["report.html", "metrics.json"])  # a re-run: fine
    with pytest.raises(OutputRefused, match="holds churn's compare output, not run"):
        prepare_output_dir(ours, "run", ["features.parquet"])
    with pytest.raises(OutputRefused, match=r"holds mine\.txt, which churn did not write there"):
        prepare_output_dir(ours, "compare", ["mine.txt"])
    assert (ours / "mine.txt").read_text() == "the user's, left alone"
    with pytest.raises(OutputRefused, match="is a file, not a folder"):
        prepare_output_dir(ours / "mine.txt", "compare", [])


def test_compare_and_run_refuse_a_folder_of_other_files(tiny_data_dir: Path, tmp_path: Path, capsys) -> None:
    user = tmp_path / "Documents"
    user.mkdir()
    (user / "thesis.docx").write_bytes(b"years of work")
    for command in (["compare", "--data", str(tiny_data_dir)], ["run", "--data", str(tiny_data_dir)]):
        code, message = run_cli([*command, "--out", str(user)], capsys)
        kind = command[0]
        assert code == 1 and f"churn did not write there as {kind} output (thesis.docx)" in message, message
    assert file_tree(user) == {"thesis.docx": b"years of work"}


def test_generate_replaces_only_a_folder_of_its_own_files(tmp_path: Path) -> None:
    target = tmp_path / "gen"
    with replace_directory(target, "generate") as tmp:
        (tmp / "accounts.parquet").write_bytes(b"v1")
    with replace_directory(target, "generate") as tmp:
        (tmp / "accounts.parquet").write_bytes(b"v2")
    assert file_tree(target) == {"accounts.parquet": b"v2", DIR_MARKER: (target / DIR_MARKER).read_bytes()}
    (target / "analysis.ipynb").write_text("the user's notebook")
    lost = r"holds analysis\.ipynb, which churn did not write; it would be lost"
    with pytest.raises(OutputRefused, match=lost), replace_directory(target, "generate") as tmp:
        (tmp / "accounts.parquet").write_bytes(b"v3")
    assert (target / "accounts.parquet").read_bytes() == b"v2"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_killed_folder_swap_is_put_back_and_stale_temporaries_are_removed(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above the default pid_max: no such process
    target = tmp_path / "scores.parquet"
    stale = Path(str(temporary_sibling(target)).replace(f"-{os.getpid()}-", f"-{dead}-"))
    stale.write_bytes(b"half a file")
    stale_log = stale.with_name(f"{stale.name}.wal")  # a database's write-ahead log beside it (DuckDB)
    stale_log.write_bytes(b"a log")
    live = temporary_sibling(target)  # this process's own temporary is not touched
    live.write_bytes(b"in progress")
    write_output(FRAME, target, "scores")
    assert not stale.exists() and not stale_log.exists() and live.exists()

    swapped = tmp_path / "gen"
    old = Path(str(temporary_sibling(swapped, "old")).replace(f"-{os.getpid()}-", f"-{dead}-"))
    old.mkdir()
    (old / "accounts.parquet").write_bytes(b"the previous data")
    assert remove_stale_temporaries(swapped) == []
    assert (swapped / "accounts.parquet").read_bytes() == b"the previous data", "moved back, not deleted"


def test_output_errors_are_churn_errors() -> None:
    assert issubclass(OutputRefused, ChurnError)


def test_a_failed_folder_command_leaves_no_folder_behind(tmp_path: Path, capsys) -> None:
    tables = tiny_tables()
    del tables["subscriptions"]
    data = write_tables(tmp_path / "broken", tables)
    for command in ("compare", "run"):
        out = tmp_path / f"{command}-out"
        code, message = run_cli([command, "--data", str(data), "--out", str(out)], capsys)
        assert code == 1 and "subscriptions: required table is missing" in message
        assert not out.exists(), f"{command} left {out}"


def test_a_command_that_fails_before_writing_leaves_no_folder_it_made(tmp_path: Path, capsys) -> None:
    """A `churn score` without a model left a new working folder holding an empty MLflow store; `churn run` on a
    broken data folder left the working folder empty, and `--out new/run` its `new`. What the user had before,
    an empty working folder included, stays."""
    tables = tiny_tables()
    del tables["subscriptions"]
    data = write_tables(tmp_path / "broken", tables)
    config = tmp_path / "config.yaml"
    config.write_text(f"workdir: {tmp_path / 'new' / 'work'}\n")
    commands = [
        ["score", "--as-of", "2025-01-01", "--out", str(tmp_path / "scores" / "s.parquet")],
        ["run"],
        ["run", "--out", str(tmp_path / "runs" / "first")],
        ["compare"],
        ["train"],
        ["explain", "A1", "--as-of", "2025-01-01"],
    ]
    for user_made in (False, True):
        if user_made:
            (tmp_path / "new" / "work").mkdir(parents=True)
        before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
        for command in commands:
            code, message = run_cli([*command, "--data", str(data), "--config", str(config)], capsys)
            assert code == 1 and (
                "subscriptions: required table is missing" in message or "Cannot load model" in message
            )
            assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, (command, message)


def test_an_output_whose_writing_fails_leaves_no_folder_it_made(tmp_path: Path) -> None:
    """`churn features --out new/dir/x.parquet` made `new/dir` to stage the file in; a write that then failed
    left it. A failed command removes the folders it made (`removed_if_failed` wraps every command), never one
    that was there, nor what something else put in it."""
    unwritable = pd.DataFrame({"account_id": ["A", "B"], "value": [1.0, "two"]})  # pyarrow refuses the mixed column
    target = tmp_path / "new" / "dir" / "x.parquet"
    with pytest.raises(ArrowInvalid), removed_if_failed():
        write_output(unwritable, target, "features")
    assert list(tmp_path.iterdir()) == []

    (tmp_path / "kept").mkdir()
    with pytest.raises(ArrowInvalid), removed_if_failed():
        write_output(unwritable, tmp_path / "kept" / "x.parquet", "features")
    assert [p.name for p in tmp_path.rglob("*")] == ["kept"]
    with removed_if_failed():
        write_output(FRAME, target, "features")
    assert pd.read_parquet(target).equals(FRAME)


def test_outputs_of_churn_versions_without_markers_are_recognised(tmp_path: Path) -> None:
    """Upgrading must not break a scheduled `churn score --out` that replaces yesterday's file."""
    legacy = tmp_path / "scores.parquet"
    FRAME.assign(as_of="2025-01-01", churn_probability=0.1, risk_band="low", model_version="1").to_parquet(legacy)
    assert read_marker(legacy) == {"kind": "scores", "legacy": True}
    write_output(FRAME, legacy, "scores")
    look_alike = tmp_path / "mine.csv"
    FRAME.to_csv(look_alike, index=False)  # account_id alone is not churn's signature
    with pytest.raises(OutputRefused, match="churn did not write it"):
        write_output(FRAME, look_alike, "scores")

    generated = tmp_path / "gen"
    (generated / "_truth").mkdir(parents=True)
    (generated / "accounts.parquet").write_bytes(b"old")
    earlier = Legacy(frozenset({"_truth"}), frozenset({"accounts.parquet"}))
    with replace_directory(generated, "generate", earlier) as tmp:
        (tmp / "accounts.parquet").write_bytes(b"new")
    assert (generated / "accounts.parquet").read_bytes() == b"new"
    report = tmp_path / "report-folder"
    report.mkdir()
    (report / "report.html").write_text("a user's own report")  # a generic name alone proves nothing
    with pytest.raises(OutputRefused, match="already holds files churn did not write"):
        prepare_output_dir(report, "compare", ["report.html"], Legacy(frozenset({"suggested_healthscore.yaml"})))


def test_temporary_folders_of_earlier_versions_are_removed_once_stale(tmp_path: Path) -> None:
    history = tmp_path / "history"
    old_tmp = history / ".as_of=2024-01-01.k3j9x_0q"  # tempfile.mkdtemp next to a partition, killed mid-write
    (old_tmp / "as_of=2024-01-01").mkdir(parents=True)
    fresh_tmp = history / ".as_of=2024-01-01.abcdefgh"
    fresh_tmp.mkdir()
    os.utime(old_tmp, (0, 0))
    append_scores(history, pd.DataFrame({"account_id": ["A"], "as_of": ["2024-01-01"], "health_score": [50.0]}))
    assert not old_tmp.exists() and fresh_tmp.exists(), "only stale ones go: a fresh one may belong to a live run"


def test_compare_writes_into_the_configured_workdir_by_default(book, tmp_path: Path, monkeypatch, capsys) -> None:
    """Without --out, `churn compare` wrote to `.churn/compare` under the current folder, whatever the
    configured workdir (a scheduler running in / tried /.churn/compare); `churn run` used the workdir."""
    config = tmp_path / "c.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\nmodel: {{tune_trials: 0, n_estimators: 60}}\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, message = run_cli(["compare", "--data", str(book[1]), "--config", str(config)], capsys)
    assert code == 0, message
    assert (tmp_path / "work" / "compare" / "report.html").is_file()
    assert list(elsewhere.iterdir()) == []
