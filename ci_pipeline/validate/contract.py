"""The contract: a pandera ``DataFrameSchema`` (polars backend) generated from the shared-measure
definitions for one partner and one period, and its rule book (each rule's name, the column a
failure is reported against, and the sentence that explains it). Nothing is written per
measure.

Over 400 lines on purpose: the builder is one rule book, and a rule's check and its sentence
belong side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from ci_pipeline.model.initiative import TOTAL, Initiative, Unit
from ci_pipeline.model.periods import CANONICAL_PATTERNS, Period, labels_within
from ci_pipeline.read import (
    NUMBER_COLUMNS,
    PARTNER_COLUMN,
    ROW,
    NumberFormat,
    looks_like_number,
    number_format,
)
from ci_pipeline.validate.echo import echoed

#: Tolerance when a partner gives both a proportion's value and its numerator/denominator.
RATIO_TOLERANCE = 0.0005


@dataclass(frozen=True)
class Rule:
    """One named rule: the column a failure is reported against, and how to say it.

    ``message`` is an expression evaluated over the failing rows joined with their measure's
    rules, so a sentence can name the row's own measure, bounds and values.
    """

    column: str
    message: pl.Expr
    #: Whether a row passes (null passes), over the row and its measure's rules.
    ok: pl.Expr | None = None
    #: A cheaper test of the same, over the hashes of the keys (:func:`_hashed_keys`), that
    #: :func:`with_outcomes` runs instead of ``ok`` and confirms with ``ok`` where it fails. It
    #: must fail every row ``ok`` fails, and may fail more (two keys with one hash), but only
    #: whole groups of rows of one hash, so that ``ok`` on the failed rows alone is exact.
    screen: pl.Expr | None = None


#: The prefix of the columns :func:`with_outcomes` adds: ``_passes_<rule>``, each row's outcome.
OUTCOME_PREFIX = "_passes_"


def rules_frame(initiative: Initiative) -> pl.DataFrame:
    measures = list(initiative.measures.values())
    return pl.DataFrame(
        {
            "measure_id": [m.id for m in measures],
            "_unit": [str(m.unit) for m in measures],
            "_periodicity": [str(m.periodicity) for m in measures],
            "_min": [m.valid_range.min for m in measures],
            "_max": [m.valid_range.max for m in measures],
            "_geo_levels": [[str(g) for g in m.geo_levels] for m in measures],
        },
        schema_overrides={"_min": pl.Float64, "_max": pl.Float64},
    )


#: The measure rules :func:`with_rules` gives each row (one value each, no lists).
ROW_RULES = ("_unit", "_periodicity", "_min", "_max")


def with_rules(frame: pl.DataFrame | pl.LazyFrame, initiative: Initiative) -> pl.LazyFrame:
    """The long frame with its measure's rules (:data:`ROW_RULES`, from :func:`rules_frame`)
    and its place's level (``_geo_level``) beside each row, null where the measure or place is
    unknown: what the row rules read. Looked up value by value, rows in their order; the
    measures' lists (levels, codes) are not copied onto every row, but tested as pairs
    (:func:`_pair`)."""
    return frame.lazy().with_columns(_looked_up(initiative))


def _looked_up(initiative: Initiative) -> list[pl.Expr]:
    """The columns :func:`with_rules` adds, as expressions over a row's measure and place."""
    rules = rules_frame(initiative)
    geos = initiative.geographies
    return [
        *(
            pl.col("measure_id")
            .replace_strict(rules["measure_id"], rules[c], default=None)
            .alias(c)
            for c in ROW_RULES
        ),
        pl.col("geo_code")
        .replace_strict(list(geos), [str(g.level) for g in geos.values()], default=None)
        .alias("_geo_level"),
    ]


def _pair(first: pl.Expr, second: pl.Expr) -> pl.Expr:
    """Two codes as one text, to test a pair's membership with ``is_in`` (:func:`_pairs`)."""
    return pl.concat_str([first, second], separator=_PAIR_SEPARATOR)


