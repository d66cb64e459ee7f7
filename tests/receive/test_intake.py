"""The core path without Prefect: receive → duplicate_receipt → parse → check → record."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, text

from ci_pipeline import store
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.errors import InvalidPeriod, SubmissionRefused, UnknownPartner
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from tests.helpers import IngestedDemo, ingest, ingest_received

HEADER = "measure_id,geo_code,period,value"
FUND, QUARTER = "galilee-foundation", "2025-Q1"
STARTER = "braude-college"


def write_csv(path: Path, *rows: str, header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


@pytest.fixture
def db(engine: Engine, initiative: Initiative) -> Engine:
    assert intake.prepare_database(initiative, engine=engine)  # definitions were loaded
    assert intake.prepare_database(initiative, engine=engine) == []  # and only once
    return engine


@pytest.fixture
def fund_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "fund_2025-Q1.csv", "new-resources-nis,beit-hakerem,2025-Q1,250000")


Send = Callable[[Path, str], intake.Receipt]


@pytest.fixture
def send_starter(initiative: Initiative, settings: Settings, db: Engine) -> Send:
    """Ingest a file of braude-college (the starter figures' partner) for a period into ``db``."""

    def send(path: Path, period: str) -> intake.Receipt:
        return ingest(path, STARTER, period, initiative=initiative, settings=settings, engine=db)

    return send


def test_an_accepted_file(
    fund_file: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    receipt = ingest(fund_file, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)

    assert receipt.status == "accepted"
    assert (receipt.partner_id, receipt.period, receipt.file_name) == (
        FUND,
        QUARTER,
        "fund_2025-Q1.csv",
    )
    assert (receipt.rows_total, receipt.rows_accepted, receipt.issues) == (1, 1, 0)
    assert receipt.message == "accepted: 1 row(s) stored"
    assert receipt.first_issues == []
    assert receipt.supersedes is None and receipt.duplicate_of is None
    stored = store.current_observations(engine=db, partner_id=FUND).row(0, named=True)
    assert stored["submission_id"] == receipt.submission_id
    assert (stored["measure_id"], stored["geo_code"], stored["period"]) == (
        "new-resources-nis",
        "beit-hakerem",
        QUARTER,
    )
    assert (stored["disaggregation"], stored["value"], stored["source_row"]) == ("total", 250000, 2)
    assert stored["measure_version"] == 1
    row = store.get_submission(receipt.submission_id, engine=db)
    assert row is not None
    assert (row.status, row.file_format, row.encoding) == ("accepted", "csv", "utf-8")
    assert row.report_path == receipt.report_path
    assert receipt.report_path is not None
    report = json.loads(Path(receipt.report_path).read_text(encoding="utf-8"))
    assert report["status"] == "accepted"
    assert report["submission_id"] == receipt.submission_id
    assert report["issues"] == []
    assert Path(receipt.report_path).is_relative_to(settings.reports_dir / FUND / QUARTER)
    json.dumps(receipt.to_dict())  # the flow returns it as plain data


def test_a_receipt_repeats_stored_fields_and_comes_back_from_its_plain_form(
    fund_file: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    receipt = ingest(fund_file, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    row = store.get_submission(receipt.submission_id, engine=db)
    assert row is not None

    assert set(intake.RECEIPT_FIELDS) <= set(store.SubmissionFields.model_fields)
    plain = receipt.to_dict()
    assert list(plain) == ["submission_id", *intake.RECEIPT_FIELDS, "first_issues", "warnings"]
    assert {k: plain[k] for k in intake.RECEIPT_FIELDS} == {
        k: getattr(row, k) for k in intake.RECEIPT_FIELDS
    }
    again = intake.Receipt(**plain)  # what the CLI does with the ingest flow's result
    assert again == receipt and again.to_dict() == plain
    assert (again.status, again.rows_accepted) == ("accepted", 1)
    with pytest.raises(AttributeError):
        _ = again.content_hash  # type: ignore[attr-defined]  # stored, but not a receipt's
    with pytest.raises(ValidationError, match="content_hash"):
        intake.Receipt(**plain, content_hash="abc")  # type: ignore[call-arg]


def test_a_received_file_is_stored_with_its_bytes_before_any_ingest(
    fund_file: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    row = intake.take(
        fund_file, FUND, "2025q1", initiative=initiative, settings=settings, engine=db,
        options={"encoding": "windows-1255", "ignored": None},
    )  # fmt: skip
    assert row.period == QUARTER  # made canonical
    assert row.content_hash == hashlib.sha256(fund_file.read_bytes()).hexdigest()
    assert (row.status, row.size_bytes, row.validated_at) == (
        "received",
        len(fund_file.read_bytes()),
        None,
    )
    assert store.submission_options(row) == {"encoding": "windows-1255"}
    fund_file.unlink()  # the partner's copy (or the spooled upload) is gone; the bytes are not
    stored = store.get_submission(row.id or 0, engine=db)
    assert stored is not None and stored.status == "received"
    assert (
        hashlib.sha256(store.received_content(row.content_hash, engine=db) or b"").hexdigest()
        == row.content_hash
    )
    assert not settings.archive_dir.exists()  # the audit copy is the ingest's, from the database


def test_the_archive_keeps_a_copy(
    fund_file: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    original = fund_file.read_bytes()
    receipt = ingest(fund_file, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    fund_file.unlink()  # the partner's copy is gone; ours is not

    row = store.get_submission(receipt.submission_id, engine=db)
    assert row is not None and row.archive_path is not None
    archived = Path(row.archive_path)
    assert archived.read_bytes() == original
    assert archived.parent == settings.archive_dir / FUND / QUARTER / row.content_hash[:12]
    assert archived.name == "fund_2025-Q1.csv"


def test_the_archive_copy_is_kept_where_the_file_is_ingested(
    fund_file: Path, initiative: Initiative, settings: Settings, db: Engine, tmp_path: Path
) -> None:
    """Beyond one machine the intake API receives a file and a worker with a data folder of
    its own ingests it: the copy goes to the worker's archive, and the database names it there,
    never the receiving machine's folder (tests/serve/test_multi_machine.py runs it so)."""
    original = fund_file.read_bytes()
    row = intake.take(fund_file, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    assert row.id is not None
    worker = get_settings(home=tmp_path / "worker-home")

    receipt = ingest_received(row.id, initiative=initiative, settings=worker, engine=db)

    assert receipt.status == "accepted"
    stored = store.get_submission(row.id, engine=db)
    assert stored is not None and stored.archive_path is not None
    archived = Path(stored.archive_path)
    assert archived.is_relative_to(worker.archive_dir) and archived.read_bytes() == original
    assert archived.name == "fund_2025-Q1.csv"
    assert not settings.archive_dir.exists()  # nothing written in the receiving machine's folder


def test_only_a_received_submission_is_ingested_and_a_decided_one_is_left_as_it_is(
    fund_file: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    """An event names a submission id: an id with no submission is refused, and one that
    already has a verdict (a repeated or forged event, a retry after the commit, the reconciler
    beside a late run) gets its receipt back with nothing changed."""
    with pytest.raises(SubmissionRefused, match="there is no submission #999"):
        intake.load(999, settings=settings, engine=db)

    first = ingest(fund_file, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    assert first.status == "accepted"
    before = store.list_submissions(engine=db)

    again = ingest_received(
        first.submission_id, initiative=initiative, settings=settings, engine=db
    )

    assert again == intake.Receipt.from_row(before[0])
    assert store.list_submissions(engine=db) == before
    assert count(db, "SELECT count(*) FROM observation") == 1


def test_a_truncated_archive_copy_is_written_again(
    fund_file: Path, initiative: Initiative, settings: Settings, db: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A write that failed half-way (a full disk, say) leaves no copy under the real name, and
    the step's retry writes it whole from the database; a copy that does not match the bytes is
    replaced."""
    original = fund_file.read_bytes()
    row = intake.take(fund_file, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    assert row.id is not None and row.archive_path is not None
    real_write = Path.write_bytes

    def half_then_fail(self: Path, data: bytes) -> int:
        real_write(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        intake.load(row.id, settings=settings, engine=db)
    folder = settings.archive_dir / FUND / QUARTER
    assert [p for p in folder.rglob("*") if p.is_file()] == []  # no truncated copy, any name

    monkeypatch.setattr(Path, "write_bytes", real_write)
    loaded = intake.load(row.id, settings=settings, engine=db)
    assert isinstance(loaded, store.Submission)
    assert Path(row.archive_path).read_bytes() == original

    Path(row.archive_path).write_bytes(b"tampered")  # a copy whose bytes are not the file's
    intake.write_archive(original, Path(row.archive_path), row.content_hash)
    assert Path(row.archive_path).read_bytes() == original


BAD_ROWS = (
    "new-resources-nis,beit-hakerem,2025-Q1,250000",  # fine, but the file is rejected whole
    "new-resources-nis,beit-hakerem,2025-Q2,lots",
    "new-resources-nis,Haifa,2025-Q1,-5",
)


def test_a_rejected_file_stores_no_observation_and_writes_a_report(
    tmp_path: Path, fund_file: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    before = ingest(fund_file, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    bad = write_csv(tmp_path / "bad.csv", *BAD_ROWS)

    receipt = ingest(bad, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)

    assert receipt.status == "rejected"
    assert receipt.rows_total == 3 and receipt.rows_accepted == 0
    rules = Counter(i["rule"] for i in receipt.first_issues)
    assert rules["value_is_number"] == 1
    assert rules["geography_served"] == 1
    assert rules["period_in_submission"] == 1
    assert rules["value_in_range"] == 1
    assert receipt.issues == len(receipt.first_issues) == 4
    assert {i["row"] for i in receipt.first_issues} == {3, 4}
    assert receipt.message == (
        f"rejected: {receipt.issues} problem(s) in 2 row(s); nothing was stored"
    )
    # Nothing of it was stored, and the earlier accepted file still counts.
    assert (
        count(
            db,
            "SELECT count(*) FROM observation WHERE submission_id = :id",
            id=receipt.submission_id,
        )
        == 0
    )
    assert count(db, "SELECT count(*) FROM observation") == 1
    current = store.current_submission("beit-hakerem", FUND, QUARTER, engine=db)
    assert current is not None and current.id == before.submission_id
    row = store.get_submission(receipt.submission_id, engine=db)
    assert row is not None
    assert (row.status, row.rows_rejected, row.issues) == ("rejected", 2, receipt.issues)

    assert receipt.report_path is not None
    report_path = Path(receipt.report_path)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["status"] == "rejected"
    assert report["files"] == {"errors_csv": "errors.csv"}
    assert len(report["issues"]) == receipt.issues
    errors = pl.read_csv(report_path.parent / "errors.csv", infer_schema_length=0)
    assert errors.columns == ["row", "column", "value", "rule", "message"]
    assert errors.height == receipt.issues
    assert set(errors["rule"]) == set(rules)
    haifa = errors.filter(pl.col("rule") == "geography_served").row(0, named=True)
    assert (haifa["row"], haifa["column"], haifa["value"]) == ("4", "geo_code", "Haifa")


def test_the_same_bytes_again_are_a_duplicate(
    tmp_path: Path, fund_file: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    first = ingest(fund_file, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    reports = sorted(settings.reports_dir.rglob("*"))
    again = tmp_path / "resent" / fund_file.name
    again.parent.mkdir()
    again.write_bytes(fund_file.read_bytes())

    receipt = ingest(again, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)

    assert receipt.status == "duplicate"
    assert receipt.duplicate_of == first.submission_id
    assert receipt.submission_id != first.submission_id
    assert receipt.message == f"identical to submission #{first.submission_id}; nothing was written"
    assert receipt.report_path == first.report_path  # points to the original's report
    assert receipt.rows_accepted == 0
    assert count(db, "SELECT count(*) FROM observation") == 1
    assert sorted(settings.reports_dir.rglob("*")) == reports
    original = store.get_submission(first.submission_id, engine=db)
    assert original is not None and original.status == "accepted"
    # The same bytes for another period are not a duplicate: they are checked (and rejected).
    other = ingest(again, FUND, "2025-Q2", initiative=initiative, settings=settings, engine=db)
    assert other.status == "rejected"
    assert {i["rule"] for i in other.first_issues} == {"period_in_submission"}


def write_starter(path: Path, *rows: tuple[str, str, int]) -> Path:
    return write_csv(
        path,
        *(f"starter-students-trained,{geo},{p},{value}" for geo, p, value in rows),
    )


def test_a_corrected_file_supersedes_with_its_changes(
    tmp_path: Path, send_starter: Send, db: Engine
) -> None:
    first = send_starter(
        write_starter(
            tmp_path / "jan.csv",
            ("karmiel", "2025-01", 4),
            ("misgav", "2025-01", 2),
            ("nahf", "2025-01", 7),
        ),
        "2025-01",
    )
    assert first.status == "accepted"

    receipt = send_starter(
        write_starter(
            tmp_path / "jan-corrected.csv",
            ("karmiel", "2025-01", 5),  # changed
            ("misgav", "2025-01", 2),  # the same
            ("rameh", "2025-01", 1),  # added; nahf removed
        ),
        "2025-01",
    )

    assert receipt.status == "accepted"
    assert receipt.supersedes == first.submission_id
    assert (receipt.rows_added, receipt.rows_removed, receipt.rows_changed) == (1, 1, 1)
    assert receipt.message == (
        f"accepted: 3 row(s) stored; replaces submission #{first.submission_id} "
        "(1 added, 1 removed, 1 changed)"
    )
    old = store.get_submission(first.submission_id, engine=db)
    assert old is not None
    assert (old.status, old.superseded_by) == ("superseded", receipt.submission_id)
    counted = store.current_observations(engine=db, partner_id=STARTER)
    assert dict(zip(counted["geo_code"], counted["value"], strict=True)) == {
        "karmiel": 5,
        "misgav": 2,
        "rameh": 1,
    }
    assert receipt.report_path is not None
    changes = pl.read_csv(Path(receipt.report_path).parent / "changes.csv")
    assert sorted(zip(changes["geo_code"], changes["change"], strict=True)) == [
        ("karmiel", "changed"),
        ("nahf", "removed"),
        ("rameh", "added"),
    ]


def test_a_figure_already_reported_in_another_period_is_rejected(
    tmp_path: Path, send_starter: Send, db: Engine
) -> None:
    january = send_starter(
        write_starter(tmp_path / "jan.csv", ("karmiel", "2025-01", 4)),
        "2025-01",
    )
    assert january.status == "accepted"

    receipt = send_starter(
        write_starter(
            tmp_path / "q1.csv",
            ("misgav", "2025-01", 3),  # not sent before: fine
            ("karmiel", "2025-02", 6),
            ("karmiel", "2025-01", 4),  # sent in January's file already
        ),
        QUARTER,
    )

    assert receipt.status == "rejected"
    assert receipt.issues == 1
    [issue] = receipt.first_issues
    assert (issue["row"], issue["column"], issue["value"], issue["rule"]) == (
        4,
        "period",
        "2025-01",
        "already_reported",
    )
    assert f"submission #{january.submission_id} for 2025-01" in issue["message"]
    assert count(db, "SELECT count(*) FROM observation") == 1
    assert store.current_submission("beit-hakerem", STARTER, QUARTER, engine=db) is None


def write_by_sex(path: Path, *rows: tuple[str, str, str, int]) -> Path:
    """Starter figures with a ``sex`` column (blank: the total)."""
    return write_csv(
        path,
        *(f"starter-students-trained,{geo},{p},{sex},{value}" for geo, p, sex, value in rows),
        header="measure_id,geo_code,period,sex,value",
    )


def test_a_breakdown_of_a_total_already_reported_is_rejected(
    tmp_path: Path, send_starter: Send, db: Engine
) -> None:
    """The issue's case: Karmiel's January total (4) in the January file, then January's
    female 2 / male 2 in the Q1 file. Both accepted, the total would be 4 + 2 + 2 = 8."""
    january = send_starter(
        write_by_sex(tmp_path / "jan.csv", ("karmiel", "2025-01", "", 4)),
        "2025-01",
    )
    assert january.status == "accepted"

    receipt = send_starter(
        write_by_sex(
            tmp_path / "q1.csv",
            ("karmiel", "2025-01", "female", 2),  # row 2: part of January's total
            ("karmiel", "2025-01", "male", 2),  # row 3: the other part
            ("karmiel", "2025-02", "female", 3),  # row 4: February was never sent: fine
        ),
        QUARTER,
    )

    assert receipt.status == "rejected"
    assert [(i["row"], i["column"], i["value"], i["rule"]) for i in receipt.first_issues] == [
        (2, "period", "2025-01", "already_reported"),
        (3, "period", "2025-01", "already_reported"),
    ]
    assert receipt.first_issues[0]["message"] == (
        "this figure overlaps 2025-01 (sex=total), already reported in submission "
        f"#{january.submission_id} for 2025-01; resubmit that period to correct it, "
        "so it is not counted twice"
    )
    counted = store.current_observations(engine=db, partner_id=STARTER)
    assert counted.select("period", "disaggregation", "value").rows() == [
        ("2025-01", "sex=total", 4.0)
    ]


def test_two_files_checked_before_either_is_stored_cannot_both_count(
    tmp_path: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    """Two ingests interleaved: both checks pass (nothing is stored yet), then both write.
    The second is refused at the write, by the same rule, and stores nothing."""
    steps = []
    for name, period, rows in (
        ("jan.csv", "2025-01", [("karmiel", "2025-01", "", 4)]),
        ("q1.csv", QUARTER, [("karmiel", "2025-01", "female", 2), ("misgav", "2025-02", "", 1)]),
    ):
        path = write_by_sex(tmp_path / name, *rows)
        row = intake.take(
            path, STARTER, period, initiative=initiative, settings=settings, engine=db
        )
        new = intake.load(row.id or 0, settings=settings, engine=db)
        assert isinstance(new, store.Submission)
        parsed = intake.parse(new, initiative=initiative, settings=settings)
        assert isinstance(parsed, intake.Parsed)
        steps.append((new, parsed))
    results = [intake.check(p, n, initiative=initiative, engine=db) for n, p in steps]
    assert all(r.accepted for r in results)  # neither saw the other

    first, second = (
        intake.record(n, r, encoding=p.encoding, settings=settings, engine=db)
        for (n, p), r in zip(steps, results, strict=True)
    )

    assert first.status == "accepted"
    assert second.status == "rejected"
    assert [(i["row"], i["value"], i["rule"]) for i in second.first_issues] == [
        (2, "2025-01", "already_reported")
    ]
    assert f"submission #{first.submission_id} for 2025-01" in second.first_issues[0]["message"]
    assert count(db, "SELECT count(*) FROM observation") == 1
    assert count(db, "SELECT count(*) FROM submission WHERE status = 'accepted'") == 1


def test_a_file_over_the_size_limit_is_refused_and_recorded(
    fund_file: Path, initiative: Initiative, home: Path, db: Engine
) -> None:
    small = get_settings(max_file_bytes=20)
    assert fund_file.stat().st_size > 20

    receipt = ingest(fund_file, FUND, QUARTER, initiative=initiative, settings=small, engine=db)

    assert receipt.status == "rejected"
    assert receipt.rows_total == 0 and receipt.issues == 1
    [issue] = receipt.first_issues
    assert issue["rule"] == "file_refused"
    assert issue["row"] is None
    assert "fund_2025-Q1.csv" in issue["message"]
    assert receipt.message == "rejected: 1 problem(s) in 0 row(s); nothing was stored"
    assert count(db, "SELECT count(*) FROM observation") == 0
    row = store.get_submission(receipt.submission_id, engine=db)
    assert row is not None
    assert row.status == "rejected"
    assert row.archive_path is None  # too large to keep
    assert not small.archive_dir.exists()
    assert receipt.report_path is not None
    report = json.loads(Path(receipt.report_path).read_text(encoding="utf-8"))
    assert [i["rule"] for i in report["issues"]] == ["file_refused"]


def test_an_unknown_partner_is_refused(
    fund_file: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    with pytest.raises(UnknownPartner, match="no partner 'galilee-fund'"):
        intake.take(
            fund_file, "galilee-fund", QUARTER, initiative=initiative, settings=settings, engine=db
        )
    assert store.list_submissions(engine=db) == []


@pytest.mark.parametrize("period", ["2025-13", "Q1", "2025-Q5", "last quarter", ""])
def test_a_bad_period_is_refused(
    period: str, fund_file: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    with pytest.raises(InvalidPeriod, match="is not a period"):
        intake.take(fund_file, FUND, period, initiative=initiative, settings=settings, engine=db)
    assert store.list_submissions(engine=db) == []


def test_every_demo_file_in_order(demo_db: tuple[IngestedDemo, Engine]) -> None:
    """Every demo file through the intake steps in order (ingested once per session and
    database, see tests/conftest.py; this test reads its own copy)."""
    built, db = demo_db
    files, receipts = built.files, built.receipts
    assert len(files) > 100

    by_note = {f.note: r for f, r in zip(files, receipts, strict=True) if f.note}
    draft = by_note["a draft with errors"]
    assert draft.status == "rejected"
    assert draft.issues > 0
    assert draft.file_name.endswith("_draft.tsv")
    assert draft.report_path is not None and Path(draft.report_path).is_file()
    duplicate = by_note["sent twice: a duplicate"]
    assert duplicate.status == "duplicate"
    revision = by_note["a revision: supersedes the first"]
    assert revision.status == "accepted"
    assert revision.supersedes is not None
    assert revision.rows_changed is not None and revision.rows_changed > 0
    assert (revision.rows_added, revision.rows_removed) == (0, 0)
    assert [r for r in receipts if r.supersedes is not None] == [revision]
    assert revision.partner_id == "national-insurance"
    special = {id(draft), id(duplicate)}
    others = [(f, r) for f, r in zip(files, receipts, strict=True) if id(r) not in special]
    not_accepted = [(f.path.name, r.message) for f, r in others if r.status != "accepted"]
    assert not_accepted == []
    # The original of the duplicate is the file just before it; the revision's is the one
    # it replaces, now superseded; and only accepted files count.
    sent_twice = next(i for i, f in enumerate(files) if f.note == "sent twice: a duplicate")
    assert files[sent_twice - 1].path == files[sent_twice].path
    assert duplicate.duplicate_of == receipts[sent_twice - 1].submission_id
    replaced = store.get_submission(revision.supersedes, engine=db)
    assert replaced is not None
    assert (replaced.status, replaced.superseded_by) == ("superseded", revision.submission_id)
    accepted = [r for r in receipts if r.status == "accepted"]
    stored = count(db, "SELECT count(*) FROM observation")
    assert stored == sum(r.rows_accepted for r in accepted)
    counted = store.current_observations(engine=db).height
    assert counted == stored - replaced.rows_accepted
    # Every one of those files was a new fact: no figure is counted twice.
    assert (
        store.current_observations(engine=db)
        .select([*store.NATURAL_KEY, "partner_id"])
        .is_duplicated()
        .sum()
        == 0
    )


def test_sending_back_a_superseded_file_is_accepted_with_a_warning(
    tmp_path: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    first = write_csv(tmp_path / "v1" / "fund.csv", "new-resources-nis,beit-hakerem,2025-Q1,250000")
    second = write_csv(
        tmp_path / "v2" / "fund.csv", "new-resources-nis,beit-hakerem,2025-Q1,260000"
    )
    original = ingest(first, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    correction = ingest(second, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    assert correction.warnings == []

    reverted = ingest(first, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)

    assert reverted.status == "accepted"  # a partner may revert, but never silently
    assert reverted.supersedes == correction.submission_id
    assert reverted.warnings == [
        f"these are the same bytes as submission #{original.submission_id}, which "
        f"#{correction.submission_id} replaced; accepting them undoes that correction"
    ]
    assert store.current_observations(engine=db, partner_id=FUND)["value"].to_list() == [250000]
