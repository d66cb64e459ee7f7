"""The ingest flow on a temporary Prefect server: its receipt, its name, its tasks, its artifacts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.states import State

from ci_pipeline import store
from ci_pipeline.config import DEFAULT_INITIATIVE, Settings, get_settings
from ci_pipeline.errors import SubmissionRefused
from ci_pipeline.flows.ingest import ingest_submission
from ci_pipeline.flows.runtime import in_process
from ci_pipeline.model.load import load_initiative
from ci_pipeline.receive import intake
from tests.helpers import read_run, run_flow, task_names, task_runs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

FUND, QUARTER = "galilee-foundation", "2025-Q1"
GOOD = "measure_id,geo_code,period,value\nnew-resources-nis,beit-hakerem,2025-Q1,250000\n"
BAD = (
    "measure_id,geo_code,period,value\n"
    "new-resources-nis,beit-hakerem,2025-Q1,lots\n"
    "new-resources-nis,Haifa,2025-Q1,-5\n"
)


def received(
    path: Path, partner_id: str = FUND, period: str = QUARTER, initiative_dir: Path | None = None
) -> int:
    """The file received (bytes and submission stored), as the command line does first."""
    settings = get_settings(**({"initiative": initiative_dir} if initiative_dir else {}))
    initiative = load_initiative(settings.initiative)
    engine = store.engine_for(settings.resolved_database_url)
    intake.prepare_database(initiative, engine=engine)
    row = intake.take(
        path, partner_id, period, initiative=initiative, settings=settings, engine=engine
    )
    assert row.id is not None
    return row.id


def run(path: Path, partner_id: str = FUND, period: str = QUARTER) -> tuple[dict[str, Any], UUID]:
    """The ingest flow on one file, as the command line runs it: its receipt and run id."""
    return run_flow(ingest_submission, received(path, partner_id, period))


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "fund.csv"
    path.write_text(GOOD, encoding="utf-8")
    return path


def test_an_accepted_file_returns_the_receipt(good: Path, settings: Settings) -> None:
    receipt, flow_run_id = run(good)

    assert receipt["status"] == "accepted"
    assert (receipt["partner_id"], receipt["period"], receipt["file_name"]) == (
        FUND,
        QUARTER,
        "fund.csv",
    )
    assert (receipt["rows_total"], receipt["rows_accepted"], receipt["issues"]) == (1, 1, 0)
    assert receipt["message"] == "accepted: 1 row(s) stored"
    # It was stored where the settings point.
    engine = store.make_engine(settings.resolved_database_url)
    try:
        stored = store.get_submission(receipt["submission_id"], engine=engine)
        assert stored is not None and stored.status == "accepted"
        values = store.current_observations(engine=engine, partner_id=FUND)["value"].to_list()
        assert values == [250000.0]
    finally:
        engine.dispose()

    run_ = read_run(flow_run_id)
    assert run_.name == f"ingest {FUND} {QUARTER} #{receipt['submission_id']}"
    assert run_.state is not None and run_.state.name == "Completed"
    assert run_.parameters["submission_id"] == receipt["submission_id"]
    assert task_names(flow_run_id) == ["receive", "read", "validate", "store"]
    assert all(t.state is not None and t.state.is_completed() for t in task_runs(flow_run_id))


def test_a_rejected_file_publishes_a_validation_table(tmp_path: Path, settings: Settings) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD, encoding="utf-8")

    receipt, flow_run_id = run(bad)

    assert receipt["status"] == "rejected"
    assert receipt["issues"] == 3
    assert {i["rule"] for i in receipt["first_issues"]} == {
        "value_is_number",
        "geography_served",
        "value_in_range",
    }
    assert Path(receipt["report_path"]).is_file()
    run_ = read_run(flow_run_id)
    assert run_.name == f"ingest {FUND} {QUARTER} #{receipt['submission_id']}"
    # Named in the UI, of the Completed type: the receipt is still the run's result.
    assert run_.state is not None
    assert (run_.state.name, run_.state.type.value) == ("Rejected", "COMPLETED")
    assert task_names(flow_run_id) == ["receive", "read", "validate", "store"]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"validation-{FUND}"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            ),
            limit=10,
        )
    assert len(artifacts) == 1
    artifact = artifacts[0]
    assert artifact.type == "table"
    # Links to the report as the intake API serves it, never the server's path.
    report = f"{settings.api_base_url}/v1/submissions/{receipt['submission_id']}/report.json"
    assert f"[report.json]({report})" in (artifact.description or "")
    assert receipt["report_path"] not in (artifact.description or "")
    assert isinstance(artifact.data, str)
    assert sorted((r["rule"], r["rows"], r["first_row"]) for r in json.loads(artifact.data)) == [
        ("geography_served", 1, 3),
        ("value_in_range", 1, 3),
        ("value_is_number", 1, 2),
    ]


def test_a_duplicate_stops_after_receive(good: Path, settings: Settings) -> None:
    first, _ = run(good)

    receipt, flow_run_id = run(good)

    assert receipt["status"] == "duplicate"
    assert receipt["duplicate_of"] == first["submission_id"]
    assert task_names(flow_run_id) == ["receive"]
    state = read_run(flow_run_id).state
    assert state is not None and state.name == "Duplicate"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])),
            limit=10,
        )
    assert [(a.key, a.type) for a in artifacts] == [(f"validation-{FUND}", "markdown")]


def test_an_unreadable_file_is_stored_as_a_refusal(tmp_path: Path, settings: Settings) -> None:
    odd = tmp_path / "fund.docx"
    odd.write_bytes(b"not a spreadsheet")

    receipt, flow_run_id = run(odd)

    assert receipt["status"] == "rejected"
    assert [i["rule"] for i in receipt["first_issues"]] == ["file_refused"]
    assert task_names(flow_run_id) == ["receive", "read", "store-refusal"]
    state = read_run(flow_run_id).state
    assert state is not None and (state.name, state.type.value) == ("Refused", "COMPLETED")


def test_a_partner_id_with_an_underscore_still_gets_its_artifact(
    good: Path, tmp_path: Path, settings: Settings
) -> None:
    """Partner ids may hold underscores; Prefect artifact keys may not."""
    folder = tmp_path / "initiative"
    shutil.copytree(DEFAULT_INITIATIVE, folder)
    partners = folder / "partners.yaml"
    partners.write_text(
        partners.read_text(encoding="utf-8").replace("id: galilee-foundation", "id: galilee_fund"),
        encoding="utf-8",
    )

    submission_id = received(good, "galilee_fund", QUARTER, initiative_dir=folder)
    with in_process():
        state: State[Any] = ingest_submission(
            submission_id, initiative_dir=str(folder), return_state=True
        )

    assert state.is_completed(), state.message
    receipt = state.result()
    assert receipt["status"] == "accepted"
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])),
            limit=10,
        )
    assert [a.key for a in artifacts] == ["validation-galilee-fund"]


def test_a_submission_that_does_not_exist_fails_at_once_without_retries(
    settings: Settings,
) -> None:
    with in_process(), pytest.raises(SubmissionRefused, match="there is no submission #999"):
        ingest_submission(999)  # called plainly, it raises the error

    with in_process():
        state: State[Any] = ingest_submission(999, return_state=True)

    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), SubmissionRefused)
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    assert read_run(flow_run_id).name == "ingest #999"
    [receive] = task_runs(flow_run_id)
    assert receive.state is not None and receive.state.is_failed()
    assert receive.run_count == 1  # nothing to retry


def test_a_decided_submission_is_not_ingested_again(good: Path, settings: Settings) -> None:
    """A repeated event, or a retry of the whole run, returns the verdict: nothing changes."""
    first, _ = run(good)

    again, flow_run_id = run_flow(ingest_submission, first["submission_id"])

    assert again == first
    assert task_names(flow_run_id) == ["receive"]
    engine = store.engine_for(settings.resolved_database_url)
    assert [s.id for s in store.list_submissions(engine=engine)] == [first["submission_id"]]


def test_a_passing_disk_error_is_retried(
    good: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = intake.load
    calls: list[str] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append("receive")
        if len(calls) == 1:
            raise OSError("the archive disk was busy")
        return real(*args, **kwargs)

    monkeypatch.setattr(intake, "load", flaky)

    receipt, flow_run_id = run(good)

    assert receipt["status"] == "accepted"
    assert calls == ["receive", "receive"]
    [receive] = [t for t in task_runs(flow_run_id) if t.name.startswith("receive-")]
    assert receive.run_count == 2