def _pairs(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{a}{_PAIR_SEPARATOR}{b}" for a, b in pairs]


_PAIR_SEPARATOR = "\x1f"  # the unit separator: in no identifier or code


#: A cell: one measure, place and period. No rule looks across rows beyond one.
CELL = ("measure_id", "geo_code", "period")

#: The hashes :func:`_hashed_keys` adds: of a row's cell, and of its whole key (the cell and
#: its breakdown), what the rules that compare rows group by (``Rule.screen``).
CELL_HASH, KEY_HASH = "_cell_hash", "_key_hash"


def _row_key(initiative: Initiative) -> list[str]:
    """A row's key: its cell and its breakdown. No two rows of a file may share one."""
    return [*CELL, *initiative.dimension_names]


def _hashed_keys(initiative: Initiative) -> list[pl.Expr]:
    """A row's cell and key as 64-bit hashes: grouping a million rows by one number instead of
    by three to five texts halves the time of ``unique_row`` and the ``<dim>_mixed`` rules,
    and their memory. Equal keys hash alike; unequal keys may too (about once in 10^10 files
    of a million rows), which :func:`with_outcomes` rules out by confirming failures."""
    return [
        pl.struct(CELL).hash().alias(CELL_HASH),
        pl.struct(_row_key(initiative)).hash().alias(KEY_HASH),
    ]


def with_outcomes(
    frame: pl.DataFrame, initiative: Initiative, rules: dict[str, Rule]
) -> pl.DataFrame:
    """The frame with every rule's outcome for each row beside it (``_passes_<rule>``), worked
    out over :func:`with_rules` in one polars plan.

    pandera runs a schema's checks one collect each, over the whole frame; a national file's
    thirty rules then held their work for a million rows at once (400 MiB). Here they are one
    plan, of which only the outcomes are kept (a bit per row and rule), and each check then
    only reads its column. The rules that compare rows (``unique_row``, ``<dim>_mixed``)
    group them by the hashes of their keys (``Rule.screen``); the rows that fail so are judged
    again by the rule itself (:func:`_confirmed`), so a hash shared by two keys cannot fail a
    row. A rule over a column the frame lacks is left to its check, which works it out by
    itself, as every check does on a frame without the outcomes: the schema stays whole on
    its own.
    """
    hashes = [h for h in _hashed_keys(initiative) if set(h.meta.root_names()) <= set(frame.columns)]
    looked_up = [*_looked_up(initiative), *hashes]
    names = set(frame.columns) | {e.meta.output_name() for e in looked_up}

    def computable(expr: pl.Expr | None) -> bool:
        return expr is not None and set(expr.meta.root_names()) <= names

    chosen = {
        # A screen over a hash the frame cannot have (a key column missing) is not used.
        OUTCOME_PREFIX + name: (rule.ok, rule.screen if computable(rule.screen) else None)
        for name, rule in rules.items()
        if rule.ok is not None and computable(rule.ok)
    }
    outcomes = (
        frame.lazy()
        .with_columns(looked_up)
        .select(
            (ok if screen is None else screen).fill_null(True).alias(column)
            for column, (ok, screen) in chosen.items()
        )
        .collect()
    )
    confirmed = [
        _confirmed(frame, outcomes.get_column(column), ok, looked_up)
        for column, (ok, screen) in chosen.items()
        if screen is not None
    ]
    return frame.hstack(outcomes.with_columns(confirmed).get_columns())


def _confirmed(
    frame: pl.DataFrame, screened: pl.Series, ok: pl.Expr, looked_up: list[pl.Expr]
) -> pl.Series:
    """A screened outcome (``Rule.screen``) with its failed rows judged again by ``ok``, on
    those rows alone: a screen fails whole groups of one hash, so every row a failed row is
    compared with is among them. Nothing failed, nothing is judged again."""
    failed = screened.not_().arg_true()
    if failed.is_empty():
        return screened
    exact = (
        frame.select(pl.all().gather(failed))
        .lazy()
        .with_columns(looked_up)
        .select(ok.fill_null(True))
        .collect()
        .to_series()
    )
    return screened.scatter(failed, exact)


def _outcome(data: PolarsData, name: str) -> pl.LazyFrame | None:
    """A rule's outcome column, if the frame carries it (:func:`with_outcomes`)."""
    column = OUTCOME_PREFIX + name
    return data.lazyframe.select(column) if column in data.lazyframe.collect_schema() else None


def _known_codes(initiative: Initiative, dim: str) -> list[str]:
    """Every code any measure allows for a dimension."""
    return sorted({c for m in initiative.measures.values() for c in m.dimensions.get(dim, [TOTAL])})


def _fmt(expr: pl.Expr) -> pl.Expr:
    """A number as text for a message: integers without a trailing .0."""
    return pl.coalesce(
        pl.when(expr == expr.round(0)).then(expr.cast(pl.Int64, strict=False).cast(pl.Utf8)),
        expr.round(4).cast(pl.Utf8),
    )


def message_text(*parts: str | pl.Expr) -> pl.Expr:
    return pl.concat_str([p if isinstance(p, pl.Expr) else pl.lit(p) for p in parts])


def _q(col: str) -> pl.Expr:
    """A cell's value quoted in a message, cut to a readable length (see ``echo``)."""
    return message_text("'", echoed(pl.col(col).fill_null("")), "'")


class _ContractBuilder:
    """Builds the schema and the rule book together, so every check has a name and a sentence."""

    def __init__(
        self, initiative: Initiative, partner_id: str, period: Period, numbers: NumberFormat
    ) -> None:
        self.initiative = initiative
        self.numbers = numbers
        self.partner = initiative.partner(partner_id)
        self.period = period
        self.rules: dict[str, Rule] = {}
        self.columns: dict[str, pa.Column] = {ROW: pa.Column(pl.Int64)}
        self.frame_checks: list[pa.Check] = []

    def row_rule(
        self,
        name: str,
        column: str,
        ok: pl.Expr,
        message: pl.Expr,
        *,
        screen: pl.Expr | None = None,
    ) -> None:
        """A rule over each row and its measure's rules (:func:`with_rules`); null passes.
        ``screen``: its cheaper test over hashed keys, for :func:`with_outcomes`."""

        def check(data: PolarsData) -> pl.LazyFrame:
            done = _outcome(data, name)
            if done is not None:
                return done
            lf = data.lazyframe
            if "_unit" not in lf.collect_schema():  # a frame without them: looked up here
                lf = with_rules(lf, self.initiative)
            return lf.select(ok.fill_null(True).alias(name))

        self.rules[name] = Rule(column, message, ok, screen)
        self.frame_checks.append(pa.Check(check, name=name))

    def column(
        self,
        column: str,
        dtype: type[pl.DataType],
        rules: dict[str, tuple[pl.Expr, pl.Expr]],
        *,
        nullable: bool = True,
    ) -> None:
        """A typed column with checks on its own values: ``{name: (ok, message)}``."""
        checks = []
        for name, (ok, message) in rules.items():
            self.rules[name] = Rule(column, message, ok)

            def check(data: PolarsData, name: str = name, ok: pl.Expr = ok) -> pl.LazyFrame:
                done = _outcome(data, name)
                return data.lazyframe.select(ok.fill_null(True)) if done is None else done

            checks.append(pa.Check(check, name=name))
        self.columns[column] = pa.Column(dtype, checks, nullable=nullable)

    def build(self) -> tuple[pa.DataFrameSchema, dict[str, Rule]]:
        self._key_columns()
        for dim in self.initiative.dimension_names:
            self._dimension_rules(dim)
        for col in NUMBER_COLUMNS:
            self._number_column(col)
        self._period_rules()
        self._unit_rules()
        self._unique_rule()
        schema = pa.DataFrameSchema(
            self.columns, checks=self.frame_checks, strict=False, coerce=False
        )
        return schema, self.rules

    def _key_columns(self) -> None:
        ini, partner = self.initiative, self.partner
        measure, geo, period = pl.col("measure_id"), pl.col("geo_code"), pl.col("period")
        self.column(
            "measure_id",
            pl.Utf8,
            {
                "measure_reported": (
                    measure.is_in(partner.measures),
                    pl.when(measure.is_in(list(ini.measures)))
                    .then(
                        message_text(
                            "measure ",
                            _q("measure_id"),
                            f" is a shared measure, but not one {partner.id} reports",
                        )
                    )
                    .otherwise(
                        message_text(
                            "measure ",
                            _q("measure_id"),
                            " is not a shared measure of this initiative",
                        )
                    ),
                )
            },
            nullable=False,
        )
        self.column(
            "geo_code",
            pl.Utf8,
            {
                "geography_served": (
                    geo.is_in(ini.partner_geographies(partner.id)),
                    pl.when(geo.is_in(list(ini.geographies)))
                    .then(
                        message_text(
                            "place ", _q("geo_code"), f" is not a locality {partner.id} reports for"
                        )
                    )
                    .otherwise(
                        message_text(
                            "place ",
                            _q("geo_code"),
                            " is not a locality of this initiative (use its code or its name in English, Hebrew or Arabic)",
                        )
                    ),
                )
            },
            nullable=False,
        )
        self.column(
            "period",
            pl.Utf8,
            {
                "period_format": (
                    period.str.contains("|".join(CANONICAL_PATTERNS.values())),
                    message_text(
                        "period ",
                        _q("period"),
                        " is not a period: write a month (2025-09), quarter (2025-Q3) or year (2025)",
                    ),
                )
            },
            nullable=False,
        )
        # Unknown measures and places fail measure_reported and geography_served.
        unknown = pl.col("_unit").is_null() | ~geo.is_in(list(ini.geographies))
        levels = [(m.id, str(g)) for m in ini.measures.values() for g in m.geo_levels]
        self.row_rule(
            "geography_level",
            "geo_code",
            _pair(measure, pl.col("_geo_level")).is_in(_pairs(levels)) | unknown,
            message_text(
                measure,
                " is reported for a ",
                pl.col("_geo_levels").list.join(" or "),
                ", not for ",
                _q("geo_code"),
            ),
        )
        if PARTNER_COLUMN in ini.dimension_names:  # pragma: no cover - a reserved name
            raise ValueError(f"{PARTNER_COLUMN} cannot be a dimension")

    def partner_rule(self) -> None:
        pid = self.partner.id
        self.row_rule(
            "partner_matches",
            PARTNER_COLUMN,
            pl.col(PARTNER_COLUMN).str.strip_chars() == pid,
            message_text(
                f"{PARTNER_COLUMN} ",
                _q(PARTNER_COLUMN),
                f" differs from the submitting partner {pid!r}",
            ),
        )

    def _dimension_rules(self, dim: str) -> None:
        ini = self.initiative
        codes = _known_codes(ini, dim)
        code = pl.col(dim)
        self.column(
            dim,
            pl.Utf8,
            {
                f"{dim}_code": (
                    code.is_in(codes),
                    message_text(
                        f"{dim} ",
                        _q(dim),
                        f" is not a {dim} code; use one of: {', '.join(codes)} (blank means total)",
                    ),
                )
            },
        )
        # Codes no measure knows are reported once, by the {dim}_code check above.
        self.row_rule(
            f"{dim}_allowed",
            dim,
            # A measure without the dimension allows only its total.
            _pair(pl.col("measure_id"), code).is_in(
                _pairs(
                    [
                        (m.id, c)
                        for m in ini.measures.values()
                        for c in m.dimensions.get(dim, [TOTAL])
                    ]
                )
            )
            | pl.col("_unit").is_null()
            | ~code.is_in(codes),
            message_text(pl.col("measure_id"), f" is not broken down by {dim} code ", _q(dim)),
        )
        # Every row of one cell (measure, place, period) breaks down by the same dimensions:
        # a total beside a breakdown, or a breakdown by age beside one by sex, would count the
        # same people twice when rolled up.
        self.row_rule(
            f"{dim}_mixed",
            dim,
            (code == TOTAL).n_unique().over(CELL) == 1,
            pl.lit(
                f"rows for the same measure, locality and period give both a total and a "
                f"breakdown by {dim}; send either the total or the breakdown, not both"
            ),
            # Rows of one hash hold whole cells: a cell that mixes, mixes its hash's rows.
            screen=(code == TOTAL).n_unique().over(CELL_HASH) == 1,
        )

    def _number_column(self, col: str) -> None:
        x = pl.col(col)
        # A value's bounds come from its measure (value_in_range); the counts beneath a share
        # or a mean are never negative.
        rules = (
            {}
            if col == "value"
            else {f"{col}_not_negative": (x >= 0, message_text(f"{col} ", _fmt(x), " is negative"))}
        )
        self.column(col, pl.Float64, rules)
        # The text of a cell that was not read as a number (null where it was, or is blank):
        # only those cells are looked at again, not a million numbers that were read.
        unread = pl.when(x.is_null()).then(pl.col(f"{col}_text"))
        # Digits and separators that do not fit the locale's grammar are a matter of format
        # (the partner can fix it, or declare the locale they write in); anything else is text.
        numeric_looking = looks_like_number(unread)
        self.row_rule(
            f"{col}_is_number",
            col,
            unread.is_null() | numeric_looking,
            message_text(f"{col} ", _q(f"{col}_text"), " is not a number"),
        )
        self.row_rule(
            f"{col}_number_format",
            col,
            unread.is_null() | ~numeric_looking,
            message_text(
                f"{col} ",
                _q(f"{col}_text"),
                f" is not a number as this file's locale writes them: {self.numbers.describe()}."
                " If you write numbers another way, ask the backbone team to record your locale"
                " (e.g. de_DE for 1.234,5, fr_FR for 1 234,5), or give it with the file",
            ),
        )

    def _period_rules(self) -> None:
        period, every = pl.col("period"), pl.col("_periodicity")
        # Text that is not a period at all is reported once, by period_format.
        not_a_period = ~period.str.contains("|".join(CANONICAL_PATTERNS.values()))
        self.row_rule(
            "period_matches_measure",
            "period",
            not_a_period
            | pl.coalesce(
                pl.when(every == str(p)).then(period.str.contains(pattern))
                for p, pattern in CANONICAL_PATTERNS.items()
            ),
            message_text(
                pl.col("measure_id"),
                " is reported per ",
                every,
                "; ",
                _q("period"),
                " is not a ",
                every,
            ),
        )
        span = self.period
        self.row_rule(
            "period_in_submission",
            "period",
            # The labels within the span, listed: the same test as comparing each row's
            # parsed start and end with the span's, without parsing a million labels.
            not_a_period | period.is_in(labels_within(span)),
            message_text(
                "period ", _q("period"), f" is outside this submission's period {span.label}"
            ),
        )

    def _unit_rules(self) -> None:
        unit, measure = pl.col("_unit"), pl.col("measure_id")
        n, d, v = pl.col("numerator"), pl.col("denominator"), pl.col("value")
        # n/d only where it is a share; a zero or negative denominator, or a numerator outside
        # 0..denominator, is reported by its own rule rather than again as a bad ratio.
        ratio = pl.when((d > 0) & (n >= 0) & (n <= d)).then(n / d)
        given = {
            c: pl.col(c).is_not_null() | pl.col(f"{c}_text").is_not_null() for c in NUMBER_COLUMNS
        }
        self.row_rule(
            "value_required",
            "value",
            ~unit.is_in([Unit.count, Unit.score, Unit.amount]) | given["value"],
            message_text("value is required for ", measure, " (a ", unit, ")"),
        )
        self.row_rule(
            "numerator_required",
            "numerator",
            (unit != Unit.proportion) | given["numerator"],
            message_text("numerator is required for ", measure),
        )
        self.row_rule(
            "denominator_required",
            "denominator",
            ~unit.is_in([Unit.proportion, Unit.score]) | given["denominator"],
            message_text(
                "denominator is required for ",
                measure,
                pl.when(unit == Unit.score)
                .then(pl.lit(" (how many answered)"))
                .otherwise(pl.lit("")),
            ),
        )
        self.row_rule(
            "denominator_positive",
            "denominator",
            # a negative denominator is reported by denominator_not_negative
            ~unit.is_in([Unit.proportion, Unit.score]) | (d != 0),
            message_text("denominator must be more than 0 for ", measure),
        )
        self.row_rule(
            "numerator_within_denominator",
            "numerator",
            (unit != Unit.proportion) | (n <= d) | (d <= 0),
            message_text(
                "numerator ",
                _fmt(n),
                " is larger than denominator ",
                _fmt(d),
                "; a share cannot exceed 100%",
            ),
        )
        self.row_rule(
            "value_matches_ratio",
            "value",
            (unit != Unit.proportion) | v.is_null() | ((v - ratio).abs() <= RATIO_TOLERANCE),
            message_text(
                "value ",
                _fmt(v),
                " does not equal numerator/denominator (",
                _fmt(ratio),
                "); leave value blank to have it computed",
            ),
        )
        self.row_rule(
            "whole_number",
            "value",
            (unit != Unit.count) | (v == v.round(0)),
            message_text(measure, " counts whole units; ", _fmt(v), " is not a whole number"),
        )
        effective = pl.when(unit == Unit.proportion).then(pl.coalesce(v, ratio)).otherwise(v)
        lo, hi = pl.col("_min"), pl.col("_max")
        self.row_rule(
            "value_in_range",
            "value",
            effective.is_between(lo.fill_null(float("-inf")), hi.fill_null(float("inf"))),
            message_text(
                pl.when(v.is_null())
                .then(pl.lit("numerator/denominator "))
                .otherwise(pl.lit("value ")),
                _fmt(effective),
                " is outside the valid range for ",
                measure,
                " (",
                _fmt(lo).fill_null("-∞"),
                " to ",
                _fmt(hi).fill_null("∞"),
                ")",
            ),
        )

    def _unique_rule(self) -> None:
        key = _row_key(self.initiative)  # what KEY_HASH hashes, so the screen is sound
        self.row_rule(
            "unique_row",
            "measure_id",
            ~pl.struct(key).is_duplicated(),
            message_text(
                "the same measure, locality, period and breakdown appear on more than one row (rows ",
                pl.col(ROW).cast(pl.Utf8).implode().over(key).list.join(", "),
                ")",
            ),
            screen=~pl.col(KEY_HASH).is_duplicated(),  # equal keys hash alike
        )


def build_contract(
    initiative: Initiative,
    partner_id: str,
    period: Period,
    *,
    with_partner_column: bool = False,
    numbers: NumberFormat | None = None,
) -> tuple[pa.DataFrameSchema, dict[str, Rule]]:
    """Generate the pandera contract for one partner's submission for one period.

    ``numbers``: the locale the file's numbers were read in (default: the partner's), quoted by
    the ``<column>_number_format`` rules. Returns the schema and its rule book (rule name →
    reported column and message).
    """
    numbers = numbers or number_format(initiative.partner_locale(partner_id))
    builder = _ContractBuilder(initiative, partner_id, period, numbers)
    if with_partner_column:
        builder.partner_rule()
    return builder.build()


def warm() -> None:
    """Pay pandera's first-validation cost now: its first ``validate`` imports and registers
    the polars backends (0.4 s here), which in a long-lived process (``serve``, the command
    line's daemon) would otherwise be the first file's wait."""
    pa.DataFrameSchema({"x": pa.Column(pl.Utf8)}).validate(pl.DataFrame({"x": ["a"]}))
