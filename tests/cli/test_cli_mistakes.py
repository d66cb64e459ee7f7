"""A user's mistake is one red sentence and an exit code, never a traceback: unknown filter
values (with the nearest ids), a malformed period, a busy port, a second `serve`, a data
folder that cannot be used; `--verbose` keeps the traceback for engineers."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from ci_pipeline.cli.common import EXIT_ERROR, EXIT_REJECTED, EXIT_USAGE
from ci_pipeline.config import Settings
from ci_pipeline.serve import preflight
from tests.helpers import flat, invoke

FUND = "galilee-foundation"


def refused(result: Result, code: int) -> str:
    """The one error sentence of a command that must have failed with ``code``, flattened."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    text = flat(result.stderr)
    assert text.startswith("error: "), text
    return text


def test_the_exit_codes_are_distinct_and_in_the_help() -> None:
    assert (EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED) == (1, 2, 3)

    text = flat(invoke("--help").stdout)

    assert "Exit codes: 0 success; 1 an error of the pipeline or of this machine" in text
    assert "2 a usage error" in text and "3 a submitted file rejected or refused" in text


# --- filters checked against the initiative's definitions ---------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["indicators", "--measure", "arab-women-lf"],
            'error: no measure "arab-women-lf" in beit-hakerem; did you mean "arab-women-lfp"?',
        ),
        (
            ["observations", "-m", "new-resources"],
            'no measure "new-resources" in beit-hakerem; did you mean "new-resources-nis" or '
            '"fsg-funding-new-resources"?',
        ),
        (
            ["submissions", "--partner", "kurkm"],
            'error: no partner "kurkm" in beit-hakerem; did you mean "kurkum"? '
            "(`ci-pipeline partners` lists them)",
        ),
        (
            ["observations", "--partner", "galilee-fund"],
            'did you mean "galilee-foundation"?',
        ),
        (
            ["indicators", "--geo", "karmeil"],
            'error: no geography "karmeil" in beit-hakerem; did you mean "karmiel"?',
        ),
        (
            ["observations", "-g", "karmeil"],
            'no geography "karmeil" in beit-hakerem; did you mean "karmiel"?',
        ),
        (
            ["alerts", "--status", "opne"],
            'error: --status takes open, acknowledged, resolved, not "opne"; did you mean "open"?',
        ),
        (["alerts", "ack", "999"], "error: no alert #999 (`ci-pipeline alerts` lists them)"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_an_unknown_value_suggests_the_nearest(home: Path, args: list[str], expected: str) -> None:
    assert expected in refused(invoke(*args), EXIT_USAGE)


def test_with_nothing_close_a_few_valid_values_are_listed(home: Path) -> None:
    text = refused(invoke("indicators", "--measure", "nosuch"), EXIT_USAGE)

    # The first eight ids in order, how many there are, and where to see them all.
    assert text.startswith(
        'error: no measure "nosuch" in beit-hakerem; known: arab-women-lfp, '
        "below-min-wage-share, ecommerce-centre-employees, "
    )
    assert "did you mean" not in text
    assert text.count(", ") == 8  # eight listed, the "… (38 in all)" after them
    assert text.endswith("… (38 in all) (`ci-pipeline measures` lists them)")

    partners = refused(invoke("submissions", "--partner", "nosuch"), EXIT_USAGE)
    assert "known: biina-council, braude-college, deir-al-asad-council," in partners
    assert "(13 in all)" in partners


@pytest.mark.parametrize(
    "args",
    [
        ["indicators", "--period", "2025-Q9"],
        ["submissions", "--period", "2025-Q9"],
        ["observations", "--period", "2025-Q9"],
        ["process", "--period", "2025-Q9"],
    ],
    ids=lambda a: a[0],
)
def test_a_malformed_period_names_the_canonical_forms(home: Path, args: list[str]) -> None:
    text = refused(invoke(*args), EXIT_USAGE)

    assert text == (
        "error: '2025-Q9' is not a period: write a month (2025-09), quarter (2025-Q3) or "
        "year (2025)"
    )
    assert not (home / "ci_pipeline.db").exists()  # told before anything was opened


def test_known_values_in_other_spellings_still_filter(home: Path) -> None:
    """A geography by its name and a period as people write it are the ids the store holds:
    they are accepted (and are not an error); the empty database lists nothing."""
    for args in (
        ["observations", "--geo", "Karmiel", "--json"],
        ["indicators", "--period", "2025q1", "--measure", "arab-women-lfp", "--json"],
        ["submissions", "--partner", "kurkum", "--period", "2025-Q1", "--json"],
        ["alerts", "--status", "open", "--json"],
    ):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        assert result.stdout.strip() == "[]"


def test_a_hold_of_the_demo_is_checked_before_anything_is_made(home: Path) -> None:
    text = refused(invoke("demo", "--hold", "kurkm:2025-Q4"), EXIT_USAGE)

    assert 'no partner "kurkm" in beit-hakerem; did you mean "kurkum"?' in text
    assert refused(invoke("demo", "--hold", "kurkum"), EXIT_USAGE) == (
        "error: --hold takes PARTNER:PERIOD, e.g. employment-service:2025-Q4"
    )
    assert not home.exists()


# --- the data folder -----------------------------------------------------------------------------


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "not-a-folder"
    path.write_text("", encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["init", "submissions", "indicators", "serve"])
def test_a_data_folder_that_is_a_file(
    command: str, a_file: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_PIPELINE_HOME", str(a_file))

    text = refused(invoke(command), EXIT_ERROR)

    assert text == (
        f"error: the data folder CI_PIPELINE_HOME={a_file} is a file, not a folder: point "
        "CI_PIPELINE_HOME at a folder"
    )


def test_a_data_folder_under_a_file(
    a_file: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_PIPELINE_HOME", str(a_file / "home"))

    text = refused(invoke("submissions"), EXIT_ERROR)

    assert text == (
        f"error: the data folder CI_PIPELINE_HOME={a_file / 'home'} cannot be created (Not a "
        "directory): point CI_PIPELINE_HOME at a folder this user may write"
    )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_data_folder_that_cannot_be_created(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not even root may make a folder in /proc."""
    monkeypatch.setenv("CI_PIPELINE_HOME", "/proc/ci-pipeline/home")

    text = refused(invoke("init"), EXIT_ERROR)

    assert text.startswith(
        "error: the data folder CI_PIPELINE_HOME=/proc/ci-pipeline/home cannot be created ("
    )
    assert text.endswith("): point CI_PIPELINE_HOME at a folder this user may write")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only folder")
def test_a_data_folder_that_is_not_writable(tmp_path: Path, home: Path) -> None:
    home.mkdir()
    home.chmod(0o555)
    try:
        text = refused(invoke("init"), EXIT_ERROR)
    finally:
        home.chmod(0o755)

    assert text == (
        f"error: the data folder CI_PIPELINE_HOME={home} is not writable by this user: point "
        "CI_PIPELINE_HOME at a folder this user may write, or change its permissions"
    )


def test_a_file_that_cannot_be_written(a_file: Path, home: Path, tmp_path: Path) -> None:
    """A folder on the way that is a file, a folder where the file goes: the path, and what is
    wrong with it."""
    under_a_file = a_file / "form.csv"
    a_folder = tmp_path / "form.csv"
    a_folder.mkdir()

    text = refused(invoke("template", "-p", FUND, "--period", "2025", "-o", str(under_a_file)), 1)
    assert text == (
        f"error: {a_file} is a file, where a folder is needed (--verbose shows where it happened)"
    )
    text = refused(invoke("template", "-p", FUND, "--period", "2025", "-o", str(a_folder)), 1)
    assert text == f"error: Is a directory: {a_folder} (--verbose shows where it happened)"


def test_a_full_disk(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ci_pipeline.validate import template

    target = tmp_path / "form.csv"

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(template, "write_table", full)

    text = refused(invoke("template", "-p", FUND, "--period", "2025", "-o", str(target)), 1)

    assert text == f"error: No space left on device: {target} (--verbose shows where it happened)"


def test_verbose_keeps_the_traceback(
    a_file: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_PIPELINE_HOME", str(a_file))

    result = invoke("--verbose", "submissions")

    assert result.exit_code == 1
    assert type(result.exception).__name__ == "OperationalProblem"
    assert "is a file, not a folder" in str(result.exception)
    # ... and the next command, in the same process, is quiet again.
    assert "Traceback" not in invoke("submissions").output


def test_verbose_does_not_change_a_usage_error(home: Path) -> None:
    """A usage error is about the command line, not the code: no traceback to show."""
    text = refused(invoke("-v", "indicators", "--measure", "kurkum"), EXIT_USAGE)

    assert text.startswith('error: no measure "kurkum" in beit-hakerem;')


# --- serve: a second one, a busy port ------------------------------------------------------------


@pytest.fixture
def listening() -> Iterator[int]:
    """A port another program listens on, as a server holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def serve_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`serve` with its own Prefect server (no PREFECT_API_URL, whatever server an earlier
    test left this process pointed at) on ports nothing uses."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", "")
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv("CI_PIPELINE_PREFECT_PORT", str(free_port()))
    monkeypatch.setenv("CI_PIPELINE_API_PORT", str(free_port()))
    with temporary_settings(updates={PREFECT_API_URL: None}):
        yield


@pytest.mark.usefixtures("serve_env")
def test_serve_on_a_busy_api_port(
    listening: int, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_PIPELINE_API_PORT", str(listening))

    text = refused(invoke("serve"), EXIT_ERROR)

    assert text == (
        f"error: port {listening} of the intake API (127.0.0.1) is in use by another program: "
        "set CI_PIPELINE_API_PORT to a free port (or run serve --no-api)"
    )
    assert not (home / "ci_pipeline.db").exists()  # nothing was started


@pytest.mark.usefixtures("serve_env")
def test_serve_on_a_busy_prefect_port(
    listening: int, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_PIPELINE_PREFECT_PORT", str(listening))

    text = refused(invoke("serve", "--no-api"), EXIT_ERROR)

    assert text == (
        f"error: port {listening} of the local Prefect server is in use by another program: "
        "set CI_PIPELINE_PREFECT_PORT to a free port (or PREFECT_API_URL, to use a Prefect "
        "server that is already running)"
    )
    assert not (home / "prefect.db").exists() and not (home / "prefect-server.log").exists()


@pytest.mark.usefixtures("serve_env")
def test_a_second_serve_on_the_same_data_folder(home: Path) -> None:
    home.mkdir()
    with (home / preflight.LOCK_NAME).open("a+", encoding="utf-8") as held:
        # As a running serve holds it: locked, its pid inside.
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()

        text = refused(invoke("serve"), EXIT_ERROR)

    assert text == (
        f"error: `ci-pipeline serve` is already running with the data folder {home} (pid "
        "4242): stop it first (Ctrl-C in its terminal), or give this one another "
        "CI_PIPELINE_HOME"
    )
    assert not (home / "ci_pipeline.db").exists()


def test_the_serve_lock_is_let_go_on_exit(settings: Settings) -> None:
    """Held while serve runs (its pid inside), free again when it stops."""
    with preflight.only_serve(settings):
        path = settings.home / preflight.LOCK_NAME
        assert path.read_text(encoding="utf-8") == f"{os.getpid()}\n"
        with path.open("a+", encoding="utf-8") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with path.open("a+", encoding="utf-8") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: no error
    assert path.read_text(encoding="utf-8") == ""
