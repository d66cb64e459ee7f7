"""Indicators: observations rolled up by unit rule, breakdown and geography, with coverage and
lineage; and an incremental refresh that always equals a full rebuild."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal
from sqlalchemy import Engine, text

from ci_pipeline import aggregate, demo, store
from ci_pipeline.config import Settings
from ci_pipeline.model import frames
from ci_pipeline.model.initiative import TOTAL, Initiative
from ci_pipeline.model.load import load_initiative
from ci_pipeline.receive import intake
from tests import helpers

OBS_SCHEMA: dict[str, Any] = {
    "partner_id": pl.Utf8,
    "submission_id": pl.Int64,
    "measure_id": pl.Utf8,
    "geo_code": pl.Utf8,
    "period": pl.Utf8,
    "disaggregation": pl.Utf8,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
    "value": pl.Float64,
}
Q = "2025-Q1"
CLUSTER = "region"


# --- a tiny initiative whose every number is known -------------------------------------------


def measure_yaml(
    measure_id: str,
    unit: str,
    *,
    dimensions: dict[str, list[str]] | None = None,
    geo_levels: list[str] | None = None,
    min_cell_size: int = 10,
) -> dict[str, Any]:
    """A measure definition of the given unit (its combine rule follows from the unit)."""
    combine = {"count": "sum", "amount": "sum", "proportion": "ratio_of_sums"}.get(
        unit, "weighted_mean"
    )
    out: dict[str, Any] = {
        "id": measure_id,
        "version": 1,
        "title": measure_id,
        "description": "test measure",
        "unit": unit,
        "unit_label": unit,
        "combine": combine,
        "direction": "higher_is_better",
        "periodicity": "quarter",
        "deadline_days": 30,
        "min_cell_size": min_cell_size,
        "dimensions": dimensions or {},
        "geo_levels": geo_levels or ["locality"],
    }
    if unit == "proportion":
        out |= {"numerator": "yes", "denominator": "asked", "valid_range": {"min": 0, "max": 1}}
    if unit == "score":
        out |= {"denominator": "respondents", "valid_range": {"min": 1, "max": 5}}
    return out


def write_initiative(
    folder: Path,
    localities: list[str],
    partners: dict[str, list[str]],
    measures: list[dict[str, Any]],
) -> Initiative:
    """An initiative folder: one cluster ``region`` over ``localities``; partner → localities,
    each reporting every measure."""
    (folder / "measures").mkdir(parents=True)
    (folder / "initiative.yaml").write_text(
        yaml.safe_dump(
            {"id": "tiny", "name": {"en": "Tiny"}, "description": "for tests", "version": "1"}
        )
    )
    geos: list[dict[str, Any]] = [{"code": CLUSTER, "level": "cluster", "name": {"en": "Region"}}]
    geos += [
        {"code": c, "level": "locality", "parent": CLUSTER, "name": {"en": c}} for c in localities
    ]
    (folder / "geographies.yaml").write_text(yaml.safe_dump(geos))
    (folder / "partners.yaml").write_text(
        yaml.safe_dump(
            [
                {
                    "id": pid,
                    "name": pid,
                    "sector": "civil_society",
                    "localities": locs,
                    "measures": [m["id"] for m in measures],
                    "contact": {"name": "x", "email": "x@example.org"},
                }
                for pid, locs in partners.items()
            ]
        )
    )
    for m in measures:
        (folder / "measures" / f"{m['id']}.yaml").write_text(yaml.safe_dump(m))
    return load_initiative(folder)


SEX = {"sex": [TOTAL, "female", "male"]}
AGE_SEX = {"age_band": [TOTAL, "young", "old"], "sex": [TOTAL, "female", "male"]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Initiative:
    """Cluster ``region`` over north and south; partner a serves both, b north, c south."""
    return write_initiative(
        tmp_path_factory.mktemp("tiny") / "initiative",
        ["north", "south"],
        {"a": ["north", "south"], "b": ["north"], "c": ["south"]},
        [
            measure_yaml("served", "count", dimensions=SEX),
            measure_yaml("people", "count", dimensions=AGE_SEX),
            measure_yaml("plain", "count"),
            measure_yaml("share", "proportion", dimensions=SEX),
            measure_yaml("satisfaction", "score", geo_levels=["locality", "cluster"]),
            measure_yaml("grants", "amount", geo_levels=["cluster"]),
        ],
    )


Row = tuple[str, int, str, str, str, float | None, float | None, float | None]


def observations(rows: list[Row], period: str = Q) -> pl.DataFrame:
    """(partner, submission, measure, geo, disaggregation, numerator, denominator, value)."""
    return pl.DataFrame(
        [(p, s, m, g, period, d, n, den, v) for p, s, m, g, d, n, den, v in rows],
        schema=OBS_SCHEMA,
        orient="row",
    )


def cells(indicators: pl.DataFrame, measure_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(geo, disaggregation) → the rest of the row, for one measure."""
    return {
        (r["geo_code"], r["disaggregation"]): r
        for r in indicators.filter(pl.col("measure_id") == measure_id).iter_rows(named=True)
    }


