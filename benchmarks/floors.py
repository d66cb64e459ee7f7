"""What the benchmarks measure the project against: the observation rows polars alone makes of a
CSV, a bulk insert through ADBC's ``adbc_ingest`` (``adbc-driver-sqlite`` is a project
dependency, the store's own bulk path on SQLite; ``adbc-driver-postgresql`` is not, and when it
is not importable the PostgreSQL floor is the store's ``COPY``), and the process's peak RSS.
Shared by ``ingest_rows.py`` and ``scale.py``.
"""

from __future__ import annotations

import importlib.util
import resource
import time
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import Session

from ci_pipeline import store
from ci_pipeline.clock import utcnow


def backend_of(database_url: str) -> str:
    """``sqlite`` or ``postgresql``."""
    return make_url(database_url).get_backend_name()


def has_adbc(database_url: str) -> bool:
    """Whether the ADBC driver for this database is importable."""
    return importlib.util.find_spec(f"adbc_driver_{backend_of(database_url)}") is not None


def adbc_connect(database_url: str) -> Any:
    """An ADBC DB-API connection to the database a SQLAlchemy URL names."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        import adbc_driver_sqlite.dbapi as lite  # type: ignore[import-not-found, unused-ignore]

        return lite.connect(url.database)
    import adbc_driver_postgresql.dbapi as pg  # type: ignore[import-not-found, unused-ignore]

    return pg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))


def adbc_ingest(
    database_url: str, table: str, frame: pl.DataFrame, *, schema: str | None = None
) -> None:
    """``adbc_ingest`` (append) of a frame into an existing table, on a connection of its own."""
    conn = adbc_connect(database_url)
    with conn, conn.cursor() as cur:
        cur.adbc_ingest(table, frame.to_arrow(), mode="append", db_schema_name=schema)
        conn.commit()


def adbc_read(database_url: str, sql: str) -> pl.DataFrame:
    """A query's result read as Arrow through ADBC, as a polars frame. SQLite's driver infers
    a column's type from its first batch (a column null there is read as integers, and a later
    float fails), so on SQLite the whole result is one batch."""
    conn = adbc_connect(database_url)
    with conn, conn.cursor() as cur:
        if backend_of(database_url) == "sqlite":
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(2**30)})
        cur.execute(sql)
        frame = pl.from_arrow(cur.fetch_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def observation_frame(
    csv: Path, submission_id: int, partner_id: str, dims: list[str]
) -> pl.DataFrame:
    """A submission CSV as observation rows, read and shaped by polars alone (no checks): the
    file's ``value``, and ``numerator`` / ``denominator`` where it has them; ``dims`` are the
    breakdown columns, joined into the ``disaggregation`` key as the store keeps it."""
    frame = pl.read_csv(csv, infer_schema=False)

    def number(name: str) -> pl.Expr:
        if name in frame.columns:
            return pl.col(name).cast(pl.Float64).alias(name)
        return pl.lit(None, pl.Float64).alias(name)

    return frame.select(
        pl.lit(submission_id, pl.Int32).alias("submission_id"),
        pl.lit(partner_id).alias("partner_id"),
        "measure_id",
        pl.lit(1, pl.Int32).alias("measure_version"),
        "geo_code",
        "period",
        pl.concat_str([pl.lit(f"{d}=") + pl.col(d) for d in sorted(dims)], separator=";").alias(
            "disaggregation"
        ),
        number("numerator"),
        number("denominator"),
        number("value"),
        (pl.int_range(pl.len(), dtype=pl.Int32) + 2).alias("source_row"),
    )


def ingest_floor(
    database_url: str,
    engine: Engine,
    csv: Path,
    submission: dict[str, str],
    dims: list[str],
    *,
    schema: str | None = None,
) -> tuple[float, str, pl.DataFrame, int]:
    """The ingest's floor: polars reads the CSV into observation rows and they are bulk-inserted
    into the observation table, under a submission row made first (untimed) from
    ``submission`` (its ``initiative_id``, ``partner_id``, ``period`` and ``status``).
    Returns the seconds, how the rows were inserted, the rows and the submission's id."""
    with Session(engine) as session:
        sub = store.Submission(
            initiative_id=submission["initiative_id"],
            partner_id=submission["partner_id"],
            period=submission["period"],
            status=submission["status"],
            content_hash="floor",
            file_name="floor.csv",
            file_format="csv",
            received_at=utcnow(),
        )
        session.add(sub)
        session.commit()
        assert sub.id is not None
        submission_id = sub.id
    adbc = has_adbc(database_url)
    start = time.perf_counter()
    frame = observation_frame(csv, submission_id, submission["partner_id"], dims)
    if adbc:
        adbc_ingest(database_url, "observation", frame, schema=schema)
    else:
        with engine.begin() as conn:
            store.bulk_insert_observations(conn, frame)
    seconds = time.perf_counter() - start
    postgres = backend_of(database_url) == "postgresql"
    how = "ADBC adbc_ingest" if adbc else ("COPY" if postgres else "executemany")
    return seconds, f"polars read_csv + {how}", frame, submission_id


def peak_rss_mib() -> float:
    """The process's peak resident set size so far, in MiB: Linux's ``VmHWM``, the high-water
    mark of this program's own memory. ``getrusage``'s ``ru_maxrss`` (the fallback elsewhere)
    starts a child process at its parent's size when it was started, so a child of a large
    parent would report the parent's memory as its own."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
