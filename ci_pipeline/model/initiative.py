"""The initiative as data: geographies, partners, versioned shared measures and the equity gaps
it tracks (pydantic models, extra fields forbidden), and the lookups every stage uses.

Over 400 lines on purpose: it is the one schema of an initiative folder, every model its YAML
files validate against with the field descriptions editors see; the models share their base
types (slugs, names, the strict base), so splitting it would only spread one schema thin.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated

from babel import Locale, UnknownLocaleError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from ci_pipeline.errors import InvalidPeriod
from ci_pipeline.model.periods import Period, Periodicity, parse_period

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


TOTAL = "total"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Unit(StrEnum):
    """What a measure's value is."""

    count = "count"  # type: ignore[assignment]  # shadows str.count; a number of people, businesses
    proportion = "proportion"  # numerator / denominator, a share between 0 and 1
    score = "score"  # a mean score on a scale (e.g. 1-5 survey agreement)
    amount = "amount"  # money or another additive quantity


class Combine(StrEnum):
    """How values from several partners (or localities) combine into one."""

    sum = "sum"  # counts and amounts
    ratio_of_sums = "ratio_of_sums"  # proportions: sum of numerators / sum of denominators
    weighted_mean = "weighted_mean"  # scores, weighted by the denominator (respondents)


#: The only combination rule that is right for each unit; rates are never averaged.
COMBINE_FOR_UNIT = {
    Unit.count: Combine.sum,
    Unit.amount: Combine.sum,
    Unit.proportion: Combine.ratio_of_sums,
    Unit.score: Combine.weighted_mean,
}


class AcrossPartners(StrEnum):
    """How two partners' figures for the same measure, geography and period combine."""

    #: They count different people (each its own clients, students, businesses): added up.
    sum = "sum"
    #: They report the same population (a municipality and a national service, each giving
    #: the locality's figure): the first partner of ``partner_precedence`` that reported the
    #: cell counts; the others' figures are kept, shown and not counted.
    prefer = "prefer"
    #: Only one partner may report a cell: a file overlapping another partner's accepted
    #: figure is rejected (``already_reported``).
    exclusive = "exclusive"


class Direction(StrEnum):
    higher_is_better = "higher_is_better"
    lower_is_better = "lower_is_better"


class Sector(StrEnum):
    local_government = "local_government"
    central_government = "central_government"
    civil_society = "civil_society"
    business = "business"
    academia = "academia"
    philanthropy = "philanthropy"


class GeoLevel(StrEnum):
    cluster = "cluster"
    locality = "locality"


