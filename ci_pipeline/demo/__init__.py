"""The sample initiative's submissions: 24 months of realistic partner files, quirks included.

Values sit near the figures in DOMAIN.md (Arab women's participation about 26%, about 47% of
the employed below the minimum wage, part-time 35% of women and 9% of men). The files look the
way partners really send them: Hebrew in Windows-1255 with semicolons and decimal commas,
Arabic in Windows-1256, Excel workbooks with date cells, Parquet, tab-separated text, names of
localities instead of codes. One file has errors and is corrected; one is revised later (it
supersedes the first); one is sent twice (a duplicate).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from ci_pipeline.model.initiative import TOTAL, Initiative, Measure, Unit
from ci_pipeline.model.periods import Period, Periodicity, parse_period, periods_in
from ci_pipeline.validate.template import expected_rows

FIRST_MONTH = parse_period("2024-01")
MONTHS = 24
#: Residents per locality (rounded, for the simulation's denominators).
POPULATION = {
    "karmiel": 46_000,
    "misgav": 30_000,
    "majd-al-krum": 16_000,
    "biina": 8_500,
    "deir-al-asad": 13_000,
    "nahf": 14_000,
    "rameh": 8_000,
    "beit-hakerem": 135_500,
}
ARAB = {"majd-al-krum", "biina", "deir-al-asad", "nahf", "rameh"}


@dataclass(frozen=True)
class ProportionModel:
    base: float  # the share at the start (a measure's baseline path takes precedence)
    trend_per_year: float
    share_of_population: float  # denominator as a share of residents
    codes: dict[str, float]  # per breakdown code: added to the share
    jewish_locality: float = 0.0  # added to the share in Karmiel and Misgav
    weights: dict[str, float] | None = None  # per breakdown code: share of the denominator


@dataclass(frozen=True)
class CountModel:
    rate: float  # expected count per 10,000 residents per month (or per period)
    growth_per_year: float  # multiplicative
    fixed: bool = False  # a stock at one place (employees), not spread by population


PROPORTIONS = {
    "arab-women-lfp": ProportionModel(0.26, 0.012, 0.12, {"25-44": 0.07, "45-64": -0.08}),
    "below-min-wage-share": ProportionModel(
        0.49,
        -0.01,
        0.30,
        {"female": 0.07, "male": -0.06},
        jewish_locality=-0.14,
        weights={"female": 0.45, "male": 0.55},
    ),
    # 35.1% of women and 9.4% of men, with women about 30% of Arab workers: 17.2% in all.
    "part-time-share": ProportionModel(
        0.172, -0.004, 0.25, {"female": 0.179, "male": -0.078}, weights={"female": 0.3, "male": 0.7}
    ),
    "smb-digital-presence": ProportionModel(0.2, 0.08, 0.012, {}),
}
COUNTS = {
    "starter-students-trained": CountModel(0.6, 0.3),
    "starter-businesses-served": CountModel(1.4, 0.4),
    "kurkum-women-employed": CountModel(6.0, 0.55, fixed=True),
    "ecommerce-residents-trained": CountModel(1.5, 0.2),
    "ecommerce-owners-served": CountModel(2.5, 0.3),
    "ecommerce-centre-employees": CountModel(4.0, 1.0, fixed=True),
}


@dataclass(frozen=True)
class Scenario:
    """What the demo injects for the detectors to find, and nothing else."""

    #: A step regression: (measure, locality, period, change to the share).
    step: tuple[str, str, str, float] = ("arab-women-lfp", "nahf", "2025-Q4", -0.08)
    #: A slow drift: (measure, locality, periods, change per period), worsening each period.
    drift: tuple[str, str, int, float] = ("below-min-wage-share", "karmiel", 6, 0.012)
    #: A late partner: (partner, period whose file never arrives).
    late: tuple[str, str] = ("kurkum", "2025-Q4")


DEMO_SCENARIO = Scenario()
#: The demo's "today": every deadline of 2025 has passed, none of 2026 has.
DEMO_AS_OF = date(2026, 3, 15)


@dataclass(frozen=True)
class DemoFile:
    """A file as it arrives: who sends it, for which period, and what it shows."""

    partner_id: str
    period: str
    path: Path
    note: str = ""


def _years(frame: pl.DataFrame) -> np.ndarray:
    """Years since the demo starts, at the middle of each row's period."""
    start = FIRST_MONTH.start
    mid = [(parse_period(p).start + parse_period(p).end) / 2 - start for p in frame["period"]]
    return np.asarray(mid) / 12.0


