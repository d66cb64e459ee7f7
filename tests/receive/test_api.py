"""The HTTP intake API: every status it answers, and one partner never sees another's data."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.requests import ClientDisconnect

from ci_pipeline import events, store
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake, tokens
from ci_pipeline.receive.api import SubmissionOut, create_app, routes, uploads
from tests.helpers import ingest, ingest_received, postgres_schema, postgres_url

A, B = "galilee-foundation", "braude-college"
LIMIT = 4096  # the API's max_file_bytes in these tests
FUND_CSV = b"measure_id,geo_code,period,value\nnew-resources-nis,beit-hakerem,2025-Q1,250000\n"
UPLOAD = FUND_CSV.replace(b"250000", b"260000")  # a correction of what the fixture stored


def write(path: Path, *rows: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["measure_id,geo_code,period,value", *rows]) + "\n", "utf-8")
    return path


@dataclass(frozen=True)
class World:
    """Both partners' tokens and stored submissions (ingested without Prefect)."""

    client: TestClient
    sent: list[events.EventSpec]
    settings: Settings
    engine: Engine
    a: dict[str, str]  # A's Authorization header
    a_ok: int
    a_bad: int
    b_ok: int
    b_bad: int
    b_hashes: tuple[str, str]
    b_names: tuple[str, str]


def build_world(
    engine: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> Iterator[World]:
    """Two partners with an accepted and a rejected submission each, and a client for A."""
    intake.prepare_database(initiative, engine=engine)

    def put(path: Path, partner: str, period: str) -> intake.Receipt:
        return ingest(
            path, partner, period, initiative=initiative, settings=settings, engine=engine
        )

    a_ok = put(write(tmp_path / "fund.csv", FUND_CSV.decode().splitlines()[1]), A, "2025-Q1")
    a_bad = put(
        write(tmp_path / "fund-bad.csv", "new-resources-nis,Haifa,2025-Q1,-5"), A, "2025-Q1"
    )
    b_ok = put(
        write(tmp_path / "braude-secret-jan.csv", "starter-students-trained,karmiel,2025-01,4"),
        B,
        "2025-01",
    )
    b_bad = put(
        write(tmp_path / "braude-secret-bad.csv", "starter-students-trained,karmiel,2025-01,lots"),
        B,
        "2025-01",
    )
    assert [r.status for r in (a_ok, a_bad, b_ok, b_bad)] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
    ]
    b_hashes = [hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.glob("braude-*")]
    sent: list[events.EventSpec] = []
    api_settings = settings.model_copy(update={"max_file_bytes": LIMIT})
    app = create_app(api_settings, initiative, engine=engine, emitter=sent.append)
    secret = tokens.issue(initiative, A, engine=engine).secret
    tokens.issue(initiative, B, engine=engine)
    with TestClient(app) as client:
        yield World(
            client=client,
            sent=sent,
            settings=api_settings,
            engine=engine,
            a={"Authorization": f"Bearer {secret}"},
            a_ok=a_ok.submission_id,
            a_bad=a_bad.submission_id,
            b_ok=b_ok.submission_id,
            b_bad=b_bad.submission_id,
            b_hashes=(b_hashes[0], b_hashes[1]),
            b_names=("braude-secret-jan.csv", "braude-secret-bad.csv"),
        )


