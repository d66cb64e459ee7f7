"""A card's chart as static SVG, drawn at build time (a Vega-Lite specification rendered by
vl-convert, no browser): the published series, the straight path from baseline to target, and the open
alerts marked where they are. No script and no request leaves the page; the figures are also
in a table beside each chart for screen readers."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import vl_convert as vlc

from ci_pipeline.keeping import prune, write_whole
from ci_pipeline.model.initiative import Measure, Unit
from ci_pipeline.model.periods import parse_period
from ci_pipeline.report.content import Card, Gap

WIDTH, HEIGHT = 520, 200
SERIES, PATH, ALERT, SUPPRESSED = "#1f5f8b", "#8a8a8a", "#c0392b", "#b0b0b0"


def _y(measure: Measure) -> dict[str, Any]:
    """The value axis: percentages for proportions, plain numbers otherwise; not from zero."""
    return {
        "field": "value",
        "type": "quantitative",
        "title": None,
        "scale": {"zero": False},
        "axis": {"format": ".0%" if measure.unit is Unit.proportion else ",.4~g"},
    }


def _chart(layers: list[dict[str, Any]], height: int) -> dict[str, Any]:
    """A layered Vega-Lite specification of the report's width."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": WIDTH,
        "height": height,
        "layer": layers,
    }


#: Tick label format and the shortest tick interval, by periodicity: a quarterly series is never
#: ticked by the month (two ticks would read as the same quarter).
TICKS = {
    "month": ("%Y-%m", {"interval": "month", "step": 1}),
    "quarter": ("%Y-Q%q", {"interval": "month", "step": 3}),
    "year": ("%Y", {"interval": "year", "step": 1}),
}


def _x(measure: Measure) -> dict[str, Any]:
    """The time axis: each period at its first day, labelled in the period's notation."""
    fmt, interval = TICKS[str(measure.periodicity)]
    return {
        "field": "start",
        "type": "temporal",
        "title": None,
        "axis": {"format": fmt, "labelAngle": -45, "labelOverlap": True, "tickCount": interval},
    }


def _start(label: str) -> str:
    """A period's first day, ISO (2025-Q4 → 2025-10-01)."""
    year, month0 = divmod(parse_period(label).start, 12)
    return f"{year:04d}-{month0 + 1:02d}-01"


def spec(card: Card) -> dict[str, Any]:
    """The Vega-Lite specification of one card's chart: the path to target (dashed), the
    series (line and points), suppressed periods (a dotted grey rule: no value is drawn),
    and the open alerts (a red rule labelled with the alert's number). Words-free (periods and
    numbers only), so one drawing serves all three languages; the page around it speaks."""
    # Time runs on a true time axis (each period at its first day), so the path to a target
    # years away slopes as it should; labels in the period's own notation.
    x, y = _x(card.measure), _y(card.measure)
    shown = [
        {"start": _start(p.period), "value": p.value} for p in card.points if p.value is not None
    ]
    layers: list[dict[str, Any]] = []
    if card.path:
        layers.append(
            {
                "data": {"values": [{"start": _start(p), "value": v} for p, v in card.path]},
                "mark": {"type": "line", "strokeDash": [6, 4], "color": PATH},
                "encoding": {"x": x, "y": y},
            }
        )
    layers.append(
        {
            "data": {"values": shown},
            "mark": {"type": "line", "point": True, "color": SERIES},
            "encoding": {"x": x, "y": y},
        }
    )
    hidden = [{"start": _start(p.period)} for p in card.points if p.suppressed]
    if hidden:
        layers.append(
            {
                "data": {"values": hidden},
                "mark": {"type": "rule", "color": SUPPRESSED, "strokeDash": [2, 2]},
                "encoding": {"x": x},
            }
        )
    if card.flags:
        marks = [{"start": _start(f.period), "label": f"#{f.id}"} for f in card.flags]
        layers.append(
            {
                "data": {"values": marks},
                "mark": {"type": "rule", "color": ALERT, "strokeWidth": 2},
                "encoding": {"x": x},
            }
        )
        layers.append(
            {
                "data": {"values": marks},
                "mark": {"type": "text", "color": ALERT, "fontWeight": "bold", "y": 0, "dy": 8},
                "encoding": {"x": x, "text": {"field": "label", "type": "nominal"}},
            }
        )
    return _chart(layers, HEIGHT)


def render(chart: dict[str, Any]) -> str:
    """A Vega-Lite specification rendered to SVG text."""
    rendered: str = vlc.vegalite_to_svg(chart)
    return rendered


AHEAD, BEHIND = "#1f5f8b", "#d35400"


def gap_spec(gap: Gap, measure: Measure) -> dict[str, Any]:
    """Two lines, the group ahead (blue) and the group behind (orange), on the card's time
    axis: the gap is the space between them. Suppressed periods are left out."""
    x, y = _x(measure), _y(measure)
    layers = [
        {
            "data": {
                "values": [
                    {"start": _start(p), "value": v}
                    for p, *sides in gap.periods
                    if (v := sides[i]) is not None
                ]
            },
            "mark": {"type": "line", "point": True, "color": color},
            "encoding": {"x": x, "y": y},
        }
        for i, color in ((0, AHEAD), (1, BEHIND))
    ]
    return _chart(layers, HEIGHT // 2)


def draw(
    charts: list[dict[str, Any]], cache: Path | None = None, keep: Collection[str] = ()
) -> list[str]:
    """Each specification rendered to SVG, in order, on both cores (vl-convert renders outside
    the GIL).

    With a ``cache`` folder, a chart drawn before is read back instead of drawn again: each
    SVG is kept there under the hash of its specification and of vl-convert's version, and
    what this call did not ask for is removed, so the folder holds the charts of the last
    site only. A national report card has 55,000 charts, and a new file changes a few of
    them: drawing them all again took most of the rebuild. The cache only saves work: a chart
    it cannot read (another build removed it) is drawn, and a folder it cannot write is
    passed over. ``keep``: the names (:func:`chart_name`) of charts the site still shows but
    did not ask for (on pages kept whole from the last build), which are not removed.
    """
    if cache is None:
        return _render_all(charts)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return _render_all(charts)
    files = [cache / chart_name(c) for c in charts]
    drawn: dict[Path, str] = {}
    for file in set(files):
        with contextlib.suppress(OSError):
            drawn[file] = file.read_text(encoding="utf-8")
    missing = {f: c for f, c in zip(files, charts, strict=True) if f not in drawn}
    for file, svg_text in zip(missing, _render_all(list(missing.values())), strict=True):
        drawn[file] = svg_text
        # Whole or not at all, for a build that reads it later.
        write_whole(file, functools.partial(Path.write_text, data=svg_text, encoding="utf-8"))
    prune(cache, {f.name for f in files} | set(keep))
    return [drawn[f] for f in files]


def chart_name(chart: dict[str, Any]) -> str:
    """The file a chart is kept in by :func:`draw`: the hash of its specification and of
    vl-convert's version."""
    return f"{hashlib.sha256(_salt() + _text(chart).encode()).hexdigest()}.svg"


@functools.cache
def _salt() -> bytes:
    return f"vl-convert {version('vl-convert-python')}\n".encode()


def _text(chart: dict[str, Any]) -> str:
    return json.dumps(chart, sort_keys=True, separators=(",", ":"))


def _render_all(charts: list[dict[str, Any]]) -> list[str]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(render, charts))
