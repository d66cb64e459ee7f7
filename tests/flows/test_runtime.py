"""ci_pipeline/flows/runtime.py: warm_up (a long-lived process pays Prefect's first-run costs at
its start, the API version check, and never starts a temporary server to do so), and the
initiative a flow works with, loaded again only when its files change."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import Any

import pytest

from ci_pipeline.config import DEFAULT_INITIATIVE
from ci_pipeline.errors import DefinitionError
from ci_pipeline.flows import runtime


class FakeClient:
    """Prefect's sync client, as far as warm_up uses it."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def raise_for_api_version_mismatch_once(self) -> None:
        self.calls.append("version checked")


def test_warm_up_checks_the_api_version_once_where_an_api_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def get_client(**kwargs: Any) -> FakeClient:
        assert kwargs == {"sync_client": True}
        return FakeClient(calls)

    monkeypatch.setattr(runtime, "get_client", get_client)
    monkeypatch.setattr("prefect.settings.get_current_settings", _api("http://127.0.0.1:9/api"))
    runtime.warm_up()
    assert calls == ["version checked"]

    # No API: a client would start a temporary server (20-36 s); nothing is asked.
    monkeypatch.setattr("prefect.settings.get_current_settings", _api(None))
    runtime.warm_up()
    assert calls == ["version checked"]


def _api(url: str | None) -> Any:
    """Prefect's current settings, as far as warm_up reads them: the API's URL."""
    return lambda: SimpleNamespace(api=SimpleNamespace(url=url))


def test_the_initiative_is_loaded_again_only_when_its_files_change(tmp_path: Path) -> None:
    folder = tmp_path / "initiative"
    shutil.copytree(DEFAULT_INITIATIVE, folder)
    first = runtime.current_initiative(folder)
    assert runtime.current_initiative(folder) is first  # unchanged: the same object

    # An edit (a new modification time and size) is read at the next run.
    info = folder / "initiative.yaml"
    info.write_text(info.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    second = runtime.current_initiative(folder)
    assert second.digest != first.digest  # loaded again: the files' digest is the new one
    assert second.measures == first.measures  # (the comment changes nothing else)

    # A broken edit is reported, and nothing stale is served after it is mended.
    geographies = folder / "geographies.yaml"
    good = geographies.read_text(encoding="utf-8")
    geographies.write_text(good + "\n- code: [\n", encoding="utf-8")
    with pytest.raises(DefinitionError):
        runtime.current_initiative(folder)
    geographies.write_text(good, encoding="utf-8")
    assert runtime.current_initiative(folder) == second

    # A file removed is a change too: here a measure a partner still reports, which the
    # definitions' check then names (a stale load would have kept serving it).
    measure = folder / "measures" / "starter-students-trained.yaml"
    measure.unlink()
    with pytest.raises(DefinitionError, match="unknown measure 'starter-students-trained'"):
        runtime.current_initiative(folder)


def test_warm_registers_panderas_polars_backends_before_the_first_file() -> None:
    """In a fresh interpreter (this one may have validated already): pandera's polars
    backend is not registered after importing the contract, and is after ``warm``."""
    probe = (
        "import pandera.polars as pa, polars as pl\n"
        "from ci_pipeline.validate.contract import warm\n"
        "key = (pa.DataFrameSchema, pl.DataFrame)\n"
        "before = key in pa.DataFrameSchema.BACKEND_REGISTRY\n"
        "warm()\n"
        "print(before, key in pa.DataFrameSchema.BACKEND_REGISTRY)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
