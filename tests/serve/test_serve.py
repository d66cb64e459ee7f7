"""`ci-pipeline serve` as a user runs it: its own Prefect server, the deployments, the inbox
watcher and the intake API in one process, stopped cleanly by Ctrl-C.

One test, end to end through a real local server (not the test harness): a partner uploads a
file with its token, the upload's event starts the ingest deployment, and the partner reads
the verdict back from the API.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import invoke, ok_json

STARTUP = 240.0  # a first Prefect server start migrates its database: 10–60 s here


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_serve_takes_an_upload_through_to_a_verdict_and_stops_on_ctrl_c(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefect_port, api_port = _port(), _port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_") and not k.startswith("CI_PIPELINE_")
    }
    env |= {
        "CI_PIPELINE_HOME": str(home),
        "CI_PIPELINE_PREFECT_PORT": str(prefect_port),
        "CI_PIPELINE_API_PORT": str(api_port),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    for key in ("PREFECT_API_URL",):
        monkeypatch.delenv(key, raising=False)
    token = ok_json(invoke("tokens", "issue", "--partner", "galilee-foundation", "--json"))
    command = [str(Path(sys.executable).with_name("ci-pipeline")), "serve"]
    log = (tmp_path / "serve.log").open("w+")
    # Its own process group, as a terminal's foreground job is: Ctrl-C reaches the whole group.
    server = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    api = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + STARTUP
        while "is serving" not in (tmp_path / "serve.log").read_text():
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.5)
        printed = (tmp_path / "serve.log").read_text()
        assert f"http://127.0.0.1:{prefect_port}" in printed and api in printed
        assert _answers(f"http://127.0.0.1:{prefect_port}/api/health")
        assert (home / "inbox" / "galilee-foundation").is_dir()  # the inbox is prepared

        headers = {"Authorization": f"Bearer {token['secret']}"}
        body = b"measure_id,geo_code,period,value\nnew-resources-nis,beit-hakerem,2025-Q1,250000\n"
        upload = httpx.post(
            f"{api}/v1/submissions",
            params={"period": "2025-Q1", "filename": "fund.csv"},
            content=body,
            headers=headers,
            timeout=10,
        )
        assert upload.status_code == 202, upload.text
        status_url = api + upload.json()["submission_url"]

        # Stored before the 202: it is listed at once, received, until the ingest decides it.
        deadline = time.monotonic() + STARTUP
        verdict = httpx.get(status_url, headers=headers, timeout=10).json()
        while verdict["status"] == "received":
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(1)
            verdict = httpx.get(status_url, headers=headers, timeout=10).json()
        assert verdict["status"] == "accepted" and verdict["file_name"] == "fund.csv"

        # Its Prefect API answers only with the secret serve made (0600) under the home: the
        # runner's ingest run above used it, and so does the CLI.
        secret_file = home / "prefect-api-auth"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        user, _, secret = secret_file.read_text(encoding="utf-8").strip().partition(":")
        runs_url = f"http://127.0.0.1:{prefect_port}/api/flow_runs/filter"
        assert httpx.post(runs_url, json={"limit": 1}, timeout=10).status_code == 401
        wrong = httpx.post(runs_url, json={"limit": 1}, auth=(user, "guess"), timeout=10)
        assert wrong.status_code == 401
        right = httpx.post(runs_url, json={"limit": 20}, auth=(user, secret), timeout=10)
        assert right.status_code == 200
        assert any(
            r["name"].startswith("ingest galilee-foundation 2025-Q1 #") for r in right.json()
        )
        # The CLI as a user runs it beside serve: same home, no Prefect settings of its own.
        status = subprocess.run(
            [*command[:-1], "status", "--json", "--limit", "20"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        snap = json.loads(status.stdout)
        assert snap["runs_note"] is None
        assert any(
            r["name"].startswith("ingest galilee-foundation 2025-Q1 #") for r in snap["runs"]
        )
        # A `submit` beside serve is handed to serve (serve/handoff.py), which ingests it in
        # its warm process: the run is tagged, as the command's own in-process runs are not.
        assert (home / "warm.sock").exists()
        q2 = tmp_path / "fund-q2.csv"
        q2.write_bytes(body.replace(b"2025-Q1,250000", b"2025-Q2,260000"))
        submitted = subprocess.run(
            [
                *command[:-1],
                "submit",
                str(q2),
                "--json",
                "--partner",
                "galilee-foundation",
                "--period",
                "2025-Q2",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        receipt = json.loads(submitted.stdout)
        assert receipt["status"] == "accepted"
        runs = httpx.post(runs_url, json={"limit": 50}, auth=(user, secret), timeout=10).json()
        name = f"ingest galilee-foundation 2025-Q2 #{receipt['submission_id']}"
        run = next(r for r in runs if r["name"] == name)
        assert {"partner:galilee-foundation", "status:accepted"} <= set(run["tags"])
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C at the terminal
        try:
            code = server.wait(timeout=90)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert code == 0, (tmp_path / "serve.log").read_text()
    assert "Stopped." in (tmp_path / "serve.log").read_text()
    assert not _answers(f"http://127.0.0.1:{prefect_port}/api/health")  # its server is gone
    assert not _answers(f"{api}/healthz")
    assert not (home / "warm.sock").exists()
