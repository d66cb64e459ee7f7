"""The demo end to end: reset the data folder, generate the sample files, ingest them through the
ingest flow and process the period. The ``demo`` command prints what this returns.

``demo --reset`` deletes only what the demo made. When the demo starts in a data folder that
is not there yet (or empty), it writes a token in :data:`MARKER` there, and in the database too
when it finds that empty (:func:`store.mark_demo_database`). A reset then drops the database
only if it is empty or carries the same token, and deletes the folder's database, reports,
archive, Data Docs and alert files only if the folder carries the marker; otherwise it refuses,
naming the database and the folder, and deletes nothing. So a ``CI_PIPELINE_DATABASE_URL`` or
``CI_PIPELINE_HOME`` left pointing at real data is never wiped by the demo.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from ci_pipeline import demo, store
from ci_pipeline.config import Settings
from ci_pipeline.errors import PipelineError
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive.intake import Receipt, prepare_database, take
from ci_pipeline.report import cells_folder, drawn_folder, kept_folder, rows_folder

#: The file in the data folder that says the demo made it, with the token it marked the
#: database with.
MARKER = "ci-pipeline-demo.txt"


@dataclass
class DemoRun:
    """What a demo run did: every ingested file's receipt, the process run, the files held."""

    files: list[demo.DemoFile]
    receipts: list[Receipt]
    processed: dict[str, Any]
    held: list[demo.DemoFile] = field(default_factory=list)


def parse_holds(hold: list[str]) -> set[tuple[str, str]]:
    """``PARTNER:PERIOD`` arguments as keys; raises PipelineError for any other shape."""
    keys = {tuple(h.split(":", 1)) for h in hold}
    if any(len(k) != 2 for k in keys):
        raise PipelineError("--hold takes PARTNER:PERIOD, e.g. employment-service:2025-Q4")
    return {(k[0], k[1]) for k in keys}


def home_token(settings: Settings) -> str | None:
    """The token of :data:`MARKER` in the data folder, or None if the demo did not make it."""
    marker = settings.home / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    lines = marker.read_text(encoding="utf-8").splitlines()
    return lines[0].strip() if lines and lines[0].strip() else None


def _fresh(folder: Path) -> bool:
    """Whether a folder is not there, or empty: the demo may call it its own."""
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def shown_url(url: str) -> str:
    """A database URL fit to print (its password hidden)."""
    return make_url(url).render_as_string(hide_password=True)


def claim(settings: Settings) -> str | None:
    """Mark the data folder and the database as the demo's where the demo makes them.

    A folder that is not there (or is empty) gets :data:`MARKER`; a database with no table
    gets the folder's token. Returns the folder's token (None: not the demo's folder).
    """
    token = home_token(settings)
    if token is None and _fresh(settings.home):
        token = secrets.token_hex(16)
        settings.home.mkdir(parents=True, exist_ok=True)
        (settings.home / MARKER).write_text(
            f"{token}\n"
            "# Made by `ci-pipeline demo`: `demo --reset` may empty this folder and the database\n"
            "# it marked with this token. Remove this file to keep it from ever doing so.\n",
            encoding="utf-8",
        )
    url = settings.resolved_database_url
    if token is not None and store.database_is_empty(url):
        store.mark_demo_database(url, token)
    return token


def reset(settings: Settings) -> None:
    """Empty the data folder's database, reports, archive, Data Docs and alert files — only
    if the demo made them (see the module's docstring); else raise, having deleted nothing."""
    url = settings.resolved_database_url
    token = home_token(settings)
    if token is None and not _fresh(settings.home):
        raise PipelineError(
            f"demo --reset deletes only what the demo made, and the data folder {settings.home} "
            f"was not made by it (it has no {MARKER}): nothing was deleted. Run the demo in a new "
            "CI_PIPELINE_HOME (make demo uses .demo/; remove that folder to start over)."
        )
    empty = store.database_is_empty(url)
    if not empty and (token is None or store.demo_mark(url) != token):
        raise PipelineError(
            f"demo --reset drops only a database the demo made, and {shown_url(url)} was not "
            f"made by the demo of {settings.home}: nothing was deleted (not the database, not "
            "archive/ or reports/). Point CI_PIPELINE_DATABASE_URL at an empty database for the "
            "demo, or unset it to use SQLite in CI_PIPELINE_HOME."
        )
    store.dispose_engines()  # no pooled connection may outlive what it points at
    if not empty:
        path = store.sqlite_file(url) if settings.database_url is None else None
        if path is not None:
            for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                file.unlink(missing_ok=True)
        else:
            store.drop_demo_database(url)
    for folder in (
        settings.reports_dir,
        settings.archive_dir,
        settings.gx_dir,
        settings.expectations_dir,
        settings.report_card_dir,
        drawn_folder(settings.report_card_dir),
        kept_folder(settings.report_card_dir),
        cells_folder(settings.report_card_dir),
        rows_folder(settings.report_card_dir),
    ):
        shutil.rmtree(folder, ignore_errors=True)
    for file in (settings.alerts_file, settings.engineers_file):
        file.unlink(missing_ok=True)


def run_demo(
    settings: Settings,
    initiative: Initiative,
    *,
    hold: set[tuple[str, str]],
    progress: Callable[[str], None] = lambda _message: None,
) -> DemoRun:
    """Generate the sample files, ingest all but the held ones, and process the period as of
    :data:`demo.DEMO_AS_OF`. ``progress`` is told each step as it starts."""
    claim(settings)  # before the engine: it makes the database's tables
    engine = store.engine_for(settings.resolved_database_url)
    prepare_database(initiative, engine=engine)
    generated = demo.generate(initiative, settings.home / "demo-files")
    files = [f for f in generated if (f.partner_id, f.period) not in hold]
    held = [f for f in generated if (f.partner_id, f.period) in hold]
    if len(held) != len(hold):
        missing = hold - {(f.partner_id, f.period) for f in held}
        raise PipelineError(
            f"--hold: the demo has no file for {', '.join(':'.join(k) for k in sorted(missing))}"
        )
    from ci_pipeline.flows.ingest import ingest_submission
    from ci_pipeline.flows.process import process_period
    from ci_pipeline.flows.runtime import in_process

    receipts: list[Receipt] = []
    progress("Starting a local Prefect server…")
    with in_process():
        for i, f in enumerate(files, 1):
            progress(f"Ingesting {i}/{len(files)}: {f.partner_id} {f.period} {f.path.name}")
            row = take(
                f.path,
                f.partner_id,
                f.period,
                initiative=initiative,
                settings=settings,
                engine=engine,
            )
            assert row.id is not None
            receipts.append(Receipt(**ingest_submission(row.id)))
        progress(
            f"Processing: indicators, quality gate, regressions, alerts (as of {demo.DEMO_AS_OF})"
        )
        processed = process_period(as_of=demo.DEMO_AS_OF)
    return DemoRun(files, receipts, processed, held)
