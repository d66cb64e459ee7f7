"""A period's processing without Prefect: the demo end to end through the core steps.

The demo injects exactly three things for the detectors to find (a step, a drift and a late
partner); everything else in its 24 months of files is noise. Ingest → indicators → gate and
detection → alerts → delivery must find those three and nothing else, and a second run must
send nothing new. Also the smaller steps: refreshing only what changed, judging an empty
database, and the headline table masking suppressed cells.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml
from sqlalchemy import Engine

from ci_pipeline import aggregate, alert, demo, detect, store
from ci_pipeline.config import DEFAULT_INITIATIVE, Settings
from ci_pipeline.detect.detectors import window_labels
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.receive import intake
from ci_pipeline.store import AlertStatus
from tests.helpers import IngestedDemo, ingest, write_fund_file

ALERT_SETTINGS = (
    "CI_PIPELINE_ALERT_URLS",
    "CI_PIPELINE_ENGINEER_URLS",
    "CI_PIPELINE_ALERT_ROUTES",
    "CI_PIPELINE_ALERT_REPEAT_HOURS",
)


@pytest.fixture(autouse=True)
def default_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts go to the default local files, whatever the environment configures."""
    for name in ALERT_SETTINGS:
        monkeypatch.delenv(name, raising=False)


# --- shared helpers (the CLI and flow tests import these) ----------------------------------------

#: A small dataset: Braude College's students trained (misgav's cells are small, so suppressed)
#: for three months, and the fund's new resources for two quarters.
SMALL_AS_OF = date(2025, 9, 1)


def small_dataset(folder: Path) -> list[tuple[str, str, Path]]:
    """(partner, period, file) of the small dataset, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[tuple[str, str, Path]] = []
    for i, month in enumerate(["2025-01", "2025-02", "2025-03"]):
        rows = [("karmiel", "female", 20 + i), ("karmiel", "male", 15), ("misgav", "female", 2)]
        rows.append(("misgav", "male", 1))
        path = folder / f"braude_{month}.csv"
        path.write_text(
            "measure_id,geo_code,period,sex,value\n"
            + "".join(f"starter-students-trained,{g},{month},{s},{v}\n" for g, s, v in rows),
            encoding="utf-8",
        )
        files.append(("braude-college", month, path))
    for quarter, amount in [("2025-Q1", 250_000), ("2025-Q2", 260_000)]:
        path = folder / f"fund_{quarter}.csv"
        path.write_text(
            f"measure_id,geo_code,period,value\nnew-resources-nis,beit-hakerem,{quarter},{amount}\n",
            encoding="utf-8",
        )
        files.append(("galilee-foundation", quarter, path))
    return files


def ingest_small(
    folder: Path, *, initiative: Initiative, settings: Settings, engine: Engine
) -> list[intake.Receipt]:
    intake.prepare_database(initiative, engine=engine)
    receipts = [
        ingest(path, partner, period, initiative=initiative, settings=settings, engine=engine)
        for partner, period, path in small_dataset(folder)
    ]
    assert [r.status for r in receipts] == ["accepted"] * len(receipts), [
        r.first_issues for r in receipts
    ]
    return receipts


@pytest.fixture
def small(
    tmp_path: Path, initiative: Initiative, settings: Settings, sqlite_engine: Engine
) -> Engine:
    """The small dataset, ingested into the settings' SQLite database."""
    ingest_small(tmp_path / "files", initiative=initiative, settings=settings, engine=sqlite_engine)
    return sqlite_engine


