"""docker/compose.yaml, for real: the images are built on this host (no registry: docker/offline/build.sh
makes a Debian base with debootstrap and `docker import`), the stack is started with `docker compose up`,
a small study runs end to end on its Ray worker through the REST API, the control-plane container is
restarted mid-study, and nothing recorded before the restart is lost.

Skipped, with the reason, only when no Docker engine answers (`docker info`). A missing compose plugin
or a failing build is a failure. Takes 5 to 15 minutes on 2 cores (the first image build is most of it).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker" / "compose.yaml"
BUILD = REPO / "docker" / "offline" / "build.sh"
POSTGRES_IMAGE = "scaleladder/postgres:15-bookworm"
PROJECT = f"sl-compose-test-{os.getpid()}"

# The README's small example with more and longer trials, so that the study is still running when the
# control plane is restarted (about a minute after its first measurement on 2 cores): random search on the
# built-in MLP, on the compose stack's one Ray worker.
SPEC = {
    "name": "compose-stack",
    "objective": {"metric": "loss", "direction": "minimize"},
    "space": [
        {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        {"name": "weight_decay", "type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    ],
    "fidelity": {"steps": {"min": 50, "max": 400, "report_every": 50},
                 "sizes": [{"name": "narrow", "params": 1.7e3, "extra": {"width": 32}}]},
    "target": {"steps": 400, "size": "narrow"},
    "cost": {"kind": "analytic"},
    "budget": {"max_trials": 40},
    "scheduler": {"name": "random", "seed": 0},
    "workload": {"name": "mlp", "args": {"depth": 2}},
}


def _docker_engine_answers() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI on PATH (apt-get install docker.io)"
    probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                           timeout=60)
    if probe.returncode != 0:
        return f"no Docker engine answers: {(probe.stderr or probe.stdout).strip()[:300]}"
    return None


_NO_ENGINE = _docker_engine_answers()
if _NO_ENGINE:
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason=_NO_ENGINE)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, env_file: Path, port: int, token: str, log) -> None:
        self.env_file, self.port, self.token, self.log = env_file, port, token, log
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})

    def compose(self, *args: str, check: bool = True, timeout: float = 600,
                quiet: bool = False) -> subprocess.CompletedProcess:
        command = ["docker", "compose", "--project-name", PROJECT, "--env-file", str(self.env_file),
                   "-f", str(COMPOSE_FILE), *args]
        self.log(f"$ docker compose {' '.join(args)}")
        # compose lets the process environment override --env-file: keep only this stack's values
        keys = {line.split("=", 1)[0] for line in self.env_file.read_text().splitlines() if "=" in line}
        env = {k: v for k, v in os.environ.items() if k not in keys}
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        if result.stdout.strip() and not quiet:
            self.log(result.stdout.rstrip())
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def wait_ready(self, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if self.http.get("/readyz").status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(2)
        raise AssertionError(f"the control plane was not ready within {timeout:.0f} s")

    def get(self, path: str) -> dict:
        response = self.http.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response.json()

    def paged(self, path: str) -> list[dict]:
        items, token = [], None
        while True:
            page = self.get(path + (f"?page_token={token}" if token else ""))
            items += page["items"]
            token = page.get("next_page_token")
            if not token:
                return items


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    out = tmp_path_factory.mktemp("compose")
    transcript = out / "transcript.txt"

    def log(line: str) -> None:
        print(line, flush=True)
        with transcript.open("a") as f:
            f.write(line + "\n")

    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    assert probe.returncode == 0, ("a Docker engine answers but the compose plugin is missing: "
                                   "see docs/deployment.md, 'Compose without a registry'")
    started = time.monotonic()
    build = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=2400)
    (out / "build.log").write_text(build.stdout + build.stderr)
    assert build.returncode == 0, f"docker/offline/build.sh failed:\n{(build.stdout + build.stderr)[-4000:]}"
    log(f"images built in {time.monotonic() - started:.0f} s")

    port, token = _free_port(), secrets.token_hex(32)
    env_file = out / "compose.env"
    env_file.write_text("\n".join([
        f"POSTGRES_PASSWORD={secrets.token_hex(16)}",
        f"RAY_AUTH_TOKEN={secrets.token_hex(32)}",
        f"SCALELADDER_BOOTSTRAP_TOKEN={token}",
        f"POSTGRES_IMAGE={POSTGRES_IMAGE}",
        f"SCALELADDER_PORT={port}",
        f"RAY_DASHBOARD_PORT={_free_port()}",
        "RAY_WORKER_NUM_CPUS=2",
    ]) + "\n")
    stack = Stack(env_file, port, token, log)
    try:
        started = time.monotonic()
        stack.compose("up", "-d", "--no-build")
        took = stack.wait_ready(timeout=420)
        log(f"control plane ready {time.monotonic() - started:.0f} s after `up` ({took:.0f} s of polling)")
        stack.compose("ps", "-a", "--format", "table {{.Service}}\t{{.Status}}")
        yield stack
    except BaseException:
        raise
    finally:
        logs = stack.compose("logs", "--no-color", "--timestamps", check=False, timeout=120, quiet=True)
        (out / "compose.log").write_text(logs.stdout + logs.stderr)
        stack.compose("down", "-v", "--remove-orphans", check=False, timeout=300)
        stack.http.close()
        print(f"compose transcript, build log and container logs: {out}")


def _measured(stack: Stack, study_id: int) -> set[tuple[int, int, float]]:
    return {(m["trial_id"], m["step"], m["value"]) for m in stack.paged(f"/v1/studies/{study_id}/measurements")}


@pytest.mark.timeout(3000)
def test_compose_stack_runs_a_study_and_survives_a_control_plane_restart(stack: Stack) -> None:
    created = stack.http.post("/v1/studies", json=SPEC)
    assert created.status_code == 201, created.text
    study = created.json()
    study_id = study["id"]
    stack.log(f"POST /v1/studies -> 201, study {study_id} {study['state']}")
    started = stack.http.post(f"/v1/studies/{study_id}:start")
    assert started.status_code == 200, started.text
    stack.log(f"POST /v1/studies/{study_id}:start -> 200, {started.json()['state']}")

    # Mid-study: a few measurements in, the study still running on the Ray cluster.
    deadline = time.monotonic() + 600
    while True:
        progress = stack.get(f"/v1/studies/{study_id}/progress")
        assert progress["state"] in ("pending", "running"), progress
        if progress["n_measurements"] >= 4:
            break
        assert time.monotonic() < deadline, f"no 4 measurements within 600 s: {progress}"
        time.sleep(1)
    before = _measured(stack, study_id)
    trials_before = {t["id"] for t in stack.paged(f"/v1/studies/{study_id}/trials")}
    stack.log(f"before the restart: state {progress['state']}, {len(trials_before)} trials, "
              f"{len(before)} measurements")

    started = time.monotonic()
    stack.compose("restart", "control-plane")
    stack.wait_ready(timeout=300)
    stack.log(f"control plane restarted and ready again in {time.monotonic() - started:.0f} s")

    after = _measured(stack, study_id)
    assert before <= after, f"measurements lost in the restart: {sorted(before - after)}"
    assert trials_before <= {t["id"] for t in stack.paged(f"/v1/studies/{study_id}/trials")}
    stack.log(f"after the restart: state {stack.get(f'/v1/studies/{study_id}')['state']}, "
              f"{len(after)} measurements (all {len(before)} from before the restart kept)")

    deadline = time.monotonic() + 900
    while (study := stack.get(f"/v1/studies/{study_id}"))["state"] not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"study {study_id} did not finish within 900 s: {study}"
        time.sleep(2)
    assert study["state"] == "completed", study.get("error")
    final = _measured(stack, study_id)
    assert before <= final
    trials = stack.paged(f"/v1/studies/{study_id}/trials")
    assert len(trials) == SPEC["budget"]["max_trials"]
    # no measurement recorded twice for one (trial, step)
    assert len({(t, s) for t, s, _ in final}) == len(final)
    progress = stack.get(f"/v1/studies/{study_id}/progress")
    recommendation = stack.get(f"/v1/studies/{study_id}/recommendation")
    stack.log(f"study {study_id} completed: {progress['n_trials']} trials {progress['trials_by_state']}, "
              f"{progress['n_measurements']} measurements, best {progress['best_value']:.4f}")
    stack.log("recommendation: " + json.dumps({k: recommendation[k] for k in recommendation
                                              if k in ("params", "size", "steps", "predicted", "std")}))

    # The study ran on the compose Ray cluster: its runner is the named actor on the head (0 CPUs), and
    # its trials' actors lived on another node, the worker.
    listed = stack.compose("exec", "-T", "ray-head", "ray", "list", "actors", "--format", "json",
                           "--limit", "10000", timeout=120, quiet=True)
    actors = json.loads(listed.stdout)
    runner = [a for a in actors if a.get("name") == f"scaleladder-study-{study_id}"]
    assert len(runner) == 1, [a.get("name") for a in actors]
    trial_nodes = {a["node_id"] for a in actors if str(a.get("class_name", "")).startswith(f"study-{study_id}-")}
    assert trial_nodes and runner[0]["node_id"] not in trial_nodes, (runner, trial_nodes)
    stack.log(f"Ray: runner scaleladder-study-{study_id} {runner[0]['state']} on the head node; trial actors "
              f"on {len(trial_nodes)} other node(s)")
