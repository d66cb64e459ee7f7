"""``benchmarks/scale.py``: its synthetic national initiative loads and rolls up as the table
says, and a tiny run prints every row with the rows ingested equal to the rows written, the
floor's tables as large as the project's, and ratios that are its own two figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from benchmarks.scale import (
    HISTORY,
    MEASURES,
    NATIONAL,
    ROOT,
    Geography,
    figures,
    write_initiative,
)
from ci_pipeline.aggregate import aggregate
from ci_pipeline.model.load import load_initiative
from tests.helpers import POSTGRES_ENV

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "scale.py"


def test_the_national_geography_has_three_levels_below_the_root(tmp_path: Path) -> None:
    geo = Geography.of(40)
    write_initiative(tmp_path, geo)
    initiative = load_initiative(tmp_path)
    area = next(iter(geo.areas))
    locality = geo.areas[area]
    assert initiative.ancestors(area) == [locality, geo.localities[locality], ROOT]
    assert len(initiative.geographies) == 1 + len(geo.districts) + 4 + 40
    assert len(initiative.partners) == 100
    # Each regional partner reports half a district; the two halves are the district.
    other = 1 + len(geo.districts)  # the next partner of the first district
    halves = set(geo.regional_areas(1)) | set(geo.regional_areas(other))
    assert halves == {a for a, loc in geo.areas.items() if geo.localities[loc] == geo.districts[0]}
    assert not set(geo.regional_areas(1)) & set(geo.regional_areas(other))


def test_a_measure_quarter_rolls_up_into_the_cells_the_table_counts(tmp_path: Path) -> None:
    geo = Geography.of(40)
    write_initiative(tmp_path, geo)
    initiative = load_initiative(tmp_path)
    rows = figures(list(geo.areas), MEASURES[:2], HISTORY[:1])
    assert rows.height == 2 * 40 * 8
    observations = rows.select(
        pl.lit(1).alias("submission_id"),
        pl.lit(NATIONAL).alias("partner_id"),
        "measure_id",
        "geo_code",
        "period",
        pl.format("age_band={};sex={}", "age_band", "sex").alias("disaggregation"),
        *(pl.col(c).cast(pl.Float64) for c in ("numerator", "denominator", "value")),
    )
    cells = aggregate(observations, initiative)
    assert cells.height == 2 * geo.cells_per_table
    root = cells.filter(geo_code=ROOT, disaggregation="age_band=total;sex=total")
    count = root.filter(measure_id=MEASURES[0])["value"][0]
    assert count == rows.filter(measure_id=MEASURES[0])["value"].sum()


def _table(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        if line.startswith("| ") and not line.startswith(("| step", "|---")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[f"{cells[0]} [{cells[1]}]"] = cells
    return rows


def _seconds(text: str) -> float:
    return float(text.removesuffix(" s"))


@pytest.mark.slow
def test_a_tiny_run_prints_every_row_with_figures_that_add_up(tmp_path: Path) -> None:
    # With CI_PIPELINE_TEST_POSTGRES_URL set (as in CI) the script measures PostgreSQL too,
    # and every backend's rows must add up the same way.
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "4000", "--areas", "20", "--no-report-card"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = _table(done.stdout)
    backends = ["SQLite"] + (["PostgreSQL"] if os.environ.get(POSTGRES_ENV) else [])
    assert sorted({r[1] for r in table.values()}) == sorted(backends)
    for db in backends:
        _check_backend(db, {k: r for k, r in table.items() if r[1] == db})


def _check_backend(db: str, table: dict[str, list[str]]) -> None:
    ingest = [r for k, r in table.items() if k.startswith("ingest")]
    # The 10x ingest exponent (the 400-row ingest) is measured on SQLite only.
    expected = ["ingest 4,000 rows, in-process"]
    if db == "SQLite":
        expected.append("ingest 400 rows, in-process")
    assert [r[0] for r in ingest] == expected
    for step, _, project, floor, ratio, _, note in ingest:
        n = step.split()[1]
        assert f"{n} rows stored by each" in note
        # The ratio is of the unrounded seconds: within what the printed ones' rounding allows.
        p, f = _seconds(project), _seconds(floor)
        low, high = (p - 0.005) / (f + 0.005), (p + 0.005) / max(f - 0.005, 1e-9)
        assert low - 0.01 <= float(ratio.removesuffix("x")) <= high + 0.01
    # 20 areas, 2 localities, 2 districts, the root: 25 geographies x 3 sexes x 5 age bands.
    rebuilds = {k: r for k, r in table.items() if k.startswith("full rebuild")}
    observed = sorted(
        (int(m[1].replace(",", "")), int(m[2].replace(",", "")))
        for m in (
            re.match(r"full rebuild, ([\d,]+) observations → ([\d,]+) cells", k) for k in rebuilds
        )
        if m
    )
    # 4,000 rows is 5 measures x 5 quarters x 160 leaf rows; the small history is 1 measure.
    assert observed == [(800, 5 * 375), (4000, 25 * 375)]
    for _, _, project, floor, *_ in rebuilds.values():
        assert _seconds(project) > 0 and _seconds(floor) > 0
    process = next(r for k, r in table.items() if k.startswith("`process`"))
    assert "40-row file" in process[0]
    privacy = next(r for k, r in table.items() if k.startswith("privacy.suppress"))
    hidden, audited, unaudited = map(
        int,
        re.findall(
            r"(\d+) tables with a hidden cell.*?(\d+) audited exactly, (\d+) named", privacy[6]
        )[0],
    )
    assert audited + unaudited == hidden <= 25
    assert (
        "skipped: --cli"
        in next(r for k, r in table.items() if k.startswith("`ci-pipeline submit`"))[6]
    )
