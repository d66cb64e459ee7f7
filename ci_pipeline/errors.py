"""The pipeline's narrow exceptions.

Core modules raise these; only the CLI (and later the API) turns them into messages and exit
codes, so the core never prints and never exits.
"""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """Base class: something the user can act on, with a message that says what."""


class DefinitionError(PipelineError):
    """The initiative folder (geographies, partners, measures) is invalid.

    ``problems`` lists every problem found, each naming the file and the field.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class SubmissionRefused(PipelineError):
    """A file refused before its rows were parsed (too large, undecodable, unreadable)."""


class UnknownPartner(PipelineError):
    """The caller named a partner the initiative does not have."""


class InvalidPeriod(PipelineError):
    """A period string that is not a month (2025-09), quarter (2025-Q3) or year (2025)."""


class ConcurrentSubmission(PipelineError):
    """Another submission for the same partner and period was accepted at the same moment."""


class AlreadyReported(PipelineError):
    """A file's rows overlap figures already counted (found as the file was being stored).

    ``conflicts`` is the frame ``store.find_overlaps`` returned: the rows and who holds them.
    """

    def __init__(self, conflicts: Any) -> None:
        self.conflicts = conflicts
        super().__init__(f"{len(conflicts)} row(s) overlap figures already counted")


class OperationalProblem(PipelineError):
    """This machine cannot do what was asked, and the operator can fix it: a port another
    program holds, a data folder that cannot be written, a ``serve`` already running."""
