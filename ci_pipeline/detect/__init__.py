"""Regression detection: is an indicator moving the wrong way beyond noise?

Pure functions over the indicator table (one row per measure × geography × breakdown ×
period). For each series, direction-aware and with each measure's own ``alert`` parameters:

- **step** — the judged period against its expectation from the series' own history (the
  usual level, the period before, or the same period of earlier years: ``stats.expectation``),
  in standard deviations of the series' past prediction errors — over-dispersion included, so
  the verdict does not depend on the unit a partner counts in; past episodes left out, so a
  recession in the history does not hide the next one — by Student's t.
- **sustained** — Page's CUSUM of the same standardised errors over the last periods.
- **drift** — a steady worsening over the last ``drift_periods`` periods: Mann–Kendall's trend
  test with Sen's slope on a level series, the mean of the recent moves on a wandering one
  (the strongest of its last 2 to ``drift_periods - 1`` moves).
- **off_track** — the cluster's headline value is behind the straight path from the measure's
  baseline to its target by more than ``off_track_tolerance`` of the whole planned change.
- **missing** — an expected partner has not reported by the measure's deadline
  (:func:`missing_data`).

A series' tests share alpha, and are adjusted across every series of a run
(Benjamini–Hochberg), so the number of series does not multiply false alarms; a minimum
practical change keeps significant-but-trivial moves quiet. Suppressed cells are not judged
(their values are never shown). Findings on cells that one alert explains — the breakdown codes of a
locality whose total regressed, a cluster whose locality regressed — are folded into it.

The modules: ``stats`` (expectations and tests), ``baseline`` (the scale of a series' usual
errors), ``detectors`` (step, sustained, drift), ``off_track``, ``gaps`` (equity gap series),
``missing`` (deadlines and late partners), ``findings`` (their shape, and folding), ``describe`` (the
sentences), ``gate`` (the Great Expectations quality gate) and ``judgement`` (all of them on one
period, on indicators read once). This namespace re-exports their public names.
"""

from __future__ import annotations

from ci_pipeline.detect.describe import (
    describe,
    described,
    format_pair,
    format_value,
    readable_headline,
)
from ci_pipeline.detect.detectors import detect, judged_periods
from ci_pipeline.detect.findings import (
    FINDING_SCHEMA,
    KIND_LABELS,
    KINDS,
    REGRESSIONS,
    Candidate,
    fold,
)
from ci_pipeline.detect.judgement import FINDING_ORDER, Judgement, judge
from ci_pipeline.detect.missing import due_date, missing_data
from ci_pipeline.detect.off_track import off_track
from ci_pipeline.detect.stats import (
    Expectation,
    benjamini_hochberg,
    cusum,
    cusum_arl,
    cusum_p,
    expectation,
    mann_kendall,
    predictions,
    step_p,
    worse,
)

__all__ = [
    "FINDING_ORDER",
    "FINDING_SCHEMA",
    "KINDS",
    "KIND_LABELS",
    "REGRESSIONS",
    "Candidate",
    "Expectation",
    "Judgement",
    "benjamini_hochberg",
    "cusum",
    "cusum_arl",
    "cusum_p",
    "describe",
    "described",
    "detect",
    "due_date",
    "expectation",
    "fold",
    "format_pair",
    "format_value",
    "judge",
    "judged_periods",
    "mann_kendall",
    "missing_data",
    "off_track",
    "predictions",
    "readable_headline",
    "step_p",
    "worse",
]
