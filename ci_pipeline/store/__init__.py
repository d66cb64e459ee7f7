"""Storage: all the SQL of the pipeline, behind small functions that take the engine.

SQLite by default, PostgreSQL supported. Every function takes the engine (or session) as a
keyword-only argument; nothing here opens a connection on its own, and no other package runs
SQL. The modules, one reason to change each:

- ``db``: one engine per process, the schema, reading a query into a frame;
- ``migrate`` and ``migrations/``: the schema's revisions (Alembic), applied by every entry point;
- ``tables``: every table;
- ``definitions``: the initiative's definitions;
- ``submissions``: the submission lifecycle and its listings;
- ``observations``: the figures, written in bulk, compared and checked for overlap;
- ``indicators``: indicator slices, their lineage and cells;
- ``alerts``: alert records and the delivery outbox;
- ``tokens``: the intake API's tokens;
- ``marks``: the demo's mark in a database it made (``demo --reset`` drops only those).

This package's namespace re-exports their public names: callers write ``store.X``.
"""

from __future__ import annotations

from ci_pipeline.store.alerts import (
    ALERTS_SINCE_SCHEMA,
    OUTBOX_LOCK,
    acknowledge_alert,
    add_alert,
    add_messages,
    alerts_by_id,
    alerts_since,
    claim_due_messages,
    due_messages,
    find_alert,
    get_alerts,
    list_alerts,
    open_alerts,
    pending_alert_ids,
    record_failed,
    record_sent,
    unresolved_alerts,
)
from ci_pipeline.store.db import (
    create_schema,
    dispose_engines,
    drop_schema,
    engine_for,
    locked_transaction,
    make_engine,
    read_frame,
    session_scope,
    transaction,
)
from ci_pipeline.store.definitions import sync_initiative
from ci_pipeline.store.indicators import (
    UPDATED_SCHEMA,
    all_slices,
    indicators_digest,
    read_indicators,
    replace_indicators,
    reported_cells,
    set_indicators_digest,
    slice_observations,
    stale_slices,
    updated_slices,
)
from ci_pipeline.store.marks import (
    DEMO_MARK_TABLE,
    database_is_empty,
    demo_mark,
    drop_demo_database,
    mark_demo_database,
    sqlite_file,
)
from ci_pipeline.store.observations import (
    Diff,
    bulk_insert_observations,
    current_observations,
    diff_observations,
    find_conflicts,
    read_observations,
)
from ci_pipeline.store.submissions import (
    RECEIVED_SCHEMA,
    Accepted,
    NewSubmission,
    current_submission,
    find_duplicate,
    get_submission,
    last_submission,
    list_submissions,
    record_duplicate,
    record_rejected,
    set_report,
    store_accepted,
    submission_dict,
    submissions_between,
)
from ci_pipeline.store.tables import (
    NATURAL_KEY,
    OBSERVATION_COLUMNS,
    SUBMISSION_INTERNAL,
    VALUE_COLUMNS,
    Alert,
    AlertStatus,
    ApiToken,
    GeographyRow,
    IndicatorValue,
    InitiativeRow,
    MeasureRow,
    Observation,
    OutboxMessage,
    PartnerRow,
    Status,
    Submission,
    SubmissionFields,
    SubmissionOutcome,
)
from ci_pipeline.store.tokens import (
    add_token,
    list_tokens,
    revoke_tokens,
    token_by_hash,
    touch_token,
)

__all__ = [
    "ALERTS_SINCE_SCHEMA",
    "DEMO_MARK_TABLE",
    "NATURAL_KEY",
    "OBSERVATION_COLUMNS",
    "OUTBOX_LOCK",
    "RECEIVED_SCHEMA",
    "SUBMISSION_INTERNAL",
    "UPDATED_SCHEMA",
    "VALUE_COLUMNS",
    "Accepted",
    "Alert",
    "AlertStatus",
    "ApiToken",
    "Diff",
    "GeographyRow",
    "IndicatorValue",
    "InitiativeRow",
    "MeasureRow",
    "NewSubmission",
    "Observation",
    "OutboxMessage",
    "PartnerRow",
    "Status",
    "Submission",
    "SubmissionFields",
    "SubmissionOutcome",
    "acknowledge_alert",
    "add_alert",
    "add_messages",
    "add_token",
    "alerts_by_id",
    "alerts_since",
    "all_slices",
    "bulk_insert_observations",
    "claim_due_messages",
    "create_schema",
    "current_observations",
    "current_submission",
    "database_is_empty",
    "demo_mark",
    "diff_observations",
    "dispose_engines",
    "drop_demo_database",
    "drop_schema",
    "due_messages",
    "engine_for",
    "find_alert",
    "find_conflicts",
    "find_duplicate",
    "get_alerts",
    "get_submission",
    "indicators_digest",
    "last_submission",
    "list_alerts",
    "list_submissions",
    "list_tokens",
    "locked_transaction",
    "make_engine",
    "mark_demo_database",
    "open_alerts",
    "pending_alert_ids",
    "read_frame",
    "read_indicators",
    "read_observations",
    "record_duplicate",
    "record_failed",
    "record_rejected",
    "record_sent",
    "replace_indicators",
    "reported_cells",
    "revoke_tokens",
    "session_scope",
    "set_indicators_digest",
    "set_report",
    "slice_observations",
    "sqlite_file",
    "stale_slices",
    "store_accepted",
    "submission_dict",
    "submissions_between",
    "sync_initiative",
    "token_by_hash",
    "touch_token",
    "transaction",
    "unresolved_alerts",
    "updated_slices",
]
