"""CSM judgement as data (issue 14, item 1): the override store, its commands and scoring with it.

Real components throughout: a SQLite store in tmp, a LightGBM model trained on generated data and
registered in a SQLite MLflow store, the scoring commit writing the score history.
"""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

from features.errors import ChurnError
from models.alerts import rules_in_words
from models.healthscore import band_of, shown_score
from models.overrides import OverrideRequest, apply_overrides, expiry_reasons, in_force, validate_override
from models.scorecard import parse_scorecard
from pipeline import override_store
from pipeline.clock import utc_today
from pipeline.config import load_settings
from pipeline.history import append_scores, partition_path, read_history
from pipeline.override_commands import run_expire, run_history, run_import, run_list, run_override, run_withdraw
from pipeline.override_store import MIGRATIONS, SCHEMA_VERSION, read_records, store_path
from pipeline.stages import build_feature_table, run_explain, score_date
from tests.helpers import book_settings, config_file, run_cli, tiny_tables, write_tables

QUIET = Console(quiet=True)
TODAY = date(2025, 3, 15)
BASELINE, FIRST, SECOND, AFTER = (pd.Timestamp(d) for d in ("2025-03-01", "2025-04-01", "2025-05-01", "2025-06-01"))
UNTIL = "2025-05-15"


# ------------------------------------------------------------------------------ pure rules
CARD = parse_scorecard(
    {
        "name": "t",
        "bands": {"green": 70, "yellow": 60},
        "default": {
            "categories": {
                "adoption": {"weight": 60, "metrics": {"a": {"scheme": "linear", "bad": 0, "good": 1}}},
                "support": {"weight": 40, "metrics": {"s": {"scheme": "linear", "bad": 0, "good": 1}}},
            }
        },
    }
)


def request(**changes: str) -> OverrideRequest:
    fields = dict(
        account_id="A", kind="category", category="adoption", rating="80", reason="exec sponsor re-engaged",
        valid_until="2025-06-01", author="jane",
    )  # fmt: skip
    fields.update(changes)
    return OverrideRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"account_id": "Z"}, "unknown account 'Z'"),
        ({"account_id": "b"}, "unknown account 'b' (did you mean 'B'?)"),  # as the data spells it
        ({"category": "finance"}, "unknown category 'finance' (the scorecard has: adoption, support)"),
        ({"rating": "101"}, "a score must lie between 0 and 100, got '101'"),
        ({"rating": "-1"}, "a score must lie between 0 and 100"),
        ({"rating": "high"}, "'high' is not a rating (a number from 0 to 100)"),
        ({"valid_until": "2025-03-14"}, "the expiry 2025-03-14 is in the past (today is 2025-03-15)"),
        ({"valid_until": "soon"}, "expiry 'soon' is not a date"),
        ({"reason": "  "}, "a reason is required"),
        ({"kind": "sentiment", "category": None, "rating": "6"}, "a sentiment rating must lie between 1 and 5"),
    ],
)
def test_a_bad_override_is_refused_with_the_problem_named(changes: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        validate_override(request(**changes), today=TODAY, categories=CARD.categories(), accounts={"A", "B"})


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("ñandú sa 0004", "Ñandú  SA 0004"),  # copied from a page or a chat that collapsed the double space
        ("Café 12", "Cafe\u0301 12"),  # the composed é; the data decomposes it (an export from macOS)
    ],
)
def test_an_unknown_id_is_offered_the_id_it_spells_but_for_spacing_or_unicode_form(typed: str, meant: str) -> None:
    """'Ñandú SA 0004' was refused as unknown without a word about the data's 'Ñandú  SA 0004'."""
    with pytest.raises(ValueError, match=re.escape(f"unknown account {typed!r} (did you mean {meant!r}?)")):
        validate_override(
            request(account_id=typed), today=TODAY, categories=CARD.categories(), accounts={"A", "B", meant}
        )


def test_sentiment_words_stand_for_ratings() -> None:
    valid = validate_override(
        request(kind="sentiment", category=None, rating="Yellow"), today=TODAY, categories=[], accounts=None
    )
    assert (valid.kind, valid.value, valid.category) == ("sentiment", 3.0, None)


def scores_frame() -> pd.DataFrame:
    scores = pd.DataFrame(
        {"account_id": ["A", "B"], "health_adoption": [20.0, 90.0], "health_support": [50.0, 90.0]}
    ).assign(health_scorecard="default")
    scores["health_score"] = 0.6 * scores["health_adoption"] + 0.4 * scores["health_support"]
    scores["health_band"] = band_of(scores["health_score"].to_numpy(), CARD)
    return scores


def records(*rows: dict) -> pd.DataFrame:
    base = dict(category=None, rating="", reason="r", author="jane", valid_from=pd.NaT, recorded_at=pd.NaT)
    base |= {"ended_at": pd.NaT, "end_kind": None, "withdrawn_at": pd.NaT}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["valid_until"] = pd.to_datetime(frame["valid_until"])
    frame["valid_from"] = pd.to_datetime(frame["valid_from"])
    return frame


