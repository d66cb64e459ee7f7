"""Does the pipeline find known regressions of real series, and how often does it cry wolf?

Usage::

    .venv/bin/python benchmarks/evaluate_detection.py [--mode pipeline|direct] [--series NAME ...]
        [--denominator-scale F]

Each series in ``benchmarks/series/`` (a CSV and a YAML sidecar naming its source, unit,
direction and documented change points) is replayed period by period with no look-ahead:

- ``--mode pipeline`` (the default, and the one that counts; the README figures come from it):
  a throwaway initiative (one geography, one partner, one measure with no ``alert:`` block, so
  the detectors' defaults) in a temporary ``CI_PIPELINE_HOME`` on SQLite. For each period in
  order the partner's CSV for that period is received and ingested (``intake.take`` then
  ``intake.ingest``), then that period is processed as the process flow does
  (``aggregate.refresh_indicators``, ``detect.judge(period=..., as_of=the day after the
  deadline)``, ``alert.record_alerts``), and the alerts it newly opened are read back
  (``alert.read_alerts`` of the ``Recorded.new`` ids).
- ``--mode direct``: ``detect.detect()`` on the indicator frame grown period by period (the
  same detectors, no database, no lifecycle): a period alarms when it has any finding. Fast,
  for tuning.

Either way a period *alarms* when a regression alert (a kind of ``detect.REGRESSIONS``: not
``missing``, ``quality`` or ``off_track``) opens in it; consecutive alarm periods are one alarm,
at the first (as one alert per episode). The baseline rules see the same values with the same warm-up and are collapsed
the same way (:mod:`benchmarks.detection_scoring`, which also scores them). Prints a Markdown
table (series x rule) and the command that repeats it. Deterministic: no randomness here.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from benchmarks.detection_scoring import (
    BASELINES,
    WARMUP,
    Change,
    Score,
    collapse,
    format_table,
    score,
)
from ci_pipeline import aggregate, alert, detect, store
from ci_pipeline.config import get_settings
from ci_pipeline.model.initiative import Direction, Initiative, Unit
from ci_pipeline.model.load import load_initiative
from ci_pipeline.model.periods import parse_period, per_year
from ci_pipeline.receive import intake

SERIES_DIR = Path(__file__).parent / "series"
GEO, PARTNER = "area", "source"
#: The alert kinds that are a verdict on the series' movement.
REGRESSION_KINDS = frozenset(detect.REGRESSIONS)


@dataclass(frozen=True)
class Series:
    """A series to replay: its values by period (oldest first) and what is known about it."""

    name: str
    title: str
    unit: Unit
    periodicity: str
    direction: Direction
    periods: list[str]
    value: np.ndarray
    numerator: np.ndarray | None  # proportions only
    denominator: np.ndarray | None
    changes: list[Change]


def load_series(name: str, folder: Path = SERIES_DIR, denominator_scale: float = 1.0) -> Series:
    """A real series from ``folder``: ``<name>.yaml`` (sidecar) and the CSV it names."""
    meta = yaml.safe_load((folder / f"{name}.yaml").read_text(encoding="utf-8"))
    with (folder / meta["file"]).open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    unit = Unit(meta["unit"])
    periods = [parse_period(r["period"]).label for r in rows]
    numerator = denominator = None
    if unit is Unit.proportion:
        denominator = np.array([float(r["denominator"]) for r in rows]) * denominator_scale
        numerator = np.round(np.array([float(r["numerator"]) for r in rows]) * denominator_scale)
        value = numerator / denominator
    else:
        value = np.array([float(r["value"]) for r in rows])
    changes = [
        Change(
            name=c["name"],
            regression=c["kind"] == "regression",
            turning_point=periods.index(parse_period(str(c["turning_point"])).label),
            episode=(
                _index(periods, str(c["episode"][0])),
                _index(periods, str(c["episode"][1])),
            ),
        )
        for c in meta["changes"]
    ]
    return Series(
        name=name,
        title=meta["title"],
        unit=unit,
        periodicity=meta["periodicity"],
        direction=Direction(meta["direction"]),
        periods=periods,
        value=value,
        numerator=numerator,
        denominator=denominator,
        changes=changes,
    )


def _index(periods: list[str], label: str) -> int:
    """A period's position in the series; past either end, clipped one step beyond it."""
    p = parse_period(label).label
    if p in periods:
        return periods.index(p)
    return -1 if p < periods[0] else len(periods)


