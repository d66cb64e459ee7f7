"""A process that ingests one received submission and kills itself (SIGKILL, as ``kill -9``
does) at a chosen step boundary: what a crashed worker, an OOM kill or a pulled plug leaves.

    python -m tests.faults.child <database url> <submission id> <boundary>

``CI_PIPELINE_HOME`` (from the environment) is where its archive and reports go. It runs the
ingest flow's steps without Prefect (:func:`tests.helpers.ingest_received`), each wrapped so
that the process dies right after the named step; it exits 0 only if the boundary was never
reached (the test then fails: the fault did not happen where it was meant to).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ci_pipeline import store
from ci_pipeline.config import DEFAULT_INITIATIVE, get_settings
from ci_pipeline.model.load import load_initiative
from ci_pipeline.receive import intake
from ci_pipeline.validate import report
from tests.helpers import ingest_received


def die() -> None:
    """kill -9 of this very process: no exception handler, no ``finally``, no atexit runs."""
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def after(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, then death."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        function(*args, **kwargs)
        die()

    return wrapped


real_lock = store.locked_transaction


@contextmanager
def dying_before_commit(name: str, *, engine: Any) -> Iterator[Any]:
    """The accept transaction, its work done (rows written, report described), not committed."""
    with real_lock(name, engine=engine) as session:
        yield session
        die()


@contextmanager
def dying_after_commit(name: str, *, engine: Any) -> Iterator[Any]:
    """The accept transaction, committed; death before anything else runs."""
    with real_lock(name, engine=engine) as session:
        yield session
    die()


#: Where each boundary is: the attribute replaced, and what replaces it.
BOUNDARIES: dict[str, tuple[Any, str, Callable[[Any], Any]]] = {
    "after_load": (intake, "load", after),  # claimed, the archive copy written
    "after_duplicate_check": (intake, "duplicate_receipt", after),
    "after_parse": (intake, "parse", after),
    "after_check": (intake, "check", after),  # validated, the overlap check done
    "after_report_write": (report, "write_report", after),  # inside the accept transaction
    "before_commit": (store, "locked_transaction", lambda _: dying_before_commit),
    "after_commit": (store, "locked_transaction", lambda _: dying_after_commit),
    "after_reject_commit": (store, "record_rejected", after),  # a rejection, committed
}


def main(url: str, submission_id: int, boundary: str) -> None:
    owner, name, wrap = BOUNDARIES[boundary]
    setattr(owner, name, wrap(getattr(owner, name)))
    settings = get_settings(database_url=url)
    engine = store.make_engine(url)
    receipt = ingest_received(
        submission_id,
        initiative=load_initiative(DEFAULT_INITIATIVE),
        settings=settings,
        engine=engine,
    )
    print(f"not killed: {receipt.status}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