def test_a_category_override_replaces_the_category_and_the_score_follows_with_the_rule_beside_it() -> None:
    overrides = records(
        {"override_id": 1, "account_id": "A", "kind": "category", "category": "adoption", "value": 80.0,
         "rating": "80", "valid_until": UNTIL},
    )  # fmt: skip
    out = apply_overrides(scores_frame(), in_force(overrides, FIRST), CARD).scores.set_index("account_id")
    assert out.at["A", "health_adoption"] == 80.0 and out.at["A", "rule_adoption"] == 20.0
    assert out.at["A", "health_score"] == pytest.approx(0.6 * 80 + 0.4 * 50)
    assert out.at["A", "rule_health_score"] == pytest.approx(0.6 * 20 + 0.4 * 50)
    assert (out.at["A", "health_band"], out.at["A", "rule_health_band"]) == ("yellow", "red")
    assert out.at["A", "override_adoption"] == 80.0 and np.isnan(out.at["B", "override_adoption"])
    assert out.at["A", "override_by"] == "adoption: jane" and out.at["A", "override_until"] == f"adoption: {UNTIL}"
    assert out.at["B", "health_score"] == out.at["B", "rule_health_score"] and out.at["B", "override_ids"] == ""
    # after its expiry it applies no more
    later = apply_overrides(scores_frame(), in_force(overrides, AFTER), CARD).scores.set_index("account_id")
    assert later.at["A", "health_adoption"] == 20.0 and later.at["A", "override_ids"] == ""


def test_a_whole_account_override_sets_the_score_and_the_later_of_two_wins() -> None:
    overrides = records(
        {"override_id": 1, "account_id": "B", "kind": "account", "value": 30.0, "valid_until": "2025-06-01"},
        {"override_id": 2, "account_id": "B", "kind": "account", "value": 45.0, "valid_until": "2025-06-01"},
    )
    out = apply_overrides(scores_frame(), in_force(overrides, FIRST), CARD).scores.set_index("account_id")
    assert out.at["B", "health_score"] == 45.0 and out.at["B", "health_band"] == "red"
    assert out.at["B", "health_adoption"] == 90.0  # categories keep their rule values


def test_an_ended_whole_account_override_names_the_score_shown_when_a_category_override_stays() -> None:
    """The alert said "rule score now 42" while the table showed the score of the category override still
    in force, so the CSM read two different health scores for the same account and date."""
    overrides = records(
        {"override_id": 1, "account_id": "A", "kind": "account", "value": 30.0, "rating": "30",
         "valid_until": UNTIL},
        {"override_id": 2, "account_id": "A", "kind": "category", "category": "adoption", "value": 80.0,
         "rating": "80", "valid_until": "2025-12-31"},
    )  # fmt: skip
    previous = apply_overrides(scores_frame(), in_force(overrides, SECOND), CARD).scores
    current = apply_overrides(scores_frame(), in_force(overrides, AFTER), CARD).scores
    shown = current.set_index("account_id").at["A", "health_score"]
    assert shown == pytest.approx(0.6 * 80 + 0.4 * 50)
    ((rule, sentence),) = expiry_reasons(current, previous, overrides)[0]
    assert rule == "override_ended:health score" and rules_in_words(sentence) == {rule}
    assert sentence == (
        f"health score override expired (was 30, set by jane until {UNTIL}); health score now {shown:.0f} with "
        "the overrides still in force (rule score 32)"
    )


def test_a_category_named_like_the_sentiment_or_the_whole_score_ends_with_a_rule_of_its_own() -> None:
    """A category named 'sentiment' ended as 'override_ended:sentiment', the rule of the CSM sentiment rating:
    the alert of both ending on one date had one rule, so a webhook receiver took the two for one alert."""
    overrides = records(
        {"override_id": 1, "account_id": "A", "kind": "category", "category": "sentiment", "valid_until": UNTIL},
        {"override_id": 2, "account_id": "A", "kind": "sentiment", "rating": "red", "valid_until": UNTIL},
        {"override_id": 3, "account_id": "A", "kind": "category", "category": "health score", "valid_until": UNTIL},
        {"override_id": 4, "account_id": "A", "kind": "account", "valid_until": UNTIL},
        {"override_id": 5, "account_id": "A", "kind": "category", "category": "adoption", "valid_until": UNTIL},
    )  # fmt: skip
    previous = pd.DataFrame({"account_id": ["A"], "override_ids": ["1,2,3,4,5"]})
    current = pd.DataFrame({"account_id": ["A"], "override_ids": [""]})
    fired = expiry_reasons(current, previous, overrides)[0]
    assert [rule for rule, _ in fired] == [
        "override_ended:category:sentiment",
        "override_ended:sentiment",
        "override_ended:category:health score",
        "override_ended:health score",
        "override_ended:adoption",  # other names keep the rule ledgers hold
    ]
    # ledgers of earlier churn versions, in words: only 'health score' cannot tell the category from the account
    assert [rules_in_words(sentence) for _, sentence in fired] == [
        {"override_ended:category:sentiment"},
        {"override_ended:sentiment"},
        {"override_ended:health score"},
        {"override_ended:health score"},
        {"override_ended:adoption"},
    ]


