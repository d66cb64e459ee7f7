"""Loading an initiative's folder of YAML into the model, every problem reported at once, naming
the file and the field; and the measure file's JSON Schema.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ci_pipeline.errors import DefinitionError
from ci_pipeline.model.initiative import (
    Geography,
    GeoLevel,
    Initiative,
    InitiativeInfo,
    Measure,
    Partner,
    StrictModel,
)

MEASURE_DIR = "measures"


# libyaml's loader is ~10x faster than the pure-Python one; both are safe loaders.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except FileNotFoundError:
        problems.append(f"{path.name}: file is missing")
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: not valid YAML: {exc}")
    return None


def _explain(where: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        out.append(f"{where}: {loc}: {err['msg']}")
    return out


def _parse_list(
    path: Path, model: type[StrictModel], problems: list[str], key: str
) -> dict[str, Any]:
    data = _read_yaml(path, problems)
    if data is None:
        return {}
    if not isinstance(data, list):
        problems.append(f"{path.name}: expected a list of entries")
        return {}
    out: dict[str, Any] = {}
    for i, entry in enumerate(data):
        label = entry.get(key, f"#{i + 1}") if isinstance(entry, dict) else f"#{i + 1}"
        try:
            item = model.model_validate(entry)
        except ValidationError as exc:
            problems += _explain(f"{path.name}[{label}]", exc)
            continue
        ident = getattr(item, key)
        if ident in out:
            problems.append(f"{path.name}[{ident}]: {key}: defined twice")
        out[ident] = item
    return out


#: What :func:`file_stamps` gives: each file's path, size and modification time (ns).
Stamps = tuple[tuple[str, int, int], ...]


def file_stamps(folder: Path, pattern: str = "*") -> Stamps:
    """Every file under ``folder`` matching ``pattern``, in path order, with its size and
    modification time: what differs once a file is edited, added or removed. A long-lived
    process compares them to tell whether what it loaded (definitions, code) is still current.
    """
    return tuple(
        (str(path), (st := path.stat()).st_size, st.st_mtime_ns)
        for path in sorted(folder.rglob(pattern))
        if path.is_file()
    )


def load_measure(path: Path) -> Measure:
    """Load one measure file; raise :class:`DefinitionError` naming the file and field."""
    problems: list[str] = []
    data = _read_yaml(path, problems)
    if problems:
        raise DefinitionError(problems)
    try:
        measure = Measure.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(_explain(f"{MEASURE_DIR}/{path.name}", exc)) from None
    if measure.id != path.stem:
        raise DefinitionError(
            [f"{MEASURE_DIR}/{path.name}: id: {measure.id!r} differs from the file name"]
        )
    return measure


def _hierarchy_problems(geos: dict[str, Geography]) -> list[str]:
    """What is wrong with the geographies' tree: a locality needs a parent, a parent must be
    known, and no chain of parents may loop. Clusters nest (a nation of districts of towns), so
    a cluster may have a parent too; the roots are clusters."""
    problems: list[str] = []
    for g in geos.values():
        parent = geos.get(g.parent) if g.parent is not None else None
        if g.parent is not None and parent is None:
            problems.append(f"geographies.yaml[{g.code}]: parent: unknown geography {g.parent!r}")
        if g.parent is None and g.level is not GeoLevel.cluster:
            problems.append(f"geographies.yaml[{g.code}]: parent: only a cluster has no parent")
        chain = [g.code]
        while parent is not None:  # every chain of parents must reach a root
            if parent.code in chain:
                if parent.code == g.code:  # said once per geography on the loop, not below it
                    problems.append(
                        f"geographies.yaml[{g.code}]: parent: the chain of parents loops "
                        f"({' → '.join([*chain, parent.code])})"
                    )
                break
            chain.append(parent.code)
            parent = geos.get(parent.parent) if parent.parent is not None else None
    return problems


def load_initiative(path: Path) -> Initiative:
    """Load and cross-check an initiative folder, reporting every problem found at once."""
    path = Path(path)
    if not path.is_dir():
        raise DefinitionError([f"{path}: no such initiative folder"])
    problems: list[str] = []
    info_data = _read_yaml(path / "initiative.yaml", problems)
    info: InitiativeInfo | None = None
    if info_data is not None:
        try:
            info = InitiativeInfo.model_validate(info_data)
        except ValidationError as exc:
            problems += _explain("initiative.yaml", exc)
    geos: dict[str, Geography] = _parse_list(path / "geographies.yaml", Geography, problems, "code")
    partners: dict[str, Partner] = _parse_list(path / "partners.yaml", Partner, problems, "id")
    measures: dict[str, Measure] = {}
    files = sorted((path / MEASURE_DIR).glob("*.yaml"))
    if not files:
        problems.append(f"{MEASURE_DIR}/: no measure files")
    for file in files:
        try:
            measures[file.stem] = load_measure(file)
        except DefinitionError as exc:
            problems += exc.problems

    problems += _hierarchy_problems(geos)
    for p in list(partners.values()):
        for code in p.localities:
            if code not in geos:
                problems.append(f"partners.yaml[{p.id}]: localities: unknown geography {code!r}")
        expanded: list[str] = []
        for pattern in p.measures:
            # Match the measure files, not only those that loaded: a broken measure is reported
            # once, under its own file, and not again as unknown by every partner reporting it.
            matched = sorted(fnmatch.filter((f.stem for f in files), pattern))
            if not matched:
                problems.append(f"partners.yaml[{p.id}]: measures: unknown measure {pattern!r}")
            expanded += [m for m in matched if m not in expanded]
        partners[p.id] = p.model_copy(update={"measures": expanded})
        try:
            "".encode(p.encoding)
        except LookupError:
            problems.append(f"partners.yaml[{p.id}]: encoding: unknown encoding {p.encoding!r}")
    for m in measures.values():
        for partner_id in m.partner_precedence:
            reports = partners.get(partner_id)
            if reports is None or m.id not in reports.measures:
                problems.append(
                    f"{MEASURE_DIR}/{m.id}.yaml: partner_precedence: {partner_id!r} is not a "
                    f"partner that reports {m.id}"
                )
    if info is not None:
        info = _check_equity_gaps(info, geos, measures, [f.stem for f in files], problems)
    if problems or info is None:
        raise DefinitionError(problems)

    digest = hashlib.sha256()
    for file in sorted(path.rglob("*.yaml")):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0" + file.read_bytes())
    return Initiative(
        path=path,
        info=info,
        geographies=geos,
        partners=partners,
        measures=measures,
        digest=digest.hexdigest()[:16],
    )


def _check_equity_gaps(
    info: InitiativeInfo,
    geos: dict[str, Geography],
    measures: dict[str, Measure],
    files: list[str],
    problems: list[str],
) -> InitiativeInfo:
    """Cross-check ``equity_gaps`` against the geographies' groups and the measures; returns
    the info with each gap's measure patterns expanded to ids. Against the measures only when
    every measure file loaded: a broken or missing one is reported once, under its own name."""
    judge_measures = bool(files) and len(measures) == len(files)
    for g in geos.values():
        if g.groups and g.level is not GeoLevel.locality:
            problems.append(f"geographies.yaml[{g.code}]: groups: only a locality is in a group")
    groups = {name for g in geos.values() for name in g.groups}
    seen: set[str] = set()
    expanded_gaps = []
    for gap in info.equity_gaps:
        where = f"initiative.yaml: equity_gaps[{gap.id}]"
        if gap.id in seen:
            problems.append(f"{where}: id: defined twice")
        seen.add(gap.id)
        for side in ("ahead", "behind"):
            code = getattr(gap, side).group
            if gap.dimension is None and geos and code not in groups:
                problems.append(
                    f"{where}: {side}: no locality is in the group {code!r} "
                    "(geographies.yaml: groups)"
                )
        if (
            judge_measures
            and gap.dimension is not None
            and not any(
                {gap.ahead.group, gap.behind.group} <= set(m.dimensions.get(gap.dimension, []))
                for m in measures.values()
            )
        ):
            problems.append(
                f"{where}: dimension: no measure breaks down by {gap.dimension!r} into "
                f"{gap.ahead.group!r} and {gap.behind.group!r}"
            )
        ids: list[str] = []
        for pattern in gap.measures:
            matched = sorted(fnmatch.filter(files, pattern))
            if not matched and files:
                problems.append(f"{where}: measures: unknown measure {pattern!r}")
            ids += [m for m in matched if m not in ids]
        expanded_gaps.append(gap.model_copy(update={"measures": ids}))
    return info.model_copy(update={"equity_gaps": expanded_gaps})


def measure_json_schema() -> str:
    """The JSON Schema of a measure file, generated from :class:`Measure` (editors validate with it)."""
    schema = Measure.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Shared measure"
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