class Outbox:
    """A fake sender: keeps every (url, title, body) and accepts it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, url: str, title: str, body: str) -> bool:
        self.calls.append((url, title, body))
        return True


def alert_keys(engine: Engine) -> set[tuple[str, str, str, str, str]]:
    return {
        (a.kind, a.measure_id, a.geo_code, a.period, a.subject)
        for a in alert.list_alerts(engine=engine)
    }


# --- the demo, end to end -----------------------------------------------------------------------

INJECTED = {
    ("step", "arab-women-lfp", "nahf", "2025-Q4", ""),
    ("drift", "below-min-wage-share", "karmiel", "2025-Q4", ""),
    ("missing", "kurkum-women-employed", "majd-al-krum", "2025-12", "kurkum"),
}


def test_the_demo_finds_exactly_what_it_injected(
    demo_db: tuple[IngestedDemo, Engine], initiative: Initiative, settings: Settings
) -> None:
    """Every demo file ingested (once per session and database, see tests/conftest.py), then
    this test's copy of the database processed."""
    built, engine = demo_db
    files, receipts = built.files, built.receipts
    outcomes = Counter(r.status for r in receipts)
    assert outcomes == {"accepted": len(files) - 2, "rejected": 1, "duplicate": 1}
    notes = {f.note: r for f, r in zip(files, receipts, strict=True) if f.note}
    assert notes["a draft with errors"].status == "rejected"
    assert notes["sent twice: a duplicate"].status == "duplicate"
    assert notes["a revision: supersedes the first"].supersedes is not None
    # Kurkum's last quarter never arrives.
    assert not any(f.partner_id == "kurkum" and f.period == "2025-Q4" for f in files)

    refreshed = aggregate.refresh_indicators(initiative, engine=engine)
    assert refreshed.rows > 0 and refreshed.slices
    assert aggregate.refresh_indicators(initiative, engine=engine).slices == []  # nothing stale

    judgement = detect.judge(initiative, engine=engine, settings=settings, as_of=demo.DEMO_AS_OF)
    assert judgement.gate.success, judgement.gate.failures
    assert judgement.gate.failed_measures == set()
    assert judgement.judged["arab-women-lfp"] == "2025-Q4"
    assert judgement.judged["kurkum-women-employed"] == "2025-12"
    found = {
        (f["kind"], f["measure_id"], f["geo_code"], f["period"], f["subject"] or "")
        for f in judgement.findings.iter_rows(named=True)
    }
    assert found == INJECTED
    assert judgement.findings.height == 3

    recorded, queued = alert.record_alerts(judgement, initiative, settings=settings, engine=engine)
    assert len(recorded.new) == 3 and recorded.updated == recorded.resolved == []
    assert queued == 3
    stored = alert.list_alerts(engine=engine)
    assert alert_keys(engine) == INJECTED
    assert {(a.status, a.verified) for a in stored} == {(AlertStatus.open, True)}

    sender = Outbox()
    [delivery] = alert.deliver(engine=engine, sender=sender)
    assert delivery.ok and delivery.alerts == 3
    [(url, title, body)] = sender.calls
    assert url == alert.file_channel(settings.alerts_file)
    assert title == "ci-pipeline: 3 indicator alert(s)"
    for a in stored:
        assert f"#{a.id} {a.message}" in body
    assert "Nahf" in body and "Karmiel" in body and "Kurkum" in body

    # The same run again: nothing new is recorded, queued or sent.
    again = detect.judge(initiative, engine=engine, settings=settings, as_of=demo.DEMO_AS_OF)
    recorded, queued = alert.record_alerts(again, initiative, settings=settings, engine=engine)
    assert recorded.new == [] and recorded.resolved == []
    assert sorted(recorded.updated) == sorted(alert.alert_id(a) for a in stored)
    assert queued == 0
    assert alert.deliver(engine=engine, sender=sender) == []
    assert len(sender.calls) == 1
    assert alert_keys(engine) == INJECTED