def test_an_override_whose_replacement_was_withdrawn_is_not_said_to_be_replaced() -> None:
    """The run after a mistaken replacement was withdrawn said 'was replaced' while nothing replaced the
    override: the CSM could not tell that the account had no judgement in force, nor that the first one
    stays ended until recorded again."""
    overrides = records(
        {"override_id": 1, "account_id": "A", "kind": "category", "category": "adoption", "value": 80.0,
         "rating": "80", "valid_until": UNTIL, "ended_at": pd.Timestamp("2025-04-20 15:30"),
         "end_kind": "superseded", "superseded_by": 2},
        {"override_id": 2, "account_id": "A", "kind": "category", "category": "adoption", "value": 60.0,
         "rating": "60", "valid_until": UNTIL, "withdrawn_at": pd.Timestamp("2025-04-21 09:00")},
    )  # fmt: skip
    previous = apply_overrides(scores_frame(), in_force(overrides, FIRST), CARD).scores
    current = apply_overrides(scores_frame(), in_force(overrides, SECOND), CARD).scores
    ((rule, sentence),) = expiry_reasons(current, previous, overrides)[0]
    assert rule == "override_ended:adoption" and rules_in_words(sentence) == {rule}
    assert sentence == (
        f"adoption override was replaced by #2, since withdrawn (was 80, set by jane until {UNTIL}; record it "
        "again if it still applies); rule score now 20"
    )
    # a replacement kept (starting after this date) is one: the words stay
    kept = overrides.assign(withdrawn_at=pd.NaT, valid_from=[pd.NaT, pd.Timestamp("2025-05-02")])
    assert expiry_reasons(current, previous, kept)[0][0][1].startswith("adoption override was replaced (was 80")


def test_an_override_ended_early_still_applies_to_the_dates_before_its_end() -> None:
    """An ended override applied to no date at all: a re-run of a date before the end dropped the judgement
    that was in force then, and the run after it raised no "ended early" alert."""
    overrides = records(
        {"override_id": 1, "account_id": "A", "kind": "category", "category": "adoption", "value": 80.0,
         "rating": "80", "valid_until": UNTIL, "ended_at": pd.Timestamp("2025-04-20 15:30"), "end_kind": "ended",
         "end_author": "li", "end_reason": "renewed"},
    )  # fmt: skip
    assert in_force(overrides, FIRST)["override_id"].tolist() == [1]
    assert in_force(overrides, pd.Timestamp("2025-04-19"))["override_id"].tolist() == [1]
    assert in_force(overrides, pd.Timestamp("2025-04-20")).empty and in_force(overrides, SECOND).empty
    previous = apply_overrides(scores_frame(), in_force(overrides, FIRST), CARD).scores
    current = apply_overrides(scores_frame(), in_force(overrides, SECOND), CARD).scores
    assert previous.set_index("account_id").at["A", "health_adoption"] == 80.0
    ((rule, sentence),) = expiry_reasons(current, previous, overrides)[0]
    assert rule == "override_ended:adoption" and rules_in_words(sentence) == {rule}  # ledgers kept in words
    assert sentence == (
        f"adoption override was ended early by li (was 80, set by jane until {UNTIL}; ended because: renewed); "
        "rule score now 20"
    )
    late = overrides.assign(ended_at=pd.Timestamp("2025-06-02 09:00"))  # ended once its period was over
    assert in_force(late, SECOND)["override_id"].tolist() == [1]
    ((_, sentence),) = expiry_reasons(current, previous, late)[0]
    assert sentence.startswith(f"adoption override expired (was 80, set by jane until {UNTIL})")


def test_a_withdrawn_override_applies_to_no_date_and_raises_no_alert() -> None:
    """An override entered by mistake and then ended still applied to every date before its end (an open
    start reaches back to the beginning of time), and the next run alerted that the mistake "ended"."""
    overrides = records(
        {"override_id": 1, "account_id": "A", "kind": "category", "category": "adoption", "value": 80.0,
         "rating": "80", "valid_until": UNTIL, "withdrawn_at": pd.Timestamp("2025-04-20 15:30")},
    )  # fmt: skip
    assert all(in_force(overrides, day).empty for day in (BASELINE, FIRST, SECOND))
    applied = records({**overrides.iloc[0].to_dict(), "withdrawn_at": pd.NaT})  # as the FIRST run saw it
    previous = apply_overrides(scores_frame(), in_force(applied, FIRST), CARD).scores
    current = apply_overrides(scores_frame(), in_force(overrides, SECOND), CARD).scores
    assert previous.set_index("account_id").at["A", "override_ids"] == "1"
    assert expiry_reasons(current, previous, overrides) == [[], []]


# ------------------------------------------------------------------------------ the store
def settings_in(root: Path, **changes):
    return load_settings(None, {"workdir": str(root / "work"), **changes})


