"""Settings: one object, read from the environment (prefix ``CI_PIPELINE_``) when asked for."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'ci_pipeline.db'}"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

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
    def gx_dir(self) -> Path:
        """Great Expectations project folder; Data Docs are built inside it."""
        return self.home / "gx"


def get_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)  # type: ignore[arg-type]