def real_series() -> list[str]:
    return sorted(p.stem for p in SERIES_DIR.glob("*.yaml"))


# --- the throwaway initiative ----------------------------------------------------------------


def write_initiative(folder: Path, s: Series) -> Initiative:
    """One geography, one partner, one measure with the detectors' default settings."""
    folder.mkdir(parents=True)
    (folder / "measures").mkdir()
    (folder / "initiative.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "evaluation",
                "name": {"en": "Detection evaluation"},
                "description": "A throwaway initiative that replays one series.",
                "version": "1",
                "locale": "en",
            }
        )
    )
    (folder / "geographies.yaml").write_text(
        yaml.safe_dump([{"code": GEO, "level": "cluster", "name": {"en": "Area"}}])
    )
    (folder / "partners.yaml").write_text(
        yaml.safe_dump(
            [
                {
                    "id": PARTNER,
                    "name": "Source",
                    "sector": "civil_society",
                    "localities": [GEO],
                    "measures": [s.name],
                    "submits_every": s.periodicity,
                    "contact": {"name": "Data desk", "email": "data@source.example.org"},
                }
            ]
        )
    )
    combine = {"proportion": "ratio_of_sums", "score": "weighted_mean"}.get(str(s.unit), "sum")
    measure: dict[str, Any] = {
        "id": s.name,
        "version": 1,
        "title": s.title,
        "description": s.title,
        "unit": str(s.unit),
        "unit_label": {"proportion": "%", "count": "people"}.get(str(s.unit), "units"),
        "combine": combine,
        "direction": str(s.direction),
        "geo_levels": ["cluster"],
        "periodicity": s.periodicity,
        "deadline_days": 30,
    }  # no ``alert:`` block: the defaults are what is measured
    if s.unit is Unit.proportion:
        measure |= {"numerator": "counted", "denominator": "population"}
        measure["valid_range"] = {"min": 0, "max": 1}
    (folder / "measures" / f"{s.name}.yaml").write_text(yaml.safe_dump(measure))
    return load_initiative(folder)


def period_file(s: Series, i: int, folder: Path) -> Path:
    """The partner's CSV for period ``i``."""
    path = folder / f"{s.name}-{s.periods[i]}.csv"
    if s.unit is Unit.proportion:
        assert s.numerator is not None and s.denominator is not None
        numbers = f"numerator,denominator\n{s.name},{GEO},{s.periods[i]},{s.numerator[i]:.0f},{s.denominator[i]:.0f}"
    else:
        v = f"{s.value[i]:.0f}" if s.unit is Unit.count else repr(float(s.value[i]))
        numbers = f"value\n{s.name},{GEO},{s.periods[i]},{v}"
    path.write_text(f"measure_id,geo_code,period,{numbers}\n", encoding="utf-8")
    return path


# --- the two modes -----------------------------------------------------------------------------


def replay_pipeline(s: Series, work: Path) -> list[set[str]]:
    """The kinds of regression alert newly opened at each period, through the real pipeline."""
    home = work / s.name
    settings = get_settings(
        home=home,
        database_url=f"sqlite:///{home / 'ci_pipeline.db'}",
        initiative=home / "initiative",
        alert_urls=[],
        engineer_urls=[],
        alert_routes={},
    )
    home.mkdir(parents=True)
    initiative = write_initiative(home / "initiative", s)
    measure = initiative.measures[s.name]
    engine = store.make_engine(settings.resolved_database_url)
    opened: list[set[str]] = []
    try:
        intake.prepare_database(initiative, engine=engine)
        for i, label in enumerate(s.periods):
            row = intake.take(
                period_file(s, i, home), PARTNER, label,
                initiative=initiative, settings=settings, engine=engine,
            )  # fmt: skip
            assert row.id is not None
            receipt, _ = intake.ingest(
                row.id, initiative=initiative, settings=settings, engine=engine
            )
            if receipt.status != "accepted":
                raise RuntimeError(f"{s.name} {label}: {receipt.status} {receipt.first_issues}")
            aggregate.refresh_indicators(initiative, engine=engine)
            as_of = detect.due_date(measure, parse_period(label)) + timedelta(days=1)
            judgement = detect.judge(
                initiative, engine=engine, settings=settings, period=label, as_of=as_of
            )
            recorded, _ = alert.record_alerts(
                judgement, initiative, settings=settings, engine=engine
            )
            kinds = {a["kind"] for a in alert.read_alerts(recorded.new, engine=engine)}
            opened.append(kinds & REGRESSION_KINDS)
    finally:
        engine.dispose()
    return opened


