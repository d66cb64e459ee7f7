"""The contract: every named rule reports the partner's own row, column and value, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
from pandera.errors import SchemaErrors

from ci_pipeline import read, validate
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.validate import contract

Issue = tuple[int | None, str | None, str | None, str]


def run(
    tmp_path: Path,
    initiative: Initiative,
    text: str,
    partner: str,
    period: str,
    locale: str = "he_IL",
) -> validate.ValidationResult:
    """Validate a tiny CSV text as ``partner``'s submission for ``period``, its numbers read in
    ``locale`` (the initiative's, he_IL, unless given)."""
    raw, frame = read_text(tmp_path, initiative, text, locale)
    return validate.validate(frame, raw, initiative, partner, parse_period(period))


def read_text(
    tmp_path: Path, initiative: Initiative, text: str, locale: str = "he_IL"
) -> tuple[read.RawSubmission, pl.DataFrame]:
    """A tiny CSV text read as a submission, and its long frame."""
    path = tmp_path / "submission.csv"
    path.write_text(text, encoding="utf-8")
    raw = read.read_submission(
        path,
        locale=locale,
        max_bytes=10**8,
        max_expanded_bytes=10**8,
    )
    return raw, read.to_long_frame(raw, initiative)


def issue_tuples(result: validate.ValidationResult) -> set[Issue]:
    return {
        (r["row"], r["column"], r["value"], r["rule"])
        for r in result.issues.select("row", "column", "value", "rule").to_dicts()
    }


@dataclass(frozen=True)
class Case:
    partner: str
    period: str
    csv: str
    expected: list[Issue]  # exactly the issues of this rule
    phrase: str  # in every one of their messages
    also: set[str] = field(default_factory=set)  # other rules the file breaks, and no more
    locale: str = "he_IL"  # how the file's numbers are read


KURKUM = "measure_id,geo_code,period,value\n"
KURKUM_SEX = "measure_id,geo_code,period,sex,value\n"
BRAUDE = "measure_id,geo_code,period,sex,value\n"
SHARE = "measure_id,geo_code,period,sex,numerator,denominator\n"
SHARE_V = "measure_id,geo_code,period,sex,numerator,denominator,value\n"
LFP = "measure_id,geo_code,period,age_band,numerator,denominator\n"
SCORE = "measure_id,geo_code,period,denominator,value\n"
OK_KURKUM = "kurkum-women-employed,majd-al-krum,2025-07,3\n"

CASES = {
    "measure_reported-unknown": Case(
        "kurkum",
        "2025-Q3",
        KURKUM + OK_KURKUM + "no-such-measure,majd-al-krum,2025-08,3\n",
        [(3, "measure_id", "no-such-measure", "measure_reported")],
        "is not a shared measure of this initiative",
    ),
    "measure_reported-not-the-partners": Case(
        "kurkum",
        "2025-Q3",
        KURKUM + "starter-students-trained,majd-al-krum,2025-07,3\n",
        [(2, "measure_id", "starter-students-trained", "measure_reported")],
        "not one kurkum reports",
    ),
    "geography_served-unknown": Case(
        "kurkum",
        "2025-Q3",
        KURKUM + "kurkum-women-employed,Haifa,2025-07,3\n",
        [(2, "geo_code", "Haifa", "geography_served")],
        "is not a locality of this initiative",
    ),
    "geography_served-not-served": Case(
        "kurkum",
        "2025-Q3",
        KURKUM + "kurkum-women-employed,Karmiel,2025-07,3\n",
        [(2, "geo_code", "Karmiel", "geography_served")],
        "is not a locality kurkum reports for",
    ),
    "geography_level": Case(
        "galilee-foundation",
        "2025-Q3",
        KURKUM + "new-resources-nis,karmiel,2025-Q3,250000\n",
        [(2, "geo_code", "karmiel", "geography_level")],
        "new-resources-nis is reported for a cluster, not for 'karmiel'",
    ),
    "period_format": Case(
        "kurkum",
        "2025-Q3",
        KURKUM + "kurkum-women-employed,majd-al-krum,Sept 2025,3\n",
        [(2, "period", "Sept 2025", "period_format")],
        "is not a period: write a month (2025-09)",
    ),
    "period_matches_measure": Case(
        "employment-service",
        "2025-Q3",
        SHARE + "part-time-share,nahf,2025-08,female,5,100\n",
        [(2, "period", "2025-08", "period_matches_measure")],
        "part-time-share is reported per quarter; '2025-08' is not a quarter",
    ),
    "period_in_submission": Case(
        "kurkum",
        "2025-Q3",
        KURKUM + "kurkum-women-employed,majd-al-krum,2025-10,3\n",
        [(2, "period", "2025-10", "period_in_submission")],
        "outside this submission's period 2025-Q3",
    ),
    "sex_code": Case(
        "braude-college",
        "2025-Q3",
        BRAUDE + "starter-students-trained,karmiel,2025-07,f,3\n",
        [(2, "sex", "f", "sex_code")],
        "use one of: female, male, total",
    ),
    "age_band_code": Case(
        "employment-service",
        "2025-Q3",
        LFP + "arab-women-lfp,nahf,2025-Q3,65+,10,100\n",
        [(2, "age_band", "65+", "age_band_code")],
        "use one of: 25-44, 45-64, total",
    ),
    "sex_allowed": Case(
        "kurkum",
        "2025-Q3",
        KURKUM_SEX + "kurkum-women-employed,majd-al-krum,2025-07,female,3\n",
        [(2, "sex", "female", "sex_allowed")],
        "kurkum-women-employed is not broken down by sex",
    ),
    "age_band_allowed": Case(
        "employment-service",
        "2025-Q3",
        "measure_id,geo_code,period,age_band,sex,numerator,denominator\n"
        "part-time-share,nahf,2025-Q3,25-44,female,5,100\n",
        [(2, "age_band", "25-44", "age_band_allowed")],
        "part-time-share is not broken down by age_band",
    ),
    "sex_mixed": Case(
        "braude-college",
        "2025-Q3",
        BRAUDE
        + "starter-students-trained,karmiel,2025-07,,7\n"
        + "starter-students-trained,karmiel,2025-07,female,3\n"
        + "starter-students-trained,karmiel,2025-08,female,3\n",
        [(2, "sex", None, "sex_mixed"), (3, "sex", "female", "sex_mixed")],
        "give both a total and a breakdown by sex",
    ),
    "value_is_number": Case(
        "kurkum",
        "2025-Q3",
        KURKUM + "kurkum-women-employed,majd-al-krum,2025-07,three\n",
        [(2, "value", "three", "value_is_number")],
        "value 'three' is not a number",
    ),
    "numerator_is_number": Case(
        "employment-service",
        "2025-Q3",
        SHARE + "part-time-share,nahf,2025-Q3,female,five,100\n",
        [(2, "numerator", "five", "numerator_is_number")],
        "numerator 'five' is not a number",
    ),
    "value_number_format": Case(
        "kurkum",  # he_IL, the initiative's locale: ',' groups thousands, in threes
        "2025-Q3",
        KURKUM + 'kurkum-women-employed,majd-al-krum,2025-07,"1,23"\n',
        [(2, "value", "1,23", "value_number_format")],
        "value '1,23' is not a number as this file's locale writes them: he_IL (Hebrew (Israel)) "
        "writes numbers like 1,234.5: ',' groups thousands and '.' is the decimal separator. If "
        "you write numbers another way, ask the backbone team to record your locale",
    ),
    "numerator_number_format": Case(
        "employment-service",
        "2025-Q3",
        SHARE + "part-time-share,nahf,2025-Q3,female,1.234,2000\n",
        [(2, "numerator", "1.234", "numerator_number_format")],
        "ru (Russian) writes numbers like 1 234,5",
        locale="ru",  # its settings': a space groups thousands and ',' is the decimal comma
    ),
    "value_required": Case(
        "kurkum",
        "2025-Q3",
        KURKUM + "kurkum-women-employed,majd-al-krum,2025-07,\n",
        [(2, "value", None, "value_required")],
        "value is required for kurkum-women-employed (a count)",
    ),
    "numerator_required": Case(
        "employment-service",
        "2025-Q3",
        SHARE + "part-time-share,nahf,2025-Q3,female,,100\n",
        [(2, "numerator", None, "numerator_required")],
        "numerator is required for part-time-share",
    ),
    "denominator_required-score": Case(
        "kurkum",
        "2025",
        SCORE + "fsg-vision-advocate-goals,beit-hakerem,2025,,4.2\n",
        [(2, "denominator", None, "denominator_required")],
        "denominator is required for fsg-vision-advocate-goals (how many answered)",
    ),
    "denominator_positive": Case(
        "employment-service",
        "2025-Q3",
        SHARE + "part-time-share,nahf,2025-Q3,female,5,0\n",
        [(2, "denominator", "0", "denominator_positive")],
        "denominator must be more than 0",
    ),
    "numerator_within_denominator": Case(
        "employment-service",
        "2025-Q3",
        SHARE + "part-time-share,nahf,2025-Q3,female,120,100\n",
        [(2, "numerator", "120", "numerator_within_denominator")],
        "numerator 120 is larger than denominator 100",
    ),
    "value_matches_ratio": Case(
        "employment-service",
        "2025-Q3",
        SHARE_V + "part-time-share,nahf,2025-Q3,female,10,100,0.2\n",
        [(2, "value", "0.2", "value_matches_ratio")],
        "value 0.2 does not equal numerator/denominator (0.1)",
    ),
    "whole_number": Case(
        "kurkum",
        "2025-Q3",
        KURKUM + "kurkum-women-employed,majd-al-krum,2025-07,2.5\n",
        [(2, "value", "2.5", "whole_number")],
        "2.5 is not a whole number",
    ),
    "value_in_range-score": Case(
        "kurkum",
        "2025",
        SCORE + "fsg-vision-advocate-goals,beit-hakerem,2025,12,6\n",
        [(2, "value", "6", "value_in_range")],
        "value 6 is outside the valid range for fsg-vision-advocate-goals (1 to 5)",
    ),
    "value_in_range-amount-too-large-for-an-integer": Case(
        "galilee-foundation",
        "2025-Q3",
        KURKUM + "new-resources-nis,beit-hakerem,2025-Q3,1e20\n",
        [(2, "value", "1e20", "value_in_range")],
        "value 1e+20 is outside the valid range for new-resources-nis (0 to 50000000)",
    ),
    "value_in_range-proportion": Case(
        "employment-service",
        "2025-Q3",
        SHARE_V + "part-time-share,nahf,2025-Q3,female,,,1.2\n",
        [(2, "value", "1.2", "value_in_range")],
        "value 1.2 is outside the valid range for part-time-share (0 to 1)",
        also={"numerator_required", "denominator_required"},
    ),
    "numerator_not_negative": Case(
        "employment-service",
        "2025-Q3",
        SHARE + "part-time-share,nahf,2025-Q3,female,-5,100\n",
        [(2, "numerator", "-5", "numerator_not_negative")],
        "numerator -5 is negative",
    ),
    "denominator_not_negative": Case(
        "employment-service",
        "2025-Q3",
        SHARE + "part-time-share,nahf,2025-Q3,female,5,-100\n",
        [(2, "denominator", "-100", "denominator_not_negative")],
        "denominator -100 is negative",
    ),
    "unique_row": Case(
        "kurkum",
        "2025-Q3",
        KURKUM + OK_KURKUM + "kurkum-women-employed,majd-al-krum,2025-08,3\n" + OK_KURKUM,
        [
            (2, "measure_id", "kurkum-women-employed", "unique_row"),
            (4, "measure_id", "kurkum-women-employed", "unique_row"),
        ],
        "appear on more than one row (rows 2, 4)",
    ),
    "partner_matches": Case(
        "kurkum",
        "2025-Q3",
        "measure_id,geo_code,period,value,partner_id\n"
        "kurkum-women-employed,majd-al-krum,2025-07,3,kurkum\n"
        "kurkum-women-employed,majd-al-krum,2025-08,3,braude-college\n",
        [(3, "partner_id", "braude-college", "partner_matches")],
        "differs from the submitting partner 'kurkum'",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_rule_reports_row_column_value_and_message(
    tmp_path: Path, initiative: Initiative, case: Case
) -> None:
    result = run(tmp_path, initiative, case.csv, case.partner, case.period, case.locale)
    rule = case.expected[0][3]
    assert not result.accepted
    mine = result.issues.filter(pl.col("rule") == rule)
    assert sorted(issue_tuples(validate.ValidationResult(0, mine, None))) == case.expected
    for message in mine["message"]:
        assert case.phrase in message
    assert set(result.issues["rule"]) == {rule, *case.also}


def collide_every_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row's cell and key hashed alike: every screen then fails every row it groups."""
    monkeypatch.setattr(
        contract,
        "_hashed_keys",
        lambda _initiative: [
            pl.lit(0, pl.UInt64).alias(contract.CELL_HASH),
            pl.lit(0, pl.UInt64).alias(contract.KEY_HASH),
        ],
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rules_computed_together_fail_what_each_check_fails_alone(
    tmp_path: Path, initiative: Initiative, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``with_outcomes`` works every rule out in one polars plan (the rules that compare rows
    over hashed keys, their failures confirmed; rules over absent columns left out); given a
    frame without those outcomes, each pandera check works out its own rule by itself. Both
    ways must fail the same rows for the same rules, for every rule's case: with the real
    hashes, and with hashes that all collide (every row then fails the screens, and only the
    confirmation tells the true failures)."""
    raw, frame = read_text(tmp_path, initiative, case.csv, case.locale)
    schema, rules = contract.build_contract(
        initiative,
        case.partner,
        parse_period(case.period),
        with_partner_column=read.PARTNER_COLUMN in frame.columns,
        numbers=raw.numbers,
    )

    def failures(validated: pl.DataFrame) -> set[tuple[str, int]]:
        with pytest.raises(SchemaErrors) as caught:
            schema.validate(validated, lazy=True)
        cases = caught.value.failure_cases
        return set(zip(cases["check"], cases["index"], strict=True))

    alone = failures(contract.with_rules(frame, initiative).collect())
    assert case.expected[0][3] in {check for check, _ in alone}
    together = contract.with_outcomes(frame, initiative, rules)
    assert {c for c in together.columns if c.startswith(contract.OUTCOME_PREFIX)}
    assert together.select(frame.columns).equals(frame)
    assert failures(together) == alone
    collide_every_hash(monkeypatch)
    assert failures(contract.with_outcomes(frame, initiative, rules)) == alone


def test_rules_over_a_missing_key_column_are_left_to_their_checks(
    initiative: Initiative,
) -> None:
    """A frame without a breakdown column (``sex``): the hash of the whole key cannot be made,
    so ``with_outcomes`` leaves the rules over that column (``unique_row``, ``sex_*``) to their
    checks instead of failing, and works out the others (``age_band_mixed``, whose cell hash
    needs no ``sex``, among them)."""
    _, rules = contract.build_contract(initiative, "kurkum", parse_period("2025-Q3"))
    frame = pl.DataFrame(
        {
            read.ROW: [2, 3],
            "measure_id": ["kurkum-women-employed"] * 2,
            "geo_code": ["majd-al-krum"] * 2,
            "period": ["2025-07"] * 2,
            "age_band": ["total"] * 2,
            "value": [1.0, 2.0],
            "value_text": ["1", "2"],
        }
    )
    computed = {
        c.removeprefix(contract.OUTCOME_PREFIX)
        for c in contract.with_outcomes(frame, initiative, rules).columns
        if c.startswith(contract.OUTCOME_PREFIX)
    }
    assert "age_band_mixed" in computed and "period_format" in computed
    assert not {"unique_row", "sex_code", "sex_allowed", "sex_mixed"} & computed


def test_hash_screens_fail_whole_groups_that_the_rules_then_judge_exactly(
    initiative: Initiative, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worked by hand. Four rows: rows 0 and 1 are one key twice (a true duplicate); row 2 is
    its own cell and key; row 3 shares row 2's cell but is a breakdown by sex where row 2 is
    the total (a true ``sex_mixed``, rows 2 and 3). With every key hashed alike, the screens
    fail all four rows of ``unique_row`` and of ``sex_mixed``; judged again, ``unique_row``
    fails rows 0 and 1 only, ``sex_mixed`` rows 2 and 3 only."""
    frame = pl.DataFrame(
        {
            "measure_id": ["m", "m", "m", "m"],
            "geo_code": ["a", "a", "b", "b"],
            "period": ["2025-Q1"] * 4,
            "sex": ["f", "f", "total", "m"],
            "age_band": ["total"] * 4,
        }
    )
    rules = {
        name: contract.Rule("measure_id", pl.lit(""), ok, screen)
        for name, ok, screen in (
            (
                "unique_row",
                ~pl.struct("measure_id", "geo_code", "period", "sex", "age_band").is_duplicated(),
                ~pl.col(contract.KEY_HASH).is_duplicated(),
            ),
            (
                "sex_mixed",
                (pl.col("sex") == "total").n_unique().over(contract.CELL) == 1,
                (pl.col("sex") == "total").n_unique().over(contract.CELL_HASH) == 1,
            ),
        )
    }
    collide_every_hash(monkeypatch)
    outcomes = contract.with_outcomes(frame, initiative, rules)
    assert outcomes["_passes_unique_row"].to_list() == [False, False, True, True]
    assert outcomes["_passes_sex_mixed"].to_list() == [True, True, False, False]


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        (
            "measure_id,period,value\nkurkum-women-employed,2025-07,3\n",
            [(None, "geo_code", None, "required_column", "the file has no geo_code column")],
        ),
        (
            "measure_id,geo_code,period\nkurkum-women-employed,majd-al-krum,2025-07\n",
            [
                (
                    None,
                    "value",
                    None,
                    "required_column",
                    "the file has no value, numerator or denominator column",
                )
            ],
        ),
        (
            "measure_id,geo_code,period,value\n",
            [(None, None, None, "no_rows", "the file has a header but no data rows")],
        ),
    ],
    ids=["required_column-geo_code", "required_column-numbers", "no_rows"],
)
def test_header_level_issue_is_single_with_no_row(
    tmp_path: Path,
    initiative: Initiative,
    csv: str,
    expected: list[tuple[None, str | None, None, str, str]],
) -> None:
    result = run(tmp_path, initiative, csv, "kurkum", "2025-Q3")
    assert not result.accepted
    assert result.issues.schema == pl.Schema(validate.ISSUE_SCHEMA)
    assert result.issues.rows() == expected


def test_valid_file_is_accepted_without_issues(tmp_path: Path, initiative: Initiative) -> None:
    csv = (
        "measure_id,geo_code,period,age_band,sex,numerator,denominator,value\n"
        "arab-women-lfp,נחף,2025-Q3,25-44,,30,100,\n"
        "arab-women-lfp,Nahf,2025-Q3,45-64,,20,100,0.2\n"
        "part-time-share,rameh,Q3 2025,,female,35,100,35%\n"
        "part-time-share,rameh,2025-Q3,,male,9,100,\n"
    )
    result = run(tmp_path, initiative, csv, "employment-service", "2025-Q3")
    assert result.issues.is_empty()
    assert result.accepted
    assert result.observations is not None
    assert result.observations.height == result.rows == 4
    assert result.warnings == []


def test_every_failure_is_reported_in_one_pass(tmp_path: Path, initiative: Initiative) -> None:
    csv = (
        "measure_id,geo_code,period,sex,value\n"
        "starter-students-trained,karmiel,2025-07,female,3\n"
        "nosuch,karmiel,2025-07,,4\n"
        "starter-students-trained,haifa,2025-07,female,3\n"
        "starter-students-trained,beit-hakerem,2025-08,female,3\n"
        "starter-students-trained,karmiel,2025-Q3,female,3\n"
        "starter-students-trained,karmiel,2025-10,female,3\n"
        "starter-students-trained,karmiel,2025-08,x,3\n"
        "starter-students-trained,karmiel,2025-09,male,abc\n"
        "starter-students-trained,karmiel,2025-09,female,\n"
        "starter-students-trained,misgav,2025-09,female,2.5\n"
        "starter-students-trained,misgav,2025-09,male,999\n"
        "starter-students-trained,karmiel,2025-07,female,3\n"
    )
    result = run(tmp_path, initiative, csv, "braude-college", "2025-Q3")
    assert issue_tuples(result) == {
        (2, "measure_id", "starter-students-trained", "unique_row"),
        (3, "measure_id", "nosuch", "measure_reported"),
        (4, "geo_code", "haifa", "geography_served"),
        (5, "geo_code", "beit-hakerem", "geography_level"),
        (6, "period", "2025-Q3", "period_matches_measure"),
        (7, "period", "2025-10", "period_in_submission"),
        (8, "sex", "x", "sex_code"),
        (9, "value", "abc", "value_is_number"),
        (10, "value", None, "value_required"),
        (11, "value", "2.5", "whole_number"),
        (12, "value", "999", "value_in_range"),
        (13, "measure_id", "starter-students-trained", "unique_row"),
    }
    assert result.issues["message"].null_count() == 0
    assert result.issues["row"].is_sorted()


def test_row_numbers_are_the_partners(tmp_path: Path, initiative: Initiative) -> None:
    """The header is row 1 and blank lines keep their number, as in the partner's editor."""
    csv = KURKUM + OK_KURKUM + ",,,\n\n" + "kurkum-women-employed,majd-al-krum,2025-08,x\n"
    result = run(tmp_path, initiative, csv, "kurkum", "2025-Q3")
    assert issue_tuples(result) == {(5, "value", "x", "value_is_number")}
    assert result.rows == 2


def test_column_is_reported_as_the_partner_wrote_it(tmp_path: Path, initiative: Initiative) -> None:
    csv = (
        " Measure ,Locality,Reporting Period,Gender,ערך,Partner\n"
        "starter-students-trained,Karmiel,2025-07,F,3,kurkum\n"
        "starter-students-trained,Haifa,2025-08,female,x,braude-college\n"
    )
    result = run(tmp_path, initiative, csv, "braude-college", "2025-Q3")
    assert issue_tuples(result) == {
        (2, "Gender", "F", "sex_code"),
        (2, "Partner", "kurkum", "partner_matches"),
        (3, "Locality", "Haifa", "geography_served"),
        (3, "ערך", "x", "value_is_number"),
    }


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        (
            KURKUM_SEX + "kurkum-women-employed,majd-al-krum,2025-07,x,3\n",
            (2, "sex", "x", "sex_code"),
        ),
        (
            KURKUM + "kurkum-women-employed,majd-al-krum,2025-13,3\n",
            (2, "period", "2025-13", "period_format"),
        ),
        (
            KURKUM + "kurkum-women-employed,majd-al-krum,2025-07,inf\n",
            (2, "value", "inf", "value_is_number"),
        ),
        (
            KURKUM + "kurkum-women-employed,majd-al-krum,2025-07,NaN\n",
            (2, "value", "NaN", "value_is_number"),
        ),
    ],
    ids=["unknown-code", "unreadable-period", "infinite-value", "nan-value"],
)
def test_one_mistake_is_reported_once(
    tmp_path: Path, initiative: Initiative, csv: str, expected: Issue
) -> None:
    """An unknown code is not also <dim>_allowed; a non-period is not also the wrong period."""
    result = run(tmp_path, initiative, csv, "kurkum", "2025-Q3")
    assert issue_tuples(result) == {expected}
    assert result.issues["message"].null_count() == 0


def test_summary_counts_by_rule(tmp_path: Path, initiative: Initiative) -> None:
    csv = (
        KURKUM
        + "kurkum-women-employed,majd-al-krum,2025-07,2.5\n"
        + "kurkum-women-employed,majd-al-krum,2025-08,1.5\n"
        + "kurkum-women-employed,majd-al-krum,2025-09,abc\n"
        + "kurkum-women-employed,majd-al-krum,2025-10,0.5\n"
    )
    result = run(tmp_path, initiative, csv, "kurkum", "2025-Q3")
    summary = result.summary()
    assert summary.columns == ["rule", "column", "rows", "first_row"]
    assert summary.rows() == [
        ("whole_number", "value", 3, 2),
        ("period_in_submission", "period", 1, 5),
        ("value_is_number", "value", 1, 4),
    ]


@pytest.mark.parametrize(
    ("csv", "partner", "period", "expected"),
    [
        (
            LFP + "arab-women-lfp,nahf,2025-Q3,25-44,25,100\n",
            "employment-service",
            "2025-Q3",
            ("arab-women-lfp", 1, "nahf", "2025-Q3", "age_band=25-44", 25.0, 100.0, 0.25),
        ),
        (
            SHARE_V + "part-time-share,rameh,2025-Q3,Female,1,3,0.3333\n",
            "employment-service",
            "2025-Q3",
            ("part-time-share", 1, "rameh", "2025-Q3", "sex=female", 1.0, 3.0, 0.3333),
        ),
        (
            BRAUDE + "starter-students-trained,Karmiel,2025-08,,12\n",
            "braude-college",
            "2025-Q3",
            ("starter-students-trained", 1, "karmiel", "2025-08", "sex=total", None, None, 12.0),
        ),
        (
            KURKUM + OK_KURKUM,
            "kurkum",
            "2025-Q3",
            ("kurkum-women-employed", 1, "majd-al-krum", "2025-07", "total", None, None, 3.0),
        ),
        (
            "measure_id,geo_code,period,value\nnew-resources-nis,Beit HaKerem cluster,2025-Q3,"
            '"1,250,000"\n',
            "galilee-foundation",
            "2025-Q3",
            ("new-resources-nis", 1, "beit-hakerem", "2025-Q3", "total", None, None, 1250000.0),
        ),
    ],
    ids=["computed-proportion", "given-proportion", "sex-total", "no-dimensions", "amount"],
)
def test_to_observations(
    tmp_path: Path,
    initiative: Initiative,
    csv: str,
    partner: str,
    period: str,
    expected: tuple[object, ...],
) -> None:
    result = run(tmp_path, initiative, csv, partner, period)
    assert result.observations is not None, result.issues
    obs = validate.to_observations(result.observations, initiative)
    assert obs.columns == [
        "source_row",
        "measure_id",
        "measure_version",
        "geo_code",
        "period",
        "disaggregation",
        "numerator",
        "denominator",
        "value",
    ]
    assert obs.rows() == [(2, *expected)]


def test_a_cell_broken_down_by_two_dimensions_separately_is_rejected(tmp_path: Path) -> None:
    """By age on one row and by sex on another, the same people would be counted twice."""
    from benchmarks.ingest_rows import write_initiative
    from ci_pipeline.model.load import load_initiative

    write_initiative(tmp_path / "ini", localities=1)
    two_dims = load_initiative(tmp_path / "ini")
    path = tmp_path / "f.csv"
    path.write_text(
        "measure_id,geo_code,period,age_band,sex,value\n"
        "people-served,loc0000,2025-Q1,a000,,10\n"
        "people-served,loc0000,2025-Q1,,female,6\n"
        "people-served,loc0000,2025-Q2,a000,male,3\n",
        encoding="utf-8",
    )
    raw = read.read_submission(path, max_bytes=10**8, max_expanded_bytes=10**8)
    result = validate.validate(
        read.to_long_frame(raw, two_dims), raw, two_dims, "bench-partner", parse_period("2025")
    )

    assert not result.accepted
    found = sorted(result.issues.select("row", "rule").iter_rows())
    assert found == [
        (2, "age_band_mixed"),
        (2, "sex_mixed"),
        (3, "age_band_mixed"),
        (3, "sex_mixed"),
    ]
