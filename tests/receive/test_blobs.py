"""Received bytes at an fsspec URL (``CI_PIPELINE_RECEIVED_URL``) instead of the app database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ci_pipeline import store
from ci_pipeline.config import get_settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import blobs, intake
from tests.helpers import ingest_received

FUND, QUARTER = "galilee-foundation", "2025-Q1"
CSV = b"measure_id,geo_code,period,value\nnew-resources-nis,beit-hakerem,2025-Q1,250000\n"


def test_received_bytes_go_to_the_url_and_the_ingest_reads_them_there(
    db: Engine, initiative: Initiative, home: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    settings = get_settings(received_url=f"file://{shared}")
    source = tmp_path / "fund.csv"
    source.write_bytes(CSV)
    digest = hashlib.sha256(CSV).hexdigest()

    row = intake.take(source, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)

    # The object is content-addressed under the URL; the database holds no copy.
    assert row.content_url == f"file://{shared}/{digest[:2]}/{digest}"
    assert (shared / digest[:2] / digest).read_bytes() == CSV
    assert store.received_content(digest, engine=db) is None
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM received_file")).scalar_one() == 0
    source.unlink()
    assert row.id is not None

    receipt = ingest_received(row.id, initiative=initiative, settings=settings, engine=db)

    assert receipt.status == "accepted"
    stored = store.get_submission(row.id, engine=db)
    assert stored is not None and stored.archive_path is not None
    assert Path(stored.archive_path).read_bytes() == CSV


def test_an_object_whose_bytes_changed_is_not_ingested(tmp_path: Path) -> None:
    url = blobs.put(f"file://{tmp_path}", CSV)
    assert blobs.put(f"file://{tmp_path}", CSV) == url  # the same bytes: the same object
    Path(url.removeprefix("file://")).write_bytes(b"tampered")

    with pytest.raises(OSError, match="do not match their SHA-256"):
        blobs.get(url, hashlib.sha256(CSV).hexdigest())
    assert not list(tmp_path.rglob("*.part"))


def test_any_fsspec_file_system_will_do() -> None:
    url = blobs.put("memory://ci-pipeline/received", CSV)
    assert url.startswith("memory://ci-pipeline/received/")
    assert blobs.get(url, hashlib.sha256(CSV).hexdigest()) == CSV