def _path(measure: Measure, frame: pl.DataFrame) -> np.ndarray | None:
    """The straight path from the measure's baseline to its target, at each row's period."""
    if measure.baseline is None or measure.target is None:
        return None
    b, t = parse_period(measure.baseline.period), parse_period(measure.target.period)
    starts = np.array([parse_period(p).start for p in frame["period"]], dtype=float)
    slope = (measure.target.value - measure.baseline.value) / (t.start - b.start)
    return measure.baseline.value + slope * (starts - b.start)


def _injected(measure: Measure, frame: pl.DataFrame, scenario: Scenario) -> np.ndarray:
    """The scenario's change to each row's share: the step, and the drift's growing shift."""
    shift_by = np.zeros(frame.height)
    geo = frame["geo_code"].to_numpy()
    periods = [parse_period(p) for p in frame["period"]]
    s_measure, s_geo, s_period, s_change = scenario.step
    if measure.id == s_measure:
        shift_by += np.where(
            (geo == s_geo) & np.array([p.label == s_period for p in periods]), s_change, 0.0
        )
    d_measure, d_geo, d_periods, d_change = scenario.drift
    if measure.id == d_measure:
        last = FIRST_MONTH.start + MONTHS - 1  # the drift ends in the demo's last period
        steps = np.array([(p.end - (last - 3 * (d_periods - 1))) // 3 + 1 for p in periods])
        shift_by += np.where(
            (geo == d_geo) & (steps > 0), np.clip(steps, 0, d_periods) * d_change, 0.0
        )
    return shift_by


def simulate(
    rows: pl.DataFrame,
    initiative: Initiative,
    rng: np.random.Generator,
    scenario: Scenario = DEMO_SCENARIO,
) -> pl.DataFrame:
    """Fill numerator, denominator and value for the expected rows of one submission.

    Shares follow the measure's baseline-to-target path where it has one (breakdown and
    locality offsets cancel out across the cluster), with binomial sampling noise only; the
    scenario's step and drift are added on top.
    """
    out = []
    for (measure_id,), part in rows.group_by("measure_id", maintain_order=True):
        m = initiative.measures[str(measure_id)]
        years = _years(part)
        pop = part["geo_code"].replace_strict(POPULATION, default=10_000).to_numpy()
        code_cols = [d for d in m.dimensions]
        n = part.height
        num: np.ndarray | None = None
        den: np.ndarray | None = None
        val: np.ndarray | None = None
        path = _path(m, part)
        if m.unit is Unit.proportion:
            model = PROPORTIONS.get(m.id, ProportionModel(0.3, 0.0, 0.1, {}))
            offset = np.zeros(n)
            split = np.ones(n)
            for d in code_cols:
                codes = part[d].to_list()
                offset += np.array([model.codes.get(c, 0.0) for c in codes])
                weights = model.weights or {}
                default = 1 / max(1, len(m.dimensions[d]) - 1)
                split *= np.array([weights.get(c, default) for c in codes])
            jewish = ~np.isin(part["geo_code"].to_numpy(), list(ARAB))
            offset += model.jewish_locality * jewish
            den = np.maximum(12, (pop * model.share_of_population * split).round()).astype(np.int64)
            if path is not None:  # offsets average to zero over the cluster: it follows the path
                offset -= np.average(offset, weights=den)
                share = path + offset
            else:
                share = model.base + model.trend_per_year * years + offset
            share = np.clip(share + _injected(m, part, scenario), 0.01, 0.99)
            num = rng.binomial(den, share)
        elif m.unit is Unit.count:
            c = COUNTS.get(m.id, CountModel(1.0, 0.0))
            split = np.ones(n)
            for d in code_cols:
                split /= max(1, len(m.dimensions[d]) - 1)
            if path is not None:  # a stock that keeps to its plan, a little ahead of it
                val = np.ceil(path + 0.3)
            elif c.fixed:
                val = np.round(c.rate * (1 + c.growth_per_year * years) + rng.normal(0, 0.4, n))
            else:
                lam = c.rate * pop / 10_000 * split * (1 + c.growth_per_year * years)
                val = rng.poisson(lam).astype(float)
        elif m.unit is Unit.amount:
            val = np.round(rng.lognormal(np.log(400_000) + 0.2 * years, 0.35), -3)
        else:  # score: the mean answer of the partner's respondents, and how many answered
            lo = m.valid_range.min or 1.0
            hi = m.valid_range.max or 5.0
            val = np.round(np.clip(rng.normal(3.4 + 0.25 * years, 0.45, n), lo, hi), 2)
            den = rng.integers(3, 16, n)
        out.append(
            part.with_columns(
                pl.Series("numerator", num, dtype=pl.Float64)
                if num is not None
                else pl.lit(None, pl.Float64).alias("numerator"),
                pl.Series("denominator", den, dtype=pl.Float64)
                if den is not None
                else pl.lit(None, pl.Float64).alias("denominator"),
                pl.Series("value", val, dtype=pl.Float64)
                if val is not None
                else pl.lit(None, pl.Float64).alias("value"),
            )
        )
    return pl.concat(out)


def _geo_names(frame: pl.DataFrame, initiative: Initiative, language: str) -> pl.DataFrame:
    names = {
        g.code: getattr(g.name, language) or g.name.en for g in initiative.geographies.values()
    }
    return frame.with_columns(pl.col("geo_code").replace_strict(names, return_dtype=pl.Utf8))


def _number_text(frame: pl.DataFrame, decimal_comma: bool = False) -> pl.DataFrame:
    def fmt(c: str) -> pl.Expr:
        x = pl.col(c)
        text = (
            pl.when(x == x.round(0))
            .then(x.cast(pl.Int64).cast(pl.Utf8))
            .otherwise(x.round(4).cast(pl.Utf8))
        )
        return (text.str.replace(".", ",", literal=True) if decimal_comma else text).alias(c)

    return frame.with_columns(fmt(c) for c in ("numerator", "denominator", "value"))


def _drop_unused_dims(frame: pl.DataFrame) -> pl.DataFrame:
    """Dimension columns that are all total are left out, as partners do."""
    keep = [c for c in frame.columns if c not in ("sex", "age_band") or (frame[c] != TOTAL).any()]
    return frame.select(keep)


def write_partner_file(
    frame: pl.DataFrame, initiative: Initiative, partner_id: str, period: str, folder: Path
) -> Path:
    """Write one submission the way this partner's office would produce it."""
    partner = initiative.partner(partner_id)
    frame = _drop_unused_dims(frame)
    stem = f"{partner_id}_{period}"
    folder.mkdir(parents=True, exist_ok=True)
    if partner_id == "employment-service":  # Hebrew Excel export: cp1255, ';' and decimal commas
        frame = _number_text(_geo_names(frame, initiative, "he"), decimal_comma=True)
        frame = (
            frame.with_columns(
                pl.when(pl.col("numerator").is_not_null())
                .then(None)
                .otherwise(pl.col("value"))
                .alias("value")
            )
            if "numerator" in frame.columns
            else frame
        )
        frame = frame.rename({"geo_code": "יישוב", "period": "תקופה"})
        path = folder / f"{stem}.csv"
        path.write_bytes(frame.write_csv(separator=";").encode(partner.encoding))
    elif partner.encoding.lower() != "utf-8":  # Arabic office: cp1256 with Arabic names
        frame = _number_text(_geo_names(frame, initiative, "ar"))
        path = folder / f"{stem}.csv"
        path.write_bytes(frame.write_csv().encode(partner.encoding))
    elif partner_id == "braude-college":  # a workbook with date cells and loose headers
        frame = frame.with_columns(
            pl.col("period")
            .str.strptime(pl.Date, "%Y-%m", strict=False)
            .fill_null(pl.col("period").str.strptime(pl.Date, "%Y", strict=False))
            if not frame["period"].str.contains("Q").any()
            else pl.col("period")
        ).rename({"measure_id": "Measure ID", "geo_code": " Geo Code ", "period": "Period"})
        path = folder / f"{stem}.xlsx"
        frame.write_excel(path)
    elif partner_id == "national-insurance":
        path = folder / f"{stem}.parquet"
        frame.write_parquet(path)
    elif partner_id == "online-commerce-centre":
        path = folder / f"{stem}.tsv"
        path.write_text(_number_text(frame).write_csv(separator="\t"), encoding="utf-8")
    else:  # municipalities and the fund: UTF-8 with a BOM, locality names in Hebrew
        path = folder / f"{stem}.csv"
        path.write_bytes(
            b"\xef\xbb\xbf" + _number_text(_geo_names(frame, initiative, "he")).write_csv().encode()
        )
    return path


def _with_errors(frame: pl.DataFrame) -> pl.DataFrame:
    """The mistakes partners make: a word for a number, an unknown place, a negative count,
    a formula, a row pasted twice."""
    text = _number_text(frame)
    bad = text.with_columns(
        pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.lit("twelve"))
        .when(pl.int_range(pl.len()) == 4)
        .then(pl.lit("-3"))
        .otherwise(pl.col("value"))
        .alias("value"),
        pl.when(pl.int_range(pl.len()) == 2)
        .then(pl.lit("Haifa"))
        .otherwise(pl.col("geo_code"))
        .alias("geo_code"),
        pl.when(pl.int_range(pl.len()) == 6)
        .then(pl.lit('=HYPERLINK("http://example.com","fix")'))
        .otherwise(pl.col("sex"))
        .alias("sex"),
    )
    return pl.concat([bad, bad.slice(8, 1)])


def generate(
    initiative: Initiative, folder: Path, seed: int = 2026, scenario: Scenario = DEMO_SCENARIO
) -> list[DemoFile]:
    """Write the sample submissions for 24 months into ``folder``, in the order they arrive.

    The scenario's late partner's file for its period is never written.
    """
    rng = np.random.default_rng(seed)
    if folder.exists():
        shutil.rmtree(folder)
    span = Period(FIRST_MONTH.start, FIRST_MONTH.start + MONTHS - 1, "demo", Periodicity.month)
    files: list[DemoFile] = []
    for quarter in periods_in(span, Periodicity.quarter):
        for partner_id in initiative.partners:
            rows = expected_rows(initiative, partner_id, quarter)
            if rows.is_empty() or (partner_id, quarter.label) == scenario.late:
                continue
            frame = simulate(rows, initiative, rng, scenario)
            out = folder / partner_id
            if partner_id == "online-commerce-centre" and quarter.label == "2025-Q2":
                bad = out / f"{partner_id}_{quarter.label}_draft.tsv"
                out.mkdir(parents=True, exist_ok=True)
                bad.write_text(
                    _with_errors(_drop_unused_dims(frame)).write_csv(separator="\t"),
                    encoding="utf-8",
                )
                files.append(DemoFile(partner_id, quarter.label, bad, "a draft with errors"))
            path = write_partner_file(frame, initiative, partner_id, quarter.label, out)
            files.append(DemoFile(partner_id, quarter.label, path))
            if partner_id == "national-insurance" and quarter.label == "2025-Q3":
                revised = frame.with_columns(
                    pl.when(pl.col("geo_code") == "nahf")
                    .then(pl.col("numerator") - 25)
                    .otherwise(pl.col("numerator"))
                    .alias("numerator")
                )
                path = write_partner_file(
                    revised, initiative, partner_id, quarter.label, out / "revised"
                )
                files.append(
                    DemoFile(partner_id, quarter.label, path, "a revision: supersedes the first")
                )
            if partner_id == "galilee-foundation" and quarter.label == "2025-Q4":
                files.append(DemoFile(partner_id, quarter.label, path, "sent twice: a duplicate"))
        if quarter.label.endswith("Q4"):  # the yearly backbone-effectiveness survey
            year = parse_period(quarter.label[:4])
            for partner_id in initiative.partners:
                rows = expected_rows(initiative, partner_id, year)
                rows = rows.filter(pl.col("measure_id").str.starts_with("fsg-"))
                if rows.is_empty():
                    continue
                frame = simulate(rows, initiative, rng, scenario)
                path = write_partner_file(
                    frame, initiative, partner_id, year.label, folder / partner_id / "survey"
                )
                files.append(DemoFile(partner_id, year.label, path, "backbone survey"))
    return files
