"""Equity gaps: the gap series between the groups the initiative tracks, derived by hand, and
judged by detect(): a gap that widens while both groups improve is a regression; parallel
improvement is not.

The bundled initiative tracks ``jewish-arab`` (groups of localities: Karmiel and Misgav are
Jewish, the other five Arab), ``men-women`` (sex: female behind male) and ``age`` (arab-women-lfp:
45-64 behind 25-44).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from ci_pipeline.detect import detect, fold, gaps
from ci_pipeline.detect.findings import FINDING_SCHEMA
from ci_pipeline.model import frames
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period, shift

WAGE = "below-min-wage-share"  # proportion, lower is better, sex breakdown, total "sex=total"
SMB = "smb-digital-presence"  # proportion, higher is better, no breakdown, total "total"
STUDENTS = "starter-students-trained"  # a count with a sex breakdown: no gap
CLUSTER = "beit-hakerem"
JEWISH = ["karmiel", "misgav"]
ARAB = ["majd-al-krum", "biina", "deir-al-asad", "nahf", "rameh"]
GAP_JA = "gap:jewish-arab"
GAP_SEX = "gap:men-women"
Q4 = "2025-Q4"


def cell(
    measure_id: str,
    geo: str,
    numerator: float,
    denominator: float,
    *,
    period: str = Q4,
    disaggregation: str | None = None,
    suppressed: bool = False,
    reported: int = 1,
) -> dict[str, Any]:
    """One stored indicator cell of a proportion."""
    return {
        "measure_id": measure_id,
        "geo_code": geo,
        "period": period,
        "disaggregation": disaggregation or ("sex=total" if measure_id == WAGE else "total"),
        "value": numerator / denominator,
        "numerator": numerator,
        "denominator": denominator,
        "partners_reported": reported,
        "partners_expected": 1,
        "coverage": 1.0,
        "suppressed": suppressed,
        "suppression": "small_cell" if suppressed else None,
        "lineage": "1",
    }


def table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=frames.STORED_INDICATOR_SCHEMA, orient="row")


def one(frame: pl.DataFrame, **key: str) -> dict[str, Any]:
    rows = frame.filter(*(pl.col(k) == v for k, v in key.items())).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


# --- derivation, by hand ------------------------------------------------------------------------


def test_a_group_of_localities_is_the_ratio_of_sums_and_the_gap_is_oriented(
    initiative: Initiative,
) -> None:
    rows = [
        cell(WAGE, "karmiel", 300, 1000),  # 30%
        cell(WAGE, "misgav", 100, 500),  # 20%
        cell(WAGE, "nahf", 250, 500),  # 50%
        cell(WAGE, "rameh", 90, 300),  # 30%
        cell(WAGE, CLUSTER, 1, 2),  # the cluster's own cell plays no part in a group's figure
        cell(WAGE, "nahf", 20, 40, disaggregation="sex=female"),  # nor do breakdown cells
    ]
    got = one(gaps.gap_series(table(rows), initiative), disaggregation=GAP_JA)
    # Jewish: (300 + 100) / (1000 + 500) = 400/1500 = 0.266667 (the mean of rates would be 0.25)
    # Arab:   (250 + 90) / (500 + 300)   = 340/800  = 0.425    (the mean of rates would be 0.40)
    assert got["geo_code"] == CLUSTER and got["period"] == Q4
    assert got["ahead_value"] == pytest.approx(400 / 1500)
    assert got["behind_value"] == pytest.approx(0.425)
    # Lower is better, so the gap is behind - ahead: 0.425 - 0.266667 = 0.158333 (15.8 points).
    assert got["value"] == pytest.approx(0.425 - 400 / 1500)
    # var = p(1-p)/n per group: 0.266667 * 0.733333 / 1500 = 1.30370e-4
    #                         + 0.425 * 0.575 / 800       = 3.05469e-4  → 4.35839e-4
    assert got["variance"] == pytest.approx(4.35839e-4, rel=1e-5)
    assert got["suppressed"] is False
    assert got["numerator"] is None and got["denominator"] is None


def test_where_higher_is_better_the_gap_is_ahead_minus_behind(initiative: Initiative) -> None:
    rows = [
        cell(SMB, "karmiel", 50, 100),  # Jewish 50 / 100 = 0.5
        cell(SMB, "nahf", 30, 100),  # Arab 30 / 100 = 0.3
        cell(SMB, "karmiel", 50, 100, period="2025-Q3"),
        cell(SMB, "nahf", 60, 100, period="2025-Q3"),  # the Arab group ahead that quarter
    ]
    got = gaps.gap_series(table(rows), initiative)
    assert one(got, period=Q4)["value"] == pytest.approx(0.5 - 0.3)  # 0.2
    assert one(got, period="2025-Q3")["value"] == pytest.approx(0.5 - 0.6)  # -0.1: gap reversed


def test_a_breakdown_pair_is_compared_cell_by_cell_in_each_geography(
    initiative: Initiative,
) -> None:
    rows = [
        cell(WAGE, "nahf", 220, 400, disaggregation="sex=female"),  # 55%
        cell(WAGE, "nahf", 240, 600, disaggregation="sex=male"),  # 40%
        cell(WAGE, "nahf", 460, 1000),  # the total: no part in the gap
        cell(STUDENTS, "nahf", 5, 1, disaggregation="sex=female"),  # a count: never a gap
        cell(STUDENTS, "nahf", 9, 1, disaggregation="sex=male"),
    ]
    got = gaps.gap_series(table(rows), initiative)
    assert got["measure_id"].to_list() == [WAGE]  # no group pair here, no count
    row = one(got, disaggregation=GAP_SEX)
    assert row["geo_code"] == "nahf"
    # Women are behind, lower is better: 0.55 - 0.40 = 0.15.
    assert row["value"] == pytest.approx(0.15)
    assert (row["ahead_value"], row["behind_value"]) == pytest.approx((0.40, 0.55))
    # 0.55 * 0.45 / 400 = 6.1875e-4; 0.40 * 0.60 / 600 = 4.0e-4; sum 1.01875e-3
    assert row["variance"] == pytest.approx(1.01875e-3)


def test_a_suppressed_or_missing_cell_hides_the_gap_and_reveals_nothing(
    initiative: Initiative,
) -> None:
    q3 = "2025-Q3"
    rows = [
        # Q4: Rameh's cell is suppressed. Summing the Arab group without it would let the
        # cluster's total minus both groups give it away; so the gap is hidden.
        cell(WAGE, "karmiel", 300, 1000),
        cell(WAGE, "nahf", 250, 500),
        cell(WAGE, "rameh", 3, 8, suppressed=True),
        # Q3: Rameh did not report at all: the Arab group would change its make-up.
        cell(WAGE, "karmiel", 300, 1000, period=q3),
        cell(WAGE, "nahf", 250, 500, period=q3),
        # A breakdown pair with the female cell suppressed.
        cell(WAGE, "biina", 4, 9, disaggregation="sex=female", suppressed=True),
        cell(WAGE, "biina", 200, 500, disaggregation="sex=male"),
    ]
    got = gaps.gap_series(table(rows), initiative)
    assert got.height == 3
    assert got["suppressed"].to_list() == [True, True, True]
    for column in ("value", "variance", "ahead_value", "behind_value"):
        assert got[column].null_count() == 3, column
    # With Rameh published in Q4 the gap is there again: (250 + 3) / 508 - 0.3.
    rows[2] = cell(WAGE, "rameh", 3, 8)
    again = one(gaps.gap_series(table(rows), initiative), period=Q4, disaggregation=GAP_JA)
    assert again["suppressed"] is False
    assert again["value"] == pytest.approx(253 / 508 - 0.3)


def test_gap_keys_never_collide_with_cells(initiative: Initiative) -> None:
    real = {m.total_key for m in initiative.measures.values()} | {
        f"{d}={c}"
        for m in initiative.measures.values()
        for d, cs in m.dimensions.items()
        for c in cs
    }
    keys = {gaps.gap_key(g.id) for g in initiative.info.equity_gaps}
    assert keys == {GAP_JA, GAP_SEX, "gap:age"}
    assert not keys & real
    assert all(gaps.is_gap(k) for k in keys) and not any(gaps.is_gap(k) for k in real)


# --- judged by detect() -------------------------------------------------------------------------

#: Employed residents per locality (the denominators), about 30% of the population.
EMPLOYED = {
    "karmiel": 13_800,
    "misgav": 9_000,
    "majd-al-krum": 4_800,
    "biina": 2_550,
    "deir-al-asad": 3_900,
    "nahf": 4_200,
    "rameh": 2_400,
}
PERIODS = 12  # 2023-Q1 .. 2025-Q4


def simulate(
    jewish: np.ndarray, arab: np.ndarray, seed: int, *, sex_gap: float | np.ndarray = 0.0
) -> pl.DataFrame:
    """Twelve quarters of below-min-wage-share in every locality and the cluster: each locality
    at its group's share (``jewish``/``arab``, one per quarter) with binomial noise; women at
    the share + ``sex_gap``/2 and men - ``sex_gap``/2 (an array: per quarter), each half the
    employed. The cluster's cells are the sums, as the aggregate makes them."""
    rng = np.random.default_rng(seed)
    last = parse_period(Q4)
    rows = []
    gap = np.broadcast_to(np.asarray(sex_gap, dtype=float), (PERIODS,))
    for i in range(PERIODS):
        period = shift(last, i - PERIODS + 1).label
        totals: dict[str, list[float]] = {"sex=female": [0.0, 0.0], "sex=male": [0.0, 0.0]}
        for geo, employed in EMPLOYED.items():
            share = (jewish if geo in JEWISH else arab)[i]
            parts = {}
            for key, shift_by in (("sex=female", gap[i] / 2), ("sex=male", -gap[i] / 2)):
                n = float(employed // 2)
                k = float(rng.binomial(employed // 2, share + shift_by))
                parts[key] = (k, n)
                totals[key][0] += k
                totals[key][1] += n
                rows.append(cell(WAGE, geo, k, n, period=period, disaggregation=key))
            k_all = sum(k for k, _ in parts.values())
            rows.append(cell(WAGE, geo, k_all, employed, period=period))
        for key, (k, n) in totals.items():
            rows.append(cell(WAGE, CLUSTER, k, n, period=period, disaggregation=key))
        rows.append(
            cell(
                WAGE,
                CLUSTER,
                sum(k for k, _ in totals.values()),
                sum(EMPLOYED.values()),
                period=period,
            )
        )
    return table(rows)


def judge(initiative: Initiative, indicators: pl.DataFrame) -> pl.DataFrame:
    return detect(indicators, initiative, {WAGE: parse_period(Q4)})


def improving(start: float, per_quarter: float) -> np.ndarray:
    """A share falling (improving: lower is better) by ``per_quarter`` each quarter."""
    return start - per_quarter * np.arange(PERIODS)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_gap_that_jumps_while_both_groups_improve_is_a_regression(
    initiative: Initiative, seed: int
) -> None:
    # Both groups improve every quarter; in the last one the Jewish localities improve by
    # 5.5 points and the Arab ones by half a point: the gap widens by 5 points (its sampling
    # noise is about half a point a quarter), above min_change (2 points).
    jewish = improving(0.36, 0.005)
    arab = improving(0.50, 0.005)
    jewish[-1] = jewish[-2] - 0.055
    arab[-1] = arab[-2] - 0.005
    indicators = simulate(jewish, arab, seed)
    findings = judge(initiative, indicators)
    assert findings.height >= 1, findings
    # Every finding is the gap's: no group, locality or cluster regressed.
    assert set(findings["disaggregation"]) == {GAP_JA}, findings.select(
        "kind", "geo_code", "disaggregation"
    )
    f = findings.row(0, named=True)
    assert f["geo_code"] == CLUSTER and f["kind"] == "step"
    assert f["change"] > 0.02
    # The sentence names both groups and both values, as the series has them.
    series = one(gaps.gap_series(indicators, initiative), disaggregation=GAP_JA, period=Q4)
    message = f["message"]
    assert message.startswith(
        "The gap in Employed earning below the minimum wage between Jewish localities and Arab "
        "localities in Beit HaKerem cluster widened from a usual "
    )
    assert f"to {series['value'] * 100:.1f} points" in message
    assert f"Jewish localities {series['ahead_value'] * 100:.1f}%" in message
    assert f"Arab localities {series['behind_value'] * 100:.1f}%" in message
    # People first: the statistics come after "Evidence:", not in the headline.
    head, evidence = message.split(" Evidence: ")
    assert "z =" not in head and "p =" not in head and "comparable periods" in head
    assert "z =" in evidence and "adjusted p" in evidence
    # Both groups did improve this quarter (the premise of the test, checked on the data).
    before = one(gaps.gap_series(indicators, initiative), disaggregation=GAP_JA, period="2025-Q3")
    assert series["ahead_value"] < before["ahead_value"]
    assert series["behind_value"] < before["behind_value"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_gap_that_widens_steadily_while_both_groups_improve_is_found(
    initiative: Initiative, seed: int
) -> None:
    # Over the last six quarters the Jewish localities improve by 2 points a quarter and the
    # Arab ones by half a point: the gap widens 1.5 points a quarter (9 in all), no single
    # quarter by more than min_change.
    jewish = np.concatenate([improving(0.36, 0.005)[:6], 0.335 - 0.02 * np.arange(1, 7)])
    arab = improving(0.50, 0.005)
    indicators = simulate(jewish, arab, seed)
    findings = judge(initiative, indicators)
    assert set(findings["disaggregation"]) == {GAP_JA}, findings
    # Found by Mann–Kendall (a drift) or, where its moves beyond the gap's usual spread add up
    # first, by the CUSUM (a sustained change, which the drift folds into): one finding.
    [f] = findings.to_dicts()
    assert f["kind"] in ("drift", "sustained")
    assert f["change"] > 0.05
    assert ("has widened steadily from" if f["kind"] == "drift" else "widened from") in f["message"]
    # Both compare with a period, so each group's value then is given too.
    then = one(
        gaps.gap_series(indicators, initiative), disaggregation=GAP_JA, period=f["reference_period"]
    )
    assert f"(from {then['behind_value'] * 100:.1f}%)" in f["message"]


def test_women_falling_behind_while_both_improve_is_found_where_it_happens(
    initiative: Initiative,
) -> None:
    # Women and men 10 points apart for eleven quarters, both improving; in the last the gap
    # between them widens by 5 points in every locality (men improve faster).
    sex_gap = np.full(PERIODS, 0.10)
    sex_gap[-1] = 0.15
    both = improving(0.45, 0.005)
    both[-1] = both[-2] - 0.03  # the total improves by 3 points: women 0.5, men 5.5
    indicators = simulate(both, both, seed=7, sex_gap=sex_gap)
    findings = judge(initiative, indicators)
    assert set(findings["disaggregation"]) == {GAP_SEX}, findings
    # Found in the two large localities (a 5-point jump is 6 SD of Karmiel's gap noise); the
    # cluster's gap folds into a locality's, as a cluster's regression does.
    assert sorted(findings["geo_code"]) == ["karmiel", "misgav"]
    assert findings["folded"].sum() == 1
    karmiel = one(findings, geo_code="karmiel")
    assert karmiel["message"].startswith(
        "The gap in Employed earning below the minimum wage between men and women in Karmiel "
        "widened from a usual "
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_parallel_improvement_is_no_gap_finding(initiative: Initiative, seed: int) -> None:
    # Both groups improve by a point a quarter for twelve quarters (the last quarter too):
    # the gap stays 14 points, and nothing is found.
    indicators = simulate(improving(0.36, 0.01), improving(0.50, 0.01), seed, sex_gap=0.1)
    assert judge(initiative, indicators).is_empty()


def test_a_gap_is_not_folded_into_its_geographys_total(initiative: Initiative) -> None:
    def finding(disaggregation: str) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(FINDING_SCHEMA, None)
        return row | {
            "kind": "step",
            "measure_id": WAGE,
            "geo_code": "nahf",
            "disaggregation": disaggregation,
            "period": Q4,
            "subject": "",
            "folded": 0,
        }

    found = pl.DataFrame(
        [finding("sex=total"), finding("sex=female"), finding(GAP_SEX)], schema=FINDING_SCHEMA
    )
    kept = fold(found, initiative)
    # The women's cell is explained by the total; the gap is not (both sexes can worsen alike).
    assert sorted(kept["disaggregation"]) == [GAP_SEX, "sex=total"]