def record(settings, account: str = "A", category: str | None = "adoption", score: str = "80", **kw):
    params = dict(
        category=category, score=score, sentiment=None, reason="exec sponsor re-engaged", until="2025-06-01",
        start=None, by="jane", data=kw.pop("data", None), settings=settings, console=QUIET, today=TODAY,
    )  # fmt: skip
    params.update(kw)
    return run_override(account, **params)


def test_the_store_is_versioned_append_only_and_keeps_a_replaced_override(tiny_data_dir: Path, tmp_path: Path):
    settings = settings_in(tmp_path)
    first = record(settings, data=tiny_data_dir)[0]
    second = record(settings, data=tiny_data_dir, score="60", reason="renewal call went badly")[0]
    assert second.superseded == (first.override_id,)
    history = read_records(settings.workdir_path).set_index("override_id")
    assert list(history.index) == [first.override_id, second.override_id]
    assert history.at[first.override_id, "end_kind"] == "superseded"
    assert in_force(history.reset_index(), FIRST)["value"].tolist() == [60.0]
    # the replacement was the mistake: withdrawn, it applies nowhere; the CSM is told the first stays ended
    console = Console(record=True, width=400)
    run_withdraw(ids=[second.override_id], reason="wrong score", by="jane", settings=settings, console=console)
    assert f"Override #{first.override_id} that it replaced stays ended" in console.export_text()
    # before the day it was replaced the first applies again, as if the mistake had never been entered
    assert in_force(read_records(settings.workdir_path), FIRST)["override_id"].tolist() == [first.override_id]
    with pytest.raises(ChurnError, match=r"No live override with id 2 \(ended, replaced, withdrawn or never"):
        run_expire(ids=[2], account=None, category=None, whole_account=False, sentiment=False, reason="r",
                   by="li", settings=settings, console=QUIET)  # fmt: skip
    with sqlite3.connect(store_path(settings.workdir_path)) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        for statement in ("UPDATE overrides SET value = 1", "DELETE FROM override_ends"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                con.execute(statement)


def test_an_account_not_in_the_score_history_is_said_so_with_how_to_check_the_data(tmp_path: Path) -> None:
    """Without --data the ids are checked against the accounts scored so far: an account of the data that no run
    scored yet (it left before the first run) read "unknown account 'A00100'", as if the id were wrong."""
    settings = settings_in(tmp_path)
    scores = pd.DataFrame({"account_id": ["A"], "as_of": pd.Timestamp("2025-01-01"), "health_score": [70.0]})
    append_scores(settings.workdir_path / "history", scores)
    with pytest.raises(ChurnError) as caught:
        record(settings, account="B")
    message = " ".join(str(caught.value).split())
    assert "unknown account 'B' (not among the accounts scored so far in the score history of" in message
    assert "give --data DIR to check the data's accounts table)" in message
    assert not store_path(settings.workdir_path).exists()


def test_bad_overrides_write_nothing(tiny_data_dir: Path, tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with pytest.raises(ChurnError, match=r"(?s)nothing was written.*unknown account 'NOPE'"):
        record(settings, account="NOPE", data=tiny_data_dir)
    assert not store_path(settings.workdir_path).exists()
    csv = tmp_path / "bulk.csv"
    csv.write_text(
        "account_id,category,score,reason,until\n"
        "A,adoption,70,fine,2025-06-01\n"
        "B,support,170,typo,2025-06-01\n"
        "C,,40,,2025-01-01\n"
    )
    with pytest.raises(ChurnError) as caught:
        run_import(csv, by="jane", data=tiny_data_dir, settings=settings, console=QUIET, today=TODAY)
    message = str(caught.value)
    assert "2 of 3 overrides are invalid; nothing was written" in message
    assert "bulk.csv line 3: a score must lie between 0 and 100, got '170'" in message
    assert "bulk.csv line 4: a reason is required" in message and "in the past" in message
    csv.write_text(
        "account_id,category,score,reason,until\nA,adoption,70,fine,2025-06-01\nB,support,170,typo,2025-06-01\n"
    )
    with pytest.raises(ChurnError, match="1 of 2 overrides is invalid; nothing was written"):  # it said "are"
        run_import(csv, by="jane", data=tiny_data_dir, settings=settings, console=QUIET, today=TODAY)
    assert not store_path(settings.workdir_path).exists()


def test_a_bulk_import_records_every_row_and_the_later_row_wins(tiny_data_dir: Path, tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    csv = tmp_path / "bulk.csv"
    csv.write_text(
        "account_id,category,score,sentiment,reason,until,by\n"
        "A,adoption,70,,QBR went well,2025-06-01,\n"
        "A,adoption,75,,QBR follow-up,2025-06-01,li\n"
        "B,,,red,champion left,2025-06-01,\n"
    )
    recorded = run_import(csv, by="jane", data=tiny_data_dir, settings=settings, console=QUIET, today=TODAY)
    assert [r.override.author for r in recorded] == ["jane", "li", "jane"]
    live = in_force(read_records(settings.workdir_path), FIRST).set_index("account_id")
    assert live.at["A", "value"] == 75.0 and (live.at["B", "kind"], live.at["B", "value"]) == ("sentiment", 1.0)


def test_an_override_names_the_account_the_data_holds_trimmed_as_loading_trims(tmp_path: Path) -> None:
    """An id is trimmed of Unicode spaces only, as loading trims the data's ids: an override for 'C\\t' lands on
    the data's account 'C\\t' (it was once trimmed to 'C', an unknown account), one for ' B' (no-break space)
    on 'B', in a command and in a bulk import; list, history and expire find them by the same ids."""
    tables = {
        name: frame.assign(account_id=frame["account_id"].replace("C", "C\t")) for name, frame in tiny_tables().items()
    }
    data = write_tables(tmp_path / "data", tables)
    settings = settings_in(tmp_path)
    assert record(settings, account="C\t", data=data)[0].override.account_id == "C\t"
    csv = tmp_path / "bulk.csv"
    csv.write_text("account_id,score,reason,until\n\u00a0B ,55,champion left,2025-06-01\n", encoding="utf-8")
    assert [r.override.account_id for r in run_import(csv, by="jane", data=data, settings=settings, console=QUIET,
                                                       today=TODAY)] == ["B"]  # fmt: skip
    with pytest.raises(ChurnError, match=re.escape("unknown account 'A\\n'")):
        record(settings, account="A\n", data=data)
    live = in_force(read_records(settings.workdir_path), FIRST)
    assert sorted(live["account_id"]) == ["B", "C\t"]
    assert run_list(account="C\t", as_of=None, everything=True, settings=settings, console=QUIET)["value"].tolist() == [
        80.0
    ]
    assert len(run_history(account="\u3000B", settings=settings, console=QUIET)) == 1
    ended = run_expire(ids=[], account=" B", category=None, whole_account=False, sentiment=False, reason="renewed",
                       by="li", settings=settings, console=QUIET)  # fmt: skip
    assert ended["account_id"].tolist() == ["B"]


def test_an_override_expired_in_the_store_applies_until_the_day_before(tiny_data_dir: Path, tmp_path: Path) -> None:
    """The store records when an override was ended (UTC): a re-run of an earlier date keeps it, and
    `overrides list` on such a date shows it in force then."""
    settings = settings_in(tmp_path)
    record(settings, until="2999-01-01", data=tiny_data_dir)
    run_expire(ids=[1], account=None, category=None, whole_account=False, sentiment=False, reason="renewed",
               by="li", settings=settings, console=QUIET)  # fmt: skip
    stored = read_records(settings.workdir_path)
    day = stored.at[0, "ended_at"].normalize()
    assert in_force(stored, day - pd.Timedelta(days=1))["override_id"].tolist() == [1]
    assert in_force(stored, day).empty and in_force(stored, day + pd.Timedelta(days=30)).empty
    before = (day - pd.Timedelta(days=1)).date()
    assert run_list(account=None, as_of=before, everything=False, settings=settings, console=QUIET)[
        "override_id"
    ].tolist() == [1]


def test_a_corrupt_or_foreign_or_newer_store_is_refused(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    path = store_path(settings.workdir_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ChurnError, match="corrupt or not a SQLite file"):
        read_records(settings.workdir_path)
    path.unlink()
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE mine (x)")
    with pytest.raises(ChurnError, match="not a churn override store"):
        read_records(settings.workdir_path)
    path.unlink()
    with sqlite3.connect(path) as con:
        con.execute(f"PRAGMA application_id = {override_store.APPLICATION_ID}")
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ChurnError, match="newer than this churn knows"):
        read_records(settings.workdir_path)


def test_a_store_written_by_the_first_schema_is_migrated_in_place_and_keeps_its_records(tmp_path: Path) -> None:
    """Version 1 stores (churn before withdrawals) open, keep every override and end, and can withdraw."""
    settings = settings_in(tmp_path)
    path = store_path(settings.workdir_path)
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path, isolation_level=None) as con:  # what the first schema's churn wrote
        for statement in override_store._statements(MIGRATIONS[1]):
            con.execute(statement)
        con.execute("PRAGMA user_version = 1")
        con.execute(f"PRAGMA application_id = {override_store.APPLICATION_ID}")
        con.execute(
            """INSERT INTO overrides (account_id, kind, category, value, rating, reason, valid_from, valid_until,
                   author, recorded_at, source) VALUES
               ('A', 'category', 'adoption', 80, '80', 'sponsor back', NULL, '2025-06-01', 'jane',
                '2025-03-15T09:00:00', 'command line'),
               ('B', 'account', NULL, 30, '30', 'typo', NULL, '2025-06-01', 'jane', '2025-03-15T09:01:00',
                'command line')"""
        )
        con.execute(
            """INSERT INTO override_ends (override_id, kind, reason, author, recorded_at)
               VALUES (2, 'ended', 'wrong account', 'jane', '2025-04-20T10:00:00')"""
        )
    stored = read_records(settings.workdir_path)
    assert stored["override_id"].tolist() == [1, 2] and stored["end_reason"].tolist()[1] == "wrong account"
    assert stored["withdrawn_at"].isna().all()
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    run_withdraw(ids=[2], reason="typed on the wrong account", by="jane", settings=settings, console=QUIET)
    stored = read_records(settings.workdir_path).set_index("override_id")
    assert stored.at[2, "withdrawn_by"] == "jane" and stored.at[2, "end_reason"] == "wrong account"
    assert in_force(stored.reset_index(), FIRST)["override_id"].tolist() == [1]  # ended 04-20, yet withdrawn
    with sqlite3.connect(path) as con:
        for statement in ("UPDATE override_withdrawals SET reason = 'x'", "DELETE FROM override_withdrawals"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                con.execute(statement)


def test_a_locked_store_is_a_clear_error(tiny_data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    settings = settings_in(tmp_path)
    record(settings, data=tiny_data_dir)
    monkeypatch.setattr(override_store, "LOCK_TIMEOUT_SECONDS", 0.2)
    holder = sqlite3.connect(store_path(settings.workdir_path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ChurnError, match="locked by another process"):
            read_records(settings.workdir_path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# ------------------------------------------------------------------------------ commands
def test_the_override_commands(tiny_data_dir: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\n")
    base = ["--config", str(config)]
    code, text = run_cli(["override", "A", "--score", "80", "--reason", "r", "--until", "2999-01-01", *base], capsys)
    assert code == 1 and "No override store" not in text and "--data DIR" in text  # no way to check the id
    code, text = run_cli(
        ["override", "A", "--category", "adoption", "--score", "180", "--reason", "r", "--until", "2999-01-01",
         "--data", str(tiny_data_dir), *base], capsys,
    )  # fmt: skip
    assert code == 1 and "a score must lie between 0 and 100" in text and "nothing was written" in text
    code, text = run_cli(
        ["override", "A", "--category", "adoption", "--score", "80", "--reason", "sponsor back", "--until",
         "2999-01-01", "--by", "jane", "--data", str(tiny_data_dir), *base], capsys,
    )  # fmt: skip
    assert code == 0 and "Recorded override #1: account A, adoption = 80 (by jane, until 2999-01-01)" in text
    code, text = run_cli(["overrides", "list", *base], capsys)
    assert code == 0 and "in force" in text and "sponsor back" in text
    code, text = run_cli(["overrides", "expire", "A", "--by", "li", *base], capsys)
    assert code == 1 and "A reason is required" in text
    code, text = run_cli(["overrides", "expire", "A", "--reason", "renewed", "--by", "li", *base], capsys)
    assert code == 0 and "Ended override #1" in text
    code, text = run_cli(["overrides", "history", "A", *base], capsys)
    assert code == 0 and "ended" in text and "renewed" in text
    code, text = run_cli(["overrides", "list", *base], capsys)
    assert code == 0 and "(0)" in text
    # an override entered by mistake is withdrawn (ended or not), and the record stays listed
    code, text = run_cli(["overrides", "withdraw", "1", "--by", "li", *base], capsys)
    assert code == 1 and "A reason is required to withdraw" in text
    code, text = run_cli(["overrides", "withdraw", "1", "7", "--reason", "wrong account", *base], capsys)
    assert code == 1 and "No override with id 7" in text and "nothing was withdrawn" in text
    code, text = run_cli(["overrides", "withdraw", "1", "--reason", "wrong account", "--by", "li", *base], capsys)
    assert code == 0 and "Withdrew override #1 (A, adoption = 80): it applies to no scoring date" in text
    code, text = run_cli(["overrides", "withdraw", "1", "--reason", "again", *base], capsys)
    assert code == 1 and "Already withdrawn: #1 on " in text and "by li" in text
    for command in (["overrides", "history", "A"], ["overrides", "list", "--all"]):
        code, text = run_cli([*command, *base], capsys)
        assert code == 0 and "#1 A: adoption = 80" in text
        assert re.search(r"\[withdrawn \d{4}-\d\d-\d\d by li, applies to no date: wrong account\]: sponsor back", text)
    # a workdir that cannot be created is named (it was an internal FileExistsError)
    (tmp_path / "a-file").write_text("")
    unusable = tmp_path / "unusable.yaml"
    unusable.write_text(f"workdir: {tmp_path / 'a-file' / 'work'}\n")
    args = ["override", "A", "--score", "80", "--reason", "r", "--until", "2999-01-01", "--data", str(tiny_data_dir)]
    code, text = run_cli([*args, "--config", str(unusable)], capsys)
    assert code == 1 and f"workdir: the working folder {tmp_path / 'a-file' / 'work'} cannot be created" in text
    # what is missing is said as missing (these used to say "not both" when neither was given)
    code, text = run_cli(["override", "A", "--reason", "r", "--until", "2999-01-01", *base], capsys)
    assert code == 1 and "--score S (0-100) or --sentiment R (1-5 or red/yellow/green): neither was given" in text
    code, text = run_cli(["override", "A", "--score", "9", "--sentiment", "red", "--reason", "r", *base], capsys)
    assert code == 1 and "neither" not in text and "both were given" in text
    code, text = run_cli(["overrides", "expire", "--reason", "renewed", *base], capsys)
    assert code == 1 and "Give override ids (--id N, repeatable) or an ACCOUNT: neither was given" in text
    code, text = run_cli(["overrides", "expire", "A", "--id", "1", "--reason", "renewed", *base], capsys)
    assert code == 1 and "ACCOUNT: both were given" in text


# ------------------------------------------------------------------------------ scoring
def scored_on_every_date(dataset, settings, model_uri: str) -> set[str]:
    ids = None
    for day in (BASELINE, FIRST, SECOND, AFTER):
        run_ids = set(build_feature_table(dataset, settings, as_of=day.date())["account_id"])
        ids = run_ids if ids is None else ids & run_ids
    return ids or set()


def test_a_csm_walks_through_override_scoring_keeping_and_expiry(book) -> None:
    _, data, dataset, _ = book
    settings, result = book_settings(book, "walk")
    first = score_date(dataset, BASELINE.date(), settings, result.model_uri, history=True).scores
    candidates = first[first["account_id"].isin(scored_on_every_date(dataset, settings, result.model_uri))]
    account = str(candidates.sort_values("health_adoption")["account_id"].iloc[0])  # the rule rates it lowest
    rule_before = float(candidates.set_index("account_id").at[account, "health_adoption"])
    assert rule_before < 60

    # 1. the CSM records a judgement: adoption is really fine (the new team uses another login)
    record(settings, account=account, score="90", reason="new team logs in through SSO", until=UNTIL, data=data)

    # 2. the next run shows the override, the rule score beside it
    run = score_date(dataset, FIRST.date(), settings, result.model_uri, history=True)
    row = run.scores.set_index("account_id").loc[account]
    assert row["health_adoption"] == 90.0 and row["override_adoption"] == 90.0
    assert row["rule_adoption"] != 90.0 and not np.isnan(row["rule_adoption"])
    assert row["health_score"] > row["rule_health_score"]
    assert row["override_by"] == "adoption: jane" and "SSO" in row["override_reason"]
    assert row["override_until"] == f"adoption: {UNTIL}"
    assert "CSM overrides applied to 1 account;" in " ".join(run.notes)
    console = Console(record=True, width=400)
    run_explain(account, data, FIRST.date(), result.model_uri, None, settings, console)
    said = console.export_text()
    assert (
        f"1 CSM override in force: adoption set to 90 by jane until {UNTIL} (reason: new team logs in through SSO); "
        f"the rules alone score the account {shown_score(row['rule_health_score']):.0f}." in said
    )
    assert "Context: " in said and "renewal" in said

    # 3. another rule run keeps it: the rule never overwrites the CSM's score
    run = score_date(dataset, SECOND.date(), settings, result.model_uri, history=True)
    row = run.scores.set_index("account_id").loc[account]
    assert row["health_adoption"] == 90.0 and row["override_ids"] != ""
    assert account not in set(run.alerts["account_id"]) or "override" not in str(
        run.alerts.set_index("account_id").at[account, "reasons"]
    )
    stored = pd.read_parquet(partition_path(settings.workdir_path / "history", SECOND))
    assert stored.set_index("account_id").at[account, "override_adoption"] == 90.0

    # 4. past its expiry the rule score is back, and the CSM is told
    run = score_date(dataset, AFTER.date(), settings, result.model_uri, history=True)
    row = run.scores.set_index("account_id").loc[account]
    assert np.isnan(row["override_adoption"]) and row["override_ids"] == ""
    assert row["health_adoption"] == row["rule_adoption"]
    reasons = run.alerts.set_index("account_id").at[account, "reasons"]
    rule_now = f"rule score now {row['rule_adoption']:.0f}"
    assert f"adoption override expired (was 90, set by jane until {UNTIL}); {rule_now}" in reasons
    assert len(read_history(settings.workdir_path / "history")["as_of"].unique()) == 4


def test_a_withdrawn_mistake_leaves_every_date_while_an_ended_override_keeps_the_dates_before(book) -> None:
    """A mistaken override (no start: from the beginning of time) that was ended still applied when an
    earlier date was re-run; withdrawing it takes it off every date, raises no "ended" alert, keeps the record."""
    _, data, dataset, _ = book
    settings, result = book_settings(book, "withdraw")
    first = score_date(dataset, BASELINE.date(), settings, result.model_uri, history=True).scores
    candidates = first[first["account_id"].isin(scored_on_every_date(dataset, settings, result.model_uri))]
    mistaken, kept = candidates.sort_values("health_adoption")["account_id"].astype(str).iloc[:2]
    record(settings, account=mistaken, score="95", reason="meant for another account", until=UNTIL, data=data)
    record(settings, account=kept, score="90", reason="new team logs in through SSO", until=UNTIL, data=data)
    rows = score_date(dataset, FIRST.date(), settings, result.model_uri, history=True).scores.set_index("account_id")
    assert rows.at[mistaken, "override_adoption"] == 95.0 and rows.at[kept, "override_adoption"] == 90.0
    for account in (mistaken, kept):  # the CSM ends both; the mistake is then withdrawn
        run_expire(ids=[], account=account, category=None, whole_account=False, sentiment=False, reason="done",
                   by="jane", settings=settings, console=QUIET)  # fmt: skip
    run_withdraw(ids=[1], reason="typed on the wrong account", by="jane", settings=settings, console=QUIET)

    run = score_date(dataset, SECOND.date(), settings, result.model_uri, history=True)
    row = run.scores.set_index("account_id").loc[mistaken]
    assert row["override_ids"] == "" and row["health_adoption"] == row["rule_adoption"]
    alerted = run.alerts.set_index("account_id")["reasons"].astype(str)
    assert "override" not in alerted.get(mistaken, "")  # a mistake taken back did not "end"
    again = score_date(dataset, FIRST.date(), settings, result.model_uri, history=True).scores.set_index("account_id")
    assert again.at[mistaken, "override_ids"] == "" and np.isnan(again.at[mistaken, "override_adoption"])
    assert again.at[mistaken, "health_adoption"] == again.at[mistaken, "rule_adoption"] != 95.0
    assert again.at[mistaken, "health_score"] == again.at[mistaken, "rule_health_score"]
    # the ended (not withdrawn) override keeps today's documented behaviour: re-runs of earlier dates keep it
    assert again.at[kept, "override_adoption"] == 90.0 and again.at[kept, "override_ids"] == "2"
    console = Console(record=True, width=400)
    run_explain(mistaken, data, FIRST.date(), result.model_uri, None, settings, console)
    assert "CSM override" not in console.export_text()
    audit = run_history(account=mistaken, settings=settings, console=QUIET).set_index("override_id")
    assert audit.at[1, "reason"] == "meant for another account" and audit.at[1, "withdrawn_by"] == "jane"
    assert audit.at[1, "withdraw_reason"] == "typed on the wrong account" and audit.at[1, "end_reason"] == "done"


def test_a_sentiment_rating_is_a_metric_the_scorecard_weighs(book, tmp_path: Path) -> None:
    _, data, dataset, _ = book
    settings, result = book_settings(book, "sentiment")
    card = tmp_path / "card.yaml"
    raw = yaml.safe_load(Path(settings.healthscore_path()).read_text())
    raw["default"]["categories"]["relationship"] = {
        "weight": 20,
        "metrics": {"csm_sentiment": {"scheme": "linear", "bad": 1, "good": 5}},
    }
    card.write_text(yaml.safe_dump(raw))
    settings = settings.model_copy(update={"healthscore": str(card)})
    accounts = build_feature_table(dataset, settings, as_of=FIRST.date())["account_id"].astype(str).tolist()
    record(settings, account=accounts[0], category=None, score=None, sentiment="red", reason="angry", data=data)
    record(settings, account=accounts[1], category=None, score=None, sentiment="5", reason="happy", data=data)
    scores = score_date(dataset, FIRST.date(), settings, result.model_uri, history=False).scores
    scores = scores.set_index("account_id")
    assert scores.at[accounts[0], "health_relationship"] == 0.0
    assert scores.at[accounts[1], "health_relationship"] == 100.0
    assert scores.at[accounts[0], "override_csm_sentiment"] == 1.0
    assert scores["health_relationship"].notna().sum() == 2  # no rating, no relationship score


def test_a_broken_store_stops_the_scoring_run_before_it_lands(book, tmp_path: Path, capsys) -> None:
    data = book[1]
    settings, result = book_settings(book, "broken")
    store_path(settings.workdir_path).parent.mkdir(parents=True, exist_ok=True)
    store_path(settings.workdir_path).write_bytes(b"garbage" * 200)
    config = config_file(settings, tmp_path / "c.yaml")
    out = tmp_path / "scores.parquet"
    code, text = run_cli(
        ["score", "--data", str(data), "--as-of", "2025-04-01", "--out", str(out), "--model-uri", result.model_uri,
         "--config", str(config)], capsys,
    )  # fmt: skip
    assert code == 1 and "Override store" in text and "corrupt" in text
    assert not out.exists() and not (settings.workdir_path / "history").exists()


def test_today_is_the_utc_date_whatever_the_machine_zone(tmp_path: Path, monkeypatch, capsys) -> None:
    """The contract's clock is UTC: a machine in a zone whose date differs from UTC's (half of every day
    west or east of it) must not score, explain or list overrides one day off."""
    now = datetime.now(UTC)
    zone = "Etc/GMT-14" if now.hour >= 10 else "Etc/GMT+12"  # UTC+14 / UTC-12: another date than UTC's now
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        local = date.today()
        if local == datetime.now(UTC).date():  # the clock crossed an hour boundary in between
            pytest.skip("the machine's date caught up with UTC's while the test ran")
        config = tmp_path / "c.yaml"
        config.write_text(f"workdir: {tmp_path / 'work'}\n")
        code, text = run_cli(["overrides", "list", "--config", str(config)], capsys)
        assert code == 0 and f"in force on {datetime.now(UTC).date()}" in text, text
        assert utc_today() == datetime.now(UTC).date() != local
    finally:
        monkeypatch.undo()
        time.tzset()
