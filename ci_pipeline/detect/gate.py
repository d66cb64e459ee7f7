"""The data-quality gate: Great Expectations 1.x on the aggregated indicators of a run.

The suite is generated from the measure definitions: values within each measure's valid range,
proportions within [0, 1], coverage at or above each measure's minimum, every expected
indicator present, and no impossible jump from the previous period. The indicator table is
small, so it crosses into pandas here, at this one boundary; the per-row validation of partner
files stays on pandera. A failing expectation holds that measure's regression alerts for the
period as *unverified* and tells the data engineers; GX Data Docs (HTML) are built under the
data folder so they can see why.

Two promises keep GX's own record in step with the pipeline:

- **Same verdict.** Cells absent, or coverage short, because a partner is late (a missing-data
  alert already) or its data is not yet due, are not a data fault. Those measures are *excused*
  from the presence and coverage checks before GX runs, not after: the presence check leaves their
  cells out, the coverage check carries a ``row_condition`` leaving their rows out, and both
  expectations (and the suite) name them and why in their ``meta``. So a run the pipeline calls
  passed is a GX validation result with ``success`` true, and Data Docs say Succeeded.
- **Bounded cost and size.** Data Docs are built incrementally (``UpdateDataDocsAction`` renders
  only the new result and the suite), but GX's index page reads every stored validation result, so
  each run grew slower and ``gx/`` without bound. Only the last :data:`KEEP_RUNS` results of the
  suite are kept: older ones are removed from the store before the run, and GX's index build
  removes their pages (it drops every page whose result is gone).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import polars as pl

from ci_pipeline.aggregate.privacy import mask
from ci_pipeline.aggregate.rollup import expected_partners
from ci_pipeline.detect.findings import FINDING_SCHEMA
from ci_pipeline.detect.offline_docs import make_offline
from ci_pipeline.model.initiative import Initiative, Unit
from ci_pipeline.model.periods import Period, shift

#: A cell that moves by more than this factor from one period to the next is a likely
#: data-entry error (a figure typed in the wrong unit, a misplaced digit), not a trend.
MAX_JUMP = 10.0
SUITE = "indicator-quality"
PRESENT_RULE = "every expected indicator present"
COVERAGE_RULE = "coverage at or above the measure's minimum"
#: Validation results (and their Data Docs pages) kept per suite. GX's index page reads every
#: stored result on each run (about 15 ms each here), so this bounds both a run's cost and the
#: size of ``gx/``: a month of daily runs, with room for event-triggered ones.
KEEP_RUNS = 30
#: Why a measure is excused from the presence and coverage checks (see the module docstring).
LATE = "a partner is late, a missing-data alert already"
NOT_DUE = "its data is not yet due"


@dataclass(frozen=True)
class GateResult:
    success: bool
    failed_measures: set[str]
    failures: list[dict[str, Any]] = field(default_factory=list)  # expectation, measure, details
    docs_path: str | None = None
    # measure -> why it was excused from the presence and coverage checks of this run
    excused: dict[str, str] = field(default_factory=dict)


def gate_frame(
    indicators: pl.DataFrame, initiative: Initiative, periods: dict[str, Period]
) -> pl.DataFrame:
    """The judged period's indicator cells, with the unit and the jump from the period before."""
    units = {m.id: str(m.unit) for m in initiative.measures.values()}
    judged = pl.DataFrame(
        {
            "measure_id": list(periods),
            "period": [p.label for p in periods.values()],
            "previous": [shift(p, -1).label for p in periods.values()],
        }
    )
    now = indicators.join(judged, on=["measure_id", "period"], how="inner")
    before = indicators.select(
        "measure_id",
        "geo_code",
        "disaggregation",
        pl.col("period").alias("previous"),
        pl.col("value").alias("previous_value"),
        pl.col("suppressed").alias("previous_suppressed"),
    )
    return now.join(
        before, on=["measure_id", "geo_code", "disaggregation", "previous"], how="left"
    ).with_columns(
        pl.col("measure_id").replace_strict(units, default=None).alias("unit"),
        pl.concat_str(["measure_id", "geo_code", "period"], separator="|").alias("cell"),
        pl.when(
            ~pl.col("suppressed")
            & ~pl.col("previous_suppressed").fill_null(True)
            & (pl.col("previous_value") > 0)
            & (pl.col("value") > 0)
        )
        .then(
            pl.max_horizontal(
                pl.col("value") / pl.col("previous_value"),
                pl.col("previous_value") / pl.col("value"),
            )
        )
        .alias("jump"),
    )


