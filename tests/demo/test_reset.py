"""``demo --reset`` deletes only what the demo made: a data folder it created (its marker) and a
database it found empty and marked; anything else is refused by name, with nothing deleted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from ci_pipeline import store
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.demo import run
from ci_pipeline.errors import PipelineError
from tests.helpers import invoke, postgres_url


def fill(settings: Settings) -> None:
    """What a demo run leaves: the database's tables, reports, an archive, an alert file."""
    store.create_schema(engine=store.engine_for(settings.resolved_database_url))
    store.dispose_engines()
    for folder in (settings.reports_dir, settings.archive_dir):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kept.txt").write_text("a partner's file", encoding="utf-8")
    settings.alerts_file.write_text("an alert", encoding="utf-8")


def tables(url: str) -> set[str]:
    engine = store.make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def untouched(settings: Settings) -> bool:
    return (
        "submission" in tables(settings.resolved_database_url)
        and (settings.reports_dir / "kept.txt").is_file()
        and (settings.archive_dir / "kept.txt").is_file()
        and settings.alerts_file.is_file()
    )


def test_the_demos_own_folder_and_database_are_reset_again_and_again(settings: Settings) -> None:
    run.reset(settings)  # a fresh clone's `make demo`: nothing there yet, nothing to delete
    token = run.claim(settings)
    assert token is not None and run.home_token(settings) == token
    assert store.demo_mark(settings.resolved_database_url) == token
    fill(settings)

    run.reset(settings)  # the second `make demo`

    assert not Path(settings.resolved_database_url.removeprefix("sqlite:///")).exists()
    assert not settings.reports_dir.exists() and not settings.archive_dir.exists()
    assert not settings.alerts_file.exists()
    assert run.claim(settings) == token  # the next run marks the new database the same
    assert store.demo_mark(settings.resolved_database_url) == token
    fill(settings)
    run.reset(settings)  # and the third
    assert not settings.reports_dir.exists()


def test_a_data_folder_the_demo_did_not_make_is_refused(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    fill(settings)  # someone's real data, in the default home

    with pytest.raises(PipelineError) as refused:
        run.reset(settings)

    assert str(settings.home) in str(refused.value)
    assert "not made by it" in str(refused.value) and "nothing was deleted" in str(refused.value)
    assert untouched(settings)
    assert run.claim(settings) is None  # nor does the demo call it its own later
    assert store.demo_mark(settings.resolved_database_url) is None


@pytest.fixture
def elsewhere(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """CI_PIPELINE_DATABASE_URL names a database outside the data folder."""
    url = f"sqlite:///{tmp_path / 'production.db'}"
    monkeypatch.setenv("CI_PIPELINE_DATABASE_URL", url)
    yield url
    store.dispose_engines()


def test_a_database_the_demo_did_not_make_is_refused_by_name(elsewhere: str) -> None:
    """The demo's folder, but the database URL now names real data (made by someone else)."""
    settings = get_settings()
    store.create_schema(engine=store.engine_for(elsewhere))  # real data, before the demo
    store.dispose_engines()
    assert run.claim(settings) is not None  # the folder is new: the demo's
    assert store.demo_mark(elsewhere) is None  # the database was not empty: not the demo's
    fill(settings)

    with pytest.raises(PipelineError) as refused:
        run.reset(settings)

    assert elsewhere in str(refused.value) and "nothing was deleted" in str(refused.value)
    assert "not archive/ or reports/" in str(refused.value)
    assert untouched(settings)


def test_the_command_refuses_without_a_traceback(elsewhere: str) -> None:
    store.create_schema(engine=store.engine_for(elsewhere))
    store.dispose_engines()

    result = invoke("demo", "--reset")

    assert result.exit_code == 1
    assert "drops only a database the demo made" in result.output
    assert "Traceback" not in result.output
    assert "submission" in tables(elsewhere)


def test_postgres_a_database_the_demo_did_not_make_is_refused_and_one_it_made_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    import uuid

    from sqlalchemy import text

    base = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = store.make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    monkeypatch.setenv("CI_PIPELINE_DATABASE_URL", url)
    try:
        settings = get_settings()
        assert store.database_is_empty(url)
        token = run.claim(settings)  # a new folder and an empty database: both the demo's
        assert token is not None and store.demo_mark(url) == token
        fill(settings)
        run.reset(settings)
        assert tables(url) == set()  # dropped, the mark too
        assert not settings.reports_dir.exists()

        # Someone else's tables in that database: refused, nothing dropped.
        store.create_schema(engine=store.engine_for(url))
        store.dispose_engines()
        fill(settings)
        with pytest.raises(PipelineError, match="drops only a database the demo made"):
            run.reset(settings)
        assert untouched(settings)
    finally:
        store.dispose_engines()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
