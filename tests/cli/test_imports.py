"""Commands that only read load only what they need (issue 11: "imports are lazy so that
`submissions` or `--help` load no Prefect, SciPy or GX"): each runs in a fresh interpreter,
which then lists the heavy packages it imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: Each costs 0.5-1.5 s to import here; none is needed to list or describe.
HEAVY = ("prefect", "scipy", "great_expectations", "pandera", "pandas")

PROBE = """
import sys
from ci_pipeline.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print("LOADED", *sorted(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["submit", "--help"],
        ["submissions"],
        ["partners"],
        ["measures"],
        ["observations"],
    ],
)
def test_a_listing_or_help_imports_no_heavy_package(home: Path, command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = next(line for line in done.stdout.splitlines() if line.startswith("LOADED"))
    assert loaded.split()[1:] == []