def expected_cells(initiative: Initiative, periods: dict[str, Period]) -> dict[str, list[str]]:
    """Per measure, the (measure|geography|period) cells that must exist for the judged period."""
    expected = expected_partners(initiative).select("measure_id", "geo_code").unique()
    out: dict[str, list[str]] = {}
    for measure_id, geo in expected.sort("measure_id", "geo_code").iter_rows():
        if measure_id in periods:
            out.setdefault(measure_id, []).append(f"{measure_id}|{geo}|{periods[measure_id].label}")
    return out


def _bounds(initiative: Initiative) -> pl.DataFrame:
    """Per measure: the value range a cell must lie in, and the coverage it must reach."""
    rows = []
    for m in initiative.measures.values():
        lo, hi = m.valid_range.min, m.valid_range.max
        if m.unit is Unit.proportion:
            lo, hi = max(lo or 0.0, 0.0), min(hi if hi is not None else 1.0, 1.0)
        rows.append((m.id, lo, hi, m.alert.min_coverage))
    return pl.DataFrame(
        rows, schema=["measure_id", "value_min", "value_max", "min_coverage"], orient="row"
    )


def _suite(expected: list[str], excused: Mapping[str, str]) -> Any:
    """Five expectations, generated from the definitions through the per-measure bound columns
    (four when every judged measure is excused: then no cell must be present).

    ``expected`` holds only the cells of measures not excused; the coverage check leaves the
    excused measures' rows out with a ``row_condition``. Both say which measures, and why, in
    their ``meta`` (and the suite in its own), so GX's record shows what this run did not check.
    """
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    e = gx.expectations
    skip: Literal["either_value_is_missing"] = "either_value_is_missing"
    excused_meta = {"excused": dict(sorted(excused.items()))} if excused else {}
    # Rendered on the suite's Data Docs page (GX renders a suite's notes, not an expectation's).
    notes = (
        "Excused from the presence and coverage checks in the latest run: "
        + "; ".join(f"{m} ({why})" for m, why in sorted(excused.items()))
        if excused
        else None
    )
    coverage_kwargs: dict[str, Any] = (
        {"row_condition": Column("measure_id").is_not_in(sorted(excused))} if excused else {}
    )
    expectations = [
        e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="value",
            column_B="value_min",
            or_equal=True,
            ignore_row_if=skip,
            meta={"rule": "value at or above the measure's minimum"},
        ),
        e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="value_max",
            column_B="value",
            or_equal=True,
            ignore_row_if=skip,
            meta={"rule": "value at or below the measure's maximum (proportions within [0, 1])"},
        ),
        e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="coverage",
            column_B="min_coverage",
            or_equal=True,
            ignore_row_if=skip,
            meta={"rule": COVERAGE_RULE, **excused_meta},
            **coverage_kwargs,
        ),
        e.ExpectColumnValuesToBeBetween(
            column="jump",
            max_value=MAX_JUMP,
            meta={"rule": f"no jump of more than {MAX_JUMP:g}x from the period before"},
        ),
    ]
    if expected:
        expectations.append(
            e.ExpectColumnDistinctValuesToContainSet(
                column="cell",
                value_set=expected,
                meta={"rule": PRESENT_RULE, **excused_meta},
            )
        )
    return gx.ExpectationSuite(
        name=SUITE, expectations=expectations, meta=excused_meta, notes=notes
    )


def prune_results(context: Any, keep: int) -> int:
    """Remove the suite's stored validation results but the newest ``keep``; return how many.

    Their Data Docs pages go at the next index build, which drops pages whose result is gone."""
    store = context.validation_results_store
    keys = sorted(
        (k for k in store.list_keys() if k.expectation_suite_identifier.name == SUITE),
        key=lambda k: k.run_id.run_time,
    )
    old = keys[: max(len(keys) - keep, 0)]
    for key in old:
        store.remove_key(key)
    return len(old)


