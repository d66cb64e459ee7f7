"""The secret guarding the local Prefect server: made once, kept 0600, reused, handed to the
server, this process's client (and so the runner's runs) and the CLI.

The served server refusing a request without it is checked end to end in test_serve.py.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ci_pipeline.config import Settings
from ci_pipeline.serve import auth, local_server, status
from tests.helpers import invoke


@pytest.fixture(autouse=True)
def no_prefect_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither variable set (restored after the test, even when the code under test sets it)."""
    for name in (auth.SERVER_VARIABLE, auth.CLIENT_VARIABLE, "PREFECT_API_URL"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_the_secret_is_made_once_owner_only_and_reused(settings: Settings) -> None:
    assert auth.read_auth_string(settings) is None

    made = auth.auth_string(settings)

    user, _, secret = made.partition(":")
    assert user == "admin" and len(secret) >= 40  # token_urlsafe(32): 43 characters
    path = settings.home / "prefect-api-auth"
    assert path == settings.prefect_auth_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == made + "\n"
    assert auth.auth_string(settings) == made  # a later start reuses it
    assert auth.read_auth_string(settings) == made


def test_a_secret_file_others_can_read_is_made_the_owners_alone(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    settings.prefect_auth_file.write_text("admin:kept\n", encoding="utf-8")
    settings.prefect_auth_file.chmod(0o644)

    assert auth.auth_string(settings) == "admin:kept"
    assert stat.S_IMODE(settings.prefect_auth_file.stat().st_mode) == 0o600


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_the_secret_is_never_read_or_written_through_a_link(
    settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.write_text("admin:planted\n", encoding="utf-8")
    settings.home.mkdir(parents=True)
    settings.prefect_auth_file.symlink_to(outside)

    with pytest.raises(OSError):
        auth.auth_string(settings)
    assert outside.read_text(encoding="utf-8") == "admin:planted\n"


def test_clients_of_the_local_server_use_the_stored_secret(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = auth.auth_string(settings)
    local = settings.local_prefect_api_url

    assert auth.client_auth_string(settings, local) == made
    assert auth.client_auth_string(settings, local + "/") == made
    assert auth.client_auth_string(settings, "http://prefect.example.org/api") is None
    monkeypatch.setenv(auth.CLIENT_VARIABLE, "admin:from-the-environment")
    assert auth.client_auth_string(settings, local) == "admin:from-the-environment"


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """``prefect server start`` replaced by a process that answers at once; what it was given."""
    started: dict[str, Any] = {}

    class Process:
        def __init__(self, args: list[str], *, env: dict[str, str], **_: Any) -> None:
            started["args"], started["env"], started["running"] = args, env, True

        def poll(self) -> None:
            return None

        def terminate(self) -> None:
            started["terminated"], started["running"] = True, False

        def wait(self, timeout: float | None = None) -> int:
            return 0

    monkeypatch.setattr(local_server.subprocess, "Popen", Process)
    # Nothing answers before it starts; it answers once started, until terminated.
    monkeypatch.setattr(
        local_server, "healthy", lambda url, timeout=2.0: started.get("running", False)
    )
    monkeypatch.setattr("prefect.context.refresh_global_settings_context", lambda: None)
    yield started


def test_serve_starts_its_server_with_the_secret_and_hands_it_to_its_clients(
    settings: Settings, fake_server: dict[str, Any]
) -> None:
    with local_server.prefect_server(settings) as url:
        assert url == settings.local_prefect_api_url
        made = auth.read_auth_string(settings)
        assert made is not None
        assert fake_server["env"][auth.SERVER_VARIABLE] == made
        # This process's client, and the runs the runner starts (they inherit it), send it.
        assert os.environ[auth.CLIENT_VARIABLE] == made
        assert os.environ["PREFECT_API_URL"] == url
    assert fake_server["terminated"]

    with local_server.prefect_server(settings):  # a second start: the same secret
        assert fake_server["env"][auth.SERVER_VARIABLE] == made


def test_a_secret_set_in_the_environment_is_used_instead(
    settings: Settings, fake_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(auth.SERVER_VARIABLE, "admin:chosen")
    with local_server.prefect_server(settings):
        assert fake_server["env"][auth.SERVER_VARIABLE] == "admin:chosen"
        assert os.environ[auth.CLIENT_VARIABLE] == "admin:chosen"
    assert auth.read_auth_string(settings) is None  # nothing stored


def test_status_sends_the_secret_to_the_local_server(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = auth.auth_string(settings)
    seen: list[httpx.Headers] = []

    def post(url: str, **kwargs: Any) -> httpx.Response:
        seen.append(httpx.Headers(kwargs.get("headers") or {}))
        return httpx.Response(200, json=[], request=httpx.Request("POST", url))

    monkeypatch.setattr(status.httpx, "post", post)
    result = invoke("status", "--json")
    assert result.exit_code == 0, result.output
    [headers] = seen
    assert headers["Authorization"] == "Basic " + base64.b64encode(made.encode()).decode()


def test_status_says_when_the_server_refuses_the_secret(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def post(url: str, **kwargs: Any) -> httpx.Response:
        return httpx.Response(401, json={}, request=httpx.Request("POST", url))

    monkeypatch.setattr(status.httpx, "post", post)
    result = invoke("status", "--json")
    assert result.exit_code == 0, result.output
    assert "refused the request (401)" in result.stdout
    assert "PREFECT_API_AUTH_STRING" in result.stdout


def test_the_cli_pointed_at_the_local_server_authenticates_with_its_secret(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = auth.auth_string(settings)
    monkeypatch.setenv("PREFECT_API_URL", settings.local_prefect_api_url)

    assert invoke("partners", "--json").exit_code == 0  # any command: the app's callback

    assert os.environ[auth.CLIENT_VARIABLE] == made


def test_the_cli_pointed_elsewhere_sends_no_local_secret(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth.auth_string(settings)
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example.org/api")

    assert invoke("partners", "--json").exit_code == 0

    assert auth.CLIENT_VARIABLE not in os.environ
