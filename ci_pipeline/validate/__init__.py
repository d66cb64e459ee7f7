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

from ci_pipeline.validate.contract import (
    RATIO_TOLERANCE,
    Rule,
    build_contract,
    message_text,
    rules_frame,
)
from ci_pipeline.validate.echo import ECHO_LIMIT, MESSAGE_LIMIT, echo_text, echoed
from ci_pipeline.validate.issues import ISSUE_SCHEMA, ValidationResult, validate
from ci_pipeline.validate.observations import to_observations

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