def test_judging_only_some_measures_finds_for_them_what_judging_all_finds(
    demo_db: tuple[IngestedDemo, Engine], initiative: Initiative, settings: Settings
) -> None:
    """What a run after new files does (``changed_only``): it judges the measures whose
    indicators changed. Each measure's verdicts are its own (its step tests are adjusted
    across its own series, its gate checks are its own), so judging a subset finds, for each
    of them, exactly what judging everything finds."""
    _, engine = demo_db
    aggregate.refresh_indicators(initiative, engine=engine)
    everything = detect.judge(initiative, engine=engine, settings=settings, as_of=demo.DEMO_AS_OF)
    for subset in (["arab-women-lfp"], ["below-min-wage-share", "kurkum-women-employed"]):
        some = detect.judge(
            initiative, engine=engine, settings=settings, as_of=demo.DEMO_AS_OF, measures=subset
        )
        assert some.judged == {m: everything.judged[m] for m in subset}
        assert set(some.indicators["measure_id"].unique()) == set(subset)  # only theirs read
        assert_read_within_windows(some, initiative)
        theirs = everything.findings.filter(pl.col("measure_id").is_in(subset))
        assert not theirs.is_empty()  # one injected problem in each subset
        assert some.findings.equals(theirs)
    nothing = detect.judge(
        initiative, engine=engine, settings=settings, as_of=demo.DEMO_AS_OF, measures=[]
    )
    assert nothing.judged == {} and nothing.findings.is_empty()


def test_recomputed_slices_are_judged_by_period_on_their_own_measures() -> None:
    slices = [("b", "2025-Q4"), ("a", "2025-Q4"), ("a", "2025-11"), ("b", "2025-Q4")]
    assert aggregate.refreshed_by_period(slices) == {"2025-11": ["a"], "2025-Q4": ["a", "b"]}
    assert aggregate.refreshed_by_period([]) == {}


# --- the steps ----------------------------------------------------------------------------------