# --- combination rules -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    rows: list[Row]
    measure_id: str
    # (geo, disaggregation) → (value, numerator, denominator)
    expected: dict[tuple[str, str], tuple[float | None, float | None, float | None]]
    not_this: float | None = None  # the tempting wrong answer for the cluster total


CASES = {
    "counts are summed across partners and rolled up to the cluster": Case(
        [
            ("a", 1, "plain", "north", TOTAL, None, None, 3.0),
            ("b", 2, "plain", "north", TOTAL, None, None, 4.0),
            ("a", 1, "plain", "south", TOTAL, None, None, 5.0),
            ("c", 3, "plain", "south", TOTAL, None, None, 11.0),
        ],
        "plain",
        {
            ("north", TOTAL): (7.0, None, None),
            ("south", TOTAL): (16.0, None, None),
            (CLUSTER, TOTAL): (23.0, None, None),
        },
    ),
    "proportions are the sum of numerators over the sum of denominators": Case(
        [
            ("a", 1, "share", "north", "sex=total", 1.0, 2.0, 0.5),
            ("b", 2, "share", "north", "sex=total", 30.0, 100.0, 0.3),
            ("c", 3, "share", "south", "sex=total", 9.0, 10.0, 0.9),
        ],
        "share",
        {
            ("north", "sex=total"): (31 / 102, 31.0, 102.0),
            ("south", "sex=total"): (0.9, 9.0, 10.0),
            (CLUSTER, "sex=total"): (40 / 112, 40.0, 112.0),
        },
        not_this=(0.5 + 0.3 + 0.9) / 3,  # the mean of the rates
    ),
    "scores are means weighted by respondents": Case(
        [
            ("a", 1, "satisfaction", "north", TOTAL, None, 10.0, 4.0),
            ("b", 2, "satisfaction", "north", TOTAL, None, 30.0, 2.0),
            ("c", 3, "satisfaction", "south", TOTAL, None, 20.0, 5.0),
        ],
        "satisfaction",
        {
            ("north", TOTAL): (2.5, None, 40.0),
            ("south", TOTAL): (5.0, None, 20.0),
            (CLUSTER, TOTAL): ((40 + 60 + 100) / 60, None, 60.0),
        },
        not_this=(4.0 + 2.0 + 5.0) / 3,
    ),
    "amounts are summed": Case(
        [
            ("a", 1, "grants", CLUSTER, TOTAL, None, None, 250_000.0),
            ("b", 2, "grants", CLUSTER, TOTAL, None, None, 125_000.5),
        ],
        "grants",
        {(CLUSTER, TOTAL): (375_000.5, None, None)},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_each_unit_combines_by_its_rule(case: Case, tiny: Initiative) -> None:
    got = cells(aggregate.aggregate(observations(case.rows), tiny), case.measure_id)

    assert set(got) == set(case.expected)
    for key, (value, numerator, denominator) in case.expected.items():
        row = got[key]
        assert row["value"] == pytest.approx(value), key
        assert row["numerator"] == (None if numerator is None else pytest.approx(numerator)), key
        assert row["denominator"] == (
            None if denominator is None else pytest.approx(denominator)
        ), key
    if case.not_this is not None:
        cluster = next(k for k in case.expected if k[0] == CLUSTER)
        assert got[cluster]["value"] != pytest.approx(case.not_this)


def test_a_cluster_observation_is_not_counted_again(tiny: Initiative) -> None:
    """A score reported at the cluster and at a locality: the cluster holds both, once each."""
    rows: list[Row] = [
        ("a", 1, "satisfaction", CLUSTER, TOTAL, None, 10.0, 3.0),
        ("b", 2, "satisfaction", "north", TOTAL, None, 10.0, 5.0),
    ]
    got = cells(aggregate.aggregate(observations(rows), tiny), "satisfaction")

    assert got[(CLUSTER, TOTAL)]["value"] == pytest.approx(4.0)
    assert got[(CLUSTER, TOTAL)]["denominator"] == 20.0
    assert got[("north", TOTAL)]["value"] == 5.0
    assert ("south", TOTAL) not in got


def write_nation(folder: Path) -> Initiative:
    """A nation (cluster) of two districts (clusters), north over localities a1 and a2, south
    over b1; partner p serves all three, with one count measure kept at both levels."""
    write_initiative(
        folder,
        ["a1", "a2", "b1"],
        {"p": ["a1", "a2", "b1"]},
        [measure_yaml("plain", "count", geo_levels=["locality", "cluster"])],
    )
    geos = [
        {"code": "nation", "level": "cluster", "name": {"en": "Nation"}},
        {"code": "north", "level": "cluster", "parent": "nation", "name": {"en": "North"}},
        {"code": "south", "level": "cluster", "parent": "nation", "name": {"en": "South"}},
        *(
            {"code": c, "level": "locality", "parent": d, "name": {"en": c}}
            for c, d in (("a1", "north"), ("a2", "north"), ("b1", "south"))
        ),
    ]
    (folder / "geographies.yaml").write_text(yaml.safe_dump(geos))
    return load_initiative(folder)


def test_clusters_nest_and_every_level_counts_each_figure_once(
    tmp_path: Path,
) -> None:
    """A nation of two districts of localities: each locality's count reaches its district and
    the nation once. Worked: north = a1 + a2 = 3 + 4 = 7, south = b1 = 5, nation = 7 + 5 = 12
    (not 3 + 4 + 5 + 7 + 5, which counting a district's cell again would give)."""
    nation = write_nation(tmp_path / "nation")
    assert nation.ancestors("a1") == ["north", "nation"]
    rows: list[Row] = [
        ("p", 1, "plain", "a1", TOTAL, None, None, 3.0),
        ("p", 1, "plain", "a2", TOTAL, None, None, 4.0),
        ("p", 1, "plain", "b1", TOTAL, None, None, 5.0),
    ]
    got = cells(aggregate.aggregate(observations(rows), nation), "plain")
    assert {g: r["value"] for (g, _), r in got.items()} == {
        "a1": 3.0,
        "a2": 4.0,
        "b1": 5.0,
        "north": 7.0,
        "south": 5.0,
        "nation": 12.0,
    }


# --- breakdowns ------------------------------------------------------------------------------


def test_codes_and_their_total_with_a_partner_that_reports_only_the_total(
    tiny: Initiative,
) -> None:
    rows: list[Row] = [
        ("a", 1, "served", "north", "sex=female", None, None, 3.0),
        ("a", 1, "served", "north", "sex=male", None, None, 4.0),
        ("b", 2, "served", "north", "sex=total", None, None, 10.0),  # no breakdown
        ("c", 3, "served", "south", "sex=female", None, None, 6.0),
    ]
    got = cells(aggregate.aggregate(observations(rows), tiny), "served")

    values = {k: r["value"] for k, r in got.items()}
    assert values == {
        ("north", "sex=female"): 3.0,
        ("north", "sex=male"): 4.0,
        ("north", "sex=total"): 17.0,
        ("south", "sex=female"): 6.0,
        ("south", "sex=total"): 6.0,
        (CLUSTER, "sex=female"): 9.0,
        (CLUSTER, "sex=male"): 4.0,
        (CLUSTER, "sex=total"): 23.0,
    }
    reported = {k: r["partners_reported"] for k, r in got.items()}
    assert reported[("north", "sex=total")] == 2
    assert reported[("north", "sex=female")] == 1  # b said nothing about women
    assert reported[(CLUSTER, "sex=total")] == 3
    assert reported[(CLUSTER, "sex=male")] == 1


def test_two_dimensions_each_code_and_each_total(tiny: Initiative) -> None:
    # Each partner breaks its cell down one way (validation's <dim>_mixed rule sees to that):
    # a by both dimensions, b by age only, c by sex only.
    rows: list[Row] = [
        ("a", 1, "people", "north", "age_band=young;sex=female", None, None, 1.0),
        ("a", 1, "people", "north", "age_band=young;sex=male", None, None, 2.0),
        ("a", 1, "people", "north", "age_band=old;sex=female", None, None, 3.0),
        ("a", 1, "people", "north", "age_band=old;sex=male", None, None, 4.0),
        ("b", 2, "people", "north", "age_band=young;sex=total", None, None, 10.0),  # by age only
        ("c", 3, "people", "north", "age_band=total;sex=female", None, None, 100.0),  # by sex
    ]
    got = cells(aggregate.aggregate(observations(rows), tiny), "people")

    north = {d: r["value"] for (g, d), r in got.items() if g == "north"}
    assert north == {
        "age_band=total;sex=total": 120.0,
        "age_band=young;sex=total": 13.0,
        "age_band=old;sex=total": 7.0,
        "age_band=total;sex=female": 104.0,
        "age_band=total;sex=male": 6.0,
        "age_band=young;sex=female": 1.0,
        "age_band=young;sex=male": 2.0,
        "age_band=old;sex=female": 3.0,
        "age_band=old;sex=male": 4.0,
    }
    assert {d for (g, d) in got if g == CLUSTER} == set(north)


@pytest.mark.parametrize(
    ("measure_id", "disaggregation", "keys"),
    [
        ("plain", TOTAL, {TOTAL}),
        ("grants", TOTAL, {TOTAL}),
        ("served", "sex=male", {"sex=male", "sex=total"}),
        ("share", "sex=total", {"sex=total"}),
    ],
)
def test_a_measure_has_only_its_own_dimensions(
    measure_id: str, disaggregation: str, keys: set[str], tiny: Initiative
) -> None:
    geo = CLUSTER if measure_id == "grants" else "north"
    rows: list[Row] = [("a", 1, measure_id, geo, disaggregation, 2.0, 4.0, 0.5)]
    got = aggregate.aggregate(observations(rows), tiny)

    assert set(got["disaggregation"]) == keys
    assert set(got["measure_id"]) == {measure_id}


@pytest.mark.parametrize(
    ("measure_id", "key"),
    [
        ("plain", TOTAL),
        ("served", "sex=female"),
        ("served", "sex=total"),
        ("people", "age_band=old;sex=male"),
        ("people", "age_band=total;sex=female"),
        ("people", "age_band=young;sex=total"),
        ("people", "age_band=total;sex=total"),
    ],
)
def test_split_and_join_of_the_disaggregation_key_round_trip(
    measure_id: str, key: str, tiny: Initiative
) -> None:
    dims = tiny.dimension_names
    frame = pl.DataFrame({"measure_id": [measure_id], "disaggregation": [key]})
    split = aggregate.split_disaggregation(frame, dims)
    for part in key.split(";"):
        if "=" in part:
            dim, code = part.split("=")
            assert split[dim][0] == code
    for dim in dims:
        if dim not in tiny.measures[measure_id].dimensions:
            assert split[dim][0] == TOTAL

    dims_of = {m.id: sorted(m.dimensions) for m in tiny.measures.values()}
    joined = split.select(aggregate.join_disaggregation(dims_of).alias("key"))
    assert joined["key"][0] == key


def test_every_key_aggregate_writes_splits_back_to_its_codes(tiny: Initiative) -> None:
    rows: list[Row] = [
        ("a", 1, "people", "north", f"age_band={age};sex={sex}", None, None, 1.0)
        for age, sex in itertools.product(["young", "old"], ["female", "male"])
    ]
    got = aggregate.aggregate(observations(rows), tiny)
    split = aggregate.split_disaggregation(got, tiny.dimension_names)
    dims_of = {m.id: sorted(m.dimensions) for m in tiny.measures.values()}
    again = split.select(aggregate.join_disaggregation(dims_of).alias("key"))["key"]
    assert again.to_list() == got["disaggregation"].to_list()
    assert got.height == 2 * 9  # north and the cluster, 3 x 3 each


# --- coverage and lineage --------------------------------------------------------------------


def test_lineage_lists_contributing_submissions_ascending(tiny: Initiative) -> None:
    rows: list[Row] = [
        ("a", 10, "plain", "north", TOTAL, None, None, 1.0),
        ("b", 9, "plain", "north", TOTAL, None, None, 1.0),
        ("a", 10, "plain", "south", TOTAL, None, None, 1.0),
        ("c", 2, "plain", "south", TOTAL, None, None, 1.0),
        ("c", 2, "plain", "south", TOTAL, None, None, 1.0),
    ]
    got = cells(aggregate.aggregate(observations(rows), tiny), "plain")

    assert got[("north", TOTAL)]["lineage"] == "9,10"  # numerically, not "10,9"
    assert got[("south", TOTAL)]["lineage"] == "2,10"
    assert got[(CLUSTER, TOTAL)]["lineage"] == "2,9,10"


def smb(councils: dict[str, str]) -> pl.DataFrame:
    """smb-digital-presence as reported by the given council → locality."""
    return observations(
        [
            (council, i + 1, "smb-digital-presence", loc, TOTAL, 10.0, 40.0, 0.25)
            for i, (council, loc) in enumerate(councils.items())
        ]
    )


@pytest.mark.parametrize(
    ("geo", "reported", "expected"),
    [
        ("beit-hakerem", 3, 7),  # every municipality is expected at the cluster
        ("karmiel", 1, 1),  # and only its own council at a locality
        ("nahf", 1, 1),
        ("misgav", 1, 1),
    ],
)
def test_coverage_of_smb_digital_presence(
    geo: str, reported: int, expected: int, initiative: Initiative
) -> None:
    obs = smb(
        {"karmiel-municipality": "karmiel", "misgav-council": "misgav", "nahf-council": "nahf"}
    )
    got = cells(aggregate.aggregate(obs, initiative), "smb-digital-presence")

    row = got[(geo, TOTAL)]
    assert (row["partners_reported"], row["partners_expected"]) == (reported, expected)
    assert row["coverage"] == pytest.approx(reported / expected)
    assert ("rameh", TOTAL) not in got  # no report, no cell


@pytest.mark.parametrize(
    ("measure_id", "geo", "expected"),
    [
        ("smb-digital-presence", "beit-hakerem", 7),
        ("smb-digital-presence", "rameh", 1),
        ("arab-women-lfp", "beit-hakerem", 1),  # the employment service alone
        ("arab-women-lfp", "nahf", 1),
        ("below-min-wage-share", "karmiel", 1),
        ("fsg-vision-work-aligns", "beit-hakerem", 13),  # the survey: all 13 partners
        ("new-resources-nis", "beit-hakerem", 1),
    ],
)
def test_expected_partners_of_the_bundled_initiative(
    measure_id: str, geo: str, expected: int, initiative: Initiative
) -> None:
    table = aggregate.expected_partners(initiative)
    got = table.filter((pl.col("measure_id") == measure_id) & (pl.col("geo_code") == geo))
    assert got.height == expected


def test_cluster_only_measures_are_not_expected_at_a_locality(initiative: Initiative) -> None:
    table = aggregate.expected_partners(initiative)
    for measure_id in ("fsg-vision-work-aligns", "new-resources-nis", "ecommerce-centre-employees"):
        geos = set(table.filter(pl.col("measure_id") == measure_id)["geo_code"])
        assert geos == {"beit-hakerem"}, measure_id
    assert "karmiel" not in set(
        table.filter(pl.col("measure_id") == "arab-women-lfp")["geo_code"]
    )  # the employment service serves the Arab localities only


def test_each_slice_depends_on_its_own_rows_only(tiny: Initiative) -> None:
    rows: list[Row] = [
        ("a", 1, "served", "north", "sex=female", None, None, 3.0),
        ("c", 2, "served", "south", "sex=male", None, None, 5.0),
        ("a", 1, "share", "north", "sex=female", 2.0, 8.0, 0.25),
    ]
    q1 = observations(rows, "2025-Q1")
    q2 = observations(
        [(p, s + 10, m, g, d, n, den, v) for p, s, m, g, d, n, den, v in rows], "2025-Q2"
    )
    both = aggregate.aggregate(pl.concat([q1, q2]), tiny)
    for period, part in (("2025-Q1", q1), ("2025-Q2", q2)):
        alone = aggregate.aggregate(part, tiny)
        assert_frame_equal(both.filter(pl.col("period") == period), alone)
    assert aggregate.aggregate(q1.clear(), tiny).columns == list(frames.INDICATOR_SCHEMA)


# --- incremental refresh equals a full rebuild -----------------------------------------------

#: A few partners of every kind, the periods with a rejected draft, a revision, a duplicate, a
#: late file and the yearly survey.
PARTNERS = {
    "national-insurance",  # proportions by sex, revised in 2025-Q3 (a supersession)
    "employment-service",  # proportions by age band, cp1255
    "braude-college",  # monthly counts by sex, a workbook
    "kurkum",  # one locality's small counts, late in 2025-Q4
    "galilee-foundation",  # amounts at the cluster, sent twice
    "online-commerce-centre",  # a draft with errors, then the file
    "karmiel-municipality",
    "nahf-council",
}
FROM = "2025-Q2"


@pytest.fixture(scope="module")
def some_demo_files(demo_files: list[demo.DemoFile]) -> list[demo.DemoFile]:
    return [
        f
        for f in demo_files
        if f.partner_id in PARTNERS and (f.period >= FROM or f.period == "2025")
    ]


def ingest(
    f: demo.DemoFile, *, initiative: Initiative, settings: Settings, engine: Engine
) -> intake.Receipt:
    receipt = helpers.ingest(
        f.path, f.partner_id, f.period, initiative=initiative, settings=settings, engine=engine
    )
    assert not any(i["rule"] == "file_refused" for i in receipt.first_issues), receipt
    return receipt


def batches(files: list[demo.DemoFile]) -> list[list[demo.DemoFile]]:
    """The files as they arrive, a period at a time; the revision arrives on its own."""
    out: list[list[demo.DemoFile]] = []
    for _, group in itertools.groupby(files, key=lambda f: f.period):
        batch = list(group)
        out += [[f for f in batch if not f.note.startswith("a revision")]]
        out += [[f] for f in batch if f.note.startswith("a revision")]
    return out


def slices_of(engine: Engine, *submission_ids: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT measure_id, period FROM observation WHERE submission_id IN ("
                + ", ".join(str(int(i)) for i in submission_ids)
                + ")"
            )
        ).all()
    return sorted((m, p) for m, p in rows)


def assert_same(left: pl.DataFrame, right: pl.DataFrame) -> None:
    assert_frame_equal(left, right, check_exact=False, rel_tol=1e-12, abs_tol=0.0)


def test_incremental_refresh_equals_a_full_rebuild(
    some_demo_files: list[demo.DemoFile],
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
) -> None:
    ini = initiative.info.id
    intake.prepare_database(initiative, engine=engine)
    statuses: list[str] = []
    superseded: tuple[int, int] | None = None
    for batch in batches(some_demo_files):
        receipts = [
            ingest(f, initiative=initiative, settings=settings, engine=engine) for f in batch
        ]
        statuses += [r.status for r in receipts]
        revision = [r for r in receipts if r.supersedes is not None]
        if revision:  # the supersession: exactly the slices of the old and new file are stale
            r = revision[0]
            assert r.supersedes is not None
            superseded = (r.supersedes, r.submission_id)
            touched = slices_of(engine, *superseded)
            assert touched == [("below-min-wage-share", "2025-Q3")]
            assert store.stale_slices(ini, engine=engine) == touched
        refreshed = aggregate.refresh_indicators(initiative, engine=engine)
        if revision:
            assert refreshed.slices == touched
        assert store.stale_slices(ini, engine=engine) == []
    assert {"accepted", "rejected", "duplicate"} <= set(statuses)
    assert superseded is not None
    assert aggregate.refresh_indicators(initiative, engine=engine) == aggregate.Refreshed([], 0)

    incremental = store.read_indicators(ini, engine=engine)
    assert incremental.height > 500
    assert incremental["suppressed"].any() and not incremental["suppressed"].all()
    # Only what counts: the superseded file's id is in no lineage, its replacement's is.
    ids = set(incremental["lineage"].str.split(",").explode().cast(pl.Int64))
    assert superseded[0] not in ids and superseded[1] in ids

    # Rebuilt over the stored cells, then from nothing: the same table (every column exactly;
    # floats up to the order a database returns rows in, which a weighted mean sums in).
    aggregate.refresh_indicators(initiative, engine=engine, full=True)
    assert_same(store.read_indicators(ini, engine=engine), incremental)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM indicator_value"))
        conn.execute(text("DELETE FROM indicator_slice"))
    assert store.stale_slices(ini, engine=engine) == store.all_slices(ini, engine=engine)
    aggregate.refresh_indicators(initiative, engine=engine, full=True)
    assert_same(store.read_indicators(ini, engine=engine), incremental)


def test_slices_are_read_by_their_own_periods(
    some_demo_files: list[demo.DemoFile],
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run reads the observations of the slices it recomputes, not the measures' history: by
    (measure, period) pairs, the same rows as reading whole measures and cutting them."""
    ini = initiative.info.id
    intake.prepare_database(initiative, engine=engine)
    for f in some_demo_files:
        ingest(f, initiative=initiative, settings=settings, engine=engine)
    every = store.all_slices(ini, engine=engine)
    asked = every[::3]
    assert len({p for _, p in every}) > len({p for _, p in asked}) > 1

    by_pair = store.slice_observations(ini, asked, engine=engine)
    assert set(by_pair.select("measure_id", "period").unique().iter_rows()) == set(asked)
    monkeypatch.setattr(store.indicators, "SLICES_BY_PAIR", 0)  # whole measures, then cut
    by_measure = store.slice_observations(ini, asked, engine=engine)
    key = list(by_pair.columns)
    assert_frame_equal(by_pair.sort(key), by_measure.sort(key))


def test_a_slice_whose_last_submission_stops_counting_is_emptied(
    tiny: Initiative, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """Stale when a submission stops counting, and refreshed to nothing."""
    ini = tiny.info.id
    intake.prepare_database(tiny, engine=engine)
    path = tmp_path / "a.csv"
    path.write_text("measure_id,geo_code,period,value\nplain,north,2025-Q1,12\n")
    receipt = ingest(demo.DemoFile("a", Q, path), initiative=tiny, settings=settings, engine=engine)
    assert receipt.status == "accepted", receipt.first_issues
    assert store.stale_slices(ini, engine=engine) == [("plain", Q)]
    aggregate.refresh_indicators(tiny, engine=engine)
    assert set(store.read_indicators(ini, engine=engine)["lineage"]) == {str(receipt.submission_id)}

    with engine.begin() as conn:
        conn.execute(
            text("UPDATE submission SET status = 'rejected' WHERE id = :id"),
            {"id": receipt.submission_id},
        )
    assert store.stale_slices(ini, engine=engine) == [("plain", Q)]
    assert aggregate.refresh_indicators(tiny, engine=engine).rows == 0
    assert store.read_indicators(ini, engine=engine).is_empty()
    assert store.stale_slices(ini, engine=engine) == []


# --- partners reporting the same population (across_partners) ----------------------------------


@pytest.fixture(scope="module")
def preferring(tmp_path_factory: pytest.TempPathFactory) -> Initiative:
    """Like ``tiny``, with ``served`` reported for the same people by b (first) and a: b a
    municipality, a a national service; c serves other people in the south."""
    served = measure_yaml("served", "count", dimensions=SEX) | {
        "across_partners": "prefer",
        "partner_precedence": ["b", "a"],
    }
    share = measure_yaml("share", "proportion", dimensions=SEX) | {
        "across_partners": "prefer",
        "partner_precedence": ["b", "a"],
    }
    return write_initiative(
        tmp_path_factory.mktemp("preferring") / "initiative",
        ["north", "south"],
        {"a": ["north", "south"], "b": ["north"], "c": ["south"]},
        [served, share],
    )


SAME_PEOPLE: list[Row] = [
    ("b", 2, "served", "north", "sex=total", None, None, 4.0),  # counts: b comes first
    ("a", 1, "served", "north", "sex=female", None, None, 2.0),  # b reported north: not counted
    ("a", 1, "served", "north", "sex=male", None, None, 3.0),  # nor this
    ("a", 1, "served", "south", "sex=total", None, None, 7.0),  # b does not serve the south
    ("c", 3, "served", "south", "sex=total", None, None, 10.0),  # not listed: added as usual
]


def test_preferred_partner_counts_once_for_the_same_people(preferring: Initiative) -> None:
    got = cells(aggregate.aggregate(observations(SAME_PEOPLE), preferring), "served")

    # north: b's 4 alone (a's 2 + 3 describe the same people); south: a's 7 + c's 10 = 17;
    # the region: 4 + 17 = 21 (summing everything would give 4 + 5 + 17 = 26).
    assert {k: v["value"] for k, v in got.items()} == {
        ("north", "sex=total"): 4.0,
        ("south", "sex=total"): 17.0,
        ("region", "sex=total"): 21.0,
    }
    # a's north breakdown is not a cell of its own: b's total is the north's figure.
    assert ("north", "sex=female") not in got
    # a reported the north too: coverage counts it; lineage names its submission.
    assert got[("north", "sex=total")]["partners_reported"] == 2
    assert got[("north", "sex=total")]["lineage"] == "1,2"


def test_preferred_partner_for_a_proportion(preferring: Initiative) -> None:
    rows: list[Row] = [
        ("b", 2, "share", "north", "sex=total", 30.0, 100.0, 0.3),
        ("a", 1, "share", "north", "sex=total", 45.0, 100.0, 0.45),
        ("a", 1, "share", "south", "sex=total", 10.0, 50.0, 0.2),
    ]
    got = cells(aggregate.aggregate(observations(rows), preferring), "share")

    # north: b's 30/100; the region: (30 + 10) / (100 + 50) = 40/150 = 0.2667 (with a's north
    # figure too it would be 85/250 = 0.34).
    assert got[("north", "sex=total")]["value"] == pytest.approx(0.3)
    assert got[("region", "sex=total")]["value"] == pytest.approx(40 / 150)
    assert (
        got[("region", "sex=total")]["numerator"],
        got[("region", "sex=total")]["denominator"],
    ) == (40.0, 150.0)


def test_by_default_partners_figures_are_added(tiny: Initiative) -> None:
    """The same rows under ``tiny`` (``across_partners`` left at its default, sum): north is
    4 + 2 + 3 = 9, south 7 + 10 = 17, the region 26: today's results for every bundled measure."""
    got = cells(aggregate.aggregate(observations(SAME_PEOPLE), tiny), "served")

    assert got[("north", "sex=total")]["value"] == 9.0
    assert got[("south", "sex=total")]["value"] == 17.0
    assert got[("region", "sex=total")]["value"] == 26.0
    assert got[("north", "sex=female")]["value"] == 2.0


def test_a_measure_no_partner_is_expected_to_report_still_aggregates(tiny: Initiative) -> None:
    """Issue 10's last case: with no partner expected anywhere (here: no partners at all) the
    table of expected partners is empty, and was untyped, so the join failed (SchemaError).
    The figures still add up; no partner was expected: coverage is not a number."""
    alone = tiny.model_copy(update={"partners": {}})
    expected = aggregate.expected_partners(alone)
    assert expected.is_empty()
    assert expected.schema == {"measure_id": pl.Utf8, "geo_code": pl.Utf8, "partner_id": pl.Utf8}
    rows: list[Row] = [("a", 1, "people", "north", "age_band=young;sex=female", None, None, 1.0)]

    got = cells(aggregate.aggregate(observations(rows), alone), "people")

    north = got[("north", "age_band=young;sex=female")]
    assert (north["value"], north["partners_reported"], north["partners_expected"]) == (1.0, 1, 0)
