"""While ``serve`` runs on a data folder, the command line uses its warm Prefect server: the
lock it holds names the Prefect API it announced; a lock nobody holds names nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ci_pipeline.config import Settings
from ci_pipeline.serve import preflight
from tests.helpers import invoke

URL = "http://127.0.0.1:4299/api"


def test_a_running_serve_names_its_prefect_api(settings: Settings) -> None:
    assert preflight.serving_prefect(settings) is None  # no serve has run here
    with preflight.only_serve(settings) as announce:
        assert preflight.serving_prefect(settings) is None  # not announced yet
        announce(URL)
        assert preflight.serving_prefect(settings) == URL
    # Stopped: the file is still there, but nobody holds it.
    assert (settings.home / preflight.LOCK_NAME).exists()
    assert preflight.serving_prefect(settings) is None


def test_a_command_uses_the_running_serve_s_prefect(
    settings: Settings, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "")
    monkeypatch.delenv("PREFECT_API_URL")
    with preflight.only_serve(settings) as announce:
        announce(URL)
        result = invoke("submissions", "--json")
        assert result.exit_code == 0, result.output
        assert os.environ.get("PREFECT_API_URL") == URL
    monkeypatch.delenv("PREFECT_API_URL")
    invoke("submissions", "--json")
    assert "PREFECT_API_URL" not in os.environ  # no serve: a command starts its own, as before
