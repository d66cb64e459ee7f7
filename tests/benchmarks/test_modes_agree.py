"""The harness's two modes agree: the real pipeline (intake, aggregate, judge, record) and
``detect()`` on the grown indicator frame open alarms at the same periods, on the first 30
months of the UK lung-deaths series (the 1975–76 epidemic alarms in its 26th month). Slow: the
pipeline takes seconds a period."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks.detection_scoring import collapse
from benchmarks.evaluate_detection import (
    load_series,
    replay_direct,
    replay_pipeline,
    write_initiative,
)


@pytest.mark.slow
def test_pipeline_and_direct_modes_open_the_same_alarms(tmp_path: Path) -> None:
    full = load_series("uk-lung-deaths")
    s = replace(full, periods=full.periods[:30], value=full.value[:30])
    through = replay_pipeline(s, tmp_path / "pipeline")
    direct = replay_direct(s, write_initiative(tmp_path / "direct", s))
    assert len(through) == len(direct) == 30
    starts = collapse(np.array([bool(k) for k in direct]), warmup=0)
    assert starts, "the series should alarm at least once, or the comparison says nothing"
    assert collapse(np.array([bool(k) for k in through]), warmup=0) == starts
