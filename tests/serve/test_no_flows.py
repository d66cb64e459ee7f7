"""``serve --no-flows``: the event sources of a multi-machine setup, which leave every run to
the workers of the ``ci-pipeline`` work pool.

A runner in ``serve`` would register the deployments again, poll for their runs beside the
workers and reset the pull steps ``prefect deploy`` gave them (the workers' runs then fail to
load their flow): tests/serve/test_multi_machine.py saw exactly that before the option existed.
Here, with the Prefect server, the sweep, the runner and the run namer stubbed, ``serve`` is checked to start
neither a runner nor its warm lane, and to refuse the option without a Prefect server to leave
the runs to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from ci_pipeline.config import Settings
from ci_pipeline.errors import OperationalProblem
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.serve import runner, stuck, warm
from tests.helpers import flat, invoke


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What ``serve`` starts and stops, in order, with the Prefect server, the stuck-run
    sweep, the runner and the warm lane stubbed (nothing listens, nothing runs)."""
    calls: list[str] = []

    def step(name: str) -> Callable[..., AbstractContextManager[Any]]:
        @contextmanager
        def context(*_: Any, **__: Any) -> Iterator[str]:
            calls.append(f"{name} up")
            yield "http://127.0.0.1:1/api"
            calls.append(f"{name} down")

        return context

    class Lane:
        def __init__(self, *_: Any, **__: Any) -> None:
            calls.append("warm lane made")

        def __enter__(self) -> Lane:
            return self

        def __exit__(self, *_: object) -> None:
            return None

        def emit(self, spec: Any) -> None:
            return None

    monkeypatch.setattr(runner, "prefect_server", step("server"))
    monkeypatch.setattr(stuck, "sweeping", step("sweep"))
    monkeypatch.setattr(runner, "running", lambda *_, **__: step("runner")())
    # Its thread would not see the temporary PREFECT_API_URL and start a server of its own.
    monkeypatch.setattr(runner.names, "QueuedNamer", lambda *_, **__: step("namer")())
    monkeypatch.setattr(warm, "WarmLane", Lane)
    monkeypatch.setattr(runner, "_wait_for_interrupt", lambda: calls.append("serving"))
    monkeypatch.setattr(runner.preflight, "check_ports", lambda *_, **__: None)
    return calls


def _serve(settings: Settings, initiative: Initiative, api_url: str | None, flows: bool) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        runner.serve(
            settings,
            initiative,
            on_ready=print,
            with_api=False,
            with_inbox=False,
            with_flows=flows,
        )


def test_no_flows_starts_no_runner_and_no_warm_lane(
    settings: Settings, initiative: Initiative, steps: list[str]
) -> None:
    _serve(settings, initiative, "http://127.0.0.1:1/api", flows=False)

    assert steps == [
        "server up",
        "sweep up",
        "namer up",
        "serving",
        "namer down",
        "sweep down",
        "server down",
    ]


def test_with_flows_the_same_serve_runs_them_here(
    settings: Settings, initiative: Initiative, steps: list[str]
) -> None:
    """The control: the stubs see a runner and a warm lane when flows are served."""
    _serve(settings, initiative, "http://127.0.0.1:1/api", flows=True)

    assert steps == [
        "server up",
        "sweep up",
        "runner up",
        "namer up",
        "warm lane made",
        "serving",
        "namer down",
        "runner down",
        "sweep down",
        "server down",
    ]


def test_no_flows_needs_a_prefect_server_to_leave_the_runs_to(
    settings: Settings, initiative: Initiative, steps: list[str]
) -> None:
    with pytest.raises(OperationalProblem, match="set PREFECT_API_URL"):
        _serve(settings, initiative, None, flows=False)

    assert steps == []  # nothing was started


def test_serve_help_offers_no_flows() -> None:
    text = flat(invoke("serve", "--help").output)
    assert "--no-flows" in text and "work pool" in text
