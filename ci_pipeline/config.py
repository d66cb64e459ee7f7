"""Settings: one object, read from the environment (prefix ``CI_PIPELINE_``) when asked for."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ci_pipeline.errors import OperationalProblem

#: The initiative that ships with the project; ``CI_PIPELINE_INITIATIVE`` points at another.
DEFAULT_INITIATIVE = Path(__file__).resolve().parents[1] / "schemas" / "beit-hakerem"

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything that varies between installations.

    Built by :func:`get_settings`, never at import time, so tests and commands can point the
    pipeline at another data folder or database through the environment.
    """

    model_config = SettingsConfigDict(env_prefix="CI_PIPELINE_", extra="ignore")

    home: Path = Field(
        default=Path.home() / ".ci-pipeline",
        description="Data folder: the default SQLite database, error reports and the archive.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the app database; default: SQLite at HOME/ci_pipeline.db.",
    )
    initiative: Path = Field(
        default=DEFAULT_INITIATIVE,
        description="Folder holding the initiative's geographies, partners and shared measures.",
    )
    alert_urls: list[str] = Field(
        default_factory=list,
        description="apprise URLs alerts are delivered to; default: a local file under HOME.",
    )
    alert_routes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Extra apprise URLs per working group or measure id (JSON object).",
    )
    engineer_urls: list[str] = Field(
        default_factory=list,
        description="apprise URLs for the data engineers: alerts the quality gate held; default: "
        "a local file under HOME.",
    )
    alert_languages: dict[str, str] = Field(
        default_factory=dict,
        description="The language (he, ar or en) each alert channel's readers read, by its "
        "apprise URL (JSON object): their messages lead with a plain-words headline in it. "
        "Channels not named read English.",
    )
    alert_repeat_hours: float = Field(
        24.0, gt=0, description="A still-open alert is repeated no more often than this."
    )
    max_file_bytes: int = Field(
        default=256 * MIB, description="Submissions larger than this are refused unread."
    )
    max_xlsx_expanded_bytes: int = Field(
        default=512 * MIB,
        description="XLSX archives whose contents expand past this are refused unparsed.",
    )
    reminder_url: str | None = Field(
        default=None,
        description="apprise URL template for reminders to a late partner's contact; "
        "{email} and {partner} are filled in (e.g. mailtos://user:pass@smtp.example.org?to={email}). "
        "Default: a local file under HOME.",
    )
    quiet_days: int = Field(
        14, gt=0, description="No submission at all for this many days notifies the data engineers."
    )
    received_url: str | None = Field(
        None,
        description="An fsspec URL (s3://bucket/prefix, file:///shared/received) where received "
        "files' bytes are kept, content-addressed, instead of in the app database. Every "
        "process that receives or ingests must reach it.",
    )
    warm_lane: bool = Field(
        True,
        description="`serve` ingests each file it receives (inbox, intake API), processes its "
        "period and delivers its alerts in its own warm process, within seconds. Off: the "
        "deployments' event triggers start each step as a new flow-run process here, the "
        "queued way (`serve --no-flows` runs none here: a work pool's workers run them).",
    )
    reconcile_every_seconds: float = Field(
        60.0,
        gt=0,
        description="How often `serve` looks for received submissions nobody is ingesting.",
    )
    reconcile_after_seconds: float = Field(
        120.0,
        ge=0,
        description="A received submission no ingest has taken for this long (its event was "
        "lost, or its run never started) gets an ingest run from the reconciler.",
    )
    ingest_lease_seconds: float = Field(
        900.0,
        gt=0,
        description="An ingest that took a submission this long ago without deciding it is "
        "presumed dead, and the reconciler starts another.",
    )
    settle_seconds: float = Field(
        1.0,
        ge=0,
        description="A file in the inbox is read only once its size and mtime have not changed "
        "for this long (a file still being written is never read half-way); 0.2 s where the "
        "file system said its writer finished it (closed after writing or renamed into place, "
        "not opened again since).",
    )
    api_host: str = Field("127.0.0.1", description="Address the intake API listens on.")
    api_port: int = Field(8420, description="Port the intake API listens on.")
    ack_link_days: float = Field(
        14.0,
        gt=0,
        description="Days an alert's acknowledgement link stays valid after it is sent.",
    )
    api_url: str | None = Field(
        None,
        description="The intake API's address as operators reach it (behind a proxy, another "
        "host name); the links in Prefect artifacts start with it. Default: "
        "http://<api_host>:<api_port>.",
    )
    prefect_port: int = Field(
        4200,
        description="Port of the local Prefect server `serve` starts (without PREFECT_API_URL), "
        "and of the command line's Prefect daemon.",
    )
    prefect_daemon_idle_seconds: float = Field(
        1800.0,
        ge=0,
        description="Commands that run flows (submit, process, reconcile, demo) share one local "
        "Prefect server, started by the first and stopped after this long unused. 0: each "
        "command starts a temporary server of its own (20-36 s).",
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'ci_pipeline.db'}"

    @property
    def api_base_url(self) -> str:
        """Where the intake API is reached: ``api_url``, else its own address (a wildcard
        host read as this machine, which a browser can open)."""
        if self.api_url:
            return self.api_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.api_port}"

    @property
    def local_prefect_api_url(self) -> str:
        """The API of the local Prefect server ``ci-pipeline serve`` starts."""
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def ack_key_file(self) -> Path:
        """The key that signs alerts' acknowledgement links (readable by its owner only)."""
        return self.home / "ack-link-key"

    @property
    def prefect_auth_file(self) -> Path:
        """The secret guarding the local Prefect server ``serve`` starts (``admin:<secret>``,
        readable by its owner only)."""
        return self.home / "prefect-api-auth"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def report_card_dir(self) -> Path:
        """The backbone team's report card (a static site, :mod:`ci_pipeline.report`)."""
        return self.home / "report-card"

    @property
    def expectations_dir(self) -> Path:
        """The expectations of the last judgement of each measure, kept so the next works out
        only the series that changed (:mod:`ci_pipeline.detect.memo`)."""
        return self.home / "expectations"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def alerts_file(self) -> Path:
        """The default alert channel: a local file, so alerts work offline."""
        return self.home / "alerts.log"

    @property
    def engineers_file(self) -> Path:
        return self.home / "data-engineers.log"

    @property
    def partner_reminders_file(self) -> Path:
        """The default channel for reminders to late partners: a local file."""
        return self.home / "partner-reminders.log"

    @property
    def inbox_dir(self) -> Path:
        """Partners (or a sync job) drop files here: ``inbox/<partner>/<period>/<file>``."""
        return self.home / "inbox"

    @property
    def received_dir(self) -> Path:
        """Files taken from the inbox or uploaded, where the ingest run reads them from."""
        return self.home / "received"

    @property
    def gx_dir(self) -> Path:
        """Great Expectations project folder; Data Docs are built inside it."""
        return self.home / "gx"


def get_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)  # type: ignore[arg-type]


def ensure_home(settings: Settings) -> Path:
    """The data folder, made if missing; :class:`OperationalProblem` if it cannot be used.

    Checked before a command writes there, so the operator reads which setting to fix
    instead of the error of whichever write happened to come first.
    """
    home = settings.home
    where = f"the data folder CI_PIPELINE_HOME={home}"
    try:
        home.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir(exist_ok=True) says this only of a non-folder
        raise OperationalProblem(
            f"{where} is a file, not a folder: point CI_PIPELINE_HOME at a folder"
        ) from None
    except OSError as exc:  # not a folder on the way, no permission, a read-only disk ...
        raise OperationalProblem(
            f"{where} cannot be created ({exc.strerror}): point CI_PIPELINE_HOME at a folder "
            "this user may write"
        ) from None
    if not os.access(home, os.W_OK | os.X_OK):
        raise OperationalProblem(
            f"{where} is not writable by this user: point CI_PIPELINE_HOME at a folder this "
            "user may write, or change its permissions"
        )
    return home
