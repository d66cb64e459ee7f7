"""The initiative's definitions as stored: initiative, geographies, partners, versioned measures."""

from __future__ import annotations

import json

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from ci_pipeline.errors import DefinitionError
from ci_pipeline.model.initiative import Initiative, Measure
from ci_pipeline.store.tables import GeographyRow, InitiativeRow, MeasureRow, PartnerRow


def _same_definition(stored: str, measure: Measure) -> bool:
    """Whether a stored definition means ``measure``: read back, it equals it. A field added
    to the model since (stored without it) takes its default, which keeps the meaning the
    stored definition had, so it is not a change."""
    try:
        return Measure.model_validate_json(stored) == measure
    except ValidationError:
        return False


def sync_initiative(initiative: Initiative, *, engine: Engine) -> list[str]:
    """Store the initiative's definitions; return what changed.

    Measures are versioned: a new version is added beside the old ones; a changed definition
    under an existing version is refused, since observations already stored refer to it.
    """
    changes: list[str] = []
    info = initiative.info
    with Session(engine) as session:
        row = session.get(InitiativeRow, info.id)
        if row is not None and row.digest == initiative.digest:
            return changes  # the same definitions are stored already
        changes.append(f"initiative {info.id} {'loaded' if row is None else 'updated'}")
        session.merge(
            InitiativeRow(
                id=info.id, name=info.name.en, version=info.version, digest=initiative.digest
            )
        )
        for g in initiative.geographies.values():
            session.merge(
                GeographyRow(
                    initiative_id=info.id,
                    code=g.code,
                    level=g.level,
                    parent=g.parent,
                    name_en=g.name.en,
                    name_he=g.name.he,
                    name_ar=g.name.ar,
                )
            )
        for p in initiative.partners.values():
            session.merge(
                PartnerRow(
                    initiative_id=info.id,
                    id=p.id,
                    name=p.name,
                    sector=p.sector,
                    localities=json.dumps(p.localities),
                    measures=json.dumps(p.measures),
                    submits_every=p.submits_every,
                    contact_email=p.contact.email,
                )
            )
        problems = []
        for m in initiative.measures.values():
            definition = m.model_dump_json()
            stored = session.get(MeasureRow, (info.id, m.id, m.version))
            if stored is None:
                session.add(
                    MeasureRow(
                        initiative_id=info.id,
                        id=m.id,
                        version=m.version,
                        title=m.title,
                        unit=m.unit,
                        periodicity=m.periodicity,
                        definition=definition,
                    )
                )
                changes.append(f"measure {m.id} v{m.version} added")
            elif not _same_definition(stored.definition, m):
                problems.append(
                    f"measures/{m.id}.yaml: version: the definition of {m.id} v{m.version} "
                    f"changed, but observations may refer to it; raise 'version' to {m.version + 1}"
                )
        if problems:
            raise DefinitionError(problems)
        session.commit()
    return changes