def run_gate(
    indicators: pl.DataFrame,
    initiative: Initiative,
    periods: dict[str, Period],
    *,
    project_dir: Path,
    excused: Mapping[str, str] | None = None,
    keep: int = KEEP_RUNS,
) -> GateResult:
    """Validate the judged period's indicators; build Data Docs under ``project_dir``.

    ``excused`` (measure -> why) leaves those measures out of the presence and coverage checks;
    ``keep`` is how many of the suite's validation results (this run's included) stay stored."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    frame = gate_frame(indicators, initiative, periods).join(
        _bounds(initiative), on="measure_id", how="left"
    )
    excused = {m: why for m, why in (excused or {}).items() if m in periods}
    if frame.is_empty():
        return GateResult(True, set(), excused=excused)
    expected = sorted(
        c
        for measure_id, cells in expected_cells(initiative, periods).items()
        if measure_id not in excused
        for c in cells
    )
    project_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=project_dir)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_or_update_pandas("indicators")
    asset = next(
        (a for a in source.assets if a.name == "judged"), None
    ) or source.add_dataframe_asset("judged")
    batch = next(
        (b for b in asset.batch_definitions if b.name == "all"), None
    ) or asset.add_batch_definition_whole_dataframe("all")
    suite = context.suites.add_or_update(_suite(expected, excused))
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=SUITE, data=batch, suite=suite)
    )
    # COMPLETE lists every failing row's index, so each failure names its measure.
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=SUITE,
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs")],
            result_format={"result_format": "COMPLETE"},
        )
    )
    # Suppressed values never leave the pipeline, Data Docs and GX's result files included: GX
    # sees them blank (the pair checks skip blanks; jumps are only computed between visible cells).
    pandas_frame = mask(frame).drop("lineage").to_pandas()
    prune_results(context, max(keep - 1, 0))  # this run's result makes ``keep``
    result = checkpoint.run(
        batch_parameters={"dataframe": pandas_frame},
        expectation_parameters=None,
        run_id=None,
    )
    failures: list[dict[str, Any]] = []
    present = set(frame["cell"].to_list())
    for run in result.run_results.values():
        for r in run.results:
            if r.success:
                continue
            config = r.expectation_config
            assert config is not None
            rule = (config.meta or {}).get("rule", config.type)
            if config.type == "expect_column_distinct_values_to_contain_set":
                for cell in sorted(set(expected) - present):
                    failures.append({"measure_id": cell.split("|")[0], "rule": rule, "cell": cell})
                continue
            rows = r.result.get("unexpected_index_list") or []
            for index in rows:
                row = pandas_frame.iloc[int(index)] if not isinstance(index, dict) else None
                if row is None:
                    continue
                failures.append(
                    {
                        "measure_id": row["measure_id"],
                        "rule": rule,
                        "cell": f"{row['cell']}|{row['disaggregation']}",
                    }
                )
    sites = context.get_docs_sites_urls()
    docs = sites[0]["site_url"] if sites else None
    if docs:  # its pages load their assets from files beside them, not from CDNs
        make_offline(Path(unquote(urlparse(docs).path)).parent)
    # GX's verdict is the gate's: nothing is excused after GX has judged.
    return GateResult(
        bool(result.success), {f["measure_id"] for f in failures}, failures, docs, excused
    )


def findings(
    result: GateResult,
    initiative: Initiative,
    periods: dict[str, Period],
    *,
    docs_url: str | None = None,
) -> pl.DataFrame:
    """One ``quality`` finding per failing measure, for the data engineers; ``docs_url`` is
    where they open the Data Docs (the intake API's link), else GX's own path is named."""
    rows = []
    for measure_id in sorted(result.failed_measures):
        m = initiative.measures[measure_id]
        mine = [f for f in result.failures if f["measure_id"] == measure_id]
        rules = sorted({f["rule"] for f in mine})
        cells = ", ".join(f["cell"] for f in mine[:5]) + (" …" if len(mine) > 5 else "")
        rows.append(
            {
                "kind": "quality",
                "measure_id": measure_id,
                "geo_code": "*",
                "disaggregation": m.total_key,
                "period": periods[measure_id].label,
                "subject": "",
                "folded": len(mine),
                "coverage_note": "",
                "message": (
                    f"The data-quality gate failed for {m.title} {periods[measure_id].label}: "
                    f"{'; '.join(rules)} ({len(mine)} cell(s): {cells}). Its regression alerts are "
                    f"held as unverified. Data Docs: {docs_url or result.docs_path}"
                ),
            }
        )
    return (
        pl.DataFrame(rows, schema=FINDING_SCHEMA) if rows else pl.DataFrame(schema=FINDING_SCHEMA)
    )
