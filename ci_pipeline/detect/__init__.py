"""Regression detection: is an indicator moving the wrong way beyond noise?

Pure functions over the indicator table (one row per measure × geography × breakdown ×
period). For each series, direction-aware and with each measure's own ``alert`` parameters:

- **step** — the judged period against the one before (and, for seasonal measures, against
  the same period a year before), by a test that fits the unit: a two-proportion z-test for
  proportions; an exact conditional (binomial) test for counts, which are Poisson; robust
  control limits (median and MAD, modified z-score) over trailing history for scores and
  amounts, where a value beyond the limit also needs the prediction t-test's p-value (so alpha
  and the run-wide adjustment apply to them too). A minimum history comes first, and a minimum
  practical change keeps significant-but-trivial moves quiet.
- **drift** — a sustained worsening over the last ``drift_periods`` periods that no single step
  flags: Mann–Kendall's trend test with Sen's slope.
- **off_track** — the cluster's headline value is behind the straight path from the measure's
  baseline to its target by more than ``off_track_tolerance`` of the whole planned change.
- **missing** — an expected partner has not reported by the measure's deadline
  (:func:`missing_data`).

Step p-values are adjusted across every step test of a run (Benjamini–Hochberg), so the
number of series does not multiply false alarms; drift needs a run that is monotone or nearly. Suppressed cells are not judged (their values
are never shown). Findings on cells that one alert explains — the breakdown codes of a
locality whose total regressed, a cluster whose locality regressed — are folded into it.

The modules: ``stats`` (the tests), ``detectors`` (step, drift, off track), ``missing``
(deadlines and late partners), ``findings`` (their shape, and folding), ``describe`` (the
sentences), ``gate`` (the Great Expectations quality gate) and ``judgement`` (all of them on one
period, on indicators read once). This namespace re-exports their public names.
"""

from __future__ import annotations

from ci_pipeline.detect.describe import describe, described, format_value
from ci_pipeline.detect.detectors import detect, judged_periods, off_track
from ci_pipeline.detect.findings import FINDING_SCHEMA, KINDS, REGRESSIONS, Candidate, fold
from ci_pipeline.detect.judgement import FINDING_ORDER, Judgement, judge
from ci_pipeline.detect.missing import due_date, missing_data
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
    "format_value",
    "judge",
    "judged_periods",
    "mann_kendall",
    "missing_data",
    "off_track",
    "predictions",
    "step_p",
    "worse",
]
