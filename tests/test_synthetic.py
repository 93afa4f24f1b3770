"""The synthetic history generator: contract, determinism, plausibility and the truth behind it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from features.contract import EVENT_TABLES, PRIORITIES, SQL_TYPES, TABLES, TRAINING_KINDS
from features.errors import ChurnError, ConfigError
from pipeline.synthetic import generate
from pipeline.synthetic.generate import PartWriter
from pipeline.synthetic.knobs import GRACE_DAYS, WORKFLOW_STEPS
from tests.helpers import file_tree

START, YEARS, ACCOUNTS = "2023-01-01", 2.0, 400
DATA_END = pd.Timestamp("2025-01-01")
ARROW_BY_SQL = {
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("synthetic") / "data"
    calls: list[tuple[str, int, int]] = []
    summary = generate(out, ACCOUNTS, seed=7, start=START, years=YEARS, progress=lambda *a: calls.append(a))
    return out, summary, calls


def read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / name if (out / name).is_dir() else out / f"{name}.parquet")


def test_every_table_has_exactly_the_contract_columns_and_types(generated) -> None:
    out, _, _ = generated
    for name, contract in TABLES.items():
        path = out / name if name in EVENT_TABLES else out / f"{name}.parquet"
        schema = pq.read_schema(next(path.glob("*.parquet")) if path.is_dir() else path)
        expected = [(c.name, ARROW_BY_SQL[SQL_TYPES[c.type]]) for c in contract.columns]
        assert [(f.name, f.type) for f in schema] == expected, name
        frame = read(out, name)
        assert len(frame) > 0, name
        assert frame[contract.required_columns].notna().all().all(), f"{name}: nulls in required columns"
    assert read(out, "accounts").account_id.is_unique


def test_values_stay_inside_their_vocabularies(generated) -> None:
    out, _, _ = generated
    tickets, trainings, usage = read(out, "support_tickets"), read(out, "trainings"), read(out, "usage_events")
    assert set(tickets.priority) == set(PRIORITIES)
    assert set(tickets.category) == {"how-to", "bug", "billing", "feature-request"}
    assert tickets.csat.dropna().isin([1, 2, 3, 4, 5]).all() and tickets.csat.isna().any()
    assert set(trainings.kind) == set(TRAINING_KINDS)
    assert (usage.quantity >= 1).all()
    in_workflow = usage[usage.workflow_id.notna()]
    assert in_workflow.step.between(1, WORKFLOW_STEPS).all() and usage[usage.workflow_id.isna()].step.isna().all()
    assert in_workflow.groupby("workflow_id").account_id.nunique().eq(1).all()
    ordered = in_workflow.sort_values(["workflow_id", "ts"])
    assert (ordered.groupby("workflow_id").step.diff().dropna() > 0).all(), "steps run forward in time"
    accounts = read(out, "accounts")
    assert set(accounts.segment) == {"smb", "mid", "enterprise"}
    assert accounts.loc[accounts.regulated, "industry"].isin(["finance", "healthcare", "government"]).all()


def test_same_seed_gives_byte_identical_files_and_other_seeds_differ(tmp_path: Path) -> None:
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}

    first, second, other = (
        files(generate(tmp_path / name, 60, seed=seed, start=START, years=1.0).out_dir)
        for name, seed in (("a", 3), ("b", 3), ("c", 4))
    )
    assert first == second
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in ("accounts.parquet", "logins/part-00000.parquet"))


def test_churn_rates_and_event_volumes_are_plausible(generated) -> None:
    out, summary, _ = generated
    assert 0.08 <= summary.churn_rates["annual"] <= 0.32
    assert 0.01 <= summary.churn_rates["monthly"] <= 0.06
    accounts = read(out, "accounts")
    subscriptions = read(out, "subscriptions")
    assert (subscriptions.end_date > subscriptions.start_date).all()
    seats = subscriptions.groupby(
        accounts.set_index("account_id").segment.reindex(subscriptions.account_id).values
    ).seats
    assert seats.median()["smb"] < seats.median()["mid"] < seats.median()["enterprise"]
    per_seat = subscriptions.arr / subscriptions.seats
    assert per_seat.between(100, 1500).all()
    account_years = ACCOUNTS * YEARS
    per_account_year = {name: summary.rows[name] / account_years for name in EVENT_TABLES}
    assert 300 <= per_account_year["logins"] <= 3000
    assert 200 <= per_account_year["usage_events"] <= 3000
    assert 1 <= per_account_year["support_tickets"] <= 20
    assert 1 <= per_account_year["trainings"] <= 15
    assert summary.rows["accounts"] == ACCOUNTS and summary.rows["subscriptions"] == len(subscriptions)


def test_no_event_before_landing_after_churn_or_after_the_data_end(generated) -> None:
    out, _, _ = generated
    accounts = read(out, "accounts").set_index("account_id")
    truth = read(out, "_truth/terms")
    last = truth.groupby("account_id").tail(1).set_index("account_id")
    silent_from = last.end_date.where(last.churned.fillna(False).astype(bool), DATA_END)
    for name in EVENT_TABLES:
        time_column = TABLES[name].time_column
        events = read(out, name)
        ts = events[time_column]
        assert ts.min() >= pd.Timestamp(START), name
        assert (ts.values >= accounts.created_at.reindex(events.account_id).values).all(), name
        assert (ts.values < silent_from.reindex(events.account_id).values).all(), name
    tickets = read(out, "support_tickets")
    closed = tickets.dropna(subset=["closed_at"])
    assert (closed.closed_at > closed.opened_at).all() and (closed.closed_at < DATA_END).all()
    assert tickets.closed_at.isna().any(), "tickets still open at the data end stay open"


def test_ticket_and_workflow_ids_are_unique(generated) -> None:
    out, summary, _ = generated
    tickets = read(out, "support_tickets")
    assert tickets.ticket_id.is_unique and len(tickets) == summary.rows["support_tickets"]
    usage = read(out, "usage_events")
    assert not usage.duplicated(["workflow_id", "step"]).loc[usage.workflow_id.notna()].any()


def test_truth_matches_the_subscriptions_and_the_renewal_rule(generated) -> None:
    out, _, _ = generated
    subscriptions, truth = read(out, "subscriptions"), read(out, "_truth/terms")
    keys = ["account_id", "start_date", "end_date"]
    pd.testing.assert_frame_equal(subscriptions[keys], truth[keys])
    assert (truth.groupby("account_id").term_index.diff().dropna() == 1).all()

    decided = truth.churned.notna()
    assert (truth.p_churn.notna() == decided).all()
    assert (truth.loc[~decided, "end_date"] >= DATA_END).all() and (truth.loc[decided, "end_date"] < DATA_END).all()
    assert (truth.censored == (truth.end_date + pd.Timedelta(days=GRACE_DAYS) >= DATA_END)).all()

    main = truth[truth.term_kind != "addon"]
    later_start = main.groupby("account_id").start_date.shift(-1)
    churned = main.churned.eq(True)
    assert later_start[churned].isna().all(), "a churned term is the account's last"
    renewed = main.churned.eq(False) & later_start.notna()
    gap = later_start[renewed] - main.end_date[renewed]
    assert gap.between(pd.Timedelta(0), pd.Timedelta(days=GRACE_DAYS)).all()
    addons = truth[truth.term_kind == "addon"]
    assert len(addons) > 0
    co_termed = addons.set_index(["account_id", "end_date"]).index.isin(
        main.set_index(["account_id", "end_date"]).index
    )
    assert co_termed.all(), "add-ons end with the main term they were bought in"


def test_regulated_healthy_accounts_use_compliance_audit_most(generated) -> None:
    out, _, _ = generated
    usage = read(out, "usage_events")
    share = usage.feature.eq("compliance_audit").groupby(usage.account_id).mean()
    health = read(out, "_truth/health").groupby("account_id").health.mean()
    accounts = read(out, "accounts").set_index("account_id").join(share.rename("share"), how="inner")
    accounts["health"] = health
    regulated = accounts[accounts.regulated]
    healthy = regulated.health > regulated.health.median()
    assert regulated[healthy].share.mean() > 1.5 * regulated[~healthy].share.mean()
    assert regulated[~healthy].share.mean() > 3 * accounts[~accounts.regulated].share.mean()


def test_events_read_off_latent_health(generated) -> None:
    out, _, _ = generated
    health = read(out, "_truth/health")
    logins = read(out, "logins")
    grid_start = health.week_start.min()
    logins["week_start"] = grid_start + pd.to_timedelta((logins.ts - grid_start).dt.days // 7 * 7, "D")
    weekly = logins.groupby(["account_id", "week_start"]).size().rename("logins")
    seats = read(out, "subscriptions").groupby("account_id").seats.median()
    cells = health.set_index(["account_id", "week_start"]).join(weekly).fillna({"logins": 0}).reset_index()
    cells["per_seat"] = cells.logins / seats.reindex(cells.account_id).values
    assert cells[["health", "per_seat"]].corr("spearman").iloc[0, 1] > 0.3

    tickets = read(out, "support_tickets")
    by_account = health.groupby("account_id")[["health", "friction"]].mean()
    bug_share = tickets.category.eq("bug").groupby(tickets.account_id).mean()
    assert by_account.friction.reindex(bug_share.index).corr(bug_share, method="spearman") > 0.2
    csat = tickets.csat.groupby(tickets.account_id).mean().dropna()
    assert by_account.health.reindex(csat.index).corr(csat, method="spearman") > 0.2


def test_optional_sources_read_off_the_same_health(generated) -> None:
    """Overdue and failed payments, bad meetings and low NPS grow more likely as health falls."""
    out, _, _ = generated
    health = read(out, "_truth/health").groupby("account_id").health.mean()
    invoices = read(out, "invoices")
    assert set(invoices.status) == {"paid", "failed", "void", "open"}
    assert (invoices.due_at > invoices.issued_at).all() and (invoices.paid_at.dropna() < DATA_END).all()
    paid = invoices.dropna(subset=["paid_at"])
    assert (paid.status == "paid").all() and invoices.loc[invoices.paid_at.isna(), "status"].ne("paid").all()
    late = (~(invoices.paid_at.dt.floor("D") <= invoices.due_at)).groupby(invoices.account_id).mean()
    assert health.reindex(late.index).corr(late, method="spearman") < -0.2
    assert (invoices.discount > 0).any() and invoices.invoice_id.is_unique

    touchpoints = read(out, "touchpoints")
    assert set(touchpoints.kind) == {"qbr", "executive", "csm_call", "email", "other"}
    assert set(touchpoints.sentiment.dropna()) == {-1.0, 0.0, 1.0}
    sentiment = touchpoints.sentiment.groupby(touchpoints.account_id).mean().dropna()
    assert health.reindex(sentiment.index).corr(sentiment, method="spearman") > 0.3
    digital = read(out, "accounts").query("csm == 'Digital CS'").account_id
    assert touchpoints[touchpoints.account_id.isin(digital)].kind.isin(["email", "other"]).all()

    surveys = read(out, "surveys")
    nps, csat = surveys[surveys.kind == "nps"], surveys[surveys.kind == "csat"]
    assert nps.score.between(0, 10).all() and csat.score.between(1, 5).all() and len(csat) > 0
    mean_nps = nps.score.groupby(nps.account_id).mean()
    assert health.reindex(mean_nps.index).corr(mean_nps, method="spearman") > 0.3


def test_optional_tables_can_be_left_out_and_leave_every_other_file_as_it_was(tmp_path: Path) -> None:
    def digests(out: Path) -> dict[str, str]:
        names = ["accounts", "subscriptions", *EVENT_TABLES, "_truth/terms", "_truth/health"]
        return {name: _content_digest(read(out, name)) for name in names if (out / name).exists() or
                (out / f"{name}.parquet").exists()}  # fmt: skip

    full = generate(tmp_path / "full", 60, seed=2, start=START, years=1.0)
    core = generate(tmp_path / "core", 60, seed=2, start=START, years=1.0, optional_tables=False)
    assert not any((core.out_dir / name).exists() for name in ("invoices", "touchpoints", "surveys"))
    assert set(full.rows) - set(core.rows) == {"invoices", "touchpoints", "surveys"}
    without = digests(core.out_dir)
    assert {name: digests(full.out_dir)[name] for name in without} == without


def test_usage_intensity_scales_usage_events_and_its_default_changes_no_byte(tmp_path: Path) -> None:
    default = generate(tmp_path / "default", 60, seed=3, start=START, years=1.0)
    explicit = generate(tmp_path / "explicit", 60, seed=3, start=START, years=1.0, usage_intensity=1.0)
    dense = generate(tmp_path / "dense", 60, seed=3, start=START, years=1.0, usage_intensity=4.0)
    assert file_tree(default.out_dir) == file_tree(explicit.out_dir), "the default knob must leave every file as it was"

    # Usage events (workflow steps are not scaled) grow about 4x; accounts and contracts stay the same.
    assert 3.0 < dense.rows["usage_events"] / default.rows["usage_events"] < 4.2
    default_files, dense_files = file_tree(default.out_dir), file_tree(dense.out_dir)
    for name in ("accounts.parquet", "subscriptions.parquet", "_truth/terms.parquet"):
        assert dense_files[name] == default_files[name]
    world = json.loads((dense.out_dir / "_truth" / "world.json").read_text())
    assert (
        world["usage_per_user"]
        == 4.0 * json.loads((default.out_dir / "_truth" / "world.json").read_text())["usage_per_user"]
    )


def test_new_accounts_get_onboarding_webinars(generated) -> None:
    out, _, _ = generated
    accounts = read(out, "accounts").set_index("account_id")
    trainings = read(out, "trainings")
    age = (trainings.ts - accounts.created_at.reindex(trainings.account_id).values).dt.days
    new = accounts.created_at.reindex(trainings.account_id).values >= np.datetime64(START)
    early, later = trainings[new & (age < 60)], trainings[new & (age >= 120)]
    assert early.kind.eq("webinar").mean() > later.kind.eq("webinar").mean() + 0.2


def test_true_churn_probability_ranks_outcomes(generated) -> None:
    out, _, _ = generated
    truth = read(out, "_truth/terms")
    observed = truth[truth.churned.notna() & ~truth.censored & (truth.term_kind != "addon")]
    assert observed.churned.sum() >= 50
    assert roc_auc_score(observed.churned.astype(bool), observed.p_churn) > 0.75


def test_progress_is_reported_per_block_up_to_all_accounts(generated) -> None:
    _, _, calls = generated
    done = [d for _, d, _ in calls]
    assert len(calls) >= 2 and done == sorted(done) and calls[-1][1:] == (ACCOUNTS, ACCOUNTS)


def test_part_writer_rolls_to_new_parts_and_keeps_empty_tables_readable(tmp_path: Path) -> None:
    schema = pa.schema([("x", pa.int64())])
    writer = PartWriter(tmp_path / "t", schema, rows_per_part=3)
    for start in (0, 2, 4, 6):
        writer.write(pa.table({"x": pa.array(range(start, start + 2), pa.int64())}))
    writer.close()
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert sorted(pd.read_parquet(tmp_path / "t").x) == list(range(8))
    empty = PartWriter(tmp_path / "e", schema)
    empty.close()
    assert pq.read_table(tmp_path / "e").schema.equals(schema) and empty.rows == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_accounts": 0}, "accounts must be a positive whole number"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
        ({"start": "yesterday"}, "start 'yesterday' is not an ISO date"),
        ({"years": 0}, "years must be between"),
        ({"usage_intensity": 0.0}, "usage intensity must be a positive number"),
        ({"usage_intensity": float("nan")}, "usage intensity must be a positive number"),
    ],
)
def test_bad_arguments_are_refused_with_a_precise_message(tmp_path: Path, kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        generate(tmp_path / "out", **{"n_accounts": 10, **kwargs})
    assert not (tmp_path / "out").exists()


def test_refuses_to_replace_a_folder_that_is_not_generated_data(tmp_path: Path) -> None:
    precious = tmp_path / "work"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ChurnError, match="churn did not write"):
        generate(precious, 10)
    assert (precious / "notes.txt").read_text() == "keep me"

    regenerated = generate(tmp_path / "gen", 20, seed=1, years=1.0)
    again = generate(tmp_path / "gen", 30, seed=2, years=1.0)
    assert len(read(again.out_dir, "accounts")) == 30 and regenerated.out_dir == again.out_dir
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temporary folders left"


# --- named worlds ----------------------------------------------------------------------------------

DEFAULT_DIGESTS = {  # 80 accounts, seed 5, 1.5 years from 2023-01-01, generated before worlds existed
    "accounts": "72bdc4368608121f 80",
    "subscriptions": "f2ce11c4de83edbf 499",
    "usage_events": "6e3e407a765462b4 42924",
    "logins": "39fbf1b487f87434 47883",
    "support_tickets": "88f4b09f2c3a6031 507",
    "trainings": "ddbca2f3417f2ae3 348",
    "_truth/terms": "ad70ca307ee02df6 499",
    "_truth/health": "bd080b00f9e9c0d2 3835",
}


def _content_digest(frame: pd.DataFrame) -> str:
    """Hash of the values and column names (not the parquet bytes, which carry the writer's version).

    Floats are hashed at single precision: NumPy's `exp` differs in the last bits between CPUs (its
    AVX-512 and AVX2 kernels), so the truth's probabilities are not bit-identical from one machine to
    the next, while any change to the generator moves them far more than float32 rounding hides.
    """
    floats = frame.select_dtypes("float64").columns
    frame = frame.astype(dict.fromkeys(floats, "float32"))
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(",".join(frame.columns).encode())
    return f"{digest.hexdigest()[:16]} {len(frame)}"


def test_default_world_output_is_unchanged(tmp_path: Path) -> None:
    """Worlds add knobs; the default world must stay the calibrated one, value for value."""
    out = generate(tmp_path / "d", 80, seed=5, start="2023-01-01", years=1.5).out_dir
    assert {name: _content_digest(read(out, name)) for name in DEFAULT_DIGESTS} == DEFAULT_DIGESTS
    assert json.loads((out / "_truth" / "world.json").read_text())["name"] == "default"


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("worlds")
    names = ("default", "b2c_monthly", "no_signal", "imbalanced", "seat_contraction")
    return {name: generate(root / name, 300, seed=9, start=START, years=YEARS, world=name).out_dir for name in names}


def _observed(out: Path) -> pd.DataFrame:
    truth = read(out, "_truth/terms")
    return truth[truth.churned.notna() & ~truth.censored & (truth.term_kind != "addon")]


def test_b2c_world_writes_monthly_consumer_terms_and_only_usage_events(worlds) -> None:
    out = worlds["b2c_monthly"]
    assert not any((out / name).exists() for name in ("logins", "support_tickets", "trainings"))
    assert len(read(out, "usage_events")) > 0
    assert set(read(out, "accounts").segment) == {"consumer", "family"}
    assert set(read(out, "_truth/terms").term_kind) == {"monthly"}
    assert read(out, "subscriptions").seats.max() <= 6


def test_no_signal_world_churns_with_one_probability_whatever_happened(worlds) -> None:
    observed = _observed(worlds["no_signal"])
    assert observed.p_churn.nunique() == 1
    assert 0.03 < observed.churned.mean() < 0.12


def test_imbalanced_world_churns_far_less_with_the_same_mechanics(worlds) -> None:
    assert _observed(worlds["imbalanced"]).churned.mean() < 0.35 * _observed(worlds["default"]).churned.mean()


def test_seat_contraction_world_makes_contracted_accounts_churn(worlds) -> None:
    def risk_after_contraction(out: Path) -> float:
        truth = read(out, "_truth/terms").join(read(out, "subscriptions")[["seats"]])
        main = truth[truth.term_kind != "addon"]
        contracted = main.seats < main.groupby("account_id").seats.shift(1)
        decided = main.p_churn.notna()
        return main.p_churn[decided & contracted].mean() / main.p_churn[decided & ~contracted].mean()

    assert risk_after_contraction(worlds["seat_contraction"]) > 1.5 * risk_after_contraction(worlds["default"])


def test_unknown_world_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown world 'b2b'; choose one of default, usage_decline"):
        generate(tmp_path / "out", 10, world="b2b")
    assert not (tmp_path / "out").exists()