def test_refresh_recomputes_only_the_slices_a_new_file_touches(
    small: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    first = aggregate.refresh_indicators(initiative, engine=small)
    assert sorted(first.slices) == [
        ("new-resources-nis", "2025-Q1"),
        ("new-resources-nis", "2025-Q2"),
        ("starter-students-trained", "2025-01"),
        ("starter-students-trained", "2025-02"),
        ("starter-students-trained", "2025-03"),
    ]
    assert first.rows == store.read_indicators(initiative.info.id, engine=small).height
    assert aggregate.refresh_indicators(initiative, engine=small) == aggregate.Refreshed([], 0)

    path = tmp_path / "fund_q3.csv"
    path.write_text(
        "measure_id,geo_code,period,value\nnew-resources-nis,beit-hakerem,2025-Q3,300000\n",
        encoding="utf-8",
    )
    receipt = ingest(
        path,
        "galilee-foundation",
        "2025-Q3",
        initiative=initiative,
        settings=settings,
        engine=small,
    )
    assert receipt.status == "accepted"
    assert aggregate.refresh_indicators(initiative, engine=small).slices == [
        ("new-resources-nis", "2025-Q3")
    ]
    assert len(aggregate.refresh_indicators(initiative, engine=small, full=True).slices) == 6


def test_judging_the_small_dataset(
    small: Engine, initiative: Initiative, settings: Settings
) -> None:
    aggregate.refresh_indicators(initiative, engine=small)

    judgement = detect.judge(initiative, engine=small, settings=settings, as_of=SMALL_AS_OF)

    assert judgement.judged["new-resources-nis"] == "2025-Q2"
    assert judgement.judged["starter-students-trained"] == "2025-03"
    kinds = Counter(judgement.findings["kind"].to_list())
    assert set(kinds) <= {"missing", "quality"}
    late = set(judgement.findings.filter(pl.col("kind") == "missing")["subject"].to_list())
    assert "kurkum" in late and "galilee-foundation" not in late
    # Braude College reported two of its seven localities: the gate holds that measure.
    assert judgement.gate.failed_measures == {"starter-students-trained"}
    assert kinds["quality"] == 1

    # Judging an earlier period.
    earlier = detect.judge(
        initiative, engine=small, settings=settings, period="2025-Q1", as_of=SMALL_AS_OF
    )
    assert earlier.judged["new-resources-nis"] == "2025-Q1"
    assert earlier.judged["starter-students-trained"] == "2025-03"
    assert_read_within_windows(earlier, initiative)
    assert "2025-Q2" in set(judgement.indicators["period"])  # there, but after 2025-Q1:
    assert "2025-Q2" not in set(earlier.indicators["period"])  # not read for it


def assert_read_within_windows(judgement: detect.Judgement, initiative: Initiative) -> None:
    """A judgement reads each measure's window (its detectors' history up to the judged
    period), not the measure's whole history."""
    for measure_id, label in judgement.judged.items():
        measure = initiative.measures[measure_id]
        window = set(window_labels(measure, parse_period(label)))
        read = judgement.indicators.filter(pl.col("measure_id") == measure_id)
        assert set(read["period"]) <= window, measure_id


def test_judging_an_empty_database_finds_nothing(
    sqlite_engine: Engine, initiative: Initiative, settings: Settings
) -> None:
    """``process`` before any file arrived (or for a period with no data) is not a crash."""
    intake.prepare_database(initiative, engine=sqlite_engine)
    assert aggregate.refresh_indicators(initiative, engine=sqlite_engine) == aggregate.Refreshed(
        [], 0
    )

    judgement = detect.judge(initiative, engine=sqlite_engine, settings=settings, as_of=SMALL_AS_OF)

    assert judgement.judged == {}
    assert judgement.findings.is_empty()
    assert judgement.gate.success
    recorded, queued = alert.record_alerts(
        judgement, initiative, settings=settings, engine=sqlite_engine
    )
    assert (recorded.new, queued) == ([], 0)
    indicators = store.read_indicators(initiative.info.id, engine=sqlite_engine)
    assert aggregate.headline(indicators, initiative, judgement.judged).is_empty()


def test_judging_a_period_without_data_finds_nothing(
    small: Engine, initiative: Initiative, settings: Settings
) -> None:
    aggregate.refresh_indicators(initiative, engine=small)
    judgement = detect.judge(
        initiative, engine=small, settings=settings, period="2030", as_of=SMALL_AS_OF
    )
    assert judgement.judged == {}
    assert judgement.findings.is_empty()


def test_routing_defaults_to_the_local_files(settings: Settings) -> None:
    routing = alert.routing(settings)
    assert routing.backbone == [alert.file_channel(settings.alerts_file)]
    assert routing.engineers == [alert.file_channel(settings.engineers_file)]
    configured = settings.model_copy(
        update={
            "alert_urls": ["json://backbone.example.org"],
            "engineer_urls": ["json://engineers.example.org"],
            "alert_routes": {"employment": ["json://wg.example.org"]},
        }
    )
    routing = alert.routing(configured)
    assert (routing.backbone, routing.engineers, routing.routes) == (
        ["json://backbone.example.org"],
        ["json://engineers.example.org"],
        {"employment": ["json://wg.example.org"]},
    )


def test_headline_masks_suppressed_cells(initiative: Initiative) -> None:
    def cell(
        measure: str, geo: str, period: str, disagg: str, value: float, suppressed: bool
    ) -> dict[str, object]:
        return {
            "measure_id": measure,
            "geo_code": geo,
            "period": period,
            "disaggregation": disagg,
            "value": value,
            "numerator": value * 100 if measure == "arab-women-lfp" else None,
            "denominator": 100.0 if measure == "arab-women-lfp" else None,
            "partners_reported": 1,
            "partners_expected": 1,
            "coverage": 1.0,
            "suppressed": suppressed,
            "suppression": "small_cell" if suppressed else None,
            "lineage": "1",
        }

    indicators = pl.DataFrame(
        [
            cell("arab-women-lfp", "nahf", "2025-Q4", "age_band=total", 0.22, False),
            cell("arab-women-lfp", "rameh", "2025-Q4", "age_band=total", 0.05, True),
            cell("arab-women-lfp", "nahf", "2025-Q4", "age_band=25-44", 0.3, False),  # breakdown
            cell("arab-women-lfp", "nahf", "2025-Q3", "age_band=total", 0.27, False),  # earlier
            cell("starter-students-trained", "misgav", "2025-12", "sex=total", 3.0, True),
            cell("starter-students-trained", "karmiel", "2025-12", "sex=total", 35.0, False),
        ]
    )
    judged = {"arab-women-lfp": "2025-Q4", "starter-students-trained": "2025-12"}

    table = aggregate.headline(indicators, initiative, judged)

    assert table.columns == [
        "measure_id",
        "geo_code",
        "period",
        "value",
        "numerator",
        "denominator",
        "partners_reported",
        "partners_expected",
        "suppressed",
    ]
    assert table.select("measure_id", "geo_code", "value", "numerator", "suppressed").rows() == [
        ("arab-women-lfp", "nahf", 0.22, 22.0, False),
        ("arab-women-lfp", "rameh", None, None, True),
        ("starter-students-trained", "karmiel", 35.0, None, False),
        ("starter-students-trained", "misgav", None, None, True),
    ]
    assert table.filter(pl.col("suppressed"))["denominator"].null_count() == 2


def test_changed_definitions_recompute_every_slice(
    small: Engine, initiative: Initiative, settings: Settings
) -> None:
    """A larger minimum cell size must reach cells already published, not only new files."""
    aggregate.refresh_indicators(initiative, engine=small)
    assert aggregate.refresh_indicators(initiative, engine=small).slices == []
    starter = initiative.measures["starter-students-trained"]
    stricter = initiative.model_copy(
        update={
            "digest": "changed",
            "measures": {
                **initiative.measures,
                starter.id: starter.model_copy(update={"min_cell_size": 10_000}),
            },
        }
    )

    again = aggregate.refresh_indicators(stricter, engine=small)

    assert len(again.slices) == 5  # every slice, though no file changed
    cells = store.read_indicators(initiative.info.id, engine=small, measure_id=starter.id)
    assert cells.height > 0 and cells["suppressed"].all()
    assert aggregate.refresh_indicators(stricter, engine=small).slices == []


def one_geography(folder: Path) -> Initiative:
    """The bundled initiative cut to its cluster alone: no localities, every partner serving
    the cluster (issue 10: an initiative of a single geography)."""
    shutil.copytree(DEFAULT_INITIATIVE, folder)
    geographies = yaml.safe_load((folder / "geographies.yaml").read_text(encoding="utf-8"))
    cluster = [g for g in geographies if g["level"] == "cluster"]
    (folder / "geographies.yaml").write_text(yaml.safe_dump(cluster, allow_unicode=True))
    partners = yaml.safe_load((folder / "partners.yaml").read_text(encoding="utf-8"))
    for p in partners:
        p["localities"] = [cluster[0]["code"]]
    (folder / "partners.yaml").write_text(yaml.safe_dump(partners, allow_unicode=True))
    # Without localities there are no groups of them to compare (breakdown pairs stay).
    info = yaml.safe_load((folder / "initiative.yaml").read_text(encoding="utf-8"))
    info["equity_gaps"] = [g for g in info["equity_gaps"] if g.get("dimension")]
    (folder / "initiative.yaml").write_text(yaml.safe_dump(info, allow_unicode=True))
    return load_initiative(folder)


def test_an_initiative_of_one_geography_is_processed_end_to_end(
    sqlite_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """One cluster, no localities: nothing has a parent, so the privacy audit's table of
    parents was empty and untyped, and aggregation failed on its join (SchemaError)."""
    alone = one_geography(tmp_path / "initiative")
    intake.prepare_database(alone, engine=sqlite_engine)
    path = write_fund_file(tmp_path / "fund.csv")
    receipt = ingest(
        path, "galilee-foundation", "2025-Q1", initiative=alone, settings=settings,
        engine=sqlite_engine,
    )  # fmt: skip
    assert receipt.status == "accepted", receipt.first_issues

    refreshed = aggregate.refresh_indicators(alone, engine=sqlite_engine)
    judgement = detect.judge(alone, engine=sqlite_engine, settings=settings, as_of=SMALL_AS_OF)
    alert.record_alerts(judgement, alone, settings=settings, engine=sqlite_engine)

    assert refreshed.slices == [("new-resources-nis", "2025-Q1")]
    cells = store.read_indicators(alone.info.id, engine=sqlite_engine)
    assert cells.select("geo_code", "value").rows() == [("beit-hakerem", 250000.0)]
