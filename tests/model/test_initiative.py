"""The initiative as data: the bundled folder, name matching, and a broken folder's report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_pipeline.config import DEFAULT_INITIATIVE
from ci_pipeline.errors import DefinitionError, UnknownPartner
from ci_pipeline.model.initiative import (
    COMBINE_FOR_UNIT,
    AcrossPartners,
    Combine,
    GeoLevel,
    Initiative,
    Measure,
    Unit,
    normalise_name,
)
from ci_pipeline.model.load import load_initiative, load_measure, measure_json_schema
from ci_pipeline.model.periods import Periodicity

LOCALITIES = ["karmiel", "misgav", "majd-al-krum", "biina", "deir-al-asad", "nahf", "rameh"]
FSG_DOMAINS = {
    "Guide vision and strategy": 4,
    "Support aligned activities": 8,
    "Establish shared measurement practices": 5,
    "Build public will": 4,
    "Advance policy": 3,
    "Mobilise funding": 3,
}


# --- the bundled initiative ---------------------------------------------------------------------


def test_bundled_geographies(initiative: Initiative) -> None:
    assert initiative.info.id == "beit-hakerem"
    cluster = initiative.geographies["beit-hakerem"]
    assert (cluster.level, cluster.parent) == (GeoLevel.cluster, None)
    localities = [g.code for g in initiative.geographies.values() if g.level is GeoLevel.locality]
    assert localities == LOCALITIES
    assert all(initiative.geographies[c].parent == "beit-hakerem" for c in localities)
    assert initiative.geographies["karmiel"].name.he == "כרמיאל"
    assert initiative.geographies["karmiel"].name.ar == "كرميئيل"


def test_bundled_equity_gaps(initiative: Initiative) -> None:
    """Jewish and Arab localities (DOMAIN.md: Karmiel and Misgav are the Jewish authorities),
    women and men, and older and younger women: the behind group first to catch up."""
    groups = {c: initiative.geographies[c].groups for c in LOCALITIES}
    assert groups == {
        "karmiel": ["jewish"],
        "misgav": ["jewish"],
        **{c: ["arab"] for c in LOCALITIES[2:]},
    }
    assert initiative.geographies["beit-hakerem"].groups == []
    gaps = {g.id: g for g in initiative.info.equity_gaps}
    assert list(gaps) == ["jewish-arab", "men-women", "age"]
    assert (gaps["jewish-arab"].dimension, gaps["jewish-arab"].behind.group) == (None, "arab")
    assert gaps["jewish-arab"].behind.name.en == "Arab localities"
    assert (gaps["men-women"].dimension, gaps["men-women"].behind.group) == ("sex", "female")
    assert (gaps["age"].dimension, gaps["age"].behind.group) == ("age_band", "45-64")
    assert gaps["age"].measures == ["arab-women-lfp"]
    assert gaps["men-women"].measures == []  # every proportion and score with both codes


def test_an_initiative_without_groups_or_gaps_still_loads(copy: Path) -> None:
    """Both additions are optional: a folder written before them loads as it did."""
    text = (copy / "initiative.yaml").read_text(encoding="utf-8")
    (copy / "initiative.yaml").write_text(text[: text.index("# The gaps")], encoding="utf-8")
    geos = (copy / "geographies.yaml").read_text(encoding="utf-8")
    (copy / "geographies.yaml").write_text(
        re.sub(r"  groups: \[\w+\]\n", "", geos), encoding="utf-8"
    )
    loaded = load_initiative(copy)
    assert loaded.info.equity_gaps == []
    assert all(g.groups == [] for g in loaded.geographies.values())


def test_bundled_partners(initiative: Initiative) -> None:
    assert len(initiative.partners) == 13
    assert {"employment-service", "kurkum", "braude-college"} <= set(initiative.partners)
    assert initiative.partners["employment-service"].encoding == "windows-1255"
    assert initiative.partners["kurkum"].encoding == "windows-1256"
    assert initiative.partners["karmiel-municipality"].encoding == "utf-8"
    assert initiative.partners["braude-college"].submits_every is Periodicity.month
    for partner in initiative.partners.values():
        assert set(partner.localities) <= set(LOCALITIES)
        assert set(partner.measures) <= set(initiative.measures)


def test_bundled_measures(initiative: Initiative) -> None:
    fsg = [m for m in initiative.measures.values() if m.id.startswith("fsg-")]
    domain = [m for m in initiative.measures.values() if not m.id.startswith("fsg-")]
    assert len(fsg) == 27
    assert len(domain) >= 10
    counts: dict[str, int] = {}
    for m in fsg:
        assert m.domain is not None
        counts[m.domain] = counts.get(m.domain, 0) + 1
    assert counts == FSG_DOMAINS
    assert all(
        (m.unit, m.combine, m.periodicity, m.geo_levels)
        == (Unit.score, Combine.weighted_mean, Periodicity.year, [GeoLevel.cluster])
        for m in fsg
    )
    assert all(m.combine is COMBINE_FOR_UNIT[m.unit] for m in initiative.measures.values())
    lfp = initiative.measures["arab-women-lfp"]
    assert (lfp.unit, lfp.periodicity, lfp.dimensions) == (
        Unit.proportion,
        Periodicity.quarter,
        {"age_band": ["total", "25-44", "45-64"]},
    )
    assert lfp.baseline is not None and (lfp.baseline.period, lfp.baseline.value) == (
        "2024-Q1",
        0.26,
    )
    assert initiative.dimension_names == ["age_band", "sex"]


def test_partner_measure_patterns_are_expanded(initiative: Initiative) -> None:
    fsg = sorted(m for m in initiative.measures if m.startswith("fsg-"))
    karmiel = initiative.partners["karmiel-municipality"]
    assert karmiel.measures == ["smb-digital-presence", *fsg]
    braude = initiative.partners["braude-college"]
    assert braude.measures == ["starter-students-trained", "starter-businesses-served", *fsg]
    assert all("*" not in m for p in initiative.partners.values() for m in p.measures)


def test_digest_tells_versions_apart(tmp_path: Path, initiative: Initiative) -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", initiative.digest)
    copy = shutil.copytree(DEFAULT_INITIATIVE, tmp_path / "copy")
    assert load_initiative(copy).digest == initiative.digest  # the folder's place is no part
    measure = copy / "measures" / "nahf-unused.yaml"
    shutil.copy(copy / "measures" / "kurkum-women-employed.yaml", measure)
    measure.write_text(measure.read_text().replace("id: kurkum-women-employed", "id: nahf-unused"))
    changed = load_initiative(copy)
    assert "nahf-unused" in changed.measures
    assert changed.digest != initiative.digest


def test_ancestors_and_partner_geographies(initiative: Initiative) -> None:
    assert initiative.ancestors("karmiel") == ["beit-hakerem"]
    assert initiative.ancestors("beit-hakerem") == []
    assert initiative.partner_geographies("karmiel-municipality") == ["karmiel", "beit-hakerem"]
    assert initiative.partner_geographies("employment-service") == [
        "majd-al-krum", "biina", "deir-al-asad", "nahf", "rameh", "beit-hakerem"
    ]  # fmt: skip
    assert initiative.partner_geographies("national-insurance") == [*LOCALITIES, "beit-hakerem"]


def test_unknown_partner(initiative: Initiative) -> None:
    with pytest.raises(UnknownPartner, match=r"no partner 'nobody' in beit-hakerem; known: biina"):
        initiative.partner("nobody")


# --- place names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("Majd al-Krum", "majdalkrum"),
        ("MAJD AL KRUM", "majdalkrum"),
        ("majd_al_krum", "majdalkrum"),
        ("Bi'ina", "biina"),
        ("Bi’ina", "biina"),  # a typographic apostrophe
        ("Bi`ina", "biina"),
        ("מג'ד אל-כרום", "מגדאלכרום"),  # apostrophe for geresh
        ("מג׳ד אל-כרום", "מגדאלכרום"),  # a real geresh
        ("מג’ד אל כרום", "מגדאלכרום"),
        ('צה"ל', "צהל"),  # quotation mark for gershayim
        ("צה״ל", "צהל"),  # real gershayim
        ("  Karmiel\t", "karmiel"),
        ("Zürich", "zurich"),  # accents
        ("ＫＡＲＭＩＥＬ", "karmiel"),  # full-width, NFKC-folded
        ("دير الأسد", "ديرالاسد"),  # hamza on alif folds away (a combining mark under NFD)
    ],
)
def test_normalise_name(written: str, folded: str) -> None:
    assert normalise_name(written) == folded


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("karmiel", "karmiel"),
        ("Karmiel", "karmiel"),
        ("Carmiel", "karmiel"),
        ("כרמיאל", "karmiel"),
        ("كرميئيل", "karmiel"),
        ("كرمئيل", "karmiel"),
        ("Majd el-Kurum", "majd-al-krum"),
        ("מג׳ד אל כרום", "majd-al-krum"),
        ("Bi’ina", "biina"),
        ("البعنة", "biina"),
        ("DEIR AL-ASAD", "deir-al-asad"),
        ("دير الاسد", "deir-al-asad"),
        ("Nahef", "nahf"),
        ("Beit Ha-Kerem cluster", "beit-hakerem"),
        ("מועצה אזורית משגב", "misgav"),
    ],
)
def test_geo_aliases(initiative: Initiative, written: str, code: str) -> None:
    assert initiative.geo_aliases()[normalise_name(written)] == code


def test_geo_aliases_are_normalised_and_unambiguous(initiative: Initiative) -> None:
    aliases = initiative.geo_aliases()
    assert all(normalise_name(k) == k for k in aliases)
    assert set(aliases.values()) == set(initiative.geographies)
    for g in initiative.geographies.values():  # no name of one place is taken by another
        for name in (g.code, g.name.en, g.name.he, g.name.ar, *g.aliases):
            if name:
                assert aliases[normalise_name(name)] == g.code, name


# --- a broken folder ----------------------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path.name} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_INITIATIVE, tmp_path / "beit-hakerem"))


def test_broken_folder_reports_every_problem_at_once(copy: Path) -> None:
    m = copy / "measures"
    _edit(m / "new-resources-nis.yaml", "combine: sum", "combine: weighted_mean")
    _edit(m / "below-min-wage-share.yaml", "denominator: Employed residents\n", "")
    _edit(m / "arab-women-lfp.yaml", "  age_band:\n  - total\n", "  age_band:\n")
    _edit(m / "smb-digital-presence.yaml", "period: 2024-Q1", "period: 2024-03")
    _edit(m / "part-time-share.yaml", "direction: lower_is_better", "directoin: lower_is_better")
    (m / "starter-students-trained.yaml").write_text("id: [starter\ntitle: x\n", encoding="utf-8")
    _edit(copy / "partners.yaml", "  - rameh\n  measures:\n  - smb-digital-presence\n",
          "  - atlantis\n  measures:\n  - smb-digital-presense\n")  # fmt: skip
    _edit(copy / "geographies.yaml", "- code: nahf\n  level: locality\n  parent: beit-hakerem",
          "- code: nahf\n  level: locality\n  parent: galilee")  # fmt: skip

    with pytest.raises(DefinitionError) as exc:
        load_initiative(copy)
    problems = exc.value.problems
    expected = [
        "measures/new-resources-nis.yaml: (top level): Value error, a amount measure combines by sum, not weighted_mean",
        "measures/below-min-wage-share.yaml: (top level): Value error, a proportion needs both 'numerator' and 'denominator'",
        "measures/arab-women-lfp.yaml: dimensions: Value error, dimension 'age_band' must list the code 'total'",
        "measures/smb-digital-presence.yaml: (top level): Value error, baseline period 2024-03 is not a quarter",
        "measures/part-time-share.yaml: direction: Field required",
        "measures/part-time-share.yaml: directoin: Extra inputs are not permitted",
        "starter-students-trained.yaml: not valid YAML: ",
        "partners.yaml[rameh-council]: localities: unknown geography 'atlantis'",
        "partners.yaml[rameh-council]: measures: unknown measure 'smb-digital-presense'",
        "geographies.yaml[nahf]: parent: unknown geography 'galilee'",
    ]
    for start in expected:
        assert sum(p.startswith(start) for p in problems) == 1, (start, problems)
    # Nothing else: a measure that exists but is broken is not also "unknown" to its partners.
    assert len(problems) == len(expected), problems
    assert str(exc.value) == "\n".join(problems)


def test_measure_id_must_match_its_file_name(copy: Path) -> None:
    path = copy / "measures" / "kurkum-women-employed.yaml"
    _edit(path, "id: kurkum-women-employed", "id: kurkum-women")
    expected = [
        "measures/kurkum-women-employed.yaml: id: 'kurkum-women' differs from the file name"
    ]
    with pytest.raises(DefinitionError) as exc:
        load_measure(path)
    assert exc.value.problems == expected
    with pytest.raises(DefinitionError) as exc:
        load_initiative(copy)
    assert exc.value.problems == expected


@pytest.mark.parametrize(
    ("file", "old", "new", "problem"),
    [
        ("partners.yaml", "encoding: windows-1256", "encoding: klingon",
         "partners.yaml[kurkum]: encoding: unknown encoding 'klingon'"),
        ("partners.yaml", "  locale: ru\n", "  locale: klingon\n",
         "partners.yaml[employment-service]: locale: Value error, unknown locale 'klingon'"),
        ("initiative.yaml", "locale: he_IL", "locale: xx_YY",
         "initiative.yaml: locale: Value error, unknown locale 'xx_YY'"),
        ("partners.yaml", "- id: misgav-council", "- id: karmiel-municipality",
         "partners.yaml[karmiel-municipality]: id: defined twice"),
        ("partners.yaml", "email: hello@kurkum.example.org", "email: kurkum",
         "partners.yaml[kurkum]: contact.email: String should match pattern"),
        ("geographies.yaml", "- code: rameh\n  level: locality\n  parent: beit-hakerem",
         "- code: rameh\n  level: locality", "geographies.yaml[rameh]: parent: only a cluster has no parent"),
        ("geographies.yaml", "- code: beit-hakerem\n  level: cluster\n",
         "- code: beit-hakerem\n  level: cluster\n  parent: beit-hakerem\n",
         "geographies.yaml[beit-hakerem]: parent: the chain of parents loops (beit-hakerem → beit-hakerem)"),
        ("initiative.yaml", "version:", "colour: red\nversion:", "initiative.yaml: colour: Extra inputs are not permitted"),
        ("measures/smb-digital-presence.yaml", "period: 2027-Q4", "period: 2023-Q4",
         "measures/smb-digital-presence.yaml: (top level): Value error, target period must come after the baseline period"),
        ("measures/smb-digital-presence.yaml", "  max: 1\n", "  max: 100\n",
         "measures/smb-digital-presence.yaml: (top level): Value error, a proportion's valid_range must lie within [0, 1]"),
        ("measures/fsg-vision-work-aligns.yaml", "denominator: Partner staff who answered the survey\n", "",
         "measures/fsg-vision-work-aligns.yaml: (top level): Value error, a score needs 'denominator'"),
        ("measures/kurkum-women-employed.yaml", "periodicity: month", "periodicity: fortnight",
         "measures/kurkum-women-employed.yaml: periodicity: Input should be 'month', 'quarter' or 'year'"),
        ("measures/arab-women-lfp.yaml", "period: 2030-Q4", "period: 2030-Q7",
         "measures/arab-women-lfp.yaml: target.period: Value error, '2030-Q7' is not a period"),
        ("initiative.yaml", "    group: arab\n", "    group: druze\n",
         "initiative.yaml: equity_gaps[jewish-arab]: behind: no locality is in the group 'druze'"),
        ("initiative.yaml", "  dimension: sex\n", "  dimension: region\n",
         "initiative.yaml: equity_gaps[men-women]: dimension: no measure breaks down by 'region' into 'male' and 'female'"),
        ("initiative.yaml", "    group: female\n", "    group: other\n",
         "initiative.yaml: equity_gaps[men-women]: dimension: no measure breaks down by 'sex' into 'male' and 'other'"),
        ("initiative.yaml", "measures: [arab-women-lfp]", "measures: [arab-women-lpf]",
         "initiative.yaml: equity_gaps[age]: measures: unknown measure 'arab-women-lpf'"),
        ("initiative.yaml", "- id: age\n", "- id: men-women\n",
         "initiative.yaml: equity_gaps[men-women]: id: defined twice"),
        ("initiative.yaml", "    group: male\n", "    group: female\n",
         "initiative.yaml: equity_gaps.1: Value error, ahead and behind name the same group"),
        ("geographies.yaml", "  aliases: [Beit Hakerem, Beit Ha-Kerem cluster]\n",
         "  aliases: [Beit Hakerem, Beit Ha-Kerem cluster]\n  groups: [arab]\n",
         "geographies.yaml[beit-hakerem]: groups: only a locality is in a group"),
    ],
)  # fmt: skip
def test_single_problem(copy: Path, file: str, old: str, new: str, problem: str) -> None:
    _edit(copy / file, old, new)
    with pytest.raises(DefinitionError) as exc:
        load_initiative(copy)
    assert len(exc.value.problems) == 1, exc.value.problems
    assert exc.value.problems[0].startswith(problem)


def test_missing_files(tmp_path: Path, copy: Path) -> None:
    with pytest.raises(DefinitionError, match="no such initiative folder"):
        load_initiative(tmp_path / "nowhere")
    (copy / "partners.yaml").unlink()
    shutil.rmtree(copy / "measures")
    with pytest.raises(DefinitionError) as exc:
        load_initiative(copy)
    assert exc.value.problems == ["partners.yaml: file is missing", "measures/: no measure files"]


def test_list_files_must_be_lists(copy: Path) -> None:
    (copy / "geographies.yaml").write_text("karmiel: {level: locality}\n", encoding="utf-8")
    with pytest.raises(DefinitionError) as exc:
        load_initiative(copy)
    assert exc.value.problems[0] == "geographies.yaml: expected a list of entries"
    # Without geographies every partner's localities are unknown; each is still named.
    assert "partners.yaml[kurkum]: localities: unknown geography 'majd-al-krum'" in (
        exc.value.problems
    )


# --- the measure model and its JSON Schema ------------------------------------------------------


def _measure(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (DEFAULT_INITIATIVE / "measures" / "arab-women-lfp.yaml").read_text(encoding="utf-8")
    )
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_measure_model_accepts_the_bundled_file() -> None:
    measure = Measure.model_validate(_measure())
    assert measure.title_in == {
        "en": "Arab women's labour-force participation",
        "he": "השתתפות נשים ערביות בכוח העבודה",
        "ar": "مشاركة النساء العربيات في القوى العاملة",
    }
    assert Measure.model_validate(_measure(baseline={"period": "2024q1", "value": 0.2})).baseline
    assert (
        Measure.model_validate(_measure(baseline={"period": "2024q1", "value": 0.2})).baseline
        == Measure.model_validate(_measure(baseline={"period": "2024-Q1", "value": 0.2})).baseline
    )  # a baseline period is stored canonical


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"unit": "count"}, "a count measure combines by sum, not ratio_of_sums"),
        ({"numerator": None}, "a proportion needs both 'numerator' and 'denominator'"),
        ({"dimensions": {"age_band": ["total"]}}, "needs at least one code besides 'total'"),
        ({"dimensions": {"age_band": ["total", "a", "a"]}}, "lists a code twice"),
        ({"dimensions": {"Age Band": ["total", "a"]}}, "String should match pattern"),
        ({"baseline": {"period": "2024", "value": 0.2}}, "baseline period 2024 is not a quarter"),
        ({"valid_range": {"min": 1, "max": 0}}, "min (1.0) is greater than max (0.0)"),
        ({"id": "Arab Women"}, "String should match pattern"),
        ({"version": 0}, "greater than or equal to 1"),
        ({"alert": {"alpha": 0.7}}, "less than 0.5"),
        ({"across_partners": "prefer"}, "partner_precedence lists the partners in order"),
        ({"partner_precedence": ["a", "b"]}, "partner_precedence lists the partners in order"),
        (
            {"across_partners": "prefer", "partner_precedence": ["a"]},
            "needs at least two partners",
        ),
        (
            {"across_partners": "prefer", "partner_precedence": ["a", "b", "a"]},
            "lists a partner twice",
        ),
        ({"across_partners": "average"}, "Input should be 'sum', 'prefer' or 'exclusive'"),
    ],
)
def test_measure_model_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Measure.model_validate(_measure(**changes))


def test_committed_json_schema_is_up_to_date() -> None:
    committed = (DEFAULT_INITIATIVE.parent / "measure.schema.json").read_text(encoding="utf-8")
    assert committed == measure_json_schema(), (
        "schemas/measure.schema.json is stale: regenerate it from ci_pipeline.model.initiative.Measure"
    )
    schema = json.loads(committed)
    assert schema["title"] == "Shared measure"
    assert schema["additionalProperties"] is False  # misspelt fields are errors in editors too
    assert {"id", "unit", "combine", "periodicity"} <= set(schema["required"])


def test_partners_figures_are_summed_unless_the_measure_says_otherwise() -> None:
    assert Measure.model_validate(_measure()).across_partners is AcrossPartners.sum
    preferring = Measure.model_validate(
        _measure(across_partners="prefer", partner_precedence=["b", "a"])
    )
    assert preferring.partner_precedence == ["b", "a"]


def test_partner_precedence_names_partners_that_report_the_measure(copy: Path) -> None:
    _edit(
        copy / "measures" / "smb-digital-presence.yaml",
        "combine: ratio_of_sums",
        "combine: ratio_of_sums\nacross_partners: prefer\n"
        "partner_precedence: [karmiel-municipality, braude-college, nobody]",
    )
    with pytest.raises(DefinitionError) as exc:
        load_initiative(copy)
    assert exc.value.problems == [
        "measures/smb-digital-presence.yaml: partner_precedence: 'braude-college' is not a "
        "partner that reports smb-digital-presence",
        "measures/smb-digital-presence.yaml: partner_precedence: 'nobody' is not a "
        "partner that reports smb-digital-presence",
    ]
