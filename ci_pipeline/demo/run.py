"""The demo end to end: reset the data folder, generate the sample files, ingest them through the
ingest flow and process the period. The ``demo`` command prints what this returns.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_pipeline import demo, store
from ci_pipeline.config import Settings
from ci_pipeline.errors import PipelineError
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive.intake import Receipt, prepare_database, take


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


def reset(settings: Settings) -> None:
    """Empty the data folder's database, reports, archive, Data Docs and alert files."""
    if settings.database_url is None:
        store.dispose_engines()  # no pooled connection may outlive the file it points at
        Path(settings.resolved_database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    else:
        store.drop_schema(engine=store.engine_for(settings.resolved_database_url))
        store.dispose_engines()  # the next engine_for creates the schema again
    for folder in (settings.reports_dir, settings.archive_dir, settings.gx_dir):
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
