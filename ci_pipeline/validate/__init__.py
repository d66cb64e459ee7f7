"""Validate a submission against contracts generated from the shared-measure definitions.

The contract is a pandera ``DataFrameSchema`` (polars backend) built by :func:`build_contract`
from the initiative, the partner and the submission's period: nothing is written per measure.
Every rule is named; :func:`validate` runs them all in one lazy pass over the collected frame
and turns pandera's failure cases into issues a partner can act on: the row as they see it in
their own file, the column as they named it, the value they wrote, the rule, and a sentence.

The modules: ``contract`` (the generated schema and its rule book), ``issues`` (running it, and
failures as issues), ``observations`` (the validated frame as stored rows), ``echo`` (values
echoed back, cut to a readable length), ``report`` (the partner's error files) and
``template`` (the data-entry form). This namespace re-exports the public names of the first
four.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ci_pipeline.validate.echo import ECHO_LIMIT, MESSAGE_LIMIT, echo_text, echoed

if TYPE_CHECKING:
    from ci_pipeline.validate.contract import (
        RATIO_TOLERANCE,
        Rule,
        build_contract,
        message_text,
        rules_frame,
    )
    from ci_pipeline.validate.issues import ISSUE_SCHEMA, ValidationResult, validate
    from ci_pipeline.validate.observations import to_observations

#: Where each lazily re-exported name lives. ``contract`` imports pandera (and with it pandas,
#: half a second here): a command that only receives a file, or reads a report, does not pay
#: for it; the first use of a name below does.
_LAZY = {
    **dict.fromkeys(
        ("RATIO_TOLERANCE", "Rule", "build_contract", "message_text", "rules_frame"), "contract"
    ),
    **dict.fromkeys(("ISSUE_SCHEMA", "ValidationResult", "validate"), "issues"),
    "to_observations": "observations",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value  # once: later lookups find it without coming here
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ECHO_LIMIT",
    "ISSUE_SCHEMA",
    "MESSAGE_LIMIT",
    "RATIO_TOLERANCE",
    "Rule",
    "ValidationResult",
    "build_contract",
    "echo_text",
    "echoed",
    "message_text",
    "rules_frame",
    "to_observations",
    "validate",
]