@pytest.fixture
def world(
    engine: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> Iterator[World]:
    """The world on each database: for what reads or writes storage."""
    yield from build_world(engine, initiative, settings, tmp_path)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def read_only_world(
    request: pytest.FixtureRequest,
    initiative: Initiative,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    """The world on each database, built once for the tests that only read it (GETs with A's
    token): nothing they do changes the database, the files or the events sent."""
    folder = tmp_path_factory.mktemp("api-read-only")
    settings = get_settings(home=folder / "home")
    if request.param == "sqlite":
        engine = store.make_engine(f"sqlite:///{folder / 'ci_pipeline.db'}")
        try:
            yield from build_world(engine, initiative, settings, folder / "files")
        finally:
            engine.dispose()
    else:
        with postgres_schema(postgres_url()) as (engine, _):
            yield from build_world(engine, initiative, settings, folder / "files")


@pytest.fixture
def edge(
    sqlite_engine: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> Iterator[World]:
    """The world on SQLite only: for checks made at the HTTP edge, before storage matters."""
    yield from build_world(sqlite_engine, initiative, settings, tmp_path)


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --- 200 / 202 -----------------------------------------------------------------------------------


def upload(
    edge: World, filename: str = "f.csv", content_type: str | None = None, body: bytes = FUND_CSV
) -> Response:
    """Partner A uploads ``body`` (the fund's file) named ``filename`` for 2025-Q1, declaring
    ``content_type`` (None: no Content-Type header)."""
    headers = edge.a | ({"Content-Type": content_type} if content_type else {})
    return edge.client.post(
        "/v1/submissions",
        params={"period": "2025-Q1", "filename": filename},
        content=body,
        headers=headers,
    )


def test_health_needs_no_token(edge: World) -> None:
    response = edge.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_an_upload_is_received_and_announced(world: World, initiative: Initiative) -> None:
    response = world.client.post(
        "/v1/submissions",
        params={"period": "2025q1", "filename": "fund.csv"},
        content=UPLOAD,
        headers=world.a | {"Content-Type": "text/csv"},
    )

    assert response.status_code == 202, response.text
    digest = hashlib.sha256(UPLOAD).hexdigest()
    received = response.json()
    submission_id = received["submission_id"]
    assert received == {
        "status": "received",
        "submission_id": submission_id,
        "partner_id": A,
        "period": "2025-Q1",
        "file_name": "fund.csv",
        "content_hash": digest,
        "size_bytes": len(UPLOAD),
        "submission_url": f"/v1/submissions/{submission_id}",
        "submissions_url": f"/v1/submissions?content_hash={digest}",
    }
    (spec,) = world.sent
    assert spec.event == events.SUBMISSION_RECEIVED
    assert (spec.labels["ci.partner"], spec.labels["ci.period"]) == (A, "2025-Q1")
    assert spec.labels["ci.source"] == "api"
    assert spec.labels["ci.submission"] == str(submission_id)
    assert spec.payload["content_hash"] == digest and spec.payload["file_name"] == "fund.csv"
    # The 202 came after the bytes and the submission were committed; no spool is left.
    assert store.received_content(digest, engine=world.engine) == UPLOAD
    assert files_in(world.settings.received_dir) == []

    # Polling finds it received, until the ingest run (here: by hand) decides it.
    poll = received["submission_url"]
    assert world.client.get(poll, headers=world.a).json()["status"] == "received"
    ingest_received(
        submission_id, initiative=initiative, settings=world.settings, engine=world.engine
    )
    (row,) = world.client.get(received["submissions_url"], headers=world.a).json()
    assert (row["status"], row["content_hash"], row["supersedes"]) == (
        "accepted",
        digest,
        world.a_ok,
    )


def test_the_partner_comes_from_the_token_only(world: World) -> None:
    response = world.client.post(
        "/v1/submissions",
        params={"period": "2025-Q1", "filename": "fund.csv", "partner_id": B},
        content=FUND_CSV,
        headers=world.a | {"X-Partner-Id": B},
    )

    assert response.status_code == 202
    assert response.json()["partner_id"] == A
    assert world.sent[0].labels["ci.partner"] == A
    row = store.get_submission(response.json()["submission_id"], engine=world.engine)
    assert row is not None and row.partner_id == A
    assert not (world.settings.received_dir / B).exists()


def test_the_file_name_cannot_leave_its_folder(edge: World) -> None:
    response = edge.client.post(
        "/v1/submissions",
        params={
            "period": "2025-Q1",
            "filename": "..\\../etc/my data;rm.csv",
            "encoding": "cp1255",
            "locale": "de-de",
        },
        content=FUND_CSV,
        headers=edge.a,
    )

    assert response.status_code == 202
    assert response.json()["file_name"] == "my_data_rm.csv"
    row = store.get_submission(response.json()["submission_id"], engine=edge.engine)
    assert row is not None and row.file_name == "my_data_rm.csv"
    assert row.archive_path is not None
    assert Path(row.archive_path).parent.parent == edge.settings.archive_dir / A / "2025-Q1"
    # As declared for this file alone, the locale as babel spells it, for the ingest run.
    assert store.submission_options(row) == {"encoding": "cp1255", "locale": "de_DE"}


@pytest.mark.parametrize("letter", ["ד", "ع", "a"])
def test_a_long_name_in_any_script_is_cut_to_what_a_file_system_holds(
    edge: World, letter: str
) -> None:
    """130 Hebrew letters are 260 bytes: the stored name (a 31-byte stamp, then the name) must
    stay under the 255 bytes file systems allow, cut at a whole letter."""
    response = edge.client.post(
        "/v1/submissions",
        params={"period": "2025-Q1", "filename": letter * 130 + ".csv"},
        content=FUND_CSV,
        headers=edge.a,
    )

    assert response.status_code == 202, response.text
    name = response.json()["file_name"]
    assert name.endswith(".csv") and set(name.removesuffix(".csv")) == {letter}
    assert len(name.encode("utf-8")) <= 200
    row = store.get_submission(response.json()["submission_id"], engine=edge.engine)
    assert row is not None and row.archive_path is not None
    archived = Path(row.archive_path).name  # the name the audit copy will be written under
    assert len(archived.encode("utf-8")) <= 255 and archived == name


def test_a_partner_reads_its_own_submissions(world: World) -> None:
    listed = world.client.get("/v1/submissions", headers=world.a)
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()] == [world.a_bad, world.a_ok]
    assert (
        listed.json() == world.client.get(f"/v1/partners/{A}/submissions", headers=world.a).json()
    )
    assert str(world.settings.home) not in listed.text  # no internal paths
    assert all("report_path" not in r and "archive_path" not in r for r in listed.json())

    one = world.client.get(f"/v1/submissions/{world.a_bad}", headers=world.a).json()
    assert (one["status"], one["partner_id"]) == ("rejected", A)
    assert one["report_url"] == f"/v1/submissions/{world.a_bad}/report.json"
    assert one["errors_url"] == f"/v1/submissions/{world.a_bad}/errors.csv"

    errors = world.client.get(one["errors_url"], headers=world.a)
    assert errors.status_code == 200 and errors.headers["content-type"].startswith("text/csv")
    assert errors.content.startswith(b"\xef\xbb\xbfrow,column,value,rule,message")
    report = world.client.get(one["report_url"], headers=world.a)
    assert report.status_code == 200 and report.json()["status"] == "rejected"

    period = world.client.get("/v1/submissions", params={"period": "2025q1"}, headers=world.a)
    assert len(period.json()) == 2
    limited = world.client.get("/v1/submissions", params={"limit": 1}, headers=world.a)
    assert [r["id"] for r in limited.json()] == [world.a_bad]


# --- 401 / 403 / 404 -----------------------------------------------------------------------------

V1 = [
    ("GET", "/v1/submissions"),
    ("POST", "/v1/submissions?period=2025-Q1&filename=fund.csv"),
    ("GET", "/v1/submissions/1"),
    ("GET", "/v1/submissions/1/errors.csv"),
    ("GET", "/v1/submissions/1/report.json"),
    ("GET", f"/v1/partners/{A}/submissions"),
]


@pytest.mark.parametrize("case", ["missing", "basic", "malformed", "unknown", "revoked"])
def test_no_valid_token_no_access(world: World, initiative: Initiative, case: str) -> None:
    revoked = tokens.issue(initiative, A, engine=world.engine).secret
    tokens.revoke(A, engine=world.engine, token_id=None)  # A's tokens, the fixture's included
    headers = {
        "missing": {},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "unknown": {"Authorization": "Bearer cip_" + "A" * 43},
        "revoked": {"Authorization": f"Bearer {revoked}"},
    }[case]
    for method, url in V1:
        response = world.client.request(method, url, headers=headers, content=FUND_CSV)
        assert response.status_code == 401, (url, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert world.sent == [] and files_in(world.settings.received_dir) == []


def test_another_partners_list_is_forbidden(world: World) -> None:
    response = world.client.get(f"/v1/partners/{B}/submissions", headers=world.a)
    assert response.status_code == 403


def test_missing_submission_and_missing_report(world: World) -> None:
    missing = world.client.get("/v1/submissions/999999", headers=world.a)
    assert (missing.status_code, missing.json()) == (404, {"detail": "no such submission"})
    # ids no integer column holds are missing too, on every route that takes one
    for huge in ("9223372036854775808", "99999999999999999999999", "0", "-1"):
        for suffix in ("", "/errors.csv", "/report.json"):
            answer = world.client.get(f"/v1/submissions/{huge}{suffix}", headers=world.a)
            assert (answer.status_code, answer.json()) == (404, {"detail": "no such submission"})
    no_errors = world.client.get(f"/v1/submissions/{world.a_ok}/errors.csv", headers=world.a)
    assert no_errors.status_code == 404  # accepted without a problem: nothing to report


# --- 413 / 422 -----------------------------------------------------------------------------------


def test_too_large_by_content_length_is_refused_unread(edge: World) -> None:
    response = edge.client.post(
        "/v1/submissions",
        params={"period": "2025-Q1", "filename": "big.csv"},
        content=b"x" * (LIMIT + 1),
        headers=edge.a,
    )
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["detail"]
    assert files_in(edge.settings.received_dir) == [] and edge.sent == []


def test_too_large_while_streaming_without_content_length(edge: World) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 1000

    request = edge.client.build_request(
        "POST",
        "/v1/submissions",
        params={"period": "2025-Q1", "filename": "big.csv"},
        content=chunks(),
        headers=edge.a,
    )
    assert "content-length" not in request.headers  # chunked: only counting can stop it
    response = edge.client.send(request)
    assert response.status_code == 413
    assert files_in(edge.settings.received_dir) == [] and edge.sent == []


@pytest.mark.parametrize(
    ("params", "body", "says"),
    [
        ({"period": "2025-Q5", "filename": "f.csv"}, FUND_CSV, "is not a period"),
        ({"period": "2025-Q1", "filename": "f.exe"}, FUND_CSV, "not a file the pipeline reads"),
        ({"period": "2025-Q1", "filename": ".."}, FUND_CSV, "not a file the pipeline reads"),
        ({"period": "2025-Q1", "filename": "f.csv", "encoding": "klingon"}, FUND_CSV, "encoding"),
        ({"period": "2025-Q1", "filename": "f.csv", "locale": "xx_YY"}, FUND_CSV, "locale"),
        ({"period": "2025-Q1", "filename": "f.csv"}, b"", "empty"),
    ],
    ids=["period", "suffix", "no-name", "encoding", "locale", "empty"],
)
def test_unacceptable_uploads(edge: World, params: dict[str, str], body: bytes, says: str) -> None:
    response = edge.client.post("/v1/submissions", params=params, content=body, headers=edge.a)
    assert response.status_code == 422
    assert says in response.json()["detail"]
    assert files_in(edge.settings.received_dir) == [] and edge.sent == []


XLSX_HEAD = b"PK\x03\x04\x14\x00\x06\x00"  # how every .xlsx (a zip archive) starts
PARQUET_HEAD = b"PAR1\x15\x04\x15\x10"


@pytest.mark.parametrize(
    ("filename", "content_type", "body"),
    [
        ("f.csv", None, FUND_CSV),
        ("f.csv", "application/octet-stream", FUND_CSV),
        ("f.csv", "application/x-www-form-urlencoded", FUND_CSV),  # curl --data-binary
        ("f.csv", "text/csv; charset=windows-1255", FUND_CSV),
        ("f.csv", "application/vnd.ms-excel", FUND_CSV),  # a Windows browser with Excel
        ("f.tsv", "text/tab-separated-values", FUND_CSV),
        ("f.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", XLSX_HEAD),
        ("f.xlsx", None, XLSX_HEAD),
        ("f.parquet", "application/vnd.apache.parquet", PARQUET_HEAD),
    ],
)
def test_a_declared_type_that_fits_the_name_is_received(
    edge: World, filename: str, content_type: str | None, body: bytes
) -> None:
    response = upload(edge, filename, content_type, body)
    assert response.status_code == 202, response.text
    row = store.get_submission(response.json()["submission_id"], engine=edge.engine)
    assert row is not None
    assert store.received_content(row.content_hash, engine=edge.engine) == body
    assert len(edge.sent) == 1


@pytest.mark.parametrize(
    ("filename", "content_type", "body", "says"),
    [
        ("f.csv", "image/png", FUND_CSV, "'image/png' is not that of a csv file"),
        ("f.xlsx", "text/csv", XLSX_HEAD, "'text/csv' is not that of a xlsx file"),
        ("f.parquet", "text/plain", PARQUET_HEAD, "'text/plain' is not that of a parquet file"),
        ("f.csv", "multipart/form-data; boundary=x", FUND_CSV, "not as a form field"),
        # The bytes contradict the name, whatever was declared.
        ("f.xlsx", None, FUND_CSV, "its bytes are not a zip archive"),
        ("f.xlsx", "application/octet-stream", FUND_CSV, "its bytes are not a zip archive"),
        ("f.parquet", None, FUND_CSV, "its bytes are not a Parquet file"),
        ("f.csv", "text/csv", XLSX_HEAD + FUND_CSV, "its bytes are a zip archive"),
        ("f.txt", None, PARQUET_HEAD, "its bytes are a Parquet file"),
    ],
)
def test_a_type_or_bytes_that_contradict_the_name_are_refused_415(
    edge: World, filename: str, content_type: str | None, body: bytes, says: str
) -> None:
    response = upload(edge, filename, content_type, body)
    assert response.status_code == 415, response.text
    assert says in response.json()["detail"]
    assert files_in(edge.settings.received_dir) == [] and edge.sent == []


def test_a_file_that_could_not_be_stored_is_not_received_and_leaves_no_spool(
    edge: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is down: 503, nothing received, nothing announced, no spooled upload left;
    any other failure while storing (a full disk) leaves no spool either."""

    def database_down(*_: object, **__: object) -> None:
        raise OperationalError("INSERT", {}, Exception("could not connect to server"))

    monkeypatch.setattr(routes.intake, "take_bytes", database_down)
    response = upload(edge)
    assert response.status_code == 503
    assert "nothing was received" in response.json()["detail"]
    assert files_in(edge.settings.received_dir) == [] and edge.sent == []

    def full_disk(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(routes.intake, "take_bytes", full_disk)
    with pytest.raises(OSError, match="No space left"):
        upload(edge)
    assert files_in(edge.settings.received_dir) == [] and edge.sent == []
    assert store.list_submissions(engine=edge.engine) == [
        s for s in store.list_submissions(engine=edge.engine) if s.status != "received"
    ]


def test_a_client_gone_mid_upload_leaves_no_spooled_file(tmp_path: Path) -> None:
    class Gone:
        """A request whose client disconnects after the first chunk."""

        async def stream(self) -> AsyncIterator[bytes]:
            yield FUND_CSV
            raise ClientDisconnect()

    with pytest.raises(ClientDisconnect):
        asyncio.run(uploads.spool(Gone(), tmp_path, LIMIT))  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_an_upload_is_never_written_through_a_link_in_received(edge: World, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    edge.settings.received_dir.mkdir(parents=True, exist_ok=True)
    (edge.settings.received_dir / A).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(OSError, match="symbolic link"):
        upload(edge)
    assert list(elsewhere.iterdir()) == [] and edge.sent == []


def test_a_bad_period_filter_is_422(edge: World) -> None:
    response = edge.client.get("/v1/submissions", params={"period": "soon"}, headers=edge.a)
    assert response.status_code == 422 and "is not a period" in response.json()["detail"]


# --- one partner never sees another's ------------------------------------------------------------

CROSS = {
    "b-accepted": ("/v1/submissions/{b_ok}", 404),
    "b-rejected": ("/v1/submissions/{b_bad}", 404),
    "b-errors-csv": ("/v1/submissions/{b_bad}/errors.csv", 404),
    "b-report-json": ("/v1/submissions/{b_bad}/report.json", 404),
    "b-accepted-report-json": ("/v1/submissions/{b_ok}/report.json", 404),
    "b-partner-list": ("/v1/partners/{b}/submissions", 403),
    "b-partner-list-by-hash": ("/v1/partners/{b}/submissions?content_hash={b_hash}", 403),
    "list-by-b-hash": ("/v1/submissions?content_hash={b_hash}", 200),
    "list-by-b-period": ("/v1/submissions?period=2025-01", 200),
    "list-naming-b": ("/v1/submissions?partner_id={b}", 200),
}


@pytest.mark.parametrize("case", list(CROSS))
def test_a_token_never_reaches_another_partners_data(read_only_world: World, case: str) -> None:
    world = read_only_world
    template, status = CROSS[case]
    url = template.format(b=B, b_ok=world.b_ok, b_bad=world.b_bad, b_hash=world.b_hashes[0])

    response = world.client.get(url, headers=world.a)

    assert response.status_code == status, response.text
    if status == 404:  # exactly what a submission that does not exist gets
        missing = url.replace(f"/{world.b_ok}", "/999999").replace(f"/{world.b_bad}", "/999999")
        assert response.json() == world.client.get(missing, headers=world.a).json()
    if status == 200:
        rows = response.json()
        assert {r["partner_id"] for r in rows} <= {A}
        assert not {r["id"] for r in rows} & {world.b_ok, world.b_bad}
    for secret in (*world.b_hashes, *world.b_names):
        if secret not in url:
            assert secret not in response.text
    assert world.sent == []  # reading announces nothing (and leaves the shared world as it was)


def test_the_api_schema_is_the_stored_records_public_fields(edge: World) -> None:
    """SubmissionOut is derived from the stored record: the two cannot drift apart."""
    public = [
        name
        for name in store.SubmissionFields.model_fields
        if name not in store.SUBMISSION_INTERNAL
    ]
    links = ["report_url", "errors_url"]
    assert list(SubmissionOut.model_fields) == [*public, *links]
    schema = edge.client.get("/openapi.json").json()["components"]["schemas"]["SubmissionOut"]
    assert list(schema["properties"]) == [*public, *links]
    assert schema["required"] == [*public, *links]
    assert {
        "initiative_id",
        "report_path",
        "archive_path",
        "options",
        "claimed_at",
        "content_url",
    } == set(store.SUBMISSION_INTERNAL)
    [listed] = edge.client.get("/v1/submissions?limit=1", headers=edge.a).json()
    assert list(listed) == [*public, *links]


def test_the_openapi_document(edge: World) -> None:
    doc = edge.client.get("/openapi.json").json()
    assert doc["info"]["title"].startswith("ci-pipeline intake API")
    assert doc["components"]["securitySchemes"]["PartnerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A partner's API token (`ci-pipeline tokens issue --partner ...`).",
    }
    upload = doc["paths"]["/v1/submissions"]["post"]
    assert set(upload["requestBody"]["content"]) == {
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.apache.parquet",
        "application/octet-stream",
    }
    assert {"202", "401", "413", "415", "422"} <= set(upload["responses"])
    assert upload["security"] == [{"PartnerToken": []}]
    assert "403" in doc["paths"]["/v1/partners/{partner_id}/submissions"]["get"]["responses"]
    assert "404" in doc["paths"]["/v1/submissions/{submission_id}"]["get"]["responses"]
    json.dumps(doc)
