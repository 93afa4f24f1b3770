"""The one "did you mean" rule of every message naming something unknown: a look-alike first, then a near miss."""

from __future__ import annotations

import unicodedata

from features.spelling import closest, did_you_mean

FEATURES = ["tenure_days", "logins_per_seat_30d", "logins_per_seat_7d", "days_overdue"]


def test_a_name_in_another_case_spacing_or_unicode_form_is_its_look_alike() -> None:
    assert closest("Tenure_Days", FEATURES) == "tenure_days"
    assert closest("ñandú  sa", ["Acme", "Ñandú SA"], cutoff=None) == "Ñandú SA"
    assert closest(unicodedata.normalize("NFD", "Café"), ["café"], cutoff=None) == "café"
    # the first look-alike in the candidates' order, though a later one is the exact spelling
    assert closest("ACME", ["Acme", "ACME "]) == "Acme"


def test_a_look_alike_beats_a_nearer_misspelling() -> None:
    # 'Churn' is a case away; 'churm' is as near by difflib's ratio of the raw text (and wins the tie): another column
    assert closest("churn", ["churm", "Churn"]) == "Churn"


def test_a_misspelling_gets_the_nearest_within_the_cutoff() -> None:
    assert closest("tenure_dys", FEATURES) == "tenure_days"
    assert closest("loginz_per_seat_30d", FEATURES) == "logins_per_seat_30d"
    assert closest("SignupMnth", ["customerID", "SignupMonth"], cutoff=0.8) == "SignupMonth"
    assert closest("ENTERPRIZE", ["enterprise", "smb"], cutoff=0.8) == "enterprise"  # compared without case
    assert closest("tenure", FEATURES, cutoff=0.85) is None  # a stricter place offers nothing so far off


def test_nothing_close_is_no_suggestion() -> None:
    assert closest("revenue", FEATURES) is None
    assert closest("anything", []) is None
    assert did_you_mean("revenue", FEATURES) == ""
    assert did_you_mean("A-1001", ["A-1002"], cutoff=None) == ""  # a neighbouring id is another account


def test_the_suggestion_reads_after_a_name_or_as_the_end_of_a_message() -> None:
    assert did_you_mean("tenure_dys", FEATURES) == " (did you mean 'tenure_days'?)"
    assert did_you_mean("tenure_dys", FEATURES, clause=True) == "; did you mean 'tenure_days'?"
    assert did_you_mean("acme corp", ["Acme\tCorp"], cutoff=None) == " (did you mean 'Acme\\tCorp'?)"  # seen