def indicator_frame(s: Series, upto: int) -> pl.DataFrame:
    """The indicator rows the pipeline would hold after period ``upto`` (inclusive)."""
    n = upto + 1
    num = s.numerator[:n] if s.numerator is not None else np.full(n, np.nan)
    den = s.denominator[:n] if s.denominator is not None else np.full(n, np.nan)
    size = np.minimum(num, den) if s.unit is Unit.proportion else s.value[:n]
    return pl.DataFrame(
        {
            "measure_id": [s.name] * n,
            "geo_code": [GEO] * n,
            "period": s.periods[:n],
            "disaggregation": ["total"] * n,
            "value": s.value[:n],
            "numerator": num,
            "denominator": den,
            "partners_reported": [1] * n,
            "partners_expected": [1] * n,
            "coverage": [1.0] * n,
            # The privacy rule for one cell: a count or numerator under the default minimum.
            "suppressed": (s.unit in (Unit.count, Unit.proportion)) & (size < 10),
            "suppression": pl.Series([None] * n, dtype=pl.Utf8),
            "lineage": ["1"] * n,
        }
    ).with_columns(pl.col("numerator", "denominator").fill_nan(None))


def replay_direct(s: Series, initiative: Initiative) -> list[set[str]]:
    """The kinds of regression finding at each period, by ``detect.detect()`` alone."""
    out: list[set[str]] = []
    for i, label in enumerate(s.periods):
        found = detect.detect(indicator_frame(s, i), initiative, {s.name: parse_period(label)})
        out.append(set(found["kind"].to_list()) & REGRESSION_KINDS)
    return out


def evaluate(s: Series, mode: str, work: Path) -> tuple[dict[str, Score], dict[str, int]]:
    """Every rule's score on one series, and the pipeline's alert kinds (raw counts)."""
    if mode == "pipeline":
        kinds = replay_pipeline(s, work)
    else:
        kinds = replay_direct(s, write_initiative(work / f"{s.name}-direct", s))
    flags = np.array([bool(k) for k in kinds])
    counted: dict[str, int] = {}
    for i, k in enumerate(kinds):
        for kind in k if i >= WARMUP else ():
            counted[kind] = counted.get(kind, 0) + 1
    bad = 1.0 if s.direction is Direction.lower_is_better else -1.0
    y = bad * s.value  # higher is worse, for the baselines
    scores = {"pipeline": score(collapse(flags), s.changes, len(s.periods), _per_year(s))}
    for rule, fn in BASELINES.items():
        scores[rule] = score(collapse(fn(y)), s.changes, len(s.periods), _per_year(s))
    return scores, counted


def _per_year(s: Series) -> int:
    return per_year(s.periodicity)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["pipeline", "direct"], default="pipeline")
    parser.add_argument("--series", nargs="*", default=None, help="default: every real series")
    parser.add_argument(
        "--denominator-scale",
        type=float,
        default=1.0,
        help="multiply proportions' constructed denominators (and numerators) by this",
    )
    args = parser.parse_args()
    names = args.series or real_series()
    work = Path(tempfile.mkdtemp(prefix="ci-evaluate-"))
    results: dict[str, dict[str, Score]] = {}
    started = time.perf_counter()
    try:
        for name in names:
            t = time.perf_counter()
            s = load_series(name, denominator_scale=args.denominator_scale)
            results[name], kinds = evaluate(s, args.mode, work)
            print(
                f"{name}: {len(s.periods)} periods in {time.perf_counter() - t:.1f} s; "
                f"pipeline findings after warm-up by kind: {kinds or '-'}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(format_table(results))
    print(f"\nmode {args.mode}; {time.perf_counter() - started:.0f} s")
    command = f".venv/bin/python benchmarks/evaluate_detection.py --mode {args.mode}"
    if args.series:
        command += " --series " + " ".join(args.series)
    if args.denominator_scale != 1.0:
        command += f" --denominator-scale {args.denominator_scale:g}"
    print(f"repeat: {command}")


if __name__ == "__main__":
    main()