def known_locale(value: str) -> str:
    """A CLDR locale id babel knows, spelt as babel spells it (``he-il`` → ``he_IL``): how a
    partner writes numbers (see :mod:`ci_pipeline.read.numbers`)."""
    try:
        return str(Locale.parse(value.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        raise ValueError(
            f"unknown locale {value!r}: give a CLDR locale such as he_IL, ar, en, de_DE or fr_FR"
        ) from None


LocaleId = Annotated[str, AfterValidator(known_locale)]


class Names(StrictModel):
    """A name in the initiative's three languages."""

    en: str
    he: str | None = None
    ar: str | None = None


class PeriodValue(StrictModel):
    """A value at a period: a measure's baseline or target."""

    period: str
    value: float

    @field_validator("period")
    @classmethod
    def _canonical(cls, v: str) -> str:
        try:
            return parse_period(v).label
        except InvalidPeriod as exc:
            raise ValueError(str(exc)) from None


class ValueRange(StrictModel):
    """The values a partner may report; anything outside is rejected as a data-entry error."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ValueRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class AlertParameters(StrictModel):
    """How regressions of this measure are judged (used by the detect stage)."""

    min_history: int = Field(4, ge=2, description="Periods of history before judging a change.")
    min_change: float = Field(
        0.0,
        ge=0,
        description=(
            "Smallest change that matters to people, in the measure's unit (0.02 is 2 points of "
            "a proportion): a change the series' own noise explains is never an alert anyway."
        ),
    )
    alpha: float = Field(
        0.01,
        gt=0,
        lt=0.5,
        description=(
            "Significance level of the step and sustained-change tests (for the sustained "
            "change: false alarms per stable period), adjusted across each run."
        ),
    )
    drift_periods: int = Field(6, ge=3, description="Consecutive periods judged for drift.")
    off_track_tolerance: float = Field(
        0.1,
        ge=0,
        description="How far behind the baseline-to-target path, as a share, is off track.",
    )
    seasonal: bool | None = Field(
        None,
        description=(
            "Expect each period from the same period of earlier years: unset, where that has "
            "predicted the series best and two years of history exist; true, whenever they "
            "exist; false, never."
        ),
    )
    min_coverage: float = Field(
        1.0, gt=0, le=1, description="Share of expected partners that must report for a period."
    )


class Measure(StrictModel):
    """One shared measure: the agreed definition every partner reports against."""

    id: Slug
    version: int = Field(ge=1)
    title: str = Field(min_length=1)
    title_he: str | None = None
    title_ar: str | None = None
    description: str = Field(min_length=1)
    unit: Unit
    unit_label: str = Field(description="How a value is read: '%', 'people', 'NIS', '1-5'.")
    numerator: str | None = Field(None, description="What is counted (proportions).")
    denominator: str | None = Field(
        None, description="What it is out of (proportions) or who answered (scores)."
    )
    combine: Combine
    across_partners: AcrossPartners = Field(
        AcrossPartners.sum,
        description="How partners' figures for the same measure, place and period combine: "
        "sum (they count different people), prefer (the same people: the first of "
        "partner_precedence that reported counts), exclusive (one partner per cell).",
    )
    partner_precedence: list[Slug] = Field(
        default_factory=list,
        description="With across_partners: prefer, the partners reporting the same population, "
        "the one that counts first; partners not listed are added as usual.",
    )
    direction: Direction
    geo_levels: list[GeoLevel] = Field(default_factory=lambda: [GeoLevel.locality], min_length=1)
    dimensions: dict[Slug, list[Slug]] = Field(
        default_factory=dict, description="Disaggregation dimensions and their allowed codes."
    )
    valid_range: ValueRange = ValueRange()
    periodicity: Periodicity
    deadline_days: int = Field(ge=0, description="Days after a period ends that data is due.")
    baseline: PeriodValue | None = None
    target: PeriodValue | None = None
    min_cell_size: int = Field(10, ge=1, description="Smaller counts are never published.")
    working_group: Slug | None = None
    domain: str | None = None
    alert: AlertParameters = AlertParameters()

    @field_validator("dimensions")
    @classmethod
    def _total_code(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for dim, codes in v.items():
            if TOTAL not in codes:
                raise ValueError(f"dimension {dim!r} must list the code {TOTAL!r}")
            if len(codes) < 2:
                raise ValueError(f"dimension {dim!r} needs at least one code besides {TOTAL!r}")
            if len(set(codes)) != len(codes):
                raise ValueError(f"dimension {dim!r} lists a code twice")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Measure:
        expected = COMBINE_FOR_UNIT[self.unit]
        if self.combine is not expected:
            raise ValueError(f"a {self.unit} measure combines by {expected}, not {self.combine}")
        if self.unit is Unit.proportion:
            if not (self.numerator and self.denominator):
                raise ValueError("a proportion needs both 'numerator' and 'denominator'")
            lo, hi = self.valid_range.min, self.valid_range.max
            if (lo is not None and lo < 0) or (hi is not None and hi > 1):
                raise ValueError("a proportion's valid_range must lie within [0, 1]")
        if (self.across_partners is AcrossPartners.prefer) != bool(self.partner_precedence):
            raise ValueError(
                "partner_precedence lists the partners in order with across_partners: prefer, "
                "and only then"
            )
        if self.across_partners is AcrossPartners.prefer and len(self.partner_precedence) < 2:
            raise ValueError("partner_precedence needs at least two partners to prefer between")
        if len(set(self.partner_precedence)) != len(self.partner_precedence):
            raise ValueError("partner_precedence lists a partner twice")
        if self.unit is Unit.score and not self.denominator:
            raise ValueError("a score needs 'denominator': who answered (the weight)")
        for name in ("baseline", "target"):
            pv: PeriodValue | None = getattr(self, name)
            if pv is not None and parse_period(pv.period).periodicity is not self.periodicity:
                raise ValueError(f"{name} period {pv.period} is not a {self.periodicity}")
        if (
            self.baseline
            and self.target
            and parse_period(self.target.period) <= parse_period(self.baseline.period)
        ):
            raise ValueError("target period must come after the baseline period")
        return self

    def on_path(self, period: Period) -> float | None:
        """The value the straight path from the baseline to the target expects at ``period``
        (by months from the baseline's start); None without both, or outside them."""
        if self.baseline is None or self.target is None:
            return None
        b, t = parse_period(self.baseline.period), parse_period(self.target.period)
        if not (b <= period <= t):
            return None
        planned = self.target.value - self.baseline.value
        return self.baseline.value + planned * (period.start - b.start) / (t.start - b.start)

    @property
    def total_key(self) -> str:
        """The breakdown key of the measure's headline cell: every dimension at ``total``."""
        return ";".join(f"{d}={TOTAL}" for d in sorted(self.dimensions)) or TOTAL

    @property
    def title_in(self) -> dict[str, str]:
        return {
            k: v for k, v in (("en", self.title), ("he", self.title_he), ("ar", self.title_ar)) if v
        }


class Geography(StrictModel):
    code: Slug
    level: GeoLevel
    parent: Slug | None = None
    name: Names
    aliases: list[str] = Field(default_factory=list, description="Other spellings partners use.")
    groups: list[Slug] = Field(
        default_factory=list,
        description="Named groups of localities this locality belongs to (e.g. jewish, arab): "
        "the groups an equity gap of initiative.yaml compares.",
    )


class Contact(StrictModel):
    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")


class Partner(StrictModel):
    id: Slug
    name: str
    name_he: str | None = None
    name_ar: str | None = None
    sector: Sector
    localities: list[Slug] = Field(min_length=1)
    measures: list[Annotated[str, Field(pattern=r"^[a-z0-9*][a-z0-9_*-]*$")]] = Field(
        min_length=1, description="Measures this partner reports: ids or patterns such as fsg-*."
    )
    submits_every: Periodicity = Field(
        Periodicity.month, description="How often the partner sends a file."
    )
    encoding: str = Field(
        "utf-8",
        description="The encoding the partner's CSV files use when they carry no byte-order "
        "mark and are not UTF-8 (a default, not a trap: see ci_pipeline.read.files.decode).",
    )
    locale: LocaleId | None = Field(
        None,
        description="How the partner writes numbers (a CLDR locale: he_IL, ar, de_DE …); "
        "default: the initiative's.",
    )
    sheet: str | None = Field(
        None,
        description="The workbook sheet that holds the data; default: the one whose "
        "header names the columns.",
    )
    contact: Contact


class GapSide(StrictModel):
    """One of the two groups an equity gap compares, and how a sentence names it."""

    group: Slug = Field(
        description="A group of localities (geographies' groups) or, for a gap along a "
        "breakdown dimension, one of its codes."
    )
    name: Names


class EquityGap(StrictModel):
    """A pair of groups the initiative tracks for equity: the gap between them is an indicator
    too, and it widening is a regression even when both groups improve.

    ``behind`` is the group the initiative wants to catch up (the worse-off one), ``ahead`` the
    other: the gap is how much better off ``ahead`` is, on every measure it applies to.
    """

    id: Slug = Field(description="Names the gap in alerts: their breakdown is gap:<id>.")
    dimension: Slug | None = Field(
        None,
        description="Compare two codes of this breakdown dimension (sex: female vs male) in "
        "each geography; without it, compare two groups of localities, in each geography "
        "above them.",
    )
    ahead: GapSide
    behind: GapSide
    measures: list[Annotated[str, Field(pattern=r"^[a-z0-9*][a-z0-9_*-]*$")]] = Field(
        default_factory=list,
        description="The measures whose gap is tracked (ids or patterns); default: every "
        "proportion and score that has both groups' figures.",
    )

    @model_validator(mode="after")
    def _two_groups(self) -> EquityGap:
        if self.ahead.group == self.behind.group:
            raise ValueError("ahead and behind name the same group")
        if TOTAL in (self.ahead.group, self.behind.group):
            raise ValueError(f"{TOTAL!r} is everyone, not a group")
        return self


class InitiativeInfo(StrictModel):
    id: Slug
    name: Names
    description: str
    version: str
    locale: LocaleId = Field(
        "en", description="How partners write numbers unless a partner's settings say otherwise."
    )
    equity_gaps: list[EquityGap] = Field(
        default_factory=list,
        description="Pairs of groups (of localities, or breakdown codes) whose gap is judged.",
    )


class Initiative(BaseModel):
    """A loaded, cross-checked initiative folder."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    info: InitiativeInfo
    geographies: dict[str, Geography]
    partners: dict[str, Partner]
    measures: dict[str, Measure]
    digest: str = Field(description="Hash of the definitions, to tell versions apart.")

    @cached_property
    def dimension_names(self) -> list[str]:
        """Every disaggregation dimension used by any measure, sorted: the submission columns."""
        return sorted({d for m in self.measures.values() for d in m.dimensions})

    def ancestors(self, code: str) -> list[str]:
        """The geography's parents up to the root, nearest first."""
        out: list[str] = []
        parent = self.geographies[code].parent
        while parent is not None:
            out.append(parent)
            parent = self.geographies[parent].parent
        return out

    def partner(self, partner_id: str) -> Partner:
        from ci_pipeline.errors import UnknownPartner

        try:
            return self.partners[partner_id]
        except KeyError:
            known = ", ".join(sorted(self.partners))
            raise UnknownPartner(
                f"no partner {partner_id!r} in {self.info.id}; known: {known}"
            ) from None

    def partner_locale(self, partner_id: str) -> str:
        """How the partner writes numbers: its own locale, else the initiative's."""
        return self.partner(partner_id).locale or self.info.locale

    def partner_geographies(self, partner_id: str) -> list[str]:
        """Geographies a partner may report for: its localities, then their ancestors in the
        order first met."""
        partner = self.partner(partner_id)
        codes = list(partner.localities)
        seen = set(codes)  # membership in a set: linear in the areas, not quadratic
        for code in partner.localities:
            for ancestor in self.ancestors(code):
                if ancestor not in seen:
                    seen.add(ancestor)
                    codes.append(ancestor)
        return codes

    def geo_aliases(self) -> dict[str, str]:
        """Every way a geography is written (code, names, aliases), normalised, to its code."""
        out: dict[str, str] = {}
        for g in self.geographies.values():
            for name in (g.code, g.name.en, g.name.he, g.name.ar, *g.aliases):
                if name:
                    out[normalise_name(name)] = g.code
        return out


def normalise_name(text: str) -> str:
    """Fold a place name for matching: case, accents, geresh/apostrophes, hyphens and spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return re.sub(r"[\s\-_'`’׳״\"]+", "", text)
