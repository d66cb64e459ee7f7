"""Observations: written set-based (sqlite3 ``executemany`` or PostgreSQL ``COPY``, never
per-object ORM inserts), read back per submission or as the figures that count, compared
between a submission and its successor, and checked for figures already counted.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from ci_pipeline.store.db import read_frame
from ci_pipeline.store.tables import (
    NATURAL_KEY,
    OBSERVATION_COLUMNS,
    VALUE_COLUMNS,
)


def read_observations(submission_id: int, *, engine: Engine) -> pl.DataFrame:
    """All observations of one submission as a polars frame."""
    with engine.connect() as conn:
        return read_frame(
            conn,
            f"SELECT {', '.join(OBSERVATION_COLUMNS)} FROM observation WHERE submission_id = :id",
            {"id": submission_id},
        )


def find_conflicts(
    initiative_id: str, partner_id: str, period: str, observations: pl.DataFrame, *, engine: Engine
) -> pl.DataFrame:
    """Rows this partner already reported in another accepted submission (another period).

    A monthly figure sent again inside a quarterly file would be counted twice; it must be
    corrected by resubmitting the period it was first sent in. Returns the clashing rows with
    ``source_row`` and the id and period of the submission that holds them.
    """
    periods = observations["period"].unique().to_list()
    if not periods:
        return observations.clear()
    with engine.connect() as conn:
        existing = read_frame(
            conn,
            "SELECT o.measure_id, o.geo_code, o.period, o.disaggregation, "
            "s.id AS held_by, s.period AS held_in FROM observation o "
            "JOIN submission s ON s.id = o.submission_id "
            "WHERE s.initiative_id = :ini AND s.partner_id = :partner AND s.status = 'accepted' "
            "AND s.period <> :period AND o.period IN ("
            + ", ".join(f":p{i}" for i in range(len(periods)))
            + ")",
            {"ini": initiative_id, "partner": partner_id, "period": period}
            | {f"p{i}": p for i, p in enumerate(periods)},
        )
    if existing.is_empty():
        return observations.clear().with_columns(
            pl.lit(None, pl.Int64).alias("held_by"), pl.lit(None, pl.Utf8).alias("held_in")
        )
    return observations.join(existing, on=NATURAL_KEY, how="inner")


@dataclass(frozen=True)
class Diff:
    added: int
    removed: int
    changed: int
    rows: pl.DataFrame  # the natural key, change kind, old and new values


def diff_observations(old: pl.DataFrame, new: pl.DataFrame) -> Diff:
    """Rows added, removed and changed between two submissions' observations."""
    keep = [*NATURAL_KEY, *VALUE_COLUMNS]
    joined = old.select(keep).join(
        new.select(keep), on=NATURAL_KEY, how="full", coalesce=True, suffix="_new"
    )
    in_old = (
        pl.col("value").is_not_null()
        | pl.col("numerator").is_not_null()
        | pl.col("denominator").is_not_null()
    )
    in_new = pl.any_horizontal(pl.col(f"{c}_new").is_not_null() for c in VALUE_COLUMNS)
    differs = pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_new")) for c in VALUE_COLUMNS)
    rows = joined.with_columns(
        pl.when(in_old & ~in_new)
        .then(pl.lit("removed"))
        .when(~in_old & in_new)
        .then(pl.lit("added"))
        .when(differs)
        .then(pl.lit("changed"))
        .alias("change")
    ).filter(pl.col("change").is_not_null())
    counts = dict(rows.group_by("change").len().iter_rows())
    return Diff(
        counts.get("added", 0),
        counts.get("removed", 0),
        counts.get("changed", 0),
        rows.sort(NATURAL_KEY),
    )


def bulk_insert_observations(conn: Connection, frame: pl.DataFrame) -> None:
    """Insert observations set-based: PostgreSQL COPY, or the driver's executemany."""
    frame = frame.select(OBSERVATION_COLUMNS)
    if conn.dialect.name == "postgresql":
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False)
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cur,
            cur.copy(
                f"COPY observation ({', '.join(OBSERVATION_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
            ) as copy,
        ):
            copy.write(buffer.getvalue())
        return
    placeholders = ", ".join("?" for _ in OBSERVATION_COLUMNS)
    conn.exec_driver_sql(
        f"INSERT INTO observation ({', '.join(OBSERVATION_COLUMNS)}) VALUES ({placeholders})",
        frame.rows(),
    )


def current_observations(
    *,
    engine: Engine,
    measure_id: str | None = None,
    geo_code: str | None = None,
    period: str | None = None,
    partner_id: str | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """Observations that count: those of accepted submissions, filtered."""
    where = ["s.status = 'accepted'"]
    params: dict[str, Any] = {}
    for name, value in (
        ("measure_id", measure_id),
        ("geo_code", geo_code),
        ("period", period),
        ("partner_id", partner_id),
    ):
        if value is not None:
            where.append(f"o.{name} = :{name}")
            params[name] = value
    sql = (
        f"SELECT {', '.join('o.' + c for c in OBSERVATION_COLUMNS)} FROM observation o "
        f"JOIN submission s ON s.id = o.submission_id WHERE {' AND '.join(where)} "
        "ORDER BY o.measure_id, o.period, o.geo_code, o.partner_id, o.disaggregation"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with engine.connect() as conn:
        frame = read_frame(conn, sql, params)
    if frame.is_empty():
        return pl.DataFrame(schema={c: pl.Utf8 for c in OBSERVATION_COLUMNS})
    return frame
